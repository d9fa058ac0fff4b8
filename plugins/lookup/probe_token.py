# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The secret the fleet's own probes carry, kept in one file on the controller."""

from __future__ import annotations

DOCUMENTATION = r"""
name: probe_token
author:
  - fleet.mtls maintainers (@fleet-mtls)
version_added: 0.1.0
short_description: The secret by which the fleet's own TLS probes are told apart from clients
description:
  - Returns the probe token that the P(fleet.mtls.verify#role) role sends in the C(X-Fleet-Mtls-Probe) header and the
    P(fleet.mtls.rollout#role) role's observation leaves out of the clients it counts.
  - The token is read from O(file) on the controller. If the file does not exist, a new token is made there first
    (43 letters and digits, about 256 bits), the file with mode 0600 in a directory of mode 0700.
  - Both roles take their default C(mtls_probe_token) from this lookup, so they always agree. Where the controller's
    files do not last (AWX/Controller jobs), set C(mtls_probe_token) from a credential or vault instead, the same in
    every job.
options:
  file:
    description: Where the token is kept on the controller.
    type: path
    default: ~/.config/fleet-mtls/probe-token
notes:
  - Takes no terms.
  - A file that exists but holds no valid token (empty, too short, or other characters) is an error; it is never
    overwritten.
"""

EXAMPLES = r"""
- name: Show which file the fleet's probe token comes from (never the token)
  ansible.builtin.debug:
    msg: "{{ lookup('fleet.mtls.probe_token', file='/etc/fleet-mtls/probe-token') | length }} characters"
"""

RETURN = r"""
_raw:
  description: The token, as a list of one string.
  type: list
  elements: str
"""

import os
import re
import secrets
import string

from ansible.errors import AnsibleLookupError
from ansible.module_utils.common.text.converters import to_bytes, to_native
from ansible.plugins.lookup import LookupBase

_ALPHABET = string.ascii_letters + string.digits
_LENGTH = 43
_TOKEN = re.compile(r"[A-Za-z0-9]{32,256}")


def read_or_make(path):
    """The token in path, made there (0600, directory 0700) if the file does not exist."""
    b_path = to_bytes(os.path.expanduser(path), errors="surrogate_or_strict")
    try:
        with open(b_path, "rb") as handle:
            text = handle.read().decode("ascii", errors="replace").strip()
    except FileNotFoundError:
        os.makedirs(os.path.dirname(b_path) or b".", mode=0o700, exist_ok=True)
        token = "".join(secrets.choice(_ALPHABET) for _index in range(_LENGTH))
        try:
            descriptor = os.open(b_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # made meanwhile by another process: use that one
            return read_or_make(path)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(token + "\n")
        return token
    except OSError as error:
        raise AnsibleLookupError("probe_token: cannot read %s: %s" % (path, to_native(error.strerror or error)))
    if not _TOKEN.fullmatch(text):
        raise AnsibleLookupError("probe_token: %s holds no valid token (32 to 256 letters and digits); "
                                 "remove it to have a new one made" % path)
    return text


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        if terms:
            raise AnsibleLookupError("probe_token takes no terms, only file=")
        self.set_options(var_options=variables, direct=kwargs)
        return [read_or_make(self.get_option("file"))]
