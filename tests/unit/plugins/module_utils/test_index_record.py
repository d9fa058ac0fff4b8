# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CA's record in SQLite: the import of the JSON index, queries, transactions, concurrent writers, CRL numbers."""

from __future__ import annotations

import datetime
import json
import multiprocessing
import os
import re
import sqlite3
import stat

import pytest

from ansible_collections.fleet.mtls.plugins.module_utils import _index
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError
from ansible_collections.fleet.mtls.tests.unit.plugins.modules.ca_host import snapshot

NOW = datetime.datetime(2026, 6, 1, tzinfo=datetime.timezone.utc)


def entry(serial, name="web1/server", not_after="2027-01-01T00:00:00Z", spiffe=None, **extra):
    sans = ["DNS:%s" % name.split("/")[0]] + (["URI:" + spiffe] if spiffe else [])
    return dict(dict(serial=serial, name=name, not_after=not_after, subject_alt_names=sans, revoked_at=None,
                     revocation_reason=None), **extra)


LEGACY = [
    entry("0A", spiffe="spiffe://fleet.example/web1"),
    entry("0B", name="web2/server", not_after="2026-01-01T00:00:00Z"),
    entry("0C", revoked_at="2026-02-01T00:00:00Z", revocation_reason="key_compromise"),
]


def write_legacy(directory, entries=None):
    path = directory / "index.json"
    path.write_text(json.dumps({"format": _index.INDEX_FORMAT, "certificates": LEGACY if entries is None else entries}))
    return path


def test_the_first_writing_run_imports_the_json_index_whole_and_in_order(tmp_path):
    legacy = write_legacy(tmp_path).read_bytes()
    with _index.CertificateIndex(str(tmp_path / "index.db")) as index:
        index.add(entry("0D", name="web3/server"))
    assert sorted(os.listdir(str(tmp_path))) == ["index.db", "index.db.lock", "index.json.imported"]
    assert (tmp_path / "index.json.imported").read_bytes() == legacy
    assert stat.S_IMODE(os.stat(str(tmp_path / "index.db")).st_mode) == 0o640
    entries = _index.read_entries(str(tmp_path / "index.db"))
    assert [e["serial"] for e in entries] == ["0A", "0B", "0C", "0D"]
    assert entries[2]["revocation_reason"] == "key_compromise"
    assert entries[0] == LEGACY[0]


def test_a_json_index_path_keeps_working_and_names_the_db_beside_it(tmp_path):
    write_legacy(tmp_path)
    with _index.CertificateIndex(str(tmp_path / "index.json")) as index:
        assert [e["serial"] for e in index.find(name="web2/server")] == ["0B"]
    assert _index.lock_path(str(tmp_path / "index.json")) == _index.lock_path(str(tmp_path / "index.db"))
    assert [e["serial"] for e in _index.read_entries(str(tmp_path / "index.json"))] == ["0A", "0B", "0C"]
    assert not (tmp_path / "index.json").exists()


def test_listing_and_check_mode_read_the_json_index_and_write_nothing(tmp_path):
    write_legacy(tmp_path)
    before = snapshot(tmp_path)
    assert [e["serial"] for e in _index.read_entries(str(tmp_path / "index.db"))] == ["0A", "0B", "0C"]
    with _index.CertificateIndex(str(tmp_path / "index.db"), save=False) as index:
        index.add(entry("0D"))
        assert index.revoke(index.find(serial="0A")[0], "2026-06-01T00:00:00Z", "superseded")
        assert len(index.all_entries()) == 4
    assert snapshot(tmp_path) == before


def test_check_mode_on_a_record_rolls_its_changes_back(tmp_path):
    path = str(tmp_path / "index.db")
    with _index.CertificateIndex(path) as index:
        index.add(entry("0A"))
    with _index.CertificateIndex(path, save=False) as index:
        index.add(entry("0B"))
        index.revoke(index.find(serial="0A")[0], "2026-06-01T00:00:00Z", "superseded")
        assert index.next_crl_number("ca", 0) == 1
    with _index.CertificateIndex(path) as index:
        assert [e["serial"] for e in index.all_entries()] == ["0A"]
        assert not index.revoked()
        assert index.next_crl_number("ca", 0) == 1


def test_an_error_in_the_block_records_nothing(tmp_path):
    path = str(tmp_path / "index.db")
    with _index.CertificateIndex(path) as index:
        index.add(entry("0A"))
    with pytest.raises(RuntimeError):
        with _index.CertificateIndex(path) as index:
            index.add(entry("0B"))
            index.revoke(index.find(serial="0A")[0], "2026-06-01T00:00:00Z", "superseded")
            index.next_crl_number("ca", 0)
            raise RuntimeError("the CA key could not sign")
    with _index.CertificateIndex(path) as index:
        assert [(e["serial"], e["revoked_at"]) for e in index.all_entries()] == [("0A", None)]
        assert index.next_crl_number("ca", 0) == 1


@pytest.mark.parametrize("bad,why", [
    ([entry("0A"), entry("0A")], "is malformed: the serial 0A appears twice"),
    ([entry("0A"), dict(entry("0B"), not_after="soon")], "is malformed: entry 2 (serial 0B): not_after 'soon'"),
])
def test_a_json_index_that_cannot_be_imported_leaves_everything_as_it_was(tmp_path, bad, why):
    legacy = write_legacy(tmp_path, bad)
    before = snapshot(tmp_path)
    with pytest.raises(PkiError) as refused:
        with _index.CertificateIndex(str(tmp_path / "index.db"), locked=True):
            pass
    assert str(refused.value).startswith("certificate index %s %s" % (legacy, why)), str(refused.value)
    assert snapshot(tmp_path) == before


def test_sign_cannot_record_a_serial_twice(tmp_path):
    path = str(tmp_path / "index.db")
    with _index.CertificateIndex(path) as index:
        index.add(entry("0A"))
    with pytest.raises(PkiError, match="already holds the serial 0A"):
        with _index.CertificateIndex(path) as index:
            index.add(entry("0A", name="evil/server"))
    assert [e["name"] for e in _index.read_entries(path)] == ["web1/server"]


def test_a_record_reached_through_a_symbolic_link_is_refused(tmp_path):
    real = tmp_path / "elsewhere.db"
    with _index.CertificateIndex(str(real)) as index:
        index.add(entry("0A"))
    os.symlink(str(real), str(tmp_path / "index.db"))
    before = snapshot(tmp_path)
    for save in (True, False):
        with pytest.raises(PkiError, match="is not a regular file"):
            with _index.CertificateIndex(str(tmp_path / "index.db"), save=save, locked=True) as index:
                index.add(entry("0B"))
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("content,why", [
    (b'{"format": 1, "certificates": []}', "is a JSON document of an earlier release"),
    (b"garbage, not a database", "is corrupt: not an SQLite database"),
    (b"SQLite format 3\x00" + b"\x00" * 100, "is corrupt or unusable"),
])
def test_a_record_that_is_not_one_is_refused_and_left_alone(tmp_path, content, why):
    path = tmp_path / "index.db"
    path.write_bytes(content)
    before = snapshot(tmp_path)
    for save in (True, False):
        with pytest.raises(PkiError) as refused:
            with _index.CertificateIndex(str(path), save=save, locked=True):
                pass
        assert str(refused.value).startswith("certificate index %s %s" % (path, why)), str(refused.value)
    assert snapshot(tmp_path) == before


def test_a_record_of_an_unknown_format_is_refused(tmp_path):
    path = str(tmp_path / "index.db")
    with _index.CertificateIndex(path):
        pass
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(PkiError, match="has an unknown format"):
        _index.read_entries(path)


def test_queries_by_name_serial_spiffe_id_status_and_expiry(tmp_path):
    write_legacy(tmp_path, LEGACY + [entry("0D", name="app1/server", not_after="2026-06-10T00:00:00Z",
                                           spiffe="spiffe://fleet.example/app1")])
    with _index.CertificateIndex(str(tmp_path / "index.db"), save=False) as index:
        def serials(**criteria):
            return [e["serial"] for e in index.query(NOW, **criteria)]

        assert serials() == ["0A", "0B", "0C", "0D"]
        assert serials(name="web1/server") == ["0A", "0C"]
        assert serials(serial="0:d") == ["0D"]
        assert serials(spiffe_id="spiffe://fleet.example/app1") == ["0D"]
        assert serials(status="valid") == ["0A", "0D"]
        assert serials(status="expired") == ["0B"]
        assert serials(status="revoked") == ["0C"]
        assert serials(status="valid", expires_before=NOW + datetime.timedelta(days=14)) == ["0D"]
        assert serials(name="web1/server", status="valid") == ["0A"]
        assert [e["status"] for e in index.query(NOW)] == ["valid", "expired", "revoked", "valid"]
        assert index.counts(NOW) == dict(valid=2, expired=1, revoked=1)
        assert [e["serial"] for e in index.find(spiffe_id="spiffe://fleet.example/web1")] == ["0A"]
        assert [e["serial"] for e in index.revoked(not_after_after="2026-06-01T00:00:00Z")] == ["0C"]
        assert index.revoked(not_after_after="2028-01-01T00:00:00Z") == []


@pytest.mark.parametrize("lookup", [
    lambda index: index.find(serial="0A"),
    lambda index: index.find(name="web1/server"),
    lambda index: index.find(spiffe_id="spiffe://fleet.example/web1"),
    lambda index: index.find(serial="0A", name="web1/server"),
    lambda index: index.revoked(not_after_after="2026-06-01T00:00:00Z"),
    lambda index: index.revoked(),
    lambda index: index.find(host="host4100"),
    lambda index: index.query(NOW, host="host4100", status="valid"),
], ids=["serial", "name", "spiffe_id", "serial_or_name", "revoked_valid", "revoked", "host", "query_host"])
def test_what_sign_and_crl_look_up_is_found_through_an_index_not_a_scan(tmp_path, lookup):
    """The plan of every statement a lookup runs, in a record of 2000 entries without statistics."""
    path = str(tmp_path / "index.db")
    write_legacy(tmp_path, [entry("%04X" % n, name="host%d/server" % n) for n in range(0x1000, 0x1000 + 2000)])
    plans = []
    with _index.CertificateIndex(path) as index:
        index._db.set_trace_callback(plans.append)
        lookup(index)
        index._db.set_trace_callback(None)
        selects = [p for p in plans if p.startswith("SELECT")]
        assert selects, plans
        for statement in selects:
            plan = [row[-1] for row in index._db.execute("EXPLAIN QUERY PLAN " + statement)]
            # A search through an index, or a scan of the partial index that holds the revoked entries only.
            scans = [step for step in plan if step.startswith("SCAN") and "certificates_revoked" not in step]
            assert any(" USING " in step for step in plan) and not scans, (statement, plan)


HOSTS = [entry("01", name="web1/server"), entry("02", name="web10/server"), entry("03", name="web1x/server"),
         entry("04", name="web1/client"), entry("05", name="web1"), entry("06", name="web1-old/server"),
         entry("07", name="web1.example/server"), entry("08", name="web/server"), entry("09", name="web1//odd")]


def test_a_host_selects_exactly_its_own_request_names(tmp_path):
    """web1 is web1/... alone: not web10, web1x, web1-old, web1.example, nor a name without the '/'."""
    write_legacy(tmp_path, HOSTS)
    for path in (tmp_path / "index.json", tmp_path / "index.db"):  # the JSON read as it is, then the record
        with _index.CertificateIndex(str(path), save=path.suffix == ".db") as index:
            assert [e["serial"] for e in index.find(host="web1")] == ["01", "04", "09"]
            assert [e["serial"] for e in index.find(host="web10")] == ["02"]
            assert [e["serial"] for e in index.find(host="web1x")] == ["03"]
            assert [e["serial"] for e in index.find(host="web")] == ["08"]
            assert index.find(host="web2") == []
            assert [e["serial"] for e in index.query(NOW, host="web1")] == ["01", "04", "09"]
            assert [e["serial"] for e in index.query(NOW, host="web1", name="web1/client")] == ["04"]
            assert index.query(NOW, host="web10", name="web1/server") == []


@pytest.mark.parametrize("host,why", [
    ("", "host must be a host name, not ''"),
    ("web1/server", "host 'web1/server' holds a '/'"),
    ("web1/", "host 'web1/' holds a '/'"),
    ("/", "host '/' holds a '/'"),
])
def test_a_host_that_is_no_host_name_is_refused(tmp_path, host, why):
    write_legacy(tmp_path, HOSTS)
    with _index.CertificateIndex(str(tmp_path / "index.json"), save=False) as index:
        with pytest.raises(PkiError, match=re.escape(why)):
            index.find(host=host)
        with pytest.raises(PkiError, match=re.escape(why)):
            index.query(NOW, host=host)


def test_a_host_is_looked_up_as_a_range_of_the_name_index(tmp_path):
    """Not a LIKE (which the BINARY name index cannot serve) nor a scan: name >= 'web1/' AND name < 'web10'."""
    path = str(tmp_path / "index.db")
    write_legacy(tmp_path, HOSTS + [entry("%04X" % n, name="host%d/server" % n) for n in range(0x1000, 0x1000 + 2000)])
    with _index.CertificateIndex(path) as index:
        for lookup in (lambda: index.find(host="web1"), lambda: index.query(NOW, host="web1"),
                       lambda: index.query(NOW, host="web1", status="valid")):
            plans = []
            index._db.set_trace_callback(plans.append)
            lookup()
            index._db.set_trace_callback(None)
            selects = [p for p in plans if p.startswith("SELECT")]
            assert len(selects) == 1 and "'web1/'" in selects[0] and "'web10'" in selects[0], selects
            plan = [row[-1] for row in index._db.execute("EXPLAIN QUERY PLAN " + selects[0])]
            assert len(plan) == 1 and plan[0].startswith("SEARCH ") \
                and plan[0].endswith(" USING INDEX certificates_by_name (name>? AND name<?)"), plan


def _add_many(path, first, count, barrier):
    barrier.wait()
    for number in range(first, first + count):
        with _index.CertificateIndex(path) as index:
            index.add(entry("%04X" % number, name="host%d/server" % number))
            with_crl = index.next_crl_number("ca", 0)
            assert with_crl >= 1


def test_concurrent_writers_lose_nothing(tmp_path):
    path = str(tmp_path / "index.db")
    write_legacy(tmp_path, [entry("0A")])
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(8)
    workers = [context.Process(target=_add_many, args=(path, 0x1000 + 100 * n, 25, barrier)) for n in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0] * 8
    entries = _index.read_entries(path)
    assert len(entries) == 1 + 8 * 25 and len(set(e["serial"] for e in entries)) == len(entries)
    with _index.CertificateIndex(path) as index:
        assert index.next_crl_number("ca", 0) == 8 * 25 + 1


def test_crl_numbers_rise_per_ca_above_the_record_and_the_old_crl(tmp_path):
    with _index.CertificateIndex(str(tmp_path / "index.db")) as index:
        assert [index.next_crl_number("issuing", 0) for _round in range(3)] == [1, 2, 3]
        assert index.next_crl_number("root", 0) == 1
        assert index.next_crl_number("issuing", 10) == 11  # an old CRL numbered above the record
    with _index.CertificateIndex(str(tmp_path / "index.db")) as index:
        assert index.next_crl_number("issuing", 0) == 12  # an old CRL lost or replaced by an older one


def test_an_entry_with_an_unusable_time_is_refused_before_it_is_recorded(tmp_path):
    path = str(tmp_path / "index.db")
    with pytest.raises(PkiError, match=r"entry 1 \(serial 0A\): not_after '9999-99-99'"):
        with _index.CertificateIndex(path) as index:
            index.add(entry("0A", not_after="9999-99-99"))
    assert _index.read_entries(path) == []


def test_times_compare_as_instants_whatever_their_offset(tmp_path):
    write_legacy(tmp_path, [entry("0A", not_after="2026-06-01T01:00:00+02:00")])
    with _index.CertificateIndex(str(tmp_path / "index.db"), save=False) as index:
        assert [e["status"] for e in index.query(NOW)] == ["expired"]
        assert [e["status"] for e in index.query(NOW - datetime.timedelta(hours=2))] == ["valid"]
