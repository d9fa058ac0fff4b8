# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  owner:
    description:
      - User that owns the written file, by name or uid.
      - Set on the temporary file before it is renamed into place, so the file never appears with the wrong owner.
    type: str
  group:
    description:
      - Group of the written file, by name or gid.
    type: str
  mode:
    description:
      - Permissions of the written file, in octal. Quote it in YAML (V('0640')) so it is not read as a decimal number.
      - The default depends on the file; private keys are always V('0600') unless set otherwise.
    type: raw
"""
