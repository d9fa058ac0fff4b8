# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host's last "nothing to do", remembered so that the next run can say it again cheaply.

Deciding that a host's certificates are fine means parsing them and their key
and checking the chain, which costs a module run the import of cryptography
and of the PKI core: more than half of what a no-op run costs on the host.
When a full decision finds nothing to do, the module remembers it here,
keyed on everything the decision read:

- the module's parameters (the wanted identities, the trust anchors, the
  renewal settings),
- each file it read, by SHA-256 of its content and its mode, owner and group,
- the source of the code that decided,

together with the moment the decision stops holding: the renewal time, or
the first time any certificate involved starts or stops being valid,
whichever comes first. A later run whose key matches, before that moment,
answers with the remembered result without loading any of the PKI code.
Anything else (a file touched, a wish changed, a new release of the
collection, an unreadable memo) means the full decision, as if there were
no memo. This module uses the standard library only, so that using it
costs next to nothing.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import json
import os

from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError

MEMO_NAME = ".fleet-mtls-decision.json"
FORMAT = 1

_COLLECTION = "ansible_collections.fleet.mtls.plugins."


def code_digest(module_name, module_utils):
    """SHA-256 of the source of the module and the module_utils that decide."""
    digest = hashlib.sha256()
    for name in [_COLLECTION + "modules." + module_name] + \
            [_COLLECTION + "module_utils." + util for util in sorted(module_utils)]:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            return None
        try:
            source = spec.loader.get_data(spec.origin)
        except (IOError, OSError):
            return None
        digest.update(name.encode("ascii") + b"\0" + hashlib.sha256(source).digest())
    return digest.hexdigest()


def file_state(path):
    """[sha256, mode, uid, gid] of a file, or None when it does not exist."""
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            content = handle.read()
    except IOError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    return [hashlib.sha256(content).hexdigest(), info.st_mode & 0o7777, info.st_uid, info.st_gid]


def decision_key(params, paths, code):
    """The key of a decision: its inputs, the state of the files it read, its code."""
    if code is None:
        return None
    try:
        files = dict((path, file_state(path)) for path in paths)
    except (IOError, OSError):
        return None  # the full decision reports what is wrong with the file
    inputs = dict(format=FORMAT, params=params, code=code, files=files)
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode("utf-8")).hexdigest()


class Memo(object):
    """The memo of one directory: recall a decision, or remember a new one."""

    def __init__(self, directory, key):
        self.path = os.path.join(directory, MEMO_NAME)
        self.key = key

    def recall(self, now):
        """The remembered result when the key matches and now is before its end; else None."""
        if self.key is None:
            return None
        try:
            with open(self.path, "rb") as handle:
                memo = json.loads(handle.read().decode("utf-8"))
            if memo["key"] == self.key and now < float(memo["valid_until"]):
                return dict(memo["result"])
        except (IOError, OSError, ValueError, KeyError, TypeError, AttributeError):
            pass  # no memo, or one this code cannot read: decide in full
        return None

    def remember(self, result, valid_until, write):
        """Keep result until valid_until with write(path, bytes); a memo that cannot be written is no loss."""
        if self.key is None:
            return
        content = json.dumps(dict(key=self.key, valid_until=valid_until, result=result), sort_keys=True)
        try:
            write(self.path, content.encode("utf-8"))
        except (PkiError, OSError):
            pass  # the next run decides in full; the result stands either way
