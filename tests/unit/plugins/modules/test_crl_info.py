# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""crl_info: the facts of every CRL of a file, in its order, and a clean failure for a file it cannot or must not read."""

from __future__ import annotations

import datetime
import json

import pytest

from cryptography import x509

from ansible_collections.fleet.mtls.plugins.module_utils import _crl
from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _x509
from ansible_collections.fleet.mtls.plugins.modules import crl_info
from ansible_collections.fleet.mtls.tests.unit.plugins.modules import ca_host

MODULE = crl_info

DAY = datetime.timedelta(days=1)


def crl_of(ca_cert, ca_key, serials=(), number=1, signed=None, days=7):
    revocations = [_crl.Revocation(serial, c.utcnow() - DAY) for serial in serials]
    return _crl.crl_pem(_crl.build_crl(ca_cert, ca_key, revocations, number, signed or c.utcnow(), days))


def key_identifier(cert):
    return c.colon_hex(_x509.extension_value(cert, x509.SubjectKeyIdentifier).digest)


def bundle(*certs):
    return b"".join(_x509.certificate_pem(cert) for cert in certs)


@pytest.fixture
def crls(tmp_path, pki):
    """crls.pem as a host holds it: the root CA's CRL, then the issuing CA's."""
    path = tmp_path / "crls.pem"
    path.write_bytes(crl_of(pki.root, pki.root_key, number=4, days=30)
                     + crl_of(pki.issuing, pki.issuing_key, serials=["0C0D", "0A1B"], number=12, days=7))
    return path


def test_two_crls_in_one_file_are_described_in_file_order(crls, pki, run_module):
    result = run_module(dict(path=str(crls)))
    assert not result.get("failed") and result["changed"] is False, result
    assert result["count"] == 2 and result["expired"] is False
    root, issuing = result["crls"]
    assert (root["issuer"], root["crl_number"], root["revoked_serials"]) == ("CN=Test Root", 4, [])
    assert (issuing["issuer"], issuing["crl_number"], issuing["revoked_serials"]) == \
        ("CN=Test Issuing", 12, ["0A1B", "0C0D"])
    assert root["authority_key_identifier"] == key_identifier(pki.root)
    assert issuing["authority_key_identifier"] == key_identifier(pki.issuing)
    for facts, days in ((root, 30), (issuing, 7)):
        assert set(facts) == {"issuer", "crl_number", "last_update", "next_update", "expired", "seconds_left",
                              "revoked_serials", "authority_key_identifier"}
        lifetime = c.parse_isoformat(facts["next_update"]) - c.parse_isoformat(facts["last_update"])
        assert lifetime == days * DAY and facts["expired"] is False
        assert days * 86400 - 120 < facts["seconds_left"] <= days * 86400
    # The earliest next update of the file: the issuing CA's, though it comes second.
    assert result["next_update"] == issuing["next_update"]


def test_an_expired_crl_is_told_and_makes_the_file_expired(tmp_path, pki, run_module):
    path = tmp_path / "crls.pem"
    lapsed = crl_of(pki.issuing, pki.issuing_key, number=3, signed=c.utcnow() - 10 * DAY, days=7)
    path.write_bytes(crl_of(pki.root, pki.root_key, days=30) + lapsed)
    result = run_module(dict(path=str(path)))
    assert not result.get("failed") and result["expired"] is True, result
    current, expired = result["crls"]
    assert current["expired"] is False and current["seconds_left"] > 0
    assert expired["expired"] is True and -3 * 86400 - 120 < expired["seconds_left"] <= -3 * 86400
    assert result["next_update"] == expired["next_update"]


def test_require_current_refuses_a_file_with_a_lapsed_crl_naming_it(tmp_path, pki, run_module):
    path = tmp_path / "crls.pem"
    lapsed = crl_of(pki.issuing, pki.issuing_key, number=3, signed=c.utcnow() - 10 * DAY, days=7)
    path.write_bytes(crl_of(pki.root, pki.root_key, days=30) + lapsed)
    before = path.read_bytes()
    result = run_module(dict(path=str(path), require_current=True))
    assert result.get("failed"), result
    assert result["msg"].startswith("Refusing to deploy %s: a CRL in it is past its next update (CN=Test Issuing"
                                    " lapsed at " % path), result["msg"]
    assert "CN=Test Root" not in result["msg"] and "crls" not in result
    assert path.read_bytes() == before


def test_require_current_passes_current_crls(crls, run_module):
    result = run_module(dict(path=str(crls), require_current=True))
    assert not result.get("failed") and result["expired"] is False and result["count"] == 2, result


def test_a_crl_without_number_nor_key_identifier_says_null(tmp_path, pki, run_module):
    now = c.utcnow().replace(microsecond=0)
    bare = (x509.CertificateRevocationListBuilder().issuer_name(pki.issuing.subject).last_update(now)
            .next_update(now + DAY).sign(pki.issuing_key, c.signature_hash(pki.issuing_key)))
    path = tmp_path / "bare.pem"
    path.write_bytes(_crl.crl_pem(bare))
    result = run_module(dict(path=str(path), ca_certificates_path=str(tmp_path / "bundle.pem")))
    assert result.get("failed") and result["msg"] == "CA certificates %s does not exist" % (tmp_path / "bundle.pem")
    (tmp_path / "bundle.pem").write_bytes(bundle(pki.root, pki.issuing))
    result = run_module(dict(path=str(path), ca_certificates_path=str(tmp_path / "bundle.pem")))
    assert not result.get("failed") and result["count"] == 1, result
    facts = result["crls"][0]
    assert facts["crl_number"] is None and facts["authority_key_identifier"] is None and facts["verified"] is True


@pytest.mark.parametrize("check_mode", [False, True])
def test_verified_against_the_right_ca_certificates(crls, pki, tmp_path, run_module, check_mode):
    """Both CAs in the bundle: each CRL is signed by one of them. Check mode reads alike and writes nothing."""
    anchors = tmp_path / "bundle.pem"
    anchors.write_bytes(bundle(pki.root, pki.issuing))
    before = ca_host.snapshot(tmp_path)
    result = run_module(dict(path=str(crls), ca_certificates_path=str(anchors)), check_mode=check_mode)
    assert not result.get("failed") and result["changed"] is False, result
    assert [(f["issuer_known"], f["verified"]) for f in result["crls"]] == [(True, True), (True, True)]
    assert ca_host.snapshot(tmp_path) == before
    only_root = tmp_path / "root.pem"
    only_root.write_bytes(bundle(pki.root))
    result = run_module(dict(path=str(crls), ca_certificates_path=str(only_root)), check_mode=check_mode)
    assert [(f["issuer_known"], f["verified"]) for f in result["crls"]] == [(True, True), (False, False)]


def test_not_verified_against_a_wrong_ca(crls, pki, other_pki, tmp_path, run_module):
    """Another PKI's CAs, and a CA of the same name with another key: neither verifies a CRL."""
    other = tmp_path / "other.pem"
    other.write_bytes(bundle(other_pki.root, other_pki.issuing))
    result = run_module(dict(path=str(crls), ca_certificates_path=str(other)))
    assert not result.get("failed") and result["expired"] is False, result
    assert [(f["issuer_known"], f["verified"]) for f in result["crls"]] == [(False, False), (False, False)]
    impostor_key = c.generate_private_key("rsa", 2048)  # another key type too: a clean False, not an error
    impostor = _x509.build_ca_certificate(impostor_key, {"CN": "Test Issuing"}, pki.now - DAY, pki.now + 30 * DAY)
    other.write_bytes(bundle(impostor, pki.root))
    result = run_module(dict(path=str(crls), ca_certificates_path=str(other)))
    assert [(f["issuer_known"], f["verified"]) for f in result["crls"]] == [(True, True), (True, False)]


def test_a_file_without_crl_is_refused(tmp_path, pki, run_module):
    path = tmp_path / "crls.pem"
    path.write_bytes(bundle(pki.root, pki.issuing))
    result = run_module(dict(path=str(path)))
    assert result.get("failed") and result["msg"] == "CRL file %s holds no PEM CRL (no X509 CRL block)" % path, result
    missing = run_module(dict(path=str(tmp_path / "absent.pem")))
    assert missing.get("failed") and missing["msg"] == "CRL file %s does not exist" % (tmp_path / "absent.pem")
    directory = run_module(dict(path=str(tmp_path)))
    assert directory.get("failed") and directory["msg"] == "cannot read %s: Is a directory" % tmp_path


@pytest.mark.parametrize("garble,why", [
    (lambda pem: bytes(range(256)) * 8, "holds no PEM CRL"),
    (lambda pem: b"", "holds no PEM CRL"),
    (lambda pem: pem.replace(pem.split(b"\n")[1], b"!" * 64), "(CRL 2) is corrupt: "),
    (lambda pem: pem.replace(pem.split(b"\n")[1], b"A" * 64), "(CRL 2) is corrupt: "),
    (lambda pem: pem[:-40], "holds an X509 CRL block without its END line"),
    (lambda pem: pem.replace(b"-----END X509 CRL-----\n", b"", 1), "holds an X509 CRL block without its END line"),
])
def test_garbage_or_a_garbled_block_is_a_clean_failure(crls, run_module, garble, why):
    """The issuing CA's CRL (the second) garbled, the root's intact: no partial answer, no traceback."""
    root, issuing = c.pem_blocks(crls.read_bytes(), "X509 CRL")
    crls.write_bytes(root + garble(issuing))
    if why == "holds no PEM CRL":
        crls.write_bytes(garble(issuing))
    result = run_module(dict(path=str(crls)))
    assert result.get("failed") and result["msg"].startswith("CRL file %s" % crls) and why in result["msg"], result
    assert "Traceback" not in result["msg"] and "crls" not in result


@pytest.mark.parametrize("label", ["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY",
                                   "OPENSSH PRIVATE KEY"])
def test_a_file_holding_a_private_key_is_refused_without_showing_it(crls, pki, tmp_path, run_module, label):
    key = c.serialize_private_key(pki.issuing_key).replace(b"PRIVATE KEY", label.encode("ascii"))
    secret = key.split(b"\n")[1].decode("ascii")
    crls.write_bytes(crls.read_bytes() + key)
    result = run_module(dict(path=str(crls)))
    assert result.get("failed") and result["msg"].startswith("CRL file %s holds a private key" % crls), result
    assert secret not in json.dumps(result) and "BEGIN" not in json.dumps(result)
    # A CA bundle that is a combined PEM with its key is refused alike.
    crls.write_bytes(crl_of(pki.issuing, pki.issuing_key))
    anchors = tmp_path / "bundle.pem"
    anchors.write_bytes(bundle(pki.issuing) + key)
    result = run_module(dict(path=str(crls), ca_certificates_path=str(anchors)))
    assert result.get("failed") and result["msg"].startswith("CA certificates %s holds a private key" % anchors)
    assert secret not in json.dumps(result)


def test_describe_crl_file_reports_the_earliest_next_update_and_nothing_when_none_has_one(pki):
    """The pure function behind the module, with a clock of its own."""
    now = c.utcnow()
    data = crl_of(pki.root, pki.root_key, days=30) + crl_of(pki.issuing, pki.issuing_key, days=2)
    facts = _crl.describe_crl_file(data, None, now + DAY)
    assert facts["count"] == 2 and facts["expired"] is False
    assert c.parse_isoformat(facts["next_update"]) == c.parse_isoformat(facts["crls"][1]["next_update"])
    later = _crl.describe_crl_file(data, [pki.root], now + 3 * DAY)
    assert later["expired"] is True and [f["expired"] for f in later["crls"]] == [False, True]
    assert [f["verified"] for f in later["crls"]] == [True, False]
