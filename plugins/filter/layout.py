# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a certificate entry's files are, as certificate_request writes them (module_utils _layout)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.mtls.plugins.module_utils._layout import certificate_files as _certificate_files


def certificate_files(directory, name, combined=False):
    """The paths of certificate name's files in directory: key, pending_key, cert, chain, fullchain, combined."""
    if not directory or not isinstance(directory, str):
        raise AnsibleFilterError("certificate_files: the directory must be a path, not %r" % (directory,))
    if not name or not isinstance(name, str) or "/" in name:
        raise AnsibleFilterError("certificate_files: %r is not a certificate name" % (name,))
    return _certificate_files(directory, name, bool(combined))


class FilterModule(object):
    def filters(self):
        return {"certificate_files": certificate_files}
