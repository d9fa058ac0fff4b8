# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  ca_cert_path:
    description:
      - Path of the signing CA's certificate on the CA host.
      - It must be a CA (basicConstraints CA:TRUE, keyUsage keyCertSign), valid now, and match O(ca_key_path).
    type: path
    required: true
  ca_key_path:
    description:
      - Path of the signing CA's private key on the CA host. The key is read once per run and never leaves the host.
    type: path
    required: true
  ca_key_passphrase:
    description:
      - Passphrase of the CA key when it is encrypted. The value is never logged.
    type: str
"""
