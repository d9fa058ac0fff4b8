# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""certificate_request's CRL file: only CRLs of CAs the host trusts, never a lapsed one, the same bytes for the
same CRLs, and a refusal that writes nothing."""

from __future__ import annotations

import datetime
import json

import pytest

from ansible_collections.fleet.mtls.plugins.module_utils import _crl
from ansible_collections.fleet.mtls.plugins.module_utils import _memo
from ansible_collections.fleet.mtls.plugins.module_utils import _x509
from ansible_collections.fleet.mtls.plugins.modules import certificate_request
from ansible_collections.fleet.mtls.tests.unit.plugins.modules.ca_host import snapshot

MODULE = certificate_request
DAY = datetime.timedelta(days=1)


def crl(pki, which="issuing", number=1, serials=(), last_update=None, days=7):
    cert, key = (pki.issuing, pki.issuing_key) if which == "issuing" else (pki.root, pki.root_key)
    revocations = [_crl.Revocation(serial, pki.now - DAY, "key_compromise") for serial in serials]
    return _crl.crl_pem(_crl.build_crl(cert, key, revocations, number, last_update or pki.now, days)).decode("ascii")


@pytest.fixture
def args(tmp_path, pki):
    directory = tmp_path / "certs"
    return dict(directory=str(directory), requester="web1", ca_bundle_path=str(directory / "ca-bundle.pem"),
                crl_path=str(directory / "crls.pem"), trust_certificates=[pki.bundle_pem().decode("ascii")],
                crl_issuer_certificates=[_x509.certificate_pem(pki.issuing).decode("ascii")],
                trust_crls=[crl(pki, "root"), crl(pki, serials=["0A1B"])],
                certificates=[])


def crls_in(path):
    return [_crl.describe_crl(_crl.load_crl(block)) for block in _crl.c.pem_blocks(path.read_bytes(), "X509 CRL")]


def test_the_crls_are_written_verified_and_in_a_stable_order(run_module, args, tmp_path, pki):
    result = run_module(args)
    assert not result.get("failed") and result["crl_changed"] and result["changed"], result
    path = tmp_path / "certs" / "crls.pem"
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    expected = [("CN=Test Issuing", ["0A1B"]), ("CN=Test Root", [])]
    assert [(f["issuer"], f["revoked_serials"]) for f in crls_in(path)] == expected
    before = path.read_bytes()
    again = run_module(dict(args, trust_crls=list(reversed(args["trust_crls"]))))
    assert not again.get("failed") and not again["crl_changed"], again
    assert path.read_bytes() == before


def test_of_several_crls_of_one_ca_the_highest_number_is_kept(run_module, args, tmp_path, pki):
    newer = crl(pki, number=5, serials=["0A1B", "0C"])
    result = run_module(dict(args, trust_crls=[newer + args["trust_crls"][1], args["trust_crls"][0]]))
    assert not result.get("failed"), result
    assert [(f["crl_number"], f["revoked_serials"]) for f in crls_in(tmp_path / "certs" / "crls.pem")] == [
        (5, ["0A1B", "0C"]), (1, [])]


def test_a_new_crl_is_a_change_that_consumers_must_reload_for(run_module, args, tmp_path, pki):
    assert run_module(args)["crl_changed"]
    settled = run_module(args)
    assert not settled["changed"] and not settled["crl_changed"], settled
    revoked = run_module(dict(args, trust_crls=[args["trust_crls"][0], crl(pki, number=2, serials=["0A1B", "0D"])]))
    assert revoked["crl_changed"] and revoked["changed"], revoked
    assert crls_in(tmp_path / "certs" / "crls.pem")[0]["revoked_serials"] == ["0A1B", "0D"]


@pytest.mark.parametrize("change,why", [
    (lambda a, pki, other: dict(a, trust_crls=[crl(other)]), "trust_crls[0]: the CRL of CN=Other Issuing is not "
                                                             "signed by a CA the host trusts"),
    (lambda a, pki, other: dict(a, crl_issuer_certificates=[], trust_crls=[crl(pki)]),
     "trust_crls[0]: the CRL of CN=Test Issuing is not signed by a CA the host trusts"),
    (lambda a, pki, other: dict(a, crl_issuer_certificates=[_x509.certificate_pem(other.issuing).decode()]),
     "crl_issuer_certificates[0]: CN=Other Issuing is not a valid CA certificate issued by a CA the host trusts"),
    (lambda a, pki, other: dict(a, trust_crls=[crl(pki, last_update=pki.now - 10 * DAY)]),
     "trust_crls[0]: the CRL of CN=Test Issuing is past its next update"),
    (lambda a, pki, other: dict(a, trust_crls=["not a CRL"]), "trust_crls[0] is not a PEM CRL"),
    (lambda a, pki, other: dict(a, trust_crls=[]), "the CRL file would hold no CRL"),
    (lambda a, pki, other: dict(a, crl_path=None), "trust_crls and crl_issuer_certificates need crl_path"),
], ids=["other-ca", "issuer-not-given", "issuer-not-chained", "lapsed", "not-pem", "empty", "no-path"])
@pytest.mark.parametrize("check_mode", [False, True])
def test_a_crl_the_host_cannot_trust_is_refused_and_nothing_is_written(run_module, args, tmp_path, pki, other_pki,
                                                                       change, why, check_mode):
    assert not run_module(args).get("failed")
    before = snapshot(tmp_path)
    result = run_module(change(args, pki, other_pki), check_mode=check_mode)
    assert result.get("failed") and why in result["msg"], result
    assert snapshot(tmp_path) == before


def test_a_settled_decision_holds_only_until_the_first_next_update(run_module, args, tmp_path, pki):
    short = dict(args, trust_crls=[crl(pki, "root", days=1), args["trust_crls"][1]])
    assert run_module(short)["changed"]
    assert not run_module(short)["changed"]
    valid_until = json.loads((tmp_path / "certs" / _memo.MEMO_NAME).read_text())["valid_until"]
    assert valid_until == pytest.approx((pki.now + DAY).timestamp(), abs=1)
