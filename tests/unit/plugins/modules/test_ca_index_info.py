# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ca_index_info: an index it cannot use is a clean failure that says what is wrong, never a traceback."""

from __future__ import annotations

import json

import pytest

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
