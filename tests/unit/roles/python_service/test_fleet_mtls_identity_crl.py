# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleet_mtls_identity's revocation check: real TLS handshakes against a tiny CA (root -> issuing -> leaves).

The handshakes run in memory (ssl.MemoryBIO) or over loopback TCP; the last
tests start real gunicorn processes (20.1 and/or 23) with the role's
configuration template when gunicorn is available: set
FLEET_MTLS_TEST_GUNICORN to gunicorn executables separated by ``os.pathsep``
(for example ``/tmp/gunicorn20/bin/gunicorn:/tmp/gunicorn23/bin/gunicorn``),
or run the tests with gunicorn importable. Otherwise they are skipped.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import types

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROLE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "roles", "python_service")
FILES = os.path.abspath(os.path.join(ROLE, "files"))
sys.path.insert(0, FILES)
import fleet_mtls_identity  # noqa: E402

NOW = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
DAY = datetime.timedelta(days=1)


# --- a tiny CA ---------------------------------------------------------------

def _pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class Authority:
    """A CA: its key and certificate; issues certificates and CRLs."""

    def __init__(self, name, parent=None):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        issuer = parent or self
        builder = self._builder(self.name, self.key.public_key(), issuer, NOW - DAY, NOW + 30 * DAY)
        builder = (builder.add_extension(x509.BasicConstraints(ca=True, path_length=None if parent is None else 0),
                                         critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                                key_encipherment=False, data_encipherment=False, key_agreement=False,
                                                key_cert_sign=True, crl_sign=True, encipher_only=False,
                                                decipher_only=False), critical=True))
        self.cert = builder.sign(issuer.key if parent else self.key, hashes.SHA256())

    def _builder(self, subject, public_key, issuer, not_before, not_after):
        issuer_key = issuer.key.public_key()
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer.name).public_key(public_key)
                .serial_number(x509.random_serial_number()).not_valid_before(not_before)
                .not_valid_after(not_after)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key), critical=False))

    def issue(self, common_name, usage):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        sans = [x509.DNSName(common_name)] + ([x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]
                                              if usage == ExtendedKeyUsageOID.SERVER_AUTH else [])
        cert = (self._builder(name, key.public_key(), self, NOW - DAY, NOW + 10 * DAY)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                             crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                .sign(self.key, hashes.SHA256()))
        return cert, key

    def crl(self, revoked=(), number=1, last_update=None, next_update=None):
        last_update = last_update or NOW - datetime.timedelta(hours=1)
        next_update = next_update or NOW + 7 * DAY
        builder = (x509.CertificateRevocationListBuilder().issuer_name(self.name)
                   .last_update(last_update).next_update(next_update)
                   .add_extension(x509.CRLNumber(number), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                                  critical=False))
        for cert in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(cert.serial_number).revocation_date(last_update)
                .build())
        return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


class Pki:
    """Root -> issuing -> server, client "good", client "revoked"; and an outside CA with a client of its own."""

    def __init__(self, directory):
        self.dir = directory
        self.root = Authority("Test Root CA")
        self.issuing = Authority("Test Issuing CA", parent=self.root)
        self.outside = Authority("Outside Root CA")
        self.paths = {}
        server, server_key = self.issuing.issue("localhost", ExtendedKeyUsageOID.SERVER_AUTH)
        self.write("server.combined.pem", _pem(server) + _pem(self.issuing.cert) + _key_pem(server_key))
        self.clients = {}
        for name in ("good", "revoked"):
            cert, key = self.issuing.issue(name, ExtendedKeyUsageOID.CLIENT_AUTH)
            self.clients[name] = cert
            self.write("%s.pem" % name, _pem(cert) + _pem(self.issuing.cert) + _key_pem(key))
        cert, key = self.outside.issue("outsider", ExtendedKeyUsageOID.CLIENT_AUTH)
        self.write("outsider.pem", _pem(cert) + _key_pem(key))
        self.write("outside-ca.pem", _pem(self.outside.cert))
        self.write("ca-bundle.pem", _pem(self.root.cert))
        self.write("ca-bundle-with-issuing.pem", _pem(self.root.cert) + _pem(self.issuing.cert))
        self.write("crls.pem", self.crls())

    def crls(self, revoked=None, issuing=True, lapsed=False):
        """The CRL file the certificate role writes: the root's CRL and the issuing CA's (revoking "revoked")."""
        revoked = [self.clients["revoked"]] if revoked is None else revoked
        pem = self.root.crl()
        if issuing:
            if lapsed:
                pem += self.issuing.crl(revoked, number=2, last_update=NOW - 3 * DAY, next_update=NOW - DAY)
            else:
                pem += self.issuing.crl(revoked, number=3)
        return pem

    def write(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path + ".tmp", "wb") as handle:
            handle.write(data)
        os.rename(path + ".tmp", path)  # as the certificate role replaces files: atomically
        self.paths[name] = path
        return path

    def path(self, name):
        return self.paths[name]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(str(tmp_path_factory.mktemp("pki")))


# --- handshakes ----------------------------------------------------------------

def _server_context(pki, crl="crls.pem", bundle="ca-bundle.pem", cert_reqs=ssl.CERT_REQUIRED):
    """The context a connection gets from the role's configuration (gunicorn 23's factory + the hook, or the shim)."""
    context = fleet_mtls_identity.server_context(pki.path("server.combined.pem"), None, pki.path(bundle), cert_reqs)
    if crl is not None:
        fleet_mtls_identity.check_revocation(context, pki.path(crl))
    return context


def _client_context(pki, client, maximum=None):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    if maximum is not None:
        context.maximum_version = maximum
    if client is not None:
        context.load_cert_chain(pki.path("%s.pem" % client))
    return context


def _handshake(server_context, client_context):
    """Handshake in memory; the server's exception (None when it accepted the client)."""
    server_in, server_out, client_in, client_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    server = server_context.wrap_bio(server_in, server_out, server_side=True)
    client = client_context.wrap_bio(client_in, client_out)
    done = {"server": False, "client": False}
    for _round in range(20):
        for name, side in (("client", client), ("server", server)):
            if done[name]:
                continue
            try:
                side.do_handshake()
                done[name] = True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                if name == "server":
                    return exc
                done[name] = True  # the client reads the server's alert: the server's reason is what counts
        server_in.write(client_out.read())
        client_in.write(server_out.read())
        if all(done.values()):
            # TLS 1.3: the server has judged the client's certificate once its handshake is done.
            return None
    raise AssertionError("handshake did not finish")


@pytest.fixture(params=["ca-bundle.pem", "ca-bundle-with-issuing.pem"])
def bundle(request):
    """The trust bundle with the root alone, or with the issuing CA as well."""
    return request.param


@pytest.mark.parametrize("maximum", [None, ssl.TLSVersion.TLSv1_2], ids=["tls1.3", "tls1.2"])
def test_a_good_client_is_accepted(pki, bundle, maximum):
    assert _handshake(_server_context(pki, bundle=bundle), _client_context(pki, "good", maximum)) is None


@pytest.mark.parametrize("maximum", [None, ssl.TLSVersion.TLSv1_2], ids=["tls1.3", "tls1.2"])
def test_a_revoked_client_is_refused(pki, bundle, maximum):
    exc = _handshake(_server_context(pki, bundle=bundle), _client_context(pki, "revoked", maximum))
    assert isinstance(exc, ssl.SSLCertVerificationError)
    assert exc.verify_message == "certificate revoked"


def test_a_partial_chain_context_is_still_checked_up_to_the_root(pki):
    # Python 3.13's create_default_context() (gunicorn 23's factory on Debian 13) sets VERIFY_X509_PARTIAL_CHAIN:
    # with the issuing CA in the bundle the chain would end there, and no CRL could clear the issuing CA.
    for client, expected in (("good", None), ("revoked", "certificate revoked")):
        context = fleet_mtls_identity.server_context(pki.path("server.combined.pem"), None,
                                                     pki.path("ca-bundle-with-issuing.pem"), ssl.CERT_REQUIRED)
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        fleet_mtls_identity.check_revocation(context, pki.path("crls.pem"))
        assert not context.verify_flags & ssl.VERIFY_X509_PARTIAL_CHAIN
        exc = _handshake(context, _client_context(pki, client))
        assert (exc and exc.verify_message) == expected


def test_without_the_check_a_revoked_client_would_be_served(pki):
    # What the check changes: the same context without check_revocation() accepts it.
    assert _handshake(_server_context(pki, crl=None), _client_context(pki, "revoked")) is None


def test_the_handshake_failure_of_a_revoked_certificate_is_logged_as_such(pki):
    exc = _handshake(_server_context(pki), _client_context(pki, "revoked"))
    identity = fleet_mtls_identity.handshake_failure_identity(exc)
    assert identity == {"verify": "FAILED:certificate revoked", "subject": "", "common_name": "", "spiffe_id": "",
                        "serial": ""}


def test_a_ca_of_the_chain_without_a_crl_refuses_the_chain(pki, bundle):
    # Only the root's CRL: the issuing CA of the client's chain has none (VERIFY_CRL_CHECK_CHAIN).
    pki.write("root-crl-only.pem", pki.crls(issuing=False))
    exc = _handshake(_server_context(pki, crl="root-crl-only.pem", bundle=bundle), _client_context(pki, "good"))
    assert isinstance(exc, ssl.SSLCertVerificationError)
    assert exc.verify_message == "unable to get certificate CRL"
    assert fleet_mtls_identity.handshake_failure_identity(exc)["verify"] == "FAILED:unable to get certificate CRL"


def test_the_roots_crl_is_needed_too(pki):
    # The whole chain, not the leaf only: with the issuing CA's CRL alone, the root has none for the issuing CA.
    pki.write("issuing-crl-only.pem", pki.issuing.crl([pki.clients["revoked"]]))
    exc = _handshake(_server_context(pki, crl="issuing-crl-only.pem"), _client_context(pki, "good"))
    assert isinstance(exc, ssl.SSLCertVerificationError)
    assert exc.verify_message == "unable to get certificate CRL"


def test_a_lapsed_crl_refuses_every_client(pki):
    pki.write("lapsed.pem", pki.crls(lapsed=True))
    exc = _handshake(_server_context(pki, crl="lapsed.pem"), _client_context(pki, "good"))
    assert isinstance(exc, ssl.SSLCertVerificationError)
    assert exc.verify_message == "CRL has expired"
    assert fleet_mtls_identity.handshake_failure_identity(exc)["verify"] == "FAILED:CRL has expired"


def test_permissive_serves_a_client_without_a_certificate_but_not_a_revoked_one(pki):
    assert _handshake(_server_context(pki, cert_reqs=ssl.CERT_OPTIONAL), _client_context(pki, None)) is None
    exc = _handshake(_server_context(pki, cert_reqs=ssl.CERT_OPTIONAL), _client_context(pki, "revoked"))
    assert exc.verify_message == "certificate revoked"


def test_the_crl_is_read_for_every_new_context(pki):
    # gunicorn builds a context per connection: a CRL file replaced (atomically) holds from the next one.
    pki.write("changing.pem", pki.crls())
    assert _handshake(_server_context(pki, crl="changing.pem"), _client_context(pki, "good")) is None
    pki.write("changing.pem", pki.crls(revoked=[pki.clients["good"]]))
    exc = _handshake(_server_context(pki, crl="changing.pem"), _client_context(pki, "good"))
    assert exc.verify_message == "certificate revoked"


def test_the_context_does_not_trust_the_system_store(pki, monkeypatch):
    # The "system store" is made to hold the outside CA (OpenSSL reads SSL_CERT_FILE / SSL_CERT_DIR when a context
    # loads the default paths): a context that loaded it serves the outsider; the service's context refuses it.
    monkeypatch.setenv("SSL_CERT_FILE", pki.path("outside-ca.pem"))
    monkeypatch.setenv("SSL_CERT_DIR", os.path.dirname(pki.path("outside-ca.pem")))
    trusting_the_system = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trusting_the_system.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    trusting_the_system.load_cert_chain(pki.path("server.combined.pem"))
    trusting_the_system.verify_mode = ssl.CERT_REQUIRED
    assert _handshake(trusting_the_system, _client_context(pki, "outsider")) is None

    for crl in (None, "crls.pem"):
        exc = _handshake(_server_context(pki, crl=crl), _client_context(pki, "outsider"))
        assert isinstance(exc, ssl.SSLCertVerificationError)
        assert exc.verify_message == "unable to get local issuer certificate"
    # And the only CA certificate of the service's context is the bundle's.
    context = _server_context(pki)
    assert [ca["subject"] for ca in context.get_ca_certs()] == [((("commonName", "Test Root CA"),),)]


def test_no_ca_bundle_is_refused_rather_than_trusting_the_system():
    with pytest.raises(ValueError, match="ca_certs"):
        fleet_mtls_identity.server_context("/nonexistent.pem", None, None, ssl.CERT_REQUIRED)


def test_check_revocation_sets_the_chain_check_and_refuses_a_file_without_crl(pki, tmp_path):
    context = _server_context(pki)
    assert context.verify_flags & ssl.VERIFY_CRL_CHECK_CHAIN == ssl.VERIFY_CRL_CHECK_CHAIN
    assert context.cert_store_stats()["crl"] == 2
    assert fleet_mtls_identity.checks_crls(context)
    assert not fleet_mtls_identity.checks_crls(_server_context(pki, crl=None))
    with pytest.raises(ValueError, match="holds no CRL"):
        fleet_mtls_identity.check_revocation(_server_context(pki, crl=None), pki.path("ca-bundle.pem"))
    with pytest.raises(FileNotFoundError):
        fleet_mtls_identity.check_revocation(_server_context(pki, crl=None), str(tmp_path / "missing.pem"))
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"-----BEGIN X509 CRL-----\nnot base64\n-----END X509 CRL-----\n")
    with pytest.raises(ssl.SSLError):
        fleet_mtls_identity.check_revocation(_server_context(pki, crl=None), str(garbage))
    with pytest.raises(ValueError, match="no CRL file configured"):
        fleet_mtls_identity.check_revocation(_server_context(pki, crl=None))


def test_check_revocation_defaults_to_the_configured_file(pki):
    fleet_mtls_identity.configure(crl_path=pki.path("crls.pem"))
    try:
        context = fleet_mtls_identity.server_context(pki.path("server.combined.pem"), None,
                                                     pki.path("ca-bundle.pem"), ssl.CERT_REQUIRED)
        fleet_mtls_identity.check_revocation(context)
        assert _handshake(context, _client_context(pki, "revoked")).verify_message == "certificate revoked"
    finally:
        fleet_mtls_identity.configure()
    assert fleet_mtls_identity._settings["crl_path"] is None


# --- gunicorn 20.1: the wrap_socket shim, over loopback ---------------------------

def _gunicorn20_ssl_options(pki, cert_reqs=ssl.CERT_REQUIRED):
    """cfg.ssl_options of gunicorn 20.1 as the role configures it (after pin_server_certificate)."""
    return {"keyfile": None, "certfile": pki.path("server.combined.pem"), "ssl_version": ssl.PROTOCOL_TLS,
            "cert_reqs": cert_reqs, "ca_certs": pki.path("ca-bundle.pem"), "suppress_ragged_eofs": True,
            "do_handshake_on_connect": False, "ciphers": None}


def _loopback(wrap, client_context):
    """A TCP connection over 127.0.0.1: the server side wrapped by wrap(sock), as gunicorn 20.1's handle() does.

    Returns (server's exception or None, what the client read).
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    answer = {}

    def client():
        try:
            with socket.create_connection(listener.getsockname(), timeout=10) as raw:
                with client_context.wrap_socket(raw) as tls:
                    tls.sendall(b"GET / HTTP/1.0\r\n\r\n")
                    answer["read"] = tls.recv(1024)
        except (ssl.SSLError, OSError) as exc:
            answer["read"] = exc

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    conn, _addr = listener.accept()
    conn.settimeout(10)
    server_exc = None
    try:
        tls = wrap(conn)
        try:
            tls.recv(1024)  # the handshake happens here (do_handshake_on_connect=False), as in gunicorn's parser
            tls.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
        except ssl.SSLError as exc:
            server_exc = exc
        finally:
            tls.close()
    finally:
        conn.close()
        listener.close()
        thread.join(10)
    assert not thread.is_alive()
    return server_exc, answer.get("read")


def test_the_shim_wraps_with_the_crl_check(pki):
    shim = fleet_mtls_identity.WrapSocketShim(ssl, pki.path("crls.pem"))
    options = _gunicorn20_ssl_options(pki)

    exc, read = _loopback(lambda sock: shim.wrap_socket(sock, server_side=True, **options),
                          _client_context(pki, "good"))
    assert exc is None and read.startswith(b"HTTP/1.0 200 OK")

    exc, read = _loopback(lambda sock: shim.wrap_socket(sock, server_side=True, **options),
                          _client_context(pki, "revoked"))
    assert isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message == "certificate revoked"
    assert isinstance(read, (ssl.SSLError, OSError)) or read == b""


def test_the_shim_context_is_the_one_gunicorn_23_builds_plus_the_crl(pki):
    context = fleet_mtls_identity.WrapSocketShim(ssl, pki.path("crls.pem")).context(**_gunicorn20_ssl_options(pki))
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert fleet_mtls_identity.checks_crls(context)
    assert [ca["subject"] for ca in context.get_ca_certs()] == [((("commonName", "Test Root CA"),),)]


def test_the_shim_answers_every_other_name_from_ssl(pki):
    shim = fleet_mtls_identity.WrapSocketShim(ssl, pki.path("crls.pem"))
    assert shim.SSLError is ssl.SSLError and shim.SSL_ERROR_EOF == ssl.SSL_ERROR_EOF
    with pytest.raises(ValueError):
        shim.wrap_socket(socket.socket(), server_side=False)


_GUNICORN20_SYNC = '''
import ssl

class SyncWorker:
    def handle(self, listener, client, addr):
        if self.cfg.is_ssl:
            client = ssl.wrap_socket(client, server_side=True, **self.cfg.ssl_options)
'''


def _module(name, source=""):
    module = types.ModuleType(name)
    exec(compile(source, name, "exec"), module.__dict__)  # noqa: S102 - a fixed test source
    return module


def test_the_shim_is_installed_on_gunicorn_20_only():
    sync20, sock20 = _module("sync20", _GUNICORN20_SYNC), _module("sock20")
    assert fleet_mtls_identity.install_wrap_socket_shim(sync20, sock20, "/x/crls.pem") is True
    assert isinstance(sync20.ssl, fleet_mtls_identity.WrapSocketShim) and sync20.ssl._module is ssl
    # Installed again (a second worker init in one process): replaced, never stacked.
    assert fleet_mtls_identity.install_wrap_socket_shim(sync20, sock20, "/y/crls.pem") is True
    assert sync20.ssl._module is ssl and sync20.ssl._crl_path == "/y/crls.pem"

    sync23, sock23 = _module("sync23", _GUNICORN20_SYNC), _module("sock23", "def ssl_context(conf): pass")
    assert fleet_mtls_identity.install_wrap_socket_shim(sync23, sock23, "/x/crls.pem") is False
    assert sync23.ssl is ssl


def test_a_gunicorn_with_neither_hook_nor_wrap_socket_is_refused():
    other = _module("other", "import ssl\nclass SyncWorker:\n    def handle(self, client):\n        return client\n")
    with pytest.raises(RuntimeError, match="CRLs cannot be checked"):
        fleet_mtls_identity.install_wrap_socket_shim(other, _module("sock"), "/x/crls.pem")
    assert other.ssl is ssl


# --- real gunicorn (20.1 and/or 23), the role's configuration template ------------

def _gunicorns():
    found = [[path] for path in os.environ.get("FLEET_MTLS_TEST_GUNICORN", "").split(os.pathsep) if path]
    if not found and importlib.util.find_spec("gunicorn") is not None:
        found = [[sys.executable, "-m", "gunicorn"]]
    return found


def _render_configuration(pki, tmp_path, port, crl_path):
    jinja2 = pytest.importorskip("jinja2")
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.join(ROLE, "templates")),
                                     trim_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    environment.filters["to_json"] = json.dumps
    environment.filters["unique"] = lambda items: list(dict.fromkeys(items))  # Ansible's: a list, in order
    variables = {
        "ansible_managed": "test", "mtls_python_service_name": "crl-test", "mtls_python_service_mode": "strict",
        "mtls_python_service_lib_dir": FILES, "mtls_python_service_app_dir": FILES,
        "mtls_python_service_app": "fleet_mtls_demo:app",
        "mtls_python_service_worker_class": "fleet_mtls_identity.SyncWorker",
        "mtls_python_service_bind_address": "127.0.0.1", "mtls_python_service_port": port,
        "mtls_python_service_workers": 1, "mtls_python_service_timeout": 30,
        "mtls_python_service_graceful_timeout": 5,
        "mtls_python_service_certificate_path": pki.path("server.combined.pem"),
        "mtls_python_service_key_path": None, "mtls_python_service_ca_bundle_path": pki.path("ca-bundle.pem"),
        "mtls_python_service_crl_path": crl_path, "mtls_python_service_access_log": str(tmp_path / "access.json"),
        "mtls_python_service_site": "crl-test", "mtls_python_service_allowed_spiffe_ids": [],
        "mtls_python_service_allowed_common_names": [],
    }
    path = tmp_path / "gunicorn.conf.py"
    path.write_text(environment.get_template("gunicorn.conf.py.j2").render(variables))
    return path


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _request(pki, port, client):
    """GET / from client over TLS: the HTTP status (int), or the TLS error that refused it (str)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with _client_context(pki, client).wrap_socket(raw) as tls:
                tls.sendall(b"GET /crl HTTP/1.0\r\nHost: localhost\r\n\r\n")
                data = b""
                while True:
                    chunk = tls.recv(4096)
                    if not chunk:
                        break
                    data += chunk
    except (ssl.SSLError, OSError) as exc:
        return "refused: %s" % exc
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else "refused: no answer"


class Gunicorn:
    def __init__(self, command, config, log_path):
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.process = subprocess.Popen(command + ["--config", str(config)], cwd=os.path.dirname(str(config)),
                                        stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, port, timeout=30, booted=1, also=""):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError("gunicorn exited (%s):\n%s" % (self.process.returncode, self.output()))
            if self.output().count("Booting worker") >= booted and also in self.output():
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    time.sleep(0.5)  # the worker's init_process (the CRL self-check) after its boot line
                    return
                except OSError:
                    pass
            time.sleep(0.2)
        raise AssertionError("gunicorn did not start:\n%s" % self.output())

    def output(self):
        with open(self.log_path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()  # the arbiter stops its workers
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)  # the group of the arbiter started here
                self.process.wait(5)
        self.log.close()


@pytest.fixture(params=_gunicorns() or [None], ids=lambda command: " ".join(command) if command else "no-gunicorn")
def gunicorn_command(request):
    if request.param is None:
        pytest.skip("gunicorn is not importable and FLEET_MTLS_TEST_GUNICORN names none")
    return request.param


def _access_log(tmp_path):
    path = tmp_path / "access.json"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_gunicorn_refuses_a_revoked_client(pki, tmp_path, gunicorn_command):
    crl = pki.write("gunicorn-crls.pem", pki.crls())
    port = _free_port()
    server = Gunicorn(gunicorn_command, _render_configuration(pki, tmp_path, port, crl), tmp_path / "gunicorn.log")
    try:
        server.wait_ready(port)
        assert _request(pki, port, "good") == 200
        refused = _request(pki, port, "revoked")
        assert str(refused).startswith("refused"), refused
        # Revoked after the start, no reload: the next connection reads the new file.
        pki.write("gunicorn-crls.pem", pki.crls(revoked=[pki.clients["revoked"], pki.clients["good"]]))
        assert str(_request(pki, port, "good")).startswith("refused")
        pki.write("gunicorn-crls.pem", pki.crls(lapsed=True))
        assert str(_request(pki, port, "good")).startswith("refused")
        pki.write("gunicorn-crls.pem", pki.crls())
        assert _request(pki, port, "good") == 200
        # A reload (HUP, as the role's handler does): the configuration reads fleet_mtls_identity again, the new
        # worker checks the CRLs as the old one did.
        server.process.send_signal(signal.SIGHUP)
        server.wait_ready(port, booted=2, also="Worker exiting")  # the old worker gone: the new one answers
        assert str(_request(pki, port, "revoked")).startswith("refused")
        assert _request(pki, port, "good") == 200
        time.sleep(0.3)
        log = _access_log(tmp_path)
    finally:
        server.stop()
    verdicts = [(entry["tls_client_verify"], entry["status"]) for entry in log]
    assert verdicts == [("SUCCESS", 200), ("FAILED:certificate revoked", 0), ("FAILED:certificate revoked", 0),
                        ("FAILED:CRL has expired", 0), ("SUCCESS", 200),
                        ("FAILED:certificate revoked", 0), ("SUCCESS", 200)], server.output()
    assert "TLS handshake refused from 127.0.0.1: FAILED:certificate revoked" in server.output()


def test_gunicorn_without_crl_serves_a_revoked_client(pki, tmp_path, gunicorn_command):
    # mtls_python_service_crl_path: null (unsafe, documented): nothing checks revocation.
    port = _free_port()
    config = _render_configuration(pki, tmp_path, port, None)
    assert "def ssl_context" not in config.read_text()
    server = Gunicorn(gunicorn_command, config, tmp_path / "gunicorn.log")
    try:
        server.wait_ready(port)
        assert _request(pki, port, "revoked") == 200
    finally:
        server.stop()


def test_gunicorn_worker_refuses_to_serve_without_the_hook(pki, tmp_path, gunicorn_command):
    # A CRL configured but the ssl_context hook gone (gunicorn >= 21), or a sync worker the shim does not know:
    # the worker does not boot rather than serve without the check. On gunicorn 20.1 the shim does the check
    # without the hook.
    crl = pki.write("gunicorn-crls.pem", pki.crls())
    port = _free_port()
    config = _render_configuration(pki, tmp_path, port, crl)
    text = config.read_text()
    config.write_text(text[:text.index("\n\ndef ssl_context")] + "\n")
    server = Gunicorn(gunicorn_command, config, tmp_path / "gunicorn.log")
    try:
        version = subprocess.run(gunicorn_command + ["--version"], capture_output=True, text=True, timeout=30,
                                 check=False)
        if "20.1" in version.stdout + version.stderr:
            server.wait_ready(port)
            assert str(_request(pki, port, "revoked")).startswith("refused")
            assert _request(pki, port, "good") == 200
        else:
            server.process.wait(30)
            assert server.process.returncode != 0
            assert "does not check it" in server.output()
    finally:
        server.stop()
