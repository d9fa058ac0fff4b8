# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""crl: one CRL after the other under the CA's lock, and every option checked alike in check mode.

Each refusal is a clean failure with a message, and leaves every file of
the CA's directory as it was.
"""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from ansible_collections.fleet.mtls.plugins.module_utils import _crl
from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _index
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError
from ansible_collections.fleet.mtls.plugins.modules import crl
from ansible_collections.fleet.mtls.tests.unit.plugins.modules import ca_host

MODULE = crl

REVOKED = dict(serial="0C0D", name="old-web7", revoked_at="2025-06-01T00:00:00Z", revocation_reason="superseded")


@pytest.fixture
def ca(tmp_path, pki):
    """The CA's directory (with one revoked entry in its index) and the crl args that publish into it."""
    directory = tmp_path / "ca"
    args = ca_host.ca_directory(directory, pki, entries=[{}, REVOKED])
    return directory, dict(args, path=str(directory / "issuing.crl"))


def test_concurrent_runs_publish_distinct_increasing_numbers(ca, tmp_path):
    """Sixteen runs at once, each listing another serial: every one re-signs, none from the same old CRL.

    Half of them publish without the index: the lock is the CA's, not the index's.
    """
    directory, args = ca
    runs = [dict(args, serials=[dict(serial="%04X" % (0x1000 + number))], use_index=number % 2 == 0)
            for number in range(16)]
    observed = []

    def watch():
        done = threading.Event()

        def poll():
            seen = None
            while not done.is_set():
                try:
                    data = (directory / "issuing.crl").read_bytes()
                except FileNotFoundError:
                    data = None
                if data is not None and data != seen:
                    seen = data
                    observed.append(_crl.crl_number(_crl.load_crl(data)))
                time.sleep(0.001)

        watcher = threading.Thread(target=poll)
        watcher.start()

        def stop():
            done.set()
            watcher.join()
        return stop

    results = ca_host.run_at_once(crl.main, runs, tmp_path / "results", while_running=watch)
    assert not [r["msg"] for r in results if r.get("failed")]
    assert sorted(r["crl_number"] for r in results) == list(range(1, 17)), [r["crl_number"] for r in results]
    assert observed == sorted(set(observed)), "CRLs as they were written: %s" % observed
    in_order = sorted(results, key=lambda r: r["crl_number"])
    assert [r["last_update"] for r in in_order] == sorted(r["last_update"] for r in in_order)
    final = _crl.load_crl((directory / "issuing.crl").read_bytes())
    assert _crl.crl_number(final) == 16
    assert _crl.describe_crl(final)["revoked_serials"] == in_order[-1]["revoked_serials"]


def test_without_the_index_the_lock_is_still_taken_and_no_index_is_made(tmp_path, pki, run_module):
    directory = tmp_path / "ca"
    args = ca_host.ca_directory(directory, pki, lock=False)
    os.unlink(str(directory / "index.json"))
    result = run_module(dict(args, path=str(directory / "issuing.crl"), use_index=False,
                             serials=[dict(serial="1234")]))
    assert not result.get("failed") and result["changed"] and result["revoked_serials"] == ["1234"], result
    assert sorted(os.listdir(str(directory))) == ["index.db.lock", "issuing.crl", "issuing.crt", "issuing.key"]


def test_check_mode_takes_no_lock_and_writes_nothing(tmp_path, pki, run_module):
    directory = tmp_path / "ca"
    args = ca_host.ca_directory(directory, pki, entries=[{}, REVOKED], lock=False)
    before = ca_host.snapshot(directory)
    result = run_module(dict(args, path=str(directory / "issuing.crl"), revoke=[dict(name="web1/server")]),
                        check_mode=True)
    assert not result.get("failed") and result["changed"], result
    assert result["newly_revoked"] == ["0A1B"] and result["revoked_serials"] == ["0A1B", "0C0D"]
    assert ca_host.snapshot(directory) == before


@pytest.mark.parametrize("use_index", [True, False])
@pytest.mark.parametrize("make,why", [
    (lambda path: os.symlink(str(path.parent / "elsewhere"), str(path)), "is a symbolic link"),
    (lambda path: path.mkdir(), "is a directory"),
    (lambda path: os.mkfifo(str(path)), "is not a regular file"),
])
def test_a_lock_path_that_is_not_a_regular_file_is_refused(tmp_path, pki, run_module, use_index, make, why):
    directory = tmp_path / "ca"
    args = ca_host.ca_directory(directory, pki, lock=False)
    lock = directory / "index.db.lock"
    make(lock)
    msg = ca_host.refused(run_module, directory, dict(args, path=str(directory / "issuing.crl"), use_index=use_index,
                                                      serials=[dict(serial="1234")]), str(lock), why)
    assert "Traceback" not in msg
    assert not os.path.lexists(str(directory / "elsewhere"))


@pytest.mark.parametrize("certificates,why", [
    ({"0A1B": {}}, "certificates is not a list"),
    ([ca_host.ENTRY, "0A1B"], "entry 2 is not an object"),
    ([ca_host.ENTRY, ca_host.ENTRY, dict(name="web3")], "entry 3 has no serial"),
    ([dict(ca_host.ENTRY, revoked_at="2025-06-01T00:00:00Z", revocation_reason="bored")],
     "entry 1 (serial 0A1B): revocation_reason 'bored'"),
])
def test_a_malformed_index_is_refused(ca, run_module, certificates, why):
    directory, args = ca
    (directory / "index.json").write_text(json.dumps({"format": 1, "certificates": certificates}))
    ca_host.refused(run_module, directory, dict(args, revoke=[dict(name="web1/server")]),
                    "certificate index %s is malformed: %s" % (directory / "index.json", why))


# Whole numbers the schedule refuses, in check mode and in the real run alike.
OUT_OF_RANGE = [0, -1, 3651, 2 ** 31, 2 ** 63, 10 ** 20]


@pytest.mark.parametrize("check_mode", [False, True])
@pytest.mark.parametrize("days", OUT_OF_RANGE)
def test_next_update_days_out_of_range_is_refused(tmp_path, pki, run_module, check_mode, days):
    directory = tmp_path / "ca"
    args = ca_host.ca_directory(directory, pki, lock=False)
    ca_host.refused(run_module, directory, dict(args, path=str(directory / "issuing.crl"), next_update_days=days),
                    "next_update_days must be a whole number from 1 to 3650 days, not %d" % days, check_mode=check_mode)


@pytest.mark.parametrize("check_mode", [False, True])
@pytest.mark.parametrize("refresh", [-1, -0.5, 7.5, 1e300, "inf", "-inf", "nan", 2 ** 63, 10 ** 20])
def test_refresh_days_out_of_range_is_refused(tmp_path, pki, run_module, check_mode, refresh):
    directory = tmp_path / "ca"
    args = ca_host.ca_directory(directory, pki, lock=False)
    ca_host.refused(run_module, directory, dict(args, path=str(directory / "issuing.crl"), next_update_days=7,
                                                refresh_days=refresh),
                    "refresh_days must be from 0 to next_update_days (7), not", check_mode=check_mode)


@pytest.mark.parametrize("check_mode", [False, True])
@pytest.mark.parametrize("date,why", [
    ("yesterday", "is not an ISO 8601 date and time"),
    ("0001-01-01T00:00:00+01:00", "is out of range"),  # before year 1 in UTC
    ("9999-12-31T23:00:00-05:00", "is out of range"),  # after 9999 in UTC
    ("1949-12-31T23:59:59Z", "is before 1950"),
])
def test_a_revocation_date_a_crl_cannot_carry_is_refused(tmp_path, pki, run_module, check_mode, date, why):
    directory = tmp_path / "ca"
    args = ca_host.ca_directory(directory, pki, lock=False)
    ca_host.refused(run_module, directory, dict(args, path=str(directory / "issuing.crl"),
                                                serials=[dict(serial="12", revocation_date=date)]),
                    "revocation_date %r of serial 12" % date, why, check_mode=check_mode)


def test_the_schedule_bounds_are_accepted(ca, run_module):
    _directory, args = ca
    longest = run_module(dict(args, next_update_days=3650, refresh_days=0))
    assert not longest.get("failed") and longest["crl_number"] == 1, longest
    lifetime = c.parse_isoformat(longest["next_update"]) - c.parse_isoformat(longest["last_update"])
    assert lifetime.days == 3650
    kept = run_module(dict(args, next_update_days=3650, refresh_days=0))
    assert not kept["changed"] and kept["crl_number"] == 1, kept
    every_run = run_module(dict(args, next_update_days=3650, refresh_days=3650))
    assert every_run["changed"] and every_run["crl_number"] == 2, every_run


def test_check_mode_on_a_record_writes_nothing_either(ca, run_module):
    """Once the JSON index is imported, check mode works on the record in a transaction it rolls back."""
    directory, args = ca
    assert run_module(args)["crl_number"] == 1
    before = ca_host.snapshot(directory)
    result = run_module(dict(args, revoke=[dict(name="web1/server")]), check_mode=True)
    assert result["changed"] and result["newly_revoked"] == ["0A1B"] and result["crl_number"] == 2, result
    assert ca_host.snapshot(directory) == before


def test_the_crl_number_never_goes_back_when_the_crl_file_does(ca, run_module):
    """The record keeps each CA's last number: a CRL file lost, or put back from an old copy, cannot lower it."""
    directory, args = ca
    first = run_module(args)
    second = run_module(dict(args, revoke=[dict(name="web1/server")]))
    assert (first["crl_number"], second["crl_number"]) == (1, 2)
    (directory / "issuing.crl").write_text(first["crl"])
    assert run_module(args)["crl_number"] == 3
    os.unlink(str(directory / "issuing.crl"))
    assert run_module(args)["crl_number"] == 4


def test_revoking_by_spiffe_id(tmp_path, pki, run_module):
    directory = tmp_path / "ca"
    args = ca_host.ca_directory(directory, pki, entries=[
        dict(subject_alt_names=["DNS:web1", "URI:spiffe://fleet.example/web1"]),
        dict(serial="0B", name="web2/server", subject_alt_names=["DNS:web2", "URI:spiffe://fleet.example/web2"])])
    args = dict(args, path=str(directory / "issuing.crl"))
    result = run_module(dict(args, revoke=[dict(spiffe_id="spiffe://fleet.example/web2", reason="key_compromise")]))
    assert not result.get("failed") and result["newly_revoked"] == ["0B"] and result["revoked_serials"] == ["0B"]
    listed = [(e["serial"], e["revocation_reason"]) for e in _index.read_entries(str(directory / "index.db"))]
    assert listed == [("0A1B", None), ("0B", "key_compromise")]
    again = run_module(dict(args, revoke=[dict(spiffe_id="spiffe://fleet.example/web2")]))
    assert not again["changed"] and again["newly_revoked"] == [], again


@pytest.mark.parametrize("item,why", [
    (dict(spiffe_id="spiffe://fleet.example/nobody"), "the index has no certificate with spiffe id spiffe://"),
    (dict(spiffe_id="https://fleet.example/web1"), "is not a spiffe:// URI"),
    (dict(spiffe_id="spiffe://fleet.example/web1", name="web1/server"),
     "exactly one of serial, name, spiffe_id and host"),
    (dict(), "exactly one of serial, name, spiffe_id and host"),
])
def test_a_revocation_that_names_no_certificate_or_two_ways_is_refused(ca, run_module, item, why):
    directory, args = ca
    ca_host.refused(run_module, directory, dict(args, revoke=[item]), why)


def test_a_failed_crl_write_keeps_the_revocation_for_the_next_run(ca, run_module, monkeypatch):
    """The index is committed before the CRL file is written: a write that fails never forgets a revocation."""
    directory, args = ca
    from ansible_collections.fleet.mtls.plugins.module_utils import _module as module_utils

    def fail(*_args, **_kwargs):
        raise PkiError("cannot write %s: No space left on device" % (directory / "issuing.crl"))
    monkeypatch.setattr(module_utils.ManagedFile, "replace", fail)
    failed = run_module(dict(args, revoke=[dict(name="web1/server")]))
    assert failed.get("failed"), failed
    monkeypatch.undo()
    assert not (directory / "issuing.crl").exists()
    assert [e["serial"] for e in _index.read_entries(str(directory / "index.db")) if e["revoked_at"]] == ["0A1B", "0C0D"]
    published = run_module(args)
    assert published["revoked_serials"] == ["0A1B", "0C0D"] and published["crl_number"] == 2, published


# Request names of hosts whose names begin alike: only web1/... is web1's.
HOSTS = [{}, dict(serial="0B", name="web1/client"), dict(serial="0C", name="web10/server"),
         dict(serial="0D", name="web1x/server"), dict(serial="0E", name="web1-old/server"),
         dict(serial="0F", name="web1")]


@pytest.mark.parametrize("check_mode", [False, True])
def test_revoking_by_host_revokes_that_hosts_certificates_only(tmp_path, pki, run_module, check_mode):
    directory = tmp_path / "ca"
    args = ca_host.ca_directory(directory, pki, entries=HOSTS)
    args = dict(args, path=str(directory / "issuing.crl"))
    before = ca_host.snapshot(directory)
    result = run_module(dict(args, revoke=[dict(host="web1", reason="cessation_of_operation")]),
                        check_mode=check_mode)
    assert not result.get("failed") and result["changed"], result
    assert result["newly_revoked"] == ["0A1B", "0B"] and result["revoked_serials"] == ["0A1B", "0B"], result
    if check_mode:
        assert ca_host.snapshot(directory) == before
        return
    listed = [(e["serial"], e["revocation_reason"]) for e in _index.read_entries(str(directory / "index.db"))]
    assert listed == [("0A1B", "cessation_of_operation"), ("0B", "cessation_of_operation"), ("0C", None),
                      ("0D", None), ("0E", None), ("0F", None)]
    assert _crl.describe_crl(_crl.load_crl((directory / "issuing.crl").read_bytes()))["revoked_serials"] == \
        ["0A1B", "0B"]
    again = run_module(dict(args, revoke=[dict(host="web1")]))
    assert not again["changed"] and again["newly_revoked"] == [], again
    web10 = run_module(dict(args, revoke=[dict(host="web10")]))
    assert web10["newly_revoked"] == ["0C"] and web10["revoked_serials"] == ["0A1B", "0B", "0C"], web10


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_host_without_certificates_fails_the_whole_run_and_writes_nothing(tmp_path, pki, run_module, check_mode):
    """Though the items before it matched, nothing is revoked, no record made, no CRL written: files unchanged."""
    directory = tmp_path / "ca"
    args = ca_host.ca_directory(directory, pki, entries=HOSTS)
    args = dict(args, path=str(directory / "issuing.crl"))
    msg = ca_host.refused(run_module, directory, dict(args, revoke=[dict(host="web1"), dict(host="web2")]),
                          "the index has no certificate of host web2 (no request name starting with web2/)",
                          check_mode=check_mode)
    assert "Traceback" not in msg
    # The same once the record exists, with a CRL published.
    assert run_module(args)["crl_number"] == 1
    ca_host.refused(run_module, directory, dict(args, revoke=[dict(name="web10/server"), dict(host="web1y")]),
                    "the index has no certificate of host web1y", check_mode=check_mode)
    assert [e["serial"] for e in _index.read_entries(str(directory / "index.db")) if e["revoked_at"]] == []


@pytest.mark.parametrize("check_mode", [False, True])
@pytest.mark.parametrize("item,why", [
    (dict(host="web1/server"), "host 'web1/server' holds a '/'"),
    (dict(host=""), "host must be a host name, not ''"),
    (dict(host="web1", name="web1/server"), "exactly one of serial, name, spiffe_id and host"),
    (dict(host="web1", serial="0A1B"), "exactly one of serial, name, spiffe_id and host"),
])
def test_a_host_item_that_is_no_host_or_not_alone_is_refused_first(tmp_path, pki, run_module, check_mode, item, why):
    directory = tmp_path / "ca"
    args = ca_host.ca_directory(directory, pki, entries=HOSTS, lock=False)
    ca_host.refused(run_module, directory, dict(args, path=str(directory / "issuing.crl"), revoke=[item]), why,
                    check_mode=check_mode)
