# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CA host's record of every certificate it issued.

One JSON document, rewritten atomically under the CA's exclusive lock
(ca_lock), so that two plays signing at once never lose an entry. Revocation
marks entries here and the CRL is generated from them, under the same lock.
An index whose entries the modules could not use is refused as malformed
when it is read, by listing and writing runs alike.
"""

from __future__ import annotations

import contextlib
import json
import re

from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _files
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError

INDEX_FORMAT = 1

REVOCATION_REASONS = (
    "unspecified", "key_compromise", "ca_compromise", "affiliation_changed", "superseded",
    "cessation_of_operation", "certificate_hold", "privilege_withdrawn", "aa_compromise",
)

# Upper-case hex digits: a serial as sign records it (_crypto.serial_hex), and
# all a serial given by a caller may hold once colons and a 0x prefix are gone
# (int(text, 16) would also take a sign, "_" and spaces).
_HEX_DIGITS = re.compile(r"[0-9A-F]+")


def lock_path(index_path):
    """The CA's lock file, beside its index."""
    return index_path + ".lock"


def ca_lock(index_path):
    """The CA's lock, as a context manager.

    Every run that writes the CA's index or its CRL holds it from the first
    read to the last write, so that two runs never decide from the same old
    content. The index itself need not exist.
    """
    return _files.exclusive_lock(lock_path(index_path))


class CertificateIndex(object):
    """Use as a context manager: it holds the CA's lock from load to save.

    With save=False (check mode) changes are made in memory only and no lock
    is taken. With locked=True the caller already holds ca_lock() for a longer
    read-decide-write sequence, and the index takes no lock of its own.
    """

    def __init__(self, path, save=True, locked=False):
        self.path = path
        self.save = save
        self.locked = locked
        self.entries = []
        self._held = None
        self._dirty = False

    def __enter__(self):
        with contextlib.ExitStack() as stack:
            if self.save:
                _files.check_writable(self.path)
                if not self.locked:
                    stack.enter_context(ca_lock(self.path))
            self.entries = _load(self.path)
            self._held = stack.pop_all()
        return self

    def __exit__(self, exc_type, exc, tb):
        with self._held:
            if exc_type is None and self.save and self._dirty:
                self._save()
        return False

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
    return _load(path)


def _load(path):
    raw = _files.read_bytes(path)
    if raw is None:
        return []
    try:
        document = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise PkiError("certificate index %s is corrupt: %s" % (path, exc))
    version = document.get("format") if isinstance(document, dict) else None
    if isinstance(version, bool) or version != INDEX_FORMAT:
        raise PkiError("certificate index %s has an unknown format" % path)
    return checked_entries(document.get("certificates"), path)


def checked_entries(certificates, path):
    """The index's certificates, refused unless every entry is one the modules can use.

    Each entry is an object with the serial as sign records it (upper-case
    hex, an even number of digits) and not_after in ISO 8601; a revoked one
    has revoked_at in ISO 8601 and a known revocation_reason.
    """
    def malformed(why):
        return PkiError("certificate index %s is malformed: %s" % (path, why))

    if not isinstance(certificates, list):
        raise malformed("certificates is not a list")
    for number, entry in enumerate(certificates, 1):
        if not isinstance(entry, dict):
            raise malformed("entry %d is not an object" % number)
        serial = entry.get("serial")
        if not isinstance(serial, str) or not serial:
            raise malformed("entry %d has no serial" % number)
        if not _is_recorded_serial(serial):
            raise malformed("entry %d has the serial %r, not upper-case hex as sign records it" % (number, serial))
        if not isinstance(entry.get("not_after"), str):
            raise malformed("entry %d (serial %s) has no not_after" % (number, serial))
        if not _is_time(entry["not_after"]):
            raise malformed("entry %d (serial %s): not_after %r is not an ISO 8601 date and time"
                            % (number, serial, entry["not_after"]))
        if entry.get("revoked_at") is None:
            continue
        if not isinstance(entry["revoked_at"], str) or not _is_time(entry["revoked_at"]):
            raise malformed("entry %d (serial %s): revoked_at %r is not an ISO 8601 date and time"
                            % (number, serial, entry["revoked_at"]))
        if entry.get("revocation_reason") not in REVOCATION_REASONS:
            raise malformed("entry %d (serial %s): revocation_reason %r is not one of %s"
                            % (number, serial, entry.get("revocation_reason"), ", ".join(REVOCATION_REASONS)))
    return certificates


def _is_recorded_serial(text):
    return bool(_HEX_DIGITS.fullmatch(text)) and normalize_serial(text) == text


def _is_time(text):
    try:
        c.parse_isoformat(text)
    except (PkiError, OverflowError):
        return False
    return True


def normalize_serial(serial):
    if isinstance(serial, int):
        text = "%X" % serial
    else:
        text = str(serial).replace(":", "").strip().upper()
        if text.startswith("0X"):
            text = text[2:]
        if not _HEX_DIGITS.fullmatch(text):
            raise PkiError("serial %r is not a hexadecimal number" % (serial,))
    if isinstance(serial, bool) or (isinstance(serial, int) and serial < 0):
        raise PkiError("serial %r is not a positive number" % (serial,))
    text = text.lstrip("0") or "0"
    return text if len(text) % 2 == 0 else "0" + text
