# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sign: every number checked before anything is signed, alike in check mode; the index's lock and format.

Each refusal is a clean failure with a message, and leaves every file of
the CA's directory as it was.
"""

from __future__ import annotations

import json
import os

import pytest
from cryptography.hazmat.primitives import serialization

from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.modules import sign
from ansible_collections.fleet.mtls.tests.unit.plugins.modules import ca_host

MODULE = sign

INTEGERS = [0, -1, 2 ** 31, 2 ** 63, 10 ** 20]


@pytest.fixture
def csr(pki):
    _key, request = pki.csr(["DNS:web1"])
    return request.public_bytes(serialization.Encoding.PEM).decode("ascii")


def ca(tmp_path, pki, lock=True):
    directory = tmp_path / "ca"
    args = ca_host.ca_directory(directory, pki, lock=lock)
    return directory, dict(args, allowed_domains=["web1"])


@pytest.mark.parametrize("check_mode", [False, True])
@pytest.mark.parametrize("days", INTEGERS + [36501])
def test_validity_days_out_of_range_is_refused(tmp_path, pki, run_module, csr, check_mode, days):
    directory, args = ca(tmp_path, pki, lock=False)
    ca_host.refused(run_module, directory, dict(args, validity_days=days, csrs=[dict(name="web1", csr=csr)]),
                    "validity_days must be a whole number from 1 to 36500 days, not %d" % days, check_mode=check_mode)


@pytest.mark.parametrize("check_mode", [False, True])
@pytest.mark.parametrize("seconds", [-1, 86401, 2 ** 31, 2 ** 63, 10 ** 20])
def test_backdate_seconds_out_of_range_is_refused(tmp_path, pki, run_module, csr, check_mode, seconds):
    directory, args = ca(tmp_path, pki, lock=False)
    ca_host.refused(run_module, directory, dict(args, backdate_seconds=seconds, csrs=[dict(name="web1", csr=csr)]),
                    "backdate_seconds must be a whole number from 0 to 86400 seconds, not %d" % seconds,
                    check_mode=check_mode)


@pytest.mark.parametrize("check_mode", [False, True])
@pytest.mark.parametrize("days", INTEGERS)
def test_a_requests_validity_days_out_of_range_is_refused(tmp_path, pki, run_module, csr, check_mode, days):
    """What certificate_request passes through from the host's certificate options."""
    directory, args = ca(tmp_path, pki, lock=False)
    why = "positive number of days, not %d" % days if days <= 0 else "asks for %d days of validity" % days
    ca_host.refused(run_module, directory, dict(args, csrs=[dict(name="web1", csr=csr, validity_days=days)]),
                    "CSR web1", why, check_mode=check_mode)


def test_the_bounds_are_accepted_and_a_lifetime_past_the_cas_ends_with_it(tmp_path, pki, run_module, csr):
    _directory, args = ca(tmp_path, pki)
    result = run_module(dict(args, validity_days=36500, backdate_seconds=86400, csrs=[dict(name="web1", csr=csr)]))
    assert not result.get("failed"), result
    issued = result["certificates"][0]
    assert c.parse_isoformat(issued["not_after"]) == c.not_valid_after(pki.issuing)
    assert 86399 <= (c.utcnow() - c.parse_isoformat(issued["not_before"])).total_seconds() <= 86460
    result = run_module(dict(args, validity_days=1, backdate_seconds=0, csrs=[dict(name="web1", csr=csr)]))
    issued = result["certificates"][0]
    lifetime = c.parse_isoformat(issued["not_after"]) - c.parse_isoformat(issued["not_before"])
    assert lifetime.days == 1 and lifetime.seconds <= 1, lifetime


@pytest.mark.parametrize("make,why", [
    (lambda path: os.symlink(str(path.parent / "elsewhere"), str(path)), "is a symbolic link"),
    (lambda path: path.mkdir(), "is a directory"),
])
def test_a_lock_path_that_is_not_a_regular_file_is_refused(tmp_path, pki, run_module, csr, make, why):
    directory, args = ca(tmp_path, pki, lock=False)
    lock = directory / "index.db.lock"
    make(lock)
    ca_host.refused(run_module, directory, dict(args, csrs=[dict(name="web1", csr=csr)]), "lock file %s %s" % (lock, why))
    assert not os.path.lexists(str(directory / "elsewhere"))


@pytest.mark.parametrize("document,why", [
    ({"format": 1, "certificates": "none"}, "certificates is not a list"),
    ({"format": 1}, "certificates is not a list"),
    ({"format": 1, "certificates": [ca_host.ENTRY, ca_host.ENTRY, dict(ca_host.ENTRY, serial=None)]},
     "entry 3 has no serial"),
    ({"format": 1, "certificates": [dict(ca_host.ENTRY, serial="0a:1b")]}, "entry 1 has the serial '0a:1b'"),
    ({"format": 1, "certificates": [dict(ca_host.ENTRY, not_after=20990101)]},
     "entry 1 (serial 0A1B) has no not_after"),
])
def test_a_malformed_index_is_refused_before_signing(tmp_path, pki, run_module, csr, document, why):
    directory, args = ca(tmp_path, pki)
    (directory / "index.json").write_text(json.dumps(document))
    ca_host.refused(run_module, directory, dict(args, csrs=[dict(name="web1", csr=csr)]),
                    "certificate index %s is malformed: %s" % (directory / "index.json", why))
