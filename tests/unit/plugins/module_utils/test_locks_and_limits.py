# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CA host's lock, the index's format and the bounds of every number: refusals, never tracebacks."""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import stat

import pytest

from ansible_collections.fleet.mtls.plugins.module_utils import _crl
from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _files
from ansible_collections.fleet.mtls.plugins.module_utils import _index
from ansible_collections.fleet.mtls.plugins.module_utils import _policy
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError

DAY = datetime.timedelta(days=1)
ENTRY = dict(serial="0A1B", name="web1", not_after="2099-01-01T00:00:00Z")


def held_elsewhere(path):
    """Whether another open file description cannot take the lock on path right now."""
    with open(str(path), "rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def test_the_lock_is_a_private_regular_file_held_for_the_block(tmp_path):
    path = tmp_path / "index.json.lock"
    with _files.exclusive_lock(str(path)):
        assert held_elsewhere(path)
        mode = os.lstat(str(path)).st_mode
        assert stat.S_ISREG(mode) and stat.S_IMODE(mode) == 0o600
    assert not held_elsewhere(path)


def test_the_lock_is_released_when_the_block_fails(tmp_path):
    path = tmp_path / "index.json.lock"
    with pytest.raises(PkiError, match="inside"):
        with _files.exclusive_lock(str(path)):
            raise PkiError("inside")
    assert not held_elsewhere(path)


@pytest.mark.parametrize("target_exists", [False, True])
def test_a_lock_path_that_is_a_symbolic_link_is_refused_and_its_target_untouched(tmp_path, target_exists):
    target = tmp_path / "target"
    if target_exists:
        target.write_bytes(b"keep")
    path = tmp_path / "index.json.lock"
    os.symlink(str(target), str(path))
    with pytest.raises(PkiError, match="^lock file %s is a symbolic link" % path):
        with _files.exclusive_lock(str(path)):
            pytest.fail("the lock was taken through a link")
    if target_exists:
        assert target.read_bytes() == b"keep"
    else:
        assert not os.path.lexists(str(target))


@pytest.mark.parametrize("make,why", [
    (lambda path: path.mkdir(), "is a directory"),
    (lambda path: os.mkfifo(str(path)), "is not a regular file"),
])
def test_a_lock_path_that_is_no_regular_file_is_refused(tmp_path, make, why):
    path = tmp_path / "index.json.lock"
    make(path)
    with pytest.raises(PkiError, match="^lock file %s %s" % (path, why)):
        with _files.exclusive_lock(str(path)):
            pytest.fail("the lock was taken")


def test_a_lock_in_a_missing_directory_is_refused(tmp_path):
    path = tmp_path / "missing" / "index.json.lock"
    with pytest.raises(PkiError, match="^cannot open lock file %s: No such file or directory" % path):
        with _files.exclusive_lock(str(path)):
            pytest.fail("the lock was taken")


def test_the_index_holds_the_cas_lock_unless_its_caller_does(tmp_path):
    path = str(tmp_path / "index.json")
    with _index.CertificateIndex(path) as index:
        assert held_elsewhere(_index.lock_path(path))
        index.add(dict(ENTRY))
    assert not held_elsewhere(_index.lock_path(path))
    with _index.ca_lock(path):
        with _index.CertificateIndex(path, locked=True) as index:
            index.revoke(index.find(serial="0a1b")[0], "2026-01-01T00:00:00Z", "superseded")
        assert held_elsewhere(_index.lock_path(path))
    assert [e["revocation_reason"] for e in _index.read_entries(path)] == ["superseded"]


def test_an_index_behind_a_linked_lock_is_neither_read_nor_written(tmp_path):
    path = tmp_path / "index.json"
    path.write_text(json.dumps({"format": 1, "certificates": [ENTRY]}))
    target = tmp_path / "target"
    os.symlink(str(target), _index.lock_path(str(path)))
    before = path.read_bytes()
    with pytest.raises(PkiError, match="is a symbolic link"):
        with _index.CertificateIndex(str(path)) as index:
            index.add(dict(ENTRY, serial="0B"))
    assert path.read_bytes() == before and not os.path.lexists(str(target))


def _certificate_index(path):
    with _index.CertificateIndex(path, save=False) as index:
        return index.all_entries()


@pytest.mark.parametrize("load", [_index.read_entries, _certificate_index], ids=["read_entries", "CertificateIndex"])
@pytest.mark.parametrize("document,why", [
    ({"format": 2, "certificates": []}, "has an unknown format"),
    ({"format": 1, "certificates": "0A1B"}, "is malformed: certificates is not a list"),
    ({"format": 1}, "is malformed: certificates is not a list"),
    ({"format": 1, "certificates": [ENTRY, ENTRY, ["0A1B"]]}, "is malformed: entry 3 is not an object"),
    ({"format": 1, "certificates": [ENTRY, ENTRY, dict(name="web3")]}, "is malformed: entry 3 has no serial"),
    ({"format": 1, "certificates": [dict(ENTRY, serial="")]}, "is malformed: entry 1 has no serial"),
    ({"format": 1, "certificates": [dict(ENTRY, serial="-1")]}, "is malformed: entry 1 has the serial '-1'"),
    ({"format": 1, "certificates": [dict(ENTRY, serial="00A1B")]}, "is malformed: entry 1 has the serial '00A1B'"),
    ({"format": 1, "certificates": [dict(name="web1", serial="0A")]},
     "is malformed: entry 1 (serial 0A) has no not_after"),
    ({"format": 1, "certificates": [dict(ENTRY, not_after="0001-01-01T00:00:00+01:00")]},
     "is malformed: entry 1 (serial 0A1B): not_after '0001-01-01T00:00:00+01:00' is not an ISO 8601"),
    ({"format": 1, "certificates": [dict(ENTRY, revoked_at="")]}, "is malformed: entry 1 (serial 0A1B): revoked_at ''"),
    ({"format": 1, "certificates": [dict(ENTRY, revoked_at="2026-01-01T00:00:00Z")]},
     "is malformed: entry 1 (serial 0A1B): revocation_reason None is not one of unspecified"),
])
def test_both_loaders_refuse_a_malformed_index_alike(tmp_path, load, document, why):
    path = tmp_path / "index.json"
    path.write_text(json.dumps(document))
    with pytest.raises(PkiError) as refused:
        load(str(path))
    assert str(refused.value).startswith("certificate index %s %s" % (path, why)), str(refused.value)


@pytest.mark.parametrize("load", [_index.read_entries, _certificate_index], ids=["read_entries", "CertificateIndex"])
def test_both_loaders_read_what_sign_and_crl_write(tmp_path, load):
    path = str(tmp_path / "index.json")
    revoked = dict(ENTRY, serial="0B", revoked_at="2026-01-01T00:00:00Z", revocation_reason="key_compromise")
    with _index.CertificateIndex(path) as index:
        index.add(dict(ENTRY, revoked_at=None, revocation_reason=None))
        index.add(revoked)
    assert [e["serial"] for e in load(path)] == ["0A1B", "0B"]


@pytest.mark.parametrize("days", [0, -1, 36501, 2 ** 31, 2 ** 63, 10 ** 20, True, 1.5])
def test_a_leaf_lifetime_out_of_range_is_refused(pki, days):
    with pytest.raises(PkiError, match=r"^validity_days must be a whole number from 1 to 36500 days, not "):
        _policy.validity_window(pki.now, days, 300, c.not_valid_after(pki.issuing))


@pytest.mark.parametrize("seconds", [-1, 86401, 2 ** 31, 2 ** 63, 10 ** 20])
def test_a_backdate_out_of_range_is_refused(pki, seconds):
    with pytest.raises(PkiError, match=r"^backdate_seconds must be a whole number from 0 to 86400 seconds, not "):
        _policy.validity_window(pki.now, 90, seconds, c.not_valid_after(pki.issuing))


def test_the_longest_leaf_lifetime_ends_with_the_ca(pki):
    not_before, not_after = _policy.validity_window(pki.now, 36500, 86400, pki.now + 10 * DAY)
    assert (not_before, not_after) == (pki.now - DAY, pki.now + 10 * DAY)


def test_the_crl_schedule_defaults_and_bounds():
    assert _crl.check_schedule(7) == (7, 3.5)
    assert _crl.check_schedule(3650, 0) == (3650, 0.0)
    assert _crl.check_schedule(7, 7) == (7, 7.0)
    for days in (0, -1, 3651, 2 ** 63, 10 ** 20):
        with pytest.raises(PkiError, match=r"^next_update_days must be a whole number from 1 to 3650 days"):
            _crl.check_schedule(days)
    for refresh in (-0.1, 7.01, float("inf"), float("nan"), 1e300, True):
        with pytest.raises(PkiError, match=r"^refresh_days must be from 0 to next_update_days \(7\)"):
            _crl.check_schedule(7, refresh)


def test_revocation_dates_a_crl_can_carry():
    assert _crl.parse_revocation_date("1950-01-01T00:00:00Z", "0A") == datetime.datetime(1950, 1, 1, tzinfo=c.UTC)
    with pytest.raises(PkiError, match="before 1950"):
        _crl.parse_revocation_date("1949-12-31T23:59:59Z", "0A")
    with pytest.raises(PkiError, match="out of range"):
        _crl.parse_revocation_date("9999-12-31T23:00:00-05:00", "0A")
