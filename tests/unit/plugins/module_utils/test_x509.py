# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every certificate the core makes must be, checked with outside tools too."""

from __future__ import annotations

import base64
import datetime
import shutil
import socket
import ssl
import subprocess
import threading

import pytest
from cryptography import x509

from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _x509
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError

DAY = datetime.timedelta(days=1)

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


def critical(cert, extension_class):
    return cert.extensions.get_extension_for_class(extension_class).critical


def assert_rfc5280_clean(cert, ca):
    extensions = cert.extensions
    extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    assert critical(cert, x509.KeyUsage)
    constraints = extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.value.ca is ca
    if ca:
        assert constraints.critical
    assert 0 < cert.serial_number < 2 ** 159
    assert cert.version == x509.Version.v3


def test_root_intermediate_and_leaf_are_rfc5280_clean(pki):
    assert_rfc5280_clean(pki.root, ca=True)
    assert_rfc5280_clean(pki.issuing, ca=True)
    _key, leaf = pki.leaf(["DNS:web1.lab.internal"])
    assert_rfc5280_clean(leaf, ca=False)
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = pki.issuing.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert _x509.key_usage_names(_x509.extension_value(pki.issuing, x509.KeyUsage)) == \
        ["digitalSignature", "keyCertSign", "cRLSign"]


def test_rsa_leaf_also_allows_key_encipherment(pki):
    _key, leaf = pki.leaf(["DNS:rsa.lab.internal"], key=c.generate_private_key("rsa", 2048))
    assert _x509.key_usage_names(_x509.extension_value(leaf, x509.KeyUsage)) == \
        ["digitalSignature", "keyEncipherment"]


@needs_openssl
def test_openssl_verifies_leaf_against_root_and_intermediate(pki, tmp_path):
    key, leaf = pki.leaf(["DNS:web1.lab.internal"])
    (tmp_path / "root.pem").write_bytes(_x509.certificate_pem(pki.root))
    (tmp_path / "issuing.pem").write_bytes(_x509.certificate_pem(pki.issuing))
    (tmp_path / "leaf.pem").write_bytes(_x509.certificate_pem(leaf))
    result = subprocess.run(["openssl", "verify", "-x509_strict", "-purpose", "sslserver",
                             "-CAfile", str(tmp_path / "root.pem"), "-untrusted", str(tmp_path / "issuing.pem"),
                             str(tmp_path / "leaf.pem")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "leaf.pem: OK" in result.stdout


def test_python_ssl_strict_verification_accepts_a_served_chain(pki, tmp_path):
    """A real handshake on loopback with VERIFY_X509_STRICT, as Python 3.13 does by default."""
    key, leaf = pki.leaf(["DNS:web1.lab.internal", "IP:127.0.0.1"])
    key_path, cert_path = pki.write(tmp_path, "server", key, leaf)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert_path, key_path)
    client_ctx = ssl.create_default_context(cadata=pki.bundle_pem().decode("ascii"))
    client_ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    errors = []

    def serve():
        conn, _addr = listener.accept()
        try:
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except (ssl.SSLError, OSError) as exc:  # the client's verdict is what the test checks
            errors.append(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with client_ctx.wrap_socket(raw, server_hostname="web1.lab.internal") as tls:
            assert tls.getpeercert()["subjectAltName"][0] == ("DNS", "web1.lab.internal")
            tls.sendall(b"x")
    thread.join(10)
    listener.close()


def test_subject_dict_is_ordered_and_checked():
    name = _x509.build_name({"CN": "web1", "O": "Example", "C": "DE"})
    assert name.rfc4514_string() == "CN=web1,O=Example,C=DE"
    with pytest.raises(PkiError, match="unknown subject attribute"):
        _x509.build_name({"XX": "y"})
    with pytest.raises(PkiError, match="two-letter"):
        _x509.build_name({"C": "Germany"})
    with pytest.raises(PkiError, match="given twice"):
        _x509.build_name({"CN": "a", "commonName": "b"})


@pytest.mark.parametrize("text,expected", [
    ("DNS:Web1.Lab.Internal", "DNS:web1.lab.internal"),
    ("IP:10.0.0.1", "IP:10.0.0.1"),
    ("IP:fd00::1", "IP:fd00::1"),
    ("URI:spiffe://lab.internal/web/web1", "URI:spiffe://lab.internal/web/web1"),
    ("email:ops@example.com", "email:ops@example.com"),
])
def test_sans_parse_and_print_back(text, expected):
    assert _x509.san_to_string(_x509.parse_san(text)) == expected


@pytest.mark.parametrize("text", ["web1", "DNS:", "DNS:-bad-.example", "IP:10.0.0.300", "URI:no-scheme",
                                  "email:nobody", "X400:foo"])
def test_bad_sans_are_refused(text):
    with pytest.raises(PkiError):
        _x509.parse_san(text)


@pytest.mark.parametrize("spiffe_id", ["spiffe://lab.internal/web", "spiffe://td/a/b-c_d.e"])
def test_valid_spiffe_ids(spiffe_id):
    assert _x509.validate_spiffe_id(spiffe_id) == spiffe_id


@pytest.mark.parametrize("spiffe_id", ["http://lab/web", "spiffe://Lab/web", "spiffe://lab", "spiffe://lab/",
                                       "spiffe://lab/a//b", "spiffe://lab/a/../b", "spiffe://lab/a?x=1",
                                       "spiffe:///path"])
def test_invalid_spiffe_ids(spiffe_id):
    with pytest.raises(PkiError):
        _x509.validate_spiffe_id(spiffe_id)


def test_spiffe_id_must_be_the_only_uri():
    with pytest.raises(PkiError, match="only URI SAN"):
        _x509.build_sans(["URI:https://example.com/x"], spiffe_id="spiffe://lab/web")
    with pytest.raises(PkiError, match="twice"):
        _x509.build_sans(["DNS:a.example", "DNS:A.example"])


def test_csr_matches_only_the_same_request(pki):
    key = c.generate_private_key("ec")
    sans = _x509.build_sans(["DNS:web1.lab"])
    csr = _x509.build_csr(key, {"CN": "web1.lab"}, sans, extended_key_usage=["serverAuth"])
    assert _x509.csr_matches(csr, key, {"CN": "web1.lab"}, sans, [], ["serverAuth"])
    assert not _x509.csr_matches(csr, key, {"CN": "web1.lab"}, sans, [], ["clientAuth"])
    assert not _x509.csr_matches(csr, key, {"CN": "web2.lab"}, sans, [], ["serverAuth"])
    assert not _x509.csr_matches(csr, c.generate_private_key("ec"), {"CN": "web1.lab"}, sans, [], ["serverAuth"])
    assert not _x509.csr_matches(csr, key, {"CN": "web1.lab"}, _x509.build_sans(["DNS:web2.lab"]), [],
                                 ["serverAuth"])


def test_the_leaf_subject_is_built_not_copied_from_the_csr(pki):
    key = c.generate_private_key("ec")
    csr = _x509.build_csr(key, {"O": "evil", "CN": "admin.evil.example.com"}, _x509.build_sans(["DNS:web1.lab"]))
    cert = _x509.build_leaf_certificate(csr, "web1", pki.issuing, pki.issuing_key, _x509.sans_of(csr),
                                        ["serverAuth"], pki.now - DAY, pki.now + DAY, _x509.random_serial())
    assert cert.subject.rfc4514_string() == "CN=web1"
    assert not critical(cert, x509.SubjectAlternativeName)


def test_tampered_csr_is_refused(pki):
    _key, csr = pki.csr(["DNS:web1.lab"])
    der = bytearray(csr.public_bytes(c.serialization.Encoding.DER))
    der[-5] ^= 0xFF  # inside the signature
    pem = b"-----BEGIN CERTIFICATE REQUEST-----\n" + base64.encodebytes(bytes(der)) + \
        b"-----END CERTIFICATE REQUEST-----\n"
    with pytest.raises(PkiError, match="signature does not verify|corrupt"):
        _x509.load_csr(pem)


def test_name_constraints_are_critical_and_compared(pki):
    key = c.generate_private_key("ec")
    ca = _x509.build_ca_certificate(key, {"CN": "Constrained"}, pki.now, pki.now + DAY, issuer_cert=pki.root,
                                    issuer_key=pki.root_key, permitted=["DNS:lab.internal", "IP:10.0.0.0/8"])
    assert critical(ca, x509.NameConstraints)
    assert _x509.name_constraints_of(ca) == _x509.build_name_constraints(["DNS:lab.internal", "IP:10.0.0.0/8"], [])
    with pytest.raises(PkiError, match="CIDR"):
        _x509.build_name_constraints(["IP:10.0.0.1/8"], [])


def test_require_usable_ca_refuses_leaf_expired_and_mismatched(pki):
    _x509.require_usable_ca(pki.issuing, pki.issuing_key)
    key, leaf = pki.leaf(["DNS:leaf.lab"])
    with pytest.raises(PkiError, match="not a CA"):
        _x509.require_usable_ca(leaf, key)
    with pytest.raises(PkiError, match="do not match"):
        _x509.require_usable_ca(pki.issuing, pki.root_key)
    old_key = c.generate_private_key("ec")
    expired = _x509.build_ca_certificate(old_key, {"CN": "Old"}, pki.now - 10 * DAY, pki.now - DAY)
    with pytest.raises(PkiError, match="expired"):
        _x509.require_usable_ca(expired, old_key)


def test_describe_certificate_reports_facts_without_key_material(pki):
    _key, leaf = pki.leaf(["DNS:web1.lab", "URI:spiffe://lab/web/web1"])
    facts = _x509.describe_certificate(leaf, now=pki.now)
    assert facts["common_name"] == "web1.lab"
    assert facts["spiffe_id"] == "spiffe://lab/web/web1"
    assert facts["extended_key_usage"] == ["serverAuth", "clientAuth"]
    assert facts["issuer"] == {"CN": "Test Issuing"}
    assert facts["is_ca"] is False and facts["expired"] is False
    assert 0 < facts["lifetime_elapsed"] < 0.05
    assert "PRIVATE" not in repr(facts)


def test_verify_chain_paths_and_errors(pki, other_pki):
    _key, leaf = pki.leaf(["DNS:web1.lab"])
    assert _x509.verify_chain(leaf, [pki.issuing], [pki.root])[0]
    assert _x509.verify_chain(leaf, [], [pki.root, pki.issuing])[0]
    ok, error, _path = _x509.verify_chain(leaf, [], [pki.root])
    assert not ok and "issued" in error
    ok, error, _path = _x509.verify_chain(leaf, [pki.issuing], [other_pki.root])
    assert not ok
    _key, old = pki.leaf(["DNS:old.lab"], not_before=pki.now - 10 * DAY, not_after=pki.now - DAY)
    ok, error, _path = _x509.verify_chain(old, [pki.issuing], [pki.root])
    assert not ok and "expired" in error


def test_verify_chain_honours_path_length(pki):
    # issuing has pathLen 0: a CA under it may not issue.
    sub_key = c.generate_private_key("ec")
    sub = _x509.build_ca_certificate(sub_key, {"CN": "Too Deep"}, pki.now - DAY, pki.now + DAY,
                                     issuer_cert=pki.issuing, issuer_key=pki.issuing_key)
    key = c.generate_private_key("ec")
    csr = _x509.build_csr(key, {"CN": "x"}, _x509.build_sans(["DNS:x.lab"]))
    leaf = _x509.build_leaf_certificate(csr, _x509.common_name(csr.subject), sub, sub_key, _x509.sans_of(csr), ["serverAuth"], pki.now - DAY,
                                        pki.now + DAY, _x509.random_serial())
    ok, error, _path = _x509.verify_chain(leaf, [sub, pki.issuing], [pki.root])
    assert not ok and "path length" in error


def test_load_certificates_reads_every_block(pki):
    pem = _x509.certificate_pem(pki.root) + b"\n" + _x509.certificate_pem(pki.issuing)
    assert [x.subject for x in _x509.load_certificates(pem)] == [pki.root.subject, pki.issuing.subject]
    with pytest.raises(PkiError, match="no PEM certificate"):
        _x509.load_certificates(b"nothing here")
