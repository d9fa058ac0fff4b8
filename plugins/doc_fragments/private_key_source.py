# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  privatekey_path:
    description:
      - Path of the PEM private key on the managed host.
      - Exactly one of O(privatekey_path) and O(privatekey_content) is needed where a key is needed.
    type: path
  privatekey_content:
    description:
      - The PEM private key itself. Prefer O(privatekey_path) so keys never travel; the value is never logged.
    type: str
  privatekey_passphrase:
    description:
      - Passphrase of an encrypted private key. The value is never logged.
      - A wrong passphrase is an error; the key is never replaced because of it.
    type: str
"""
