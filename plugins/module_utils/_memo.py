# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host's last "nothing to do", remembered so that the next run can say it again cheaply.

Deciding that a host's certificates are fine means parsing them and their key
and checking the chain, which costs a module run the import of cryptography
and of the PKI core: about a third of its CPU in a fleet-wide no-op run.
When a full decision finds nothing to do, the module remembers it here,
keyed on everything the decision read:

- the module's parameters (the wanted identities, the trust anchors, the
  renewal settings),
- each file it read, by SHA-256 of its content and its mode, owner and group,
- the ids the owner and group names stand for now,
- the source of the code that decided,

together with when it was decided and the moment it stops holding: the
renewal time, or the first time any certificate involved starts or stops
being valid, whichever comes first. A later run whose key matches, between
those two moments, answers with the remembered result without loading any
of the PKI code.
Anything else (a file touched, a wish changed, a new release of the
collection, an unreadable memo) means the full decision, as if there were
no memo. This module uses the standard library only, so that using it
costs next to nothing.
"""

from __future__ import annotations

import errno
import grp
import hashlib
import importlib.util
import json
import os
import pwd

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
    """[sha256, mode, uid, gid] of a file, ["symlink", target] for a link, or None when it does not exist."""
    try:
        if os.path.islink(path):
            return ["symlink", os.readlink(path)]
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            content = handle.read()
    except IOError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    return [hashlib.sha256(content).hexdigest(), info.st_mode & 0o7777, info.st_uid, info.st_gid]


def account_ids(owner, group):
    """[uid, gid] that owner and group name now (a name can be given to another id)."""
    uid = pwd.getpwnam(owner).pw_uid if owner and not str(owner).isdigit() else owner
    gid = grp.getgrnam(group).gr_gid if group and not str(group).isdigit() else group
    return [uid, gid]


def decision_key(params, paths, code, accounts=()):
    """The key of a decision: its inputs, the files it read, the accounts it sets, its code; None if any is unknown."""
    if code is None:
        return None
    try:
        files = dict((path, file_state(path)) for path in paths)
        ids = [account_ids(owner, group) for owner, group in accounts]
    except (IOError, OSError, KeyError):
        return None  # the full decision reports what is wrong with the file or the account
    inputs = dict(format=FORMAT, params=params, code=code, files=files, accounts=ids)
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode("utf-8")).hexdigest()


class Memo(object):
    """The memo of one directory: recall a decision, or remember a new one."""

    def __init__(self, directory, key):
        self.path = os.path.join(directory, MEMO_NAME)
        self.key = key

    def recall(self, now):
        """The remembered result when the key matches and now is within its time; else None."""
        if self.key is None:
            return None
        try:
            with open(self.path, "rb") as handle:
                memo = json.loads(handle.read().decode("utf-8"))
            # A clock set back before the decision is no time to trust it either.
            if memo["key"] == self.key and float(memo["decided_at"]) <= now < float(memo["valid_until"]):
                return dict(memo["result"])
        except (IOError, OSError, ValueError, KeyError, TypeError, AttributeError):
            pass  # no memo, or one this code cannot read: decide in full
        return None

    def remember(self, result, decided_at, valid_until, write):
        """Keep result from decided_at until valid_until with write(path, bytes); failing to is no loss."""
        if self.key is None:
            return
        content = json.dumps(dict(key=self.key, decided_at=decided_at, valid_until=valid_until, result=result),
                             sort_keys=True)
        try:
            write(self.path, content.encode("utf-8"))
        except (PkiError, OSError):
            pass  # the next run decides in full; the result stands either way
