# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The trust generation of a server: a short digest of everything a TLS session's verification depended on."""

from __future__ import annotations

import hashlib
import json

from ansible.errors import AnsibleFilterError

_MISSING = "missing"


def trust_generation(inputs, checksums=None):
    """A 16-hex-digit digest of a server's trust inputs, equal only for equal inputs.

    inputs: any JSON structure naming what a handshake's verification used
    (the verify mode, allow-lists evaluated at the handshake) where each file
    is given by its path; checksums: {path: content checksum}, from stat on
    the host. Each path string in inputs that checksums knows is replaced by
    its checksum, so that a file's new content makes a new generation and a
    moved file with the same content does not. A session cache named after
    it ends every session made under other inputs.
    """
    checksums = checksums or {}
    if not isinstance(checksums, dict):
        raise AnsibleFilterError("trust_generation: checksums must be a dict of path: checksum")

    def resolve(value):
        if isinstance(value, dict):
            return dict((str(key), resolve(item)) for key, item in value.items())
        if isinstance(value, (list, tuple)):
            return [resolve(item) for item in value]
        if isinstance(value, str) and value in checksums:
            return "file:" + str(checksums[value] or _MISSING)
        if value is None or isinstance(value, (str, int, float, bool)):
            return value
        raise AnsibleFilterError("trust_generation: %r is not a string, number, list or dict" % (value,))

    canonical = json.dumps(resolve(inputs), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


class FilterModule(object):
    def filters(self):
        return {"trust_generation": trust_generation}
