# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ca_index_info: an index it cannot use is a clean failure that says what is wrong, never a traceback."""

from __future__ import annotations

import datetime
import json

import pytest

from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _index
from ansible_collections.fleet.mtls.plugins.modules import ca_index_info
from ansible_collections.fleet.mtls.tests.unit.plugins.modules import ca_host

MODULE = ca_index_info

EXPIRED = dict(ca_host.ENTRY, serial="0B", name="web2/server", not_after="2025-02-01T00:00:00Z")
REVOKED = dict(ca_host.ENTRY, serial="0C", revoked_at="2025-06-01T00:00:00Z", revocation_reason="superseded")


def test_entries_are_listed_with_their_state(tmp_path, run_module):
    path = tmp_path / "index.json"
    path.write_text(json.dumps({"format": 1, "certificates": [ca_host.ENTRY, EXPIRED, REVOKED]}))
    result = run_module(dict(index_path=str(path), name="web1/server"))
    assert not result.get("failed"), result
    assert [(e["serial"], e["status"]) for e in result["certificates"]] == [("0A1B", "valid"), ("0C", "revoked")]
    assert result["counts"] == dict(valid=1, expired=1, revoked=1)


def test_serials_find_each_of_them_in_one_lookup(tmp_path, run_module):
    path = tmp_path / "index.json"
    path.write_text(json.dumps({"format": 1, "certificates": [ca_host.ENTRY, EXPIRED, REVOKED]}))
    found = run_module(dict(index_path=str(path), serials=["0c", "0A:1B", "0x0c", "FF"]))
    assert [e["serial"] for e in found["certificates"]] == ["0A1B", "0C"]
    assert run_module(dict(index_path=str(path), serials=[]))["certificates"] == []
    assert [e["serial"] for e in run_module(dict(index_path=str(path), serials=["0B", "0C"],
                                                 status="revoked"))["certificates"]] == ["0C"]
    refused = run_module(dict(index_path=str(path), serials=["0C", "not-hex"]))
    assert refused["failed"] and "serial 'not-hex' is not a hexadecimal number" in refused["msg"]


@pytest.mark.parametrize("document,why", [
    ("[]", "has an unknown format"),
    ('{"format": true, "certificates": []}', "has an unknown format"),
    ('{"format": 1, "certificates": {"0A1B": {}}}', "is malformed: certificates is not a list"),
    ('{"format": 1, "certificates": null}', "is malformed: certificates is not a list"),
    (json.dumps({"format": 1, "certificates": [ca_host.ENTRY, EXPIRED, 7]}), "is malformed: entry 3 is not an object"),
    (json.dumps({"format": 1, "certificates": [ca_host.ENTRY, EXPIRED, {"name": "web3"}]}),
     "is malformed: entry 3 has no serial"),
    (json.dumps({"format": 1, "certificates": [dict(ca_host.ENTRY, serial=10)]}),
     "is malformed: entry 1 has no serial"),
    (json.dumps({"format": 1, "certificates": [dict(ca_host.ENTRY, not_after="soon")]}),
     "is malformed: entry 1 (serial 0A1B): not_after 'soon' is not an ISO 8601 date and time"),
    (json.dumps({"format": 1, "certificates": [dict(REVOKED, revoked_at=5)]}),
     "is malformed: entry 1 (serial 0C): revoked_at 5 is not an ISO 8601 date and time"),
    ("[" * 100000 + "]" * 100000, "is corrupt"),
    (b"\xff\xfe", "is corrupt"),
])
def test_an_unusable_index_is_refused(tmp_path, run_module, document, why):
    path = tmp_path / "index.json"
    if isinstance(document, bytes):
        path.write_bytes(document)
    else:
        path.write_text(document)
    result = run_module(dict(index_path=str(path)))
    assert result.get("failed") and result["msg"].startswith("certificate index %s %s" % (path, why)), result


def test_an_index_path_that_is_a_directory_is_refused(tmp_path, run_module):
    result = run_module(dict(index_path=str(tmp_path)))
    assert result.get("failed") and result["msg"] == "cannot read %s: Is a directory" % tmp_path, result


def test_queries_by_spiffe_id_and_expiry_combine_with_the_other_criteria(tmp_path, run_module):
    soon = c.isoformat(c.utcnow() + datetime.timedelta(days=5))
    web = dict(ca_host.ENTRY, subject_alt_names=["DNS:web1", "URI:spiffe://fleet.example/web1"])
    app = dict(ca_host.ENTRY, serial="0D", name="app1/server", not_after=soon,
               subject_alt_names=["DNS:app1", "URI:spiffe://fleet.example/app1"])
    path = tmp_path / "index.json"
    path.write_text(json.dumps({"format": 1, "certificates": [web, EXPIRED, REVOKED, app]}))
    for index_path in (path, tmp_path / "index.db"):
        def serials(**criteria):
            result = run_module(dict(criteria, index_path=str(index_path)))
            assert not result.get("failed") and result["counts"] == dict(valid=2, expired=1, revoked=1), result
            return [e["serial"] for e in result["certificates"]]

        assert serials(spiffe_id="spiffe://fleet.example/web1") == ["0A1B"]
        assert serials(expires_within_days=14) == ["0B", "0D"]
        assert serials(expires_within_days=14, status="valid") == ["0D"]
        assert serials(expires_within_days=0) == ["0B"]
        assert serials(name="app1/server", spiffe_id="spiffe://fleet.example/web1") == []
        if index_path == path:  # listing imports nothing; a run that writes does
            with _index.CertificateIndex(str(path)):
                pass


@pytest.mark.parametrize("criteria,why", [
    (dict(expires_within_days=-1), "expires_within_days must be from 0 to 36500, not -1.0"),
    (dict(expires_within_days=1e9), "expires_within_days must be from 0 to 36500"),
    (dict(spiffe_id="web1"), "spiffe_id 'web1' is not a spiffe:// URI"),
])
def test_criteria_out_of_range_are_refused(tmp_path, run_module, criteria, why):
    path = tmp_path / "index.json"
    path.write_text(json.dumps({"format": 1, "certificates": [ca_host.ENTRY]}))
    result = run_module(dict(criteria, index_path=str(path)))
    assert result.get("failed") and result["msg"].startswith(why), result


def test_a_host_lists_that_hosts_entries_only(tmp_path, run_module):
    """web1 is every web1/... name, never web10/... or web1x/...; combined with the other criteria."""
    entries = [ca_host.ENTRY, dict(EXPIRED, serial="0B", name="web1/client"),
               dict(ca_host.ENTRY, serial="0C", name="web10/server"),
               dict(ca_host.ENTRY, serial="0D", name="web1x/server"), dict(REVOKED, serial="0E", name="web1/old")]
    path = tmp_path / "index.json"
    path.write_text(json.dumps({"format": 1, "certificates": entries}))
    for index_path in (path, tmp_path / "index.db"):
        def serials(**criteria):
            result = run_module(dict(criteria, index_path=str(index_path)))
            assert not result.get("failed") and result["counts"] == dict(valid=3, expired=1, revoked=1), result
            return [e["serial"] for e in result["certificates"]]

        assert serials(host="web1") == ["0A1B", "0B", "0E"]
        assert serials(host="web10") == ["0C"]
        assert serials(host="web1x") == ["0D"]
        assert serials(host="web2") == []
        assert serials(host="web1", status="valid") == ["0A1B"]
        assert serials(host="web1", name="web1/client") == ["0B"]
        assert serials(host="web10", name="web1/server") == []
        if index_path == path:
            with _index.CertificateIndex(str(path)):
                pass


@pytest.mark.parametrize("host,why", [
    ("web1/server", "host 'web1/server' holds a '/'"),
    ("", "host must be a host name, not ''"),
])
def test_a_host_that_is_no_host_name_is_refused(tmp_path, run_module, host, why):
    path = tmp_path / "index.json"
    path.write_text(json.dumps({"format": 1, "certificates": [ca_host.ENTRY]}))
    result = run_module(dict(index_path=str(path), host=host))
    assert result.get("failed") and result["msg"].startswith(why), result
