# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""tls_probe against real servers on 127.0.0.1: Python's ssl and, where installed, openssl s_server.

Each server kind runs with client certificates required and optional, for
TLS 1.2 and TLS 1.3; the probe must tell every outcome apart on each. A
recording server shows that a server whose certificate does not verify gets
no client certificate and no request.
"""

from __future__ import annotations

import socket
import ssl

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from ansible_collections.fleet.mtls.plugins.module_utils import _der_name as der_names
from ansible_collections.fleet.mtls.plugins.module_utils import _probe
from ansible_collections.fleet.mtls.plugins.module_utils import _probe_expect
from ansible_collections.fleet.mtls.plugins.module_utils import _tls_wire
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError
from ansible_collections.fleet.mtls.tests.unit.plugins.module_utils import probe_servers as ps

VERSIONS = ("1.2", "1.3")
PROTOCOLS = {"1.2": "TLSv1.2", "1.3": "TLSv1.3"}
# The alert a server sends when no certificate came, per version (RFC 8446 added certificate_required).
NO_CERT_ALERTS = {"1.2": "sslv3 alert handshake failure", "1.3": "tlsv13 alert certificate required"}
# The client certificates a server must refuse, and the alert OpenSSL (behind both servers) sends.
UNTRUSTED_CLIENTS = {
    "self_signed_client": "tlsv1 alert unknown ca",
    "other_client": "tlsv1 alert unknown ca",
    "expired_client": "sslv3 alert certificate expired",
    "server_auth_client": "sslv3 alert unsupported certificate",
}
FAST = 0.2  # alert_wait for the tests: the loopback answers in milliseconds

needs_openssl = pytest.mark.skipif(ps.OPENSSL is None, reason="needs the openssl command")
SERVER_KINDS = ["python", pytest.param("openssl", marks=needs_openssl)]


@pytest.fixture(scope="module")
def probe_pki(tmp_path_factory):
    return ps.ProbePki(tmp_path_factory.mktemp("probe-pki"))


@pytest.fixture
def recording_server(request, probe_pki):
    """start(cert, version, verify_mode): a RecordingTLSServer serving the ProbePki attribute cert, stopped at the end."""

    def start(cert, version, verify_mode=ssl.CERT_OPTIONAL):
        server = ps.RecordingTLSServer(probe_pki, getattr(probe_pki, cert), version, verify_mode)
        request.addfinalizer(server.stop)
        return server

    return start


@pytest.fixture(scope="module")
def servers(probe_pki, tmp_path_factory):
    """{(kind, 'required'|'optional', version): port}, started lazily, all stopped at the end."""
    started = {}
    log_dir = tmp_path_factory.mktemp("probe-logs")

    def get(kind, mode, version):
        """mode: required, optional, none (Python only), or revocation (required, checking the CA's CRL)."""
        key = (kind, mode, version)
        if key not in started:
            crl = mode == "revocation"
            if kind == "python":
                verify = {"required": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL, "none": ssl.CERT_NONE,
                          "revocation": ssl.CERT_REQUIRED}[mode]
                started[key] = ps.PythonTLSServer(probe_pki, verify, version, crl=crl)
            else:
                started[key] = ps.OpenSSLServer(probe_pki, mode in ("required", "revocation"), version, log_dir,
                                                crl=crl)
        return started[key].port

    yield get
    for server in started.values():
        server.stop()


def probe(pki, port, client=None, bundle="ca", http=None, alert_wait=FAST, **kwargs):
    """Probe 127.0.0.1:port as SERVER_NAME; client names a ProbePki attribute, bundle 'ca', 'other' or None
    (verify_server=False)."""
    if client is not None:
        kwargs["client_cert_path"], kwargs["client_key_path"] = getattr(pki, client)
    if bundle is None:
        kwargs["verify_server"] = False
    else:
        kwargs["ca_bundle_path"] = pki.ca_path if bundle == "ca" else pki.other_ca_path
    kwargs.setdefault("server_name", ps.SERVER_NAME)
    return _probe.probe(_probe.ProbeOptions.load(ps.LOOPBACK, port, http=http, alert_wait=alert_wait, **kwargs))


def ca_names_advertised(kind, pki):
    """What each server sends in its CertificateRequest, as observed: Python's ssl sets no client CA list
    (load_verify_locations only trusts), openssl s_server lists its -CAfile, in TLS 1.2 and 1.3 alike."""
    if kind == "python":
        return []
    return [pki.ca.subject.rfc4514_string()]


# --- accepted ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", SERVER_KINDS)
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("http", [None, {}], ids=["no-http", "http"])
def test_optional_server_accepts_without_client_cert(servers, probe_pki, kind, version, http):
    facts = probe(probe_pki, servers(kind, "optional", version), http=http)
    assert (facts["outcome"], facts["handshake"], facts["alert"], facts["error"]) == ("accepted", "ok", None, None)
    assert facts["protocol"] == PROTOCOLS[version]
    assert facts["cipher"]
    assert facts["client_cert_requested"] is True
    assert facts["client_ca_names"] == ca_names_advertised(kind, probe_pki)
    assert facts["server_cert_verified"] is True and facts["verify_error"] is None
    assert facts["server_cert"]["subject_string"] == "CN=" + ps.SERVER_NAME
    assert facts["server_cert"]["subject_alt_names"] == ["DNS:" + ps.SERVER_NAME, "IP:127.0.0.1"]
    assert facts["server_cert"]["issuer_string"] == probe_pki.ca.subject.rfc4514_string()
    if http is None:
        assert facts["status"] is None and facts["body"] is None
    else:
        assert facts["status"] == 200
        if kind == "python":
            assert facts["body"] == "hello anonymous\n"


@pytest.mark.parametrize("kind", SERVER_KINDS)
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("mode", ["required", "optional"])
@pytest.mark.parametrize("http", [None, {}], ids=["no-http", "http"])
def test_good_client_cert_is_accepted(servers, probe_pki, kind, version, mode, http):
    facts = probe(probe_pki, servers(kind, mode, version), client="client", http=http)
    assert (facts["outcome"], facts["handshake"], facts["alert"]) == ("accepted", "ok", None)
    assert facts["protocol"] == PROTOCOLS[version]
    assert facts["client_cert_requested"] is True
    if http is not None:
        assert facts["status"] == 200
        if kind == "python":
            assert facts["body"] == "hello client.probe.test\n"
        else:
            assert "s_server" in facts["body"]


def test_server_that_asks_nothing(servers, probe_pki):
    facts = probe(probe_pki, servers("python", "none", "1.3"), client="client", http={})
    assert facts["outcome"] == "accepted"
    assert facts["client_cert_requested"] is False
    assert facts["client_ca_names"] == []
    assert facts["body"] == "hello anonymous\n"


def test_encrypted_client_key_with_its_passphrase(servers, probe_pki):
    facts = probe(probe_pki, servers("python", "required", "1.3"), client="encrypted_client",
                  client_key_passphrase="probe-secret", http={})
    assert facts["outcome"] == "accepted"
    assert facts["body"] == "hello encrypted.probe.test\n"


# --- rejected ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", SERVER_KINDS)
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("http", [None, {}], ids=["no-http", "http"])
def test_required_server_rejects_missing_client_cert(servers, probe_pki, kind, version, http):
    facts = probe(probe_pki, servers(kind, "required", version), http=http)
    assert facts["outcome"] == "rejected_no_client_cert"
    assert facts["handshake"] == "failed"
    assert facts["alert"] == NO_CERT_ALERTS[version]
    assert facts["protocol"] == PROTOCOLS[version]
    assert facts["client_cert_requested"] is True
    assert facts["client_ca_names"] == ca_names_advertised(kind, probe_pki)
    assert facts["server_cert"]["common_name"] == ps.SERVER_NAME
    assert facts["server_cert_verified"] is True
    assert facts["status"] is None


@pytest.mark.parametrize("kind", SERVER_KINDS)
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("client", sorted(UNTRUSTED_CLIENTS))
@pytest.mark.parametrize("http", [None, {}], ids=["no-http", "http"])
def test_required_server_rejects_untrusted_client_certs(servers, probe_pki, kind, version, client, http):
    facts = probe(probe_pki, servers(kind, "required", version), client=client, http=http)
    assert facts["outcome"] == "rejected_untrusted_client_cert"
    assert facts["handshake"] == "failed"
    assert facts["alert"] == UNTRUSTED_CLIENTS[client]
    assert facts["protocol"] == PROTOCOLS[version]
    assert facts["server_cert_verified"] is True
    assert facts["status"] is None and facts["body"] is None


@pytest.mark.parametrize("kind", SERVER_KINDS)
@pytest.mark.parametrize("version", VERSIONS)
def test_revoked_client_cert(servers, probe_pki, kind, version):
    port = servers(kind, "revocation", version)
    facts = probe(probe_pki, port, client="revoked_client", http={})
    assert (facts["outcome"], facts["handshake"]) == ("rejected_untrusted_client_cert", "failed")
    assert facts["alert"] == "sslv3 alert certificate revoked"
    good = probe(probe_pki, port, client="client", http={})
    assert (good["outcome"], good["status"]) == ("accepted", 200)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("client", sorted(UNTRUSTED_CLIENTS))
def test_optional_server_still_rejects_a_bad_client_cert(servers, probe_pki, version, client):
    facts = probe(probe_pki, servers("python", "optional", version), client=client, http={})
    assert facts["outcome"] == "rejected_untrusted_client_cert"
    assert facts["alert"] == UNTRUSTED_CLIENTS[client]


# --- the server's certificate ------------------------------------------------------


@pytest.mark.parametrize("kind", SERVER_KINDS)
@pytest.mark.parametrize("version", VERSIONS)
def test_server_cert_from_another_ca(servers, probe_pki, kind, version):
    facts = probe(probe_pki, servers(kind, "required", version), client="client", bundle="other", http={})
    assert facts["outcome"] == "server_cert_untrusted"
    assert facts["handshake"] == "failed"
    assert facts["server_cert_verified"] is False
    assert facts["verify_error"] in ("unable to get local issuer certificate", "self-signed certificate in "
                                     "certificate chain", "self signed certificate in certificate chain")
    assert facts["alert"] is None and facts["status"] is None
    # Seen all the same (through the second handshake where the first stopped short).
    assert facts["server_cert"]["subject_string"] == "CN=" + ps.SERVER_NAME
    assert facts["server_cert"]["fingerprint_sha256"]
    assert facts["protocol"] == PROTOCOLS[version]
    assert facts["client_cert_requested"] is True
    assert facts["client_ca_names"] == ca_names_advertised(kind, probe_pki)
    message = _probe_expect.failure_message(facts, {})
    assert message.startswith("127.0.0.1:%d: the server's certificate did not verify: " % facts["port"])
    assert message.endswith("; it was sent no client certificate and no request")


@pytest.mark.parametrize("version", VERSIONS)
def test_server_name_must_match(servers, probe_pki, version):
    port = servers("python", "optional", version)
    facts = probe(probe_pki, port, server_name="elsewhere.probe.test")
    assert facts["outcome"] == "server_cert_untrusted"
    assert "mismatch" in facts["verify_error"].lower()
    assert facts["server_cert"]["common_name"] == ps.SERVER_NAME
    by_ip = probe(probe_pki, port, server_name="127.0.0.1", http={})
    assert (by_ip["outcome"], by_ip["server_cert_verified"], by_ip["status"]) == ("accepted", True, 200)
    assert by_ip["server_name"] == "127.0.0.1"


# --- nothing for a server that did not verify ---------------------------------------------

# Per server certificate the probe must not trust: the alert it sends the server (as OpenSSL maps the
# verify error), the verify error, and the common name of the certificate (which the probe still reports).
UNTRUSTED_SERVERS = {
    "expired_server": (45, "certificate has expired", ps.SERVER_NAME),  # certificate_expired
    "self_signed_server": (48, "self-signed certificate", ps.SERVER_NAME),  # unknown_ca
    "wrong_name_server": (42, "Hostname mismatch", "elsewhere.probe.test"),  # bad_certificate
}


@pytest.mark.parametrize("version", VERSIONS)
def test_the_recording_server_sees_what_a_client_sends(recording_server, probe_pki, version):
    """The control for the tests below: a verified server gets the certificate and the request, and sees them."""
    server = recording_server("server", version)
    facts = probe(probe_pki, server.port, client="client", http={"headers": {"X-Seen": "yes"}})
    server.stop()
    assert (facts["outcome"], facts["server_cert_verified"], facts["status"]) == ("accepted", True, 200)
    assert server.certificates_presented == 1
    assert server.received.startswith(b"GET / HTTP/1.1\r\n") and b"\r\nX-Seen: yes\r\n" in server.received


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("cert", sorted(UNTRUSTED_SERVERS))
def test_an_untrusted_server_gets_no_client_cert_and_no_request(recording_server, probe_pki, version, cert):
    server = recording_server(cert, version)
    facts = probe(probe_pki, server.port, client="client", http={"headers": {"X-Seen": "yes"}})
    server.stop()
    alert, reason, common_name = UNTRUSTED_SERVERS[cert]
    assert (facts["outcome"], facts["handshake"], facts["server_cert_verified"]) == ("server_cert_untrusted",
                                                                                     "failed", False)
    assert reason in facts["verify_error"]
    assert facts["status"] is None and facts["body"] is None
    # The probe ended the first handshake with the alert, at the server's certificate; the second handshake,
    # which shows what was served, answered the server's request for a certificate with an empty one.
    assert server.alerts == [alert]
    assert server.connections == 2
    assert server.client_certificates == [0] and server.certificates_presented == 0
    assert server.received == b""
    assert facts["server_cert"]["common_name"] == common_name
    assert facts["client_cert_requested"] is True
    assert "did not verify" in _probe_expect.failure_message(facts, {})


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("verify_mode", [ssl.CERT_OPTIONAL, ssl.CERT_REQUIRED], ids=["optional", "required"])
def test_without_verifying_no_client_cert_and_no_request(recording_server, probe_pki, version, verify_mode):
    server = recording_server("self_signed_server", version, verify_mode)
    facts = probe(probe_pki, server.port, bundle=None)
    server.stop()
    expected = "accepted" if verify_mode == ssl.CERT_OPTIONAL else "rejected_no_client_cert"
    assert facts["outcome"] == expected
    assert facts["server_cert_verified"] is None and facts["verify_error"] is None
    assert facts["server_cert"]["subject_string"] == "CN=" + ps.SERVER_NAME
    assert facts["server_cert"]["issuer_string"] == "CN=" + ps.SERVER_NAME
    assert facts["client_cert_requested"] is True
    assert facts["status"] is None
    # One connection, answering the server's request for a certificate with an empty one, and nothing after it.
    assert server.connections == 1
    assert server.client_certificates == [0]
    assert server.received == b""
    assert _probe_expect.failure_message(facts, {}) is None


def test_verifying_is_the_default_and_excludes_sending_without_it(probe_pki):
    with pytest.raises(PkiError, match="^tls_probe verifies the server: give ca_bundle_path, or verify_server: false "
                                       "to probe without verifying$"):
        _probe.ProbeOptions.load("h")
    with pytest.raises(PkiError, match="ca_bundle_path and verify_server: false exclude each other"):
        _probe.ProbeOptions.load("h", ca_bundle_path=probe_pki.ca_path, verify_server=False)
    with pytest.raises(PkiError, match="^client_cert_path needs a verified server"):
        _probe.ProbeOptions.load("h", client_cert_path=probe_pki.client[0], client_key_path=probe_pki.client[1],
                                 verify_server=False)
    with pytest.raises(PkiError, match="^http_path needs a verified server"):
        _probe.ProbeOptions.load("h", http={}, verify_server=False)
    assert _probe.ProbeOptions.load("h", verify_server=False).verify_server is False
    assert _probe.ProbeOptions.load("h", ca_bundle_path=probe_pki.ca_path).verify_server is True


def test_an_untrusted_server_fails_unless_expected():
    facts = dict(host="web1", port=443, outcome="server_cert_untrusted", handshake="failed",
                 server_cert_verified=False, verify_error="certificate has expired",
                 error="the server's certificate did not verify: certificate has expired")
    assert _probe_expect.failure_message(facts, {}) == ("web1:443: the server's certificate did not verify: certificate has "
                                                        "expired; it was sent no client certificate and no request")
    # Expecting only a failed handshake does not make an untrusted server pass.
    assert _probe_expect.failure_message(facts, {"handshake": "failed"})
    unmet = _probe_expect.failure_message(facts, {"status": 200})
    assert unmet.endswith("no client certificate and no request; status is None, expected 200")
    assert _probe_expect.failure_message(facts, {"outcome": "server_cert_untrusted"}) is None
    assert _probe_expect.failure_message(facts, {"outcome": ["accepted", "server_cert_untrusted"]}) is None
    assert _probe_expect.failure_message(facts, {"server_cert_verified": "false"}) is None
    assert _probe_expect.failure_message(facts, {"server_cert_verified": True}).endswith(
        "; server_cert_verified is False, expected True")


# --- connection and protocol failures ------------------------------------------------


def test_refused_connection():
    options = _probe.ProbeOptions.load(ps.LOOPBACK, ps.unused_port(), timeout=2, verify_server=False)
    facts = _probe.probe(options)
    assert (facts["outcome"], facts["handshake"]) == ("connection_failed", "failed")
    assert "refused" in facts["error"].lower()
    message = _probe_expect.failure_message(facts, {})
    assert message and "refused" in message.lower()
    assert _probe_expect.failure_message(facts, {"outcome": "connection_failed"}) is None
    # Expecting only a failed handshake does not make a dead server pass.
    assert _probe_expect.failure_message(facts, {"handshake": "failed"})


def test_the_connection_sets_tcp_nodelay(recording_server):
    server = recording_server("server", "1.3")
    sock = _probe.connect(_probe.ProbeOptions.load(ps.LOOPBACK, server.port, verify_server=False))
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        sock.close()


def test_no_common_version(servers, probe_pki):
    facts = probe(probe_pki, servers("python", "optional", "1.3"), max_tls_version="1.2")
    assert facts["outcome"] == "protocol_error"
    assert facts["alert"] == "tlsv1 alert protocol version"
    assert facts["handshake"] == "failed"


def test_not_tls_at_all():
    server = ps.RawServer(b"SSH-2.0-OpenSSH_9.2\r\n")
    try:
        facts = _probe.probe(_probe.ProbeOptions.load(ps.LOOPBACK, server.port, timeout=3, verify_server=False))
    finally:
        server.stop()
    assert (facts["outcome"], facts["handshake"], facts["alert"]) == ("protocol_error", "failed", None)
    assert facts["error"]


def test_server_closing_during_the_handshake():
    server = ps.RawServer()
    try:
        facts = _probe.probe(_probe.ProbeOptions.load(ps.LOOPBACK, server.port, timeout=3, verify_server=False))
    finally:
        server.stop()
    assert (facts["outcome"], facts["handshake"]) == ("protocol_error", "failed")
    assert "without a TLS alert" in facts["error"]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("http", [None, {}], ids=["no-http", "http"])
def test_server_closing_after_the_handshake(probe_pki, version, http):
    server = ps.ClosingTLSServer(probe_pki, version)
    try:
        facts = probe(probe_pki, server.port, http=http)
    finally:
        server.stop()
    assert (facts["outcome"], facts["handshake"], facts["alert"]) == ("protocol_error", "ok", None)
    assert "closed the connection" in facts["error"]
    assert facts["server_cert_verified"] is True


# --- HTTP -------------------------------------------------------------------------------


def test_http_response_details(probe_pki):
    body = b"0123456789" * 100 + b"\xff tail"
    server = ps.PythonTLSServer(probe_pki, ssl.CERT_OPTIONAL, "1.3", body=body,
                                extra_headers=["X-Probe: one", "X-Probe: two", "Set-Cookie: a=b"])
    try:
        full = probe(probe_pki, server.port, http={"path": "/healthz", "headers": {"X-Trace": "1"}})
        short = probe(probe_pki, server.port, http={}, body_bytes=15)
        head = probe(probe_pki, server.port, http={"method": "head"})
    finally:
        server.stop()
    assert (full["status"], full["reason"]) == (200, "OK")
    assert full["headers"]["x-probe"] == "one, two"
    assert full["headers"]["content-length"] == str(len(body))
    assert full["body"].endswith("\ufffd tail")
    assert short["body"] == "012345678901234"
    assert head["status"] == 200 and head["body"] == ""


def test_http_request_text(probe_pki):
    bundle = probe_pki.ca_path
    options = _probe.ProbeOptions.load("10.0.0.1", 8443, server_name="api.lab.internal", ca_bundle_path=bundle,
                                       http={"method": "post", "path": "/x?y=1", "headers": {"user-agent": "me"}})
    request = options.http["request"].decode()
    assert request.startswith("POST /x?y=1 HTTP/1.1\r\nHost: api.lab.internal:8443\r\n")
    assert "user-agent: me\r\n" in request and "fleet.mtls" not in request
    assert request.endswith("\r\n\r\n")
    assert b"Host: [::1]\r\n" in _probe.ProbeOptions.load("::1", 443, ca_bundle_path=bundle, http={}).http["request"]
    with pytest.raises(PkiError, match="line break"):
        _probe.ProbeOptions.load("h", 443, ca_bundle_path=bundle, http={"headers": {"X": "a\r\nInjected: 1"}})
    with pytest.raises(PkiError, match="spaces"):
        _probe.ProbeOptions.load("h", 443, ca_bundle_path=bundle, http={"path": "/a b"})


# --- options and files ---------------------------------------------------------------


def test_bad_inputs_are_errors_before_any_connection(probe_pki, tmp_path):
    bundle = probe_pki.ca_path
    with pytest.raises(PkiError, match="does not exist"):
        _probe.ProbeOptions.load("h", ca_bundle_path=bundle, client_cert_path=str(tmp_path / "missing.crt"))
    with pytest.raises(PkiError, match="could not be decrypted"):
        _probe.ProbeOptions.load("h", ca_bundle_path=bundle, client_cert_path=probe_pki.encrypted_client[0],
                                 client_key_path=probe_pki.encrypted_client[1], client_key_passphrase="wrong")
    with pytest.raises(PkiError, match="do not match"):
        _probe.ProbeOptions.load("h", ca_bundle_path=bundle, client_cert_path=probe_pki.client[0],
                                 client_key_path=probe_pki.other_client[1])
    with pytest.raises(PkiError, match="no private key"):
        _probe.ProbeOptions.load("h", ca_bundle_path=bundle, client_cert_path=probe_pki.client[0])
    with pytest.raises(PkiError, match="holds no PEM certificate"):
        _probe.ProbeOptions.load("h", ca_bundle_path=probe_pki.client[1])
    with pytest.raises(PkiError, match="does not exist"):
        _probe.ProbeOptions.load("h", ca_bundle_path=str(tmp_path / "missing.pem"))
    with pytest.raises(PkiError, match="above"):
        _probe.ProbeOptions.load("h", verify_server=False, min_tls_version="1.3", max_tls_version="1.2")
    with pytest.raises(PkiError, match="out of range"):
        _probe.ProbeOptions.load("h", verify_server=False, port=70000)


def test_key_in_the_certificate_file(servers, probe_pki, tmp_path):
    combined = tmp_path / "combined.pem"
    with open(probe_pki.client[0], "rb") as cert, open(probe_pki.client[1], "rb") as key:
        combined.write_bytes(cert.read() + key.read())
    options = _probe.ProbeOptions.load(ps.LOOPBACK, servers("python", "required", "1.2"), server_name=ps.SERVER_NAME,
                                       ca_bundle_path=probe_pki.ca_path, client_cert_path=str(combined), http={})
    assert _probe.probe(options)["body"] == "hello client.probe.test\n"


def test_without_the_handshake_hook(servers, probe_pki, monkeypatch):
    monkeypatch.setattr(_probe, "HAS_MSG_CALLBACK", False)
    tls13 = probe(probe_pki, servers("python", "required", "1.3"))
    assert (tls13["outcome"], tls13["alert"]) == ("rejected_no_client_cert", "tlsv13 alert certificate required")
    assert tls13["client_cert_requested"] is None and tls13["client_ca_names"] is None
    untrusted = probe(probe_pki, servers("python", "required", "1.2"), client="other_client")
    assert untrusted["outcome"] == "rejected_untrusted_client_cert"
    # TLS 1.2's handshake_failure cannot be pinned on the missing certificate without seeing the request.
    tls12 = probe(probe_pki, servers("python", "required", "1.2"))
    assert (tls12["outcome"], tls12["alert"]) == ("protocol_error", "sslv3 alert handshake failure")
    assert tls12["protocol"] is None and tls12["server_cert"] is None


# --- expectations -------------------------------------------------------------------


def test_expectations_met_and_unmet(servers, probe_pki):
    facts = probe(probe_pki, servers("python", "required", "1.3"), client="client", http={})
    assert _probe_expect.failure_message(facts, {
        "handshake": "ok", "outcome": "accepted", "status": 200, "server_cert_verified": True,
        "protocol": "TLSv1.3", "body_contains": "hello", "client_cert_requested": "yes", "client_ca_names": [],
    }) is None
    assert facts["unmet_expectations"] == []
    assert _probe_expect.failure_message(facts, {"outcome": ["rejected_no_client_cert", "accepted"], "status": "200"}) is None

    refused = probe(probe_pki, servers("python", "required", "1.3"), http={})
    assert _probe_expect.failure_message(refused, {"handshake": "failed", "outcome": "rejected_no_client_cert"}) is None
    assert _probe_expect.failure_message(refused, {}) is None  # no expectation: a refusal is only a fact
    message = _probe_expect.failure_message(refused, {"outcome": "accepted", "status": 200, "body_contains": ["hello"]})
    assert message.startswith("127.0.0.1:%d: expectation not met: " % refused["port"])
    assert refused["unmet_expectations"] == [
        "body does not contain ['hello']",
        "outcome is 'rejected_no_client_cert', expected 'accepted'",
        "status is None, expected 200",
    ]


def test_expect_is_checked_for_typos():
    with pytest.raises(PkiError, match="unknown key 'outcomes'"):
        _probe_expect.check_expect({"outcomes": "accepted"})
    with pytest.raises(PkiError, match="'acepted' is not one of"):
        _probe_expect.check_expect({"outcome": "acepted"})
    with pytest.raises(PkiError, match="true or false"):
        _probe_expect.check_expect({"server_cert_verified": "maybe"})
    with pytest.raises(PkiError, match="not an HTTP status"):
        _probe_expect.check_expect({"status": "ok"})
    _probe_expect.check_expect({"handshake": ["ok", "failed"], "status": [200, "204"], "server_cert_verified": "true"})


# --- parsing what the server sends ---------------------------------------------------


def _der_length(length):
    if length < 0x80:
        return bytes([length])
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def _der(tag, content):
    return bytes([tag]) + _der_length(len(content)) + content


def _der_oid(dotted):
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray([arcs[0] * 40 + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.insert(0, 0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(chunk)
    return _der(0x06, bytes(out))


def _der_name(*rdns):
    """rdns: lists of (oid, tag, value bytes)."""
    encoded = []
    for rdn in rdns:
        attributes = b"".join(_der(0x30, _der_oid(oid) + _der(tag, value)) for oid, tag, value in rdn)
        encoded.append(_der(0x31, attributes))
    return _der(0x30, b"".join(encoded))


@pytest.mark.parametrize("name", [
    x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fleet Root CA")]),
    x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ex, Inc."),
               x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "#ops+sec"),
               x509.NameAttribute(NameOID.COMMON_NAME, " padded ")]),
    x509.Name([x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, "a"),
                                               x509.NameAttribute(NameOID.ORGANIZATION_NAME, "b")])]),
    x509.Name([x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "internal"), x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "lab"),
               x509.NameAttribute(NameOID.EMAIL_ADDRESS, "pki@lab.internal"),
               x509.NameAttribute(NameOID.COMMON_NAME, "Zertifizierungsstelle \u00fc\u00df \u2713")]),
], ids=["cn", "escaping", "multi-valued", "dc-email-unicode"])
def test_der_names_read_as_cryptography_writes_them(name):
    der = name.public_bytes()
    assert der_names.der_name_to_string(der) == name.rfc4514_string()
    assert der_names.format_rfc4514(der_names.parse_der_name(der)) == name.rfc4514_string()


def test_der_names_cryptography_refuses_to_build():
    long_cn = "x" * 80  # longer than the ub-common-name of 64
    der = _der_name([("2.5.4.6", 0x13, b"DEU")], [("2.5.4.3", 0x0C, long_cn.encode())])
    assert der_names.der_name_to_string(der) == "CN=%s,C=DEU" % long_cn
    bmp = _der_name([("2.5.4.3", 0x1E, "B\u00e4r".encode("utf-16-be"))], [("1.2.3.4", 0x02, b"\x05")])
    assert der_names.der_name_to_string(bmp) == "1.2.3.4=#020105,CN=B\u00e4r"
    assert der_names.der_name_to_string(b"\x30\x05\x31\x03") == "#3005" + "3103"


def test_decode_oid():
    assert der_names.decode_oid(bytes.fromhex("550403")) == "2.5.4.3"
    assert der_names.decode_oid(bytes.fromhex("0992268993F22C640119")) == "0.9.2342.19200300.100.1.25"
    assert der_names.decode_oid(bytes.fromhex("883703")) == "2.999.3"
    with pytest.raises(ValueError):
        der_names.decode_oid(b"\x88")


def test_certificate_request_bodies():
    ca = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CA One")]).public_bytes()
    dns = len(ca).to_bytes(2, "big") + ca
    authorities = len(dns).to_bytes(2, "big") + dns
    tls12 = b"\x02\x01\x40" + b"\x00\x02\x04\x03" + authorities
    assert _tls_wire.parse_certificate_request(tls12, 0x0303) == [ca]
    assert _tls_wire.parse_certificate_request(b"\x01\x01" + authorities, 0x0301) == [ca]
    assert _tls_wire.parse_certificate_request(b"\x01\x40\x00\x02\x04\x03\x00\x00", 0x0303) == []
    sigalgs_ext = b"\x00\x0d\x00\x04\x00\x02\x04\x03"
    ca_ext = b"\x00\x2f" + len(authorities).to_bytes(2, "big") + authorities
    extensions = sigalgs_ext + ca_ext
    tls13 = b"\x00" + len(extensions).to_bytes(2, "big") + extensions
    assert _tls_wire.parse_certificate_request(tls13, 0x0304) == [ca]
    no_cas = b"\x00" + len(sigalgs_ext).to_bytes(2, "big") + sigalgs_ext
    assert _tls_wire.parse_certificate_request(no_cas, 0x0304) == []
    with pytest.raises(ValueError):
        _tls_wire.parse_certificate_request(tls13[:-3], 0x0304)


def test_server_hello_versions():
    hello12 = b"\x03\x03" + b"\x11" * 32 + b"\x00" + b"\xc0\x2b" + b"\x00"
    assert _tls_wire.parse_server_hello(hello12) == (0x0303, 0xC02B)
    supported = b"\x00\x2b\x00\x02\x03\x04"
    hello13 = b"\x03\x03" + b"\x22" * 32 + b"\x20" + b"\x33" * 32 + b"\x13\x02" + b"\x00" + b"\x00\x06" + supported
    assert _tls_wire.parse_server_hello(hello13) == (0x0304, 0x1302)


def test_alert_classification():
    assert _probe.classify_alert(116, True, True) == "rejected_no_client_cert"
    assert _probe.classify_alert(48, True, True) == "rejected_untrusted_client_cert"
    assert _probe.classify_alert(42, False, True) == "rejected_no_client_cert"
    assert _probe.classify_alert(40, False, True) == "rejected_no_client_cert"
    assert _probe.classify_alert(40, True, True) == "protocol_error"
    assert _probe.classify_alert(40, False, None) == "protocol_error"
    assert _probe.classify_alert(70, False, False) == "protocol_error"
