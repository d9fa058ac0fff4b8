# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of values the service roles render into server configurations, made before any file changes."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.mtls.plugins.module_utils._policy import COMMON_NAME


def identity_refusals(names, variable):
    """One message for each allow-list entry that no certificate of the CA can carry as its common name.

    The CA issues subjects of exactly one CN of letters, digits, '.', '_'
    and '-' (_policy.COMMON_NAME); the servers match the whole subject,
    CN=<entry>. Anything else in an entry could only ever match a subject
    the CA would not build, and in a server's configuration it is syntax.
    """
    if names is None:
        return []
    if isinstance(names, (str, bytes)) or not isinstance(names, (list, tuple)):
        raise AnsibleFilterError("identity_refusals: %s must be a list of names, not %r" % (variable, names))
    refusals = []
    for name in names:
        if not isinstance(name, str) or not COMMON_NAME.fullmatch(name):
            refusals.append("%s: %r is not a name the CA issues (one word of letters, digits, '.', '_' and '-', at "
                            "most 64 characters)" % (variable, name))
    return refusals


class FilterModule(object):
    def filters(self):
        return {"identity_refusals": identity_refusals}
