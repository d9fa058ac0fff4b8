# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CA host's record of every certificate it issued.

One JSON document, rewritten atomically under an exclusive lock, so that two
plays signing at once never lose an entry. Revocation marks entries here and
the CRL is generated from them.
"""

from __future__ import annotations

import fcntl
import json

from ansible_collections.fleet.mtls.plugins.module_utils import _files
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError

INDEX_FORMAT = 1

REVOCATION_REASONS = (
    "unspecified", "key_compromise", "ca_compromise", "affiliation_changed", "superseded",
    "cessation_of_operation", "certificate_hold", "privilege_withdrawn", "aa_compromise",
)


class CertificateIndex(object):
    """Use as a context manager: it holds the lock from load to save.

    With save=False (check mode) changes are made in memory only.
    """

    def __init__(self, path, save=True):
        self.path = path
        self.save = save
        self.entries = []
        self._lock_handle = None
        self._dirty = False

    def __enter__(self):
        if self.save:
            _files.check_writable(self.path)
            self._lock_handle = open(self.path + ".lock", "a")
            fcntl.flock(self._lock_handle, fcntl.LOCK_EX)
        self.entries = self._load()
        return self

    def __exit__(self, exc_type, exc, tb):
        if self._lock_handle is None:
            return False
        try:
            if exc_type is None and self._dirty:
                self._save()
        finally:
            fcntl.flock(self._lock_handle, fcntl.LOCK_UN)
            self._lock_handle.close()
        return False

    def _load(self):
        raw = _files.read_bytes(self.path)
        if raw is None:
            return []
        try:
            document = json.loads(raw.decode("utf-8"))
        except ValueError as exc:
            raise PkiError("certificate index %s is corrupt: %s" % (self.path, exc))
        if not isinstance(document, dict) or document.get("format") != INDEX_FORMAT:
            raise PkiError("certificate index %s has an unknown format" % self.path)
        return document.get("certificates", [])

    def _save(self):
        document = {"format": INDEX_FORMAT, "certificates": self.entries}
        data = json.dumps(document, indent=1, sort_keys=True).encode("utf-8") + b"\n"
        _files.atomic_write(self.path, data, mode=0o640)

    def add(self, entry):
        self.entries.append(entry)
        self._dirty = True

    def find(self, serial=None, name=None):
        """Entries by serial (hex, any case, colons allowed) or by name."""
        found = []
        wanted = normalize_serial(serial) if serial is not None else None
        for entry in self.entries:
            if wanted is not None and entry["serial"] == wanted:
                found.append(entry)
            elif name is not None and entry.get("name") == name:
                found.append(entry)
        return found

    def revoke(self, entry, when, reason):
        if reason not in REVOCATION_REASONS:
            raise PkiError("unknown revocation reason %r (use %s)" % (reason, ", ".join(REVOCATION_REASONS)))
        if entry.get("revoked_at"):
            return False
        entry["revoked_at"] = when
        entry["revocation_reason"] = reason
        self._dirty = True
        return True

    def revoked(self):
        return [e for e in self.entries if e.get("revoked_at")]


def read_entries(path):
    """The index's entries without taking the lock for writing (listing only)."""
    raw = _files.read_bytes(path)
    if raw is None:
        return []
    try:
        document = json.loads(raw.decode("utf-8"))
    except ValueError as exc:
        raise PkiError("certificate index %s is corrupt: %s" % (path, exc))
    return document.get("certificates", [])


def normalize_serial(serial):
    if isinstance(serial, int):
        text = "%X" % serial
    else:
        text = str(serial).replace(":", "").strip().upper()
        if text.startswith("0X"):
            text = text[2:]
        try:
            int(text, 16)
        except ValueError:
            raise PkiError("serial %r is not a hexadecimal number" % (serial,))
    text = text.lstrip("0") or "0"
    return text if len(text) % 2 == 0 else "0" + text
