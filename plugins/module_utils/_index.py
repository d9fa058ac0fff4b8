# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CA host's record of every certificate it issued: one SQLite file.

The record (``index.db`` beside the CA certificate unless told otherwise) is
an SQLite database in WAL mode, made 0640. A run that writes holds the CA's
exclusive lock (ca_lock) from its first read to its last write and makes its
changes in one transaction: a batch signed, revocations marked together with
the CRL number they go out under. A failure rolls the transaction back, so
the record is as it was. What a run costs does not depend on how many
entries the record holds: entries are found through indexes on serial, name,
SPIFFE ID, expiry and revocation, never by reading them all.

The JSON document of earlier releases (``index.json``, or any index_path
ending in ``.json``) is imported into the ``.db`` beside it by the first run
that writes, in one step: the new file appears whole under its name or not
at all, and the JSON is then renamed ``*.json.imported``. Until then,
listing and check-mode runs read the JSON itself. Every entry is checked
when it enters the record, from a sign run or an import, so that an entry
the modules could not use is refused naming it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import sqlite3
import stat
import tempfile

from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _files
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError

INDEX_FORMAT = 1  # the JSON document of earlier releases
RECORD_FORMAT = 1  # the SQLite schema, kept in PRAGMA user_version
DEFAULT_NAME = "index.db"
RECORD_MODE = 0o640

REVOCATION_REASONS = (
    "unspecified", "key_compromise", "ca_compromise", "affiliation_changed", "superseded",
    "cessation_of_operation", "certificate_hold", "privilege_withdrawn", "aa_compromise",
)

# Upper-case hex digits: a serial as sign records it (_crypto.serial_hex), and
# all a serial given by a caller may hold once colons and a 0x prefix are gone
# (int(text, 16) would also take a sign, "_" and spaces).
_HEX_DIGITS = re.compile(r"[0-9A-F]+")

_SQLITE_MAGIC = b"SQLite format 3\x00"

# The columns a query may select on; the whole entry is kept as JSON beside
# them. The rowid keeps the order of issue, oldest first, as listings show it.
_SCHEMA = (
    "CREATE TABLE certificates ("
    " serial TEXT PRIMARY KEY NOT NULL,"
    " name TEXT,"
    " spiffe_id TEXT,"
    " not_after INTEGER NOT NULL,"
    " revoked_at INTEGER,"
    " entry TEXT NOT NULL"
    ")",
    "CREATE INDEX certificates_by_name ON certificates (name)",
    "CREATE INDEX certificates_by_spiffe_id ON certificates (spiffe_id)",
    "CREATE INDEX certificates_by_not_after ON certificates (not_after)",
    "CREATE INDEX certificates_revoked ON certificates (not_after) WHERE revoked_at IS NOT NULL",
    # The last CRL number each CA (by its key) published, raised in the transaction that publishes.
    "CREATE TABLE crl_numbers (scope TEXT PRIMARY KEY NOT NULL, number INTEGER NOT NULL) WITHOUT ROWID",
)


def default_path(ca_cert_path):
    """The record beside the CA certificate."""
    return os.path.join(os.path.dirname(ca_cert_path), DEFAULT_NAME)


def record_paths(index_path):
    """(the SQLite record, the JSON document of earlier releases it imports, or None).

    An index_path ending in .json names the old document; the record is the
    .db beside it, so a playbook written for an earlier release keeps its
    record.
    """
    if index_path.endswith(".json"):
        return index_path[:-len(".json")] + ".db", index_path
    if index_path.endswith(".db"):
        return index_path, index_path[:-len(".db")] + ".json"
    return index_path, None


def lock_path(index_path):
    """The CA's lock file, beside its record (the same for either spelling of index_path)."""
    return record_paths(index_path)[0] + ".lock"


def ca_lock(index_path):
    """The CA's lock, as a context manager.

    Every run that writes the CA's record or its CRL holds it from the first
    read to the last write, so that two runs never decide from the same old
    content. The record itself need not exist.
    """
    return _files.exclusive_lock(lock_path(index_path))


class CertificateIndex(object):
    """Use as a context manager: one transaction, committed when the block ends without an error.

    With save=False (check mode) nothing is written and no lock is taken:
    changes go to a transaction that is rolled back, or to a copy in memory
    when the record does not exist yet. With locked=True the caller already
    holds ca_lock() for a longer read-decide-write sequence, and the index
    takes no lock of its own.
    """

    def __init__(self, path, save=True, locked=False):
        self.path, self.legacy_path = record_paths(path)
        self.save = save
        self.locked = locked
        self._db = None
        self._held = None
        self._new = None

    def __enter__(self):
        with contextlib.ExitStack() as stack:
            if self.save:
                _files.check_writable(self.path)
                if not self.locked:
                    stack.enter_context(ca_lock(self.path))
                if _record_kind(self.path) is None:
                    # The first run that writes makes the record under a temporary name, with what it imports,
                    # and renames it into place only once its own changes are committed too.
                    self._new = _create_record(self.path, self._legacy_entries())
                    stack.callback(self._discard_new)
                self._db = _connect(self._new or self.path)
            else:
                self._db = self._read_only()
            stack.callback(self._db.close)
            _execute(self._db, self.path, "BEGIN IMMEDIATE" if self.save else "BEGIN")
            self._held = stack.pop_all()
        return self

    def __exit__(self, exc_type, exc, tb):
        with self._held:
            if exc_type is not None or not self.save:
                self._db.rollback()
                return False
            _execute(self._db, self.path, "COMMIT")
            if self._new:
                self._db.close()
                _install_record(self._new, self.path)
                self._new = None
                self._retire_legacy()
        return False

    def _discard_new(self):
        if self._new:
            _remove_record_files(self._new)

    def _legacy_entries(self):
        if self.legacy_path is None:
            return []
        return _load_json(self.legacy_path)

    def _retire_legacy(self):
        if self.legacy_path is not None and os.path.lexists(self.legacy_path):
            try:
                os.rename(self.legacy_path, self.legacy_path + ".imported")
            except OSError as exc:
                raise PkiError("imported %s into %s but cannot rename it: %s"
                               % (self.legacy_path, self.path, exc.strerror or exc))

    def _read_only(self):
        # Changes go to a transaction that is rolled back: nothing is committed, and the last connection to
        # close removes SQLite's -wal and -shm files again. Without write access, a read-only connection.
        if _record_kind(self.path) is None:
            return _memory_record(self._legacy_entries())
        directory = os.path.dirname(os.path.abspath(self.path))
        return _connect(self.path, read_only=not (os.access(directory, os.W_OK) and os.access(self.path, os.W_OK)))

    def add(self, entry):
        """Record an entry that sign made; it is checked like an imported one."""
        checked_entries([entry], self.path)
        _insert(self._db, self.path, [entry])

    def find(self, serial=None, name=None, spiffe_id=None, host=None):
        """Entries by serial (hex, any case, colons allowed), by name, by SPIFFE ID or by host, oldest first.

        Any one given matches (several are OR'ed); host matches every name
        ``<host>/...`` (see host_name_range).
        """
        clauses, values = [], []
        if serial is not None:
            clauses.append("c.serial = ?")
            values.append(normalize_serial(serial))
        if name is not None:
            clauses.append("c.name = ?")
            values.append(name)
        if spiffe_id is not None:
            clauses.append("c.spiffe_id = ?")
            values.append(spiffe_id)
        if host is not None:
            clauses.append("(c.name >= ? AND c.name < ?)")
            values.extend(host_name_range(host))
        if not clauses:
            return []
        return self._select(" OR ".join(clauses), values)

    def revoke(self, entry, when, reason):
        """Mark the entry revoked (and the dict given); False when it already was."""
        if reason not in REVOCATION_REASONS:
            raise PkiError("unknown revocation reason %r (use %s)" % (reason, ", ".join(REVOCATION_REASONS)))
        if entry.get("revoked_at"):
            return False
        revoked = dict(entry, revoked_at=when, revocation_reason=reason)
        checked_entries([revoked], self.path)
        stored = dict((k, v) for k, v in revoked.items() if k != "status")
        cursor = _execute(self._db, self.path,
                          "UPDATE certificates SET revoked_at = ?, entry = ? WHERE serial = ? AND revoked_at IS NULL",
                          (_timestamp(when), _dump(stored), entry["serial"]))
        if cursor.rowcount != 1:
            return False
        entry.update(revoked_at=when, revocation_reason=reason)
        return True

    def revoked(self, not_after_after=None):
        """Revoked entries, optionally only those whose certificate is still valid after the given time."""
        if not_after_after is None:
            return self._select("c.revoked_at IS NOT NULL", [], using="certificates_revoked")
        return self._select("c.revoked_at IS NOT NULL AND c.not_after > ?", [_timestamp(not_after_after)],
                            using="certificates_revoked")

    def query(self, now, name=None, serial=None, spiffe_id=None, status="all", expires_before=None, host=None,
              serials=None):
        """Entries matching every criterion given, oldest first, each with its status at now.

        host matches every name ``<host>/...`` (see host_name_range); serials, a list, matches any of its serials
        (an empty list matches nothing), in one lookup on the serial's index however many there are.
        """
        clauses, values = [], []
        for column, value in (("c.name", name), ("c.spiffe_id", spiffe_id),
                              ("c.serial", normalize_serial(serial) if serial is not None else None)):
            if value is not None:
                clauses.append(column + " = ?")
                values.append(value)
        if serials is not None:
            clauses.append("c.serial IN (SELECT value FROM json_each(?))")
            values.append(json.dumps(sorted(set(normalize_serial(one) for one in serials))))
        if host is not None:
            clauses.append("c.name >= ? AND c.name < ?")
            values.extend(host_name_range(host))
        moment = _timestamp(c.isoformat(now))
        if status == "revoked":
            clauses.append("c.revoked_at IS NOT NULL")
        elif status == "expired":
            clauses.append("c.revoked_at IS NULL AND c.not_after <= ?")
            values.append(moment)
        elif status == "valid":
            clauses.append("c.revoked_at IS NULL AND c.not_after > ?")
            values.append(moment)
        if expires_before is not None:
            clauses.append("c.not_after <= ?")
            values.append(_timestamp(c.isoformat(expires_before)))
        return [dict(e, status=entry_status(e, now)) for e in self._select(" AND ".join(clauses) or "1", values)]

    def counts(self, now):
        """How many entries are valid, expired and revoked at now."""
        row = _execute(self._db, self.path,
                       "SELECT COALESCE(SUM(revoked_at IS NOT NULL), 0),"
                       " COALESCE(SUM(revoked_at IS NULL AND not_after <= ?), 0),"
                       " COALESCE(SUM(revoked_at IS NULL AND not_after > ?), 0) FROM certificates",
                       (_timestamp(c.isoformat(now)),) * 2).fetchone()
        return dict(revoked=row[0], expired=row[1], valid=row[2])

    def all_entries(self):
        return self._select("1", [])

    def next_crl_number(self, scope, at_least):
        """The number of the CRL about to be published: above every number the record or the old CRL holds.

        It is recorded in this transaction, so that a CRL whose file was not
        written leaves no trace, and two CRLs of one CA never share a number.
        """
        row = _execute(self._db, self.path, "SELECT number FROM crl_numbers WHERE scope = ?", (scope,)).fetchone()
        number = max(row[0] if row else 0, at_least) + 1
        _execute(self._db, self.path, "INSERT OR REPLACE INTO crl_numbers (scope, number) VALUES (?, ?)",
                 (scope, number))
        return number

    def _select(self, where, values, using=None):
        # Sorted here rather than by ORDER BY rowid, which a planner without statistics may serve by reading the
        # whole table in rowid order; the lookups sign and crl make go through an index (see the tests).
        rows = _execute(self._db, self.path,
                        "SELECT c.rowid, c.entry FROM certificates c%s WHERE %s"
                        % (" INDEXED BY %s" % using if using else "", where), values).fetchall()
        rows.sort()
        entries = []
        for _rowid, text in rows:
            try:
                entries.append(json.loads(text))
            except ValueError as exc:
                raise PkiError("certificate index %s is corrupt: %s" % (self.path, exc))
        return checked_entries(entries, self.path)


def check_host(host):
    """A host as request names begin with it (``<host>/<certificate name>``): not empty, no ``/``."""
    if not isinstance(host, str) or not host:
        raise PkiError("host must be a host name, not %r" % (host,))
    if "/" in host:
        raise PkiError("host %r holds a '/': request names are <host>/<certificate name>, give the host alone" % host)
    return host


def host_name_range(host):
    """(lowest, bound): the request names of host are exactly those >= lowest and < bound.

    A name of host is ``<host>/...``; every such name sorts from ``<host>/``
    up to, not including, ``<host>0`` ('0' is the character after '/'), and
    nothing else does: ``web10/...`` and ``web1x/...`` are past the bound, so
    a range over the name index finds web1's names and no other host's.
    """
    check_host(host)
    return host + "/", host + chr(ord("/") + 1)


def entry_status(entry, now):
    if entry.get("revoked_at"):
        return "revoked"
    if c.parse_isoformat(entry["not_after"]) <= now:
        return "expired"
    return "valid"


def read_entries(path):
    """Every entry, oldest first, read without the lock and without writing anything (listing only)."""
    with CertificateIndex(path, save=False) as index:
        return index.all_entries()


def _record_kind(path):
    """'sqlite' for a record, None when there is none; anything else is refused, naming it."""
    try:
        info = os.lstat(path)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise PkiError("cannot read %s: %s" % (path, exc.strerror))
    if stat.S_ISDIR(info.st_mode):
        raise PkiError("cannot read %s: Is a directory" % path)
    if not stat.S_ISREG(info.st_mode):
        raise PkiError("certificate index %s is not a regular file" % path)
    with open(path, "rb") as handle:
        head = handle.read(len(_SQLITE_MAGIC))
    if head == _SQLITE_MAGIC:
        return "sqlite"
    if head.lstrip()[:1] in (b"{", b"["):
        raise PkiError("certificate index %s is a JSON document of an earlier release: give its path with the"
                       " .json ending, and the first run that writes imports it into the .db beside it" % path)
    raise PkiError("certificate index %s is corrupt: not an SQLite database" % path)


def _connect(path, read_only=False):
    """A connection that commits only when told (BEGIN/COMMIT are the caller's), to a record whose format is known."""
    target = "file:%s?mode=ro" % _uri_path(path) if read_only else "file:%s?mode=rw" % _uri_path(path)
    try:
        db = sqlite3.connect(target, uri=True, timeout=60, isolation_level=None)
    except sqlite3.Error as exc:
        raise PkiError("cannot open certificate index %s: %s" % (path, exc))
    try:
        version = _execute(db, path, "PRAGMA user_version").fetchone()[0]
        if version != RECORD_FORMAT:
            raise PkiError("certificate index %s has an unknown format" % path)
        if not read_only:
            _execute(db, path, "PRAGMA synchronous = FULL")
    except Exception:
        db.close()
        raise
    return db


def _uri_path(path):
    # The characters an SQLite URI gives a meaning to; a path holds them rarely, but may.
    return os.path.abspath(path).replace("%", "%25").replace("?", "%3f").replace("#", "%23")


def _create_record(path, entries):
    """A new record holding the imported entries, under a temporary name beside path: its name."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp_path = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, RECORD_MODE)
        os.close(fd)
        db = sqlite3.connect(tmp_path, isolation_level=None)
        try:
            _execute(db, path, "PRAGMA journal_mode = WAL")
            _execute(db, path, "BEGIN IMMEDIATE")
            for statement in _SCHEMA:
                _execute(db, path, statement)
            _insert(db, path, entries)
            _execute(db, path, "PRAGMA user_version = %d" % RECORD_FORMAT)
            _execute(db, path, "COMMIT")
        finally:
            db.close()
    except BaseException:
        _remove_record_files(tmp_path)
        raise
    return tmp_path


def _install_record(tmp_path, path):
    """Rename the new record into place, durably; its connections are closed, so SQLite's -wal is gone."""
    try:
        with open(tmp_path, "rb") as handle:
            os.fsync(handle.fileno())
        os.rename(tmp_path, path)
    except OSError as exc:
        _remove_record_files(tmp_path)
        raise PkiError("cannot write certificate index %s: %s" % (path, exc.strerror or exc))
    _files.fsync_directory(os.path.dirname(os.path.abspath(path)))


def _remove_record_files(tmp_path):
    for leftover in (tmp_path, tmp_path + "-wal", tmp_path + "-shm"):
        try:
            os.unlink(leftover)
        except OSError:
            pass


def _memory_record(entries):
    db = sqlite3.connect(":memory:", isolation_level=None)
    for statement in _SCHEMA:
        db.execute(statement)
    _insert(db, ":memory:", entries)
    return db


def _insert(db, path, entries):
    rows = [(entry["serial"], entry.get("name"), spiffe_id_of(entry), _timestamp(entry["not_after"]),
             _timestamp(entry["revoked_at"]) if entry.get("revoked_at") else None, _dump(entry))
            for entry in entries]
    try:
        db.executemany("INSERT INTO certificates (serial, name, spiffe_id, not_after, revoked_at, entry)"
                       " VALUES (?, ?, ?, ?, ?, ?)", rows)
    except sqlite3.IntegrityError:
        raise PkiError("certificate index %s already holds the serial %s"
                       % (path, ", ".join(sorted(set(r[0] for r in rows)))))
    except sqlite3.Error as exc:
        raise PkiError("cannot write certificate index %s: %s" % (path, exc))


def _execute(db, path, statement, values=()):
    try:
        return db.execute(statement, values)
    except sqlite3.DatabaseError as exc:
        raise PkiError("certificate index %s is corrupt or unusable: %s" % (path, exc))


def _dump(entry):
    return json.dumps(entry, sort_keys=True, separators=(",", ":"))


def _timestamp(text):
    return int(c.parse_isoformat(text).timestamp())


def spiffe_id_of(entry):
    """The entry's SPIFFE ID (its spiffe:// URI SAN), or None."""
    for san in entry.get("subject_alt_names") or ():
        if isinstance(san, str) and san.startswith("URI:spiffe://"):
            return san[len("URI:"):]
    return None


def _load_json(path):
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
    entries = checked_entries(document.get("certificates"), path)
    serials = set()
    for entry in entries:
        if entry["serial"] in serials:
            raise PkiError("certificate index %s is malformed: the serial %s appears twice" % (path, entry["serial"]))
        serials.add(entry["serial"])
    return entries


def checked_entries(certificates, path):
    """The certificates, refused unless every entry is one the modules can use.

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
        c.parse_isoformat(text).timestamp()
    except (PkiError, OverflowError, ValueError):
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
