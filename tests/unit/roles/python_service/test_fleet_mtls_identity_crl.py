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

import contextlib
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
from cryptography.hazmat.primitives import serialization

from gunicorn_harness import FILES, WORKER_CLASSES, Gunicorn, Pki, free_port, gunicorns, render_configuration

sys.path.insert(0, FILES)
import fleet_mtls_identity  # noqa: E402


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


def _client_context(pki, client, maximum=None, strict_eof=False):
    """A client context presenting client's certificate; strict_eof: an end without close_notify is an error.

    strict_eof clears ``ssl.OP_IGNORE_UNEXPECTED_EOF``, as Python's default client context on Debian 13 has it
    (OpenSSL then reports "unexpected eof while reading"; OpenSSL 3.5 also drops the connection's session).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    if maximum is not None:
        context.maximum_version = maximum
    if strict_eof:
        context.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
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
    # Each context built reads the file: a CRL file replaced (atomically) holds from the next context (a worker builds
    # one as soon as the file changes).
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


# --- one context per worker: shared by its connections, new when the trust files change ---

class _Conf:
    """The settings gunicorn passes to its ssl_context hook (cfg), as the role sets them."""

    def __init__(self, pki, crl="crls.pem", cert_reqs=ssl.CERT_REQUIRED):
        self.certfile, self.keyfile = pki.path("server.combined.pem"), None
        self.ca_certs, self.cert_reqs, self.ciphers = pki.path("ca-bundle.pem"), cert_reqs, None
        self.crl = pki.path(crl)


def _factory(conf, built):
    """gunicorn 23's default_ssl_context_factory for conf, counting the contexts it builds in built."""
    def factory():
        built.append(1)
        return fleet_mtls_identity.server_context(conf.certfile, conf.keyfile, conf.ca_certs, conf.cert_reqs)
    return factory


def _hook(conf, built):
    return fleet_mtls_identity.worker_ssl_context(conf, _factory(conf, built), conf.crl)


@pytest.fixture
def fresh_worker(monkeypatch):
    """A worker process's state as after its fork: no context yet."""
    monkeypatch.setattr(fleet_mtls_identity, "_worker_context", fleet_mtls_identity.WorkerContext())


def test_a_worker_builds_its_context_once_and_again_when_a_trust_file_changes(pki, fresh_worker):
    pki.write("worker-crls.pem", pki.crls())
    conf, built = _Conf(pki, crl="worker-crls.pem"), []
    first = _hook(conf, built)
    assert _hook(conf, built) is first and len(built) == 1
    assert fleet_mtls_identity.checks_crls(first)
    pki.write("worker-crls.pem", pki.crls())  # the same content, a new file (as the certificate role writes one)
    second = _hook(conf, built)
    assert second is not first and len(built) == 2
    assert _hook(conf, built) is second
    conf.cert_reqs = ssl.CERT_OPTIONAL  # another setting: another context
    assert _hook(conf, built) is not second and len(built) == 3


def test_a_missing_trust_file_is_never_cached_around(pki, fresh_worker, tmp_path):
    conf, built = _Conf(pki), []
    _hook(conf, built)
    conf.crl = str(tmp_path / "gone.pem")
    for _attempt in range(2):
        with pytest.raises(FileNotFoundError):
            _hook(conf, built)
    assert len(built) == 3  # built each time, and each time refused by check_revocation


def test_threads_asking_at_once_share_one_whole_context(pki, tmp_path):
    # ThreadWorker's threads: get() at the same moment, with a build slow enough that they all ask while it runs.
    # Each gets the one context, built once, with its CRLs and its socket class; after a change of the CRL file,
    # again one build for all of them.
    crl = pki.write("threads-crls.pem", pki.crls())
    conf, built, worker = _Conf(pki, crl="threads-crls.pem"), [], fleet_mtls_identity.WorkerContext()

    def build():
        built.append(1)
        context = _factory(conf, [])()
        time.sleep(0.2)  # a context half-built: any caller that saw it now would lack the CRLs
        return fleet_mtls_identity.check_revocation(context, crl)

    def ask_at_once(count=8):
        barrier, got = threading.Barrier(count), []

        def ask():
            barrier.wait()
            got.append(worker.get(build, (conf.ca_certs, crl)))

        threads = [threading.Thread(target=ask) for _index in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert len(got) == count
        return got

    first = ask_at_once()
    assert len(built) == 1 and all(context is first[0] for context in first)
    assert fleet_mtls_identity.checks_crls(first[0])
    assert first[0].sslsocket_class is fleet_mtls_identity.CloseNotifySocket
    pki.write("threads-crls.pem", pki.crls())
    second = ask_at_once()
    assert len(built) == 2 and all(context is second[0] for context in second) and second[0] is not first[0]


def _resume(server_context, client_context, session=None):
    """A handshake in memory offering session; (the server's exception or None, reused, the client's session)."""
    server_in, server_out, client_in, client_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    server = server_context.wrap_bio(server_in, server_out, server_side=True)
    client = client_context.wrap_bio(client_in, client_out, server_hostname="localhost", session=session)
    error = None
    for _round in range(20):
        for side in (client, server):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                if side is server:
                    error = error or exc
        server_in.write(client_out.read())
        client_in.write(server_out.read())
    if error is None:
        # TLS 1.3 sends the session after the handshake: the client reads it with its first read.
        server.write(b"x")
        client_in.write(server_out.read())
        client.read(1)
    return error, client.session_reused, client.session


@pytest.mark.parametrize("maximum", [None, ssl.TLSVersion.TLSv1_2], ids=["tls1.3", "tls1.2"])
def test_sessions_resume_on_the_worker_context_and_end_with_a_change_of_trust(pki, fresh_worker, maximum):
    pki.write("resume-crls.pem", pki.crls())
    conf = _Conf(pki, crl="resume-crls.pem")
    client = _client_context(pki, "good", maximum)
    client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
    error, reused, session = _resume(_hook(conf, []), client)
    assert error is None and not reused and session is not None
    error, reused, _session = _resume(_hook(conf, []), client, session)
    assert error is None and reused  # the worker's one context: its connections resume
    # The CRL now revokes the session's certificate: a new context, where the session is unknown; the client
    # makes a full handshake and is refused.
    pki.write("resume-crls.pem", pki.crls(revoked=[pki.clients["revoked"], pki.clients["good"]]))
    error, reused, _session = _resume(_hook(conf, []), client, session)
    assert not reused
    assert isinstance(error, ssl.SSLCertVerificationError) and error.verify_message == "certificate revoked"


def _read_to_eof(tls):
    """What tls reads up to its end: (the data, None), or (the data before it, the TLS error that ended it)."""
    data = b""
    try:
        while True:
            chunk = tls.recv(4096)
            if not chunk:
                return data, None
            data += chunk
    except ssl.SSLError as exc:
        return data, exc


def _serve_once(server_context, client_context, session=None):
    """One request over loopback TCP, served as gunicorn's sync worker does: recv, sendall, close().

    The client reads the response to its end (no ragged end suppressed). Returns (what it read, the error that
    ended its read or None, whether its session resumed, its session).
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    answer = {}

    def client():
        with socket.create_connection(listener.getsockname(), timeout=10) as raw:
            with client_context.wrap_socket(raw, session=session, suppress_ragged_eofs=False) as tls:
                tls.sendall(b"GET / HTTP/1.0\r\n\r\n")
                data, error = _read_to_eof(tls)
                answer["result"] = data, error, tls.session_reused, tls.session

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    try:
        conn, _addr = listener.accept()
        conn.settimeout(10)
        tls = server_context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        tls.recv(1024)
        tls.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
        tls.close()
    finally:
        listener.close()
        thread.join(10)
    assert not thread.is_alive()
    return answer["result"]


@pytest.mark.parametrize("maximum", [None, ssl.TLSVersion.TLSv1_2], ids=["tls1.3", "tls1.2"])
def test_the_worker_context_ends_each_connection_with_close_notify(pki, fresh_worker, maximum):
    client = _client_context(pki, "good", maximum, strict_eof=True)
    data, error, reused, session = _serve_once(_hook(_Conf(pki), []), client)
    assert (data.endswith(b"\r\n\r\nok"), error, reused) == (True, None, False)
    data, error, reused, _session = _serve_once(_hook(_Conf(pki), []), client, session)
    assert (data.endswith(b"\r\n\r\nok"), error, reused) == (True, None, True)


def test_a_plain_context_ends_without_close_notify(pki):
    # What CloseNotifySocket changes: the same exchange on a context without it ends in an error of the client.
    data, error, _reused, _session = _serve_once(_server_context(pki), _client_context(pki, "good", strict_eof=True))
    assert data.endswith(b"\r\n\r\nok")
    assert isinstance(error, ssl.SSLError) and "unexpected eof" in str(error).lower()


def test_gunicorn_per_connection_contexts_would_resume_nothing(pki):
    # What a context per connection (gunicorn's own way) gives: no session survives into the next connection.
    client = _client_context(pki, "good")
    error, _reused, session = _resume(_server_context(pki), client)
    assert error is None
    assert _resume(_server_context(pki), client, session)[1] is False


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


_GUNICORN20_GTHREAD = '''
import ssl

class TConn:
    def init(self):
        if self.parser is None:
            if self.cfg.is_ssl:
                self.sock = ssl.wrap_socket(self.sock, server_side=True, **self.cfg.ssl_options)
'''


def test_the_shim_goes_where_gthread_wraps_its_connections():
    # gunicorn 20.1's gthread wraps in TConn.init(), with the ssl global of gunicorn.workers.gthread.
    gthread20, sync20 = _module("gthread20", _GUNICORN20_GTHREAD), _module("sync20", _GUNICORN20_SYNC)
    assert fleet_mtls_identity.install_wrap_socket_shim(gthread20, _module("sock20"), "/x/crls.pem",
                                                        caller=("TConn", "init")) is True
    assert isinstance(gthread20.ssl, fleet_mtls_identity.WrapSocketShim) and sync20.ssl is ssl
    # The sync worker's function is not there: refused rather than shimmed where nothing calls it.
    with pytest.raises(RuntimeError, match="gthread20.SyncWorker.handle"):
        fleet_mtls_identity.install_wrap_socket_shim(_module("gthread20", _GUNICORN20_GTHREAD), _module("sock20"),
                                                     "/x/crls.pem")
    assert fleet_mtls_identity.install_wrap_socket_shim(
        _module("gthread23", _GUNICORN20_GTHREAD), _module("sock23", "def ssl_context(conf): pass"), "/x/crls.pem",
        caller=("TConn", "init")) is False


def test_a_gunicorn_with_neither_hook_nor_wrap_socket_is_refused():
    other = _module("other", "import ssl\nclass SyncWorker:\n    def handle(self, client):\n        return client\n")
    with pytest.raises(RuntimeError, match="CRLs cannot be checked"):
        fleet_mtls_identity.install_wrap_socket_shim(other, _module("sock"), "/x/crls.pem")
    assert other.ssl is ssl
    gthread = _module("gthread", "import ssl\nclass TConn:\n    def init(self):\n        self.parser = 1\n")
    with pytest.raises(RuntimeError, match="CRLs cannot be checked"):
        fleet_mtls_identity.install_wrap_socket_shim(gthread, _module("sock"), "/x/crls.pem", caller=("TConn", "init"))
    assert gthread.ssl is ssl


# --- real gunicorn (20.1 and/or 23), the role's configuration template ------------

def _session_request(port, client_context, session=None, path="/"):
    """GET path over TLS offering session: (the HTTP status, or the TLS error that refused it; whether it resumed;
    the session).

    The response is read to its end; an end the client context takes for an error (strict_eof) counts as one.
    """
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with client_context.wrap_socket(raw, session=session, suppress_ragged_eofs=False) as tls:
                tls.sendall(b"GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n" % path.encode("ascii"))
                data, error = _read_to_eof(tls)
                if error is not None:
                    raise error
                if not data.startswith(b"HTTP/"):
                    return "refused: no answer", tls.session_reused, None
                return int(data.split(b" ", 2)[1]), tls.session_reused, tls.session
    except (ssl.SSLError, OSError) as exc:
        return "refused: %s" % exc, False, None


def _request(pki, port, client):
    """GET /crl from client over TLS: the HTTP status (int), or the TLS error that refused it (str)."""
    return _session_request(port, _client_context(pki, client), path="/crl")[0]


@pytest.fixture(params=gunicorns() or [None], ids=lambda command: " ".join(command) if command else "no-gunicorn")
def gunicorn_command(request):
    if request.param is None:
        pytest.skip("gunicorn is not importable and FLEET_MTLS_TEST_GUNICORN names none")
    return request.param


@pytest.fixture(params=WORKER_CLASSES, ids=lambda name: name.rsplit(".", 1)[1])
def worker_class(request):
    """Each of the role's worker classes: every guarantee holds for both."""
    return request.param


def _access_log(tmp_path):
    path = tmp_path / "access.json"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@contextlib.contextmanager
def _serving(pki, tmp_path, gunicorn_command, crl_name, **configuration):
    """gunicorn with the role's configuration, checking the CRL file crl_name (written anew), ready: (server, port).

    configuration: more arguments of render_configuration(). Stops it at the end.
    """
    crl = pki.write(crl_name, pki.crls())
    port = free_port()
    server = Gunicorn(gunicorn_command, render_configuration(pki, tmp_path, port, crl, **configuration),
                      tmp_path / "gunicorn.log")
    try:
        server.wait_ready(port)
        yield server, port
    finally:
        server.stop()


def test_gunicorn_refuses_a_revoked_client(pki, tmp_path, gunicorn_command, worker_class):
    with _serving(pki, tmp_path, gunicorn_command, "gunicorn-crls.pem", worker_class=worker_class) as (server, port):
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
    verdicts = [(entry["tls_client_verify"], entry["status"]) for entry in log]
    assert verdicts == [("SUCCESS", 200), ("FAILED:certificate revoked", 0), ("FAILED:certificate revoked", 0),
                        ("FAILED:CRL has expired", 0), ("SUCCESS", 200),
                        ("FAILED:certificate revoked", 0), ("SUCCESS", 200)], server.output()
    assert "TLS handshake refused from 127.0.0.1: FAILED:certificate revoked" in server.output()


@pytest.mark.parametrize("maximum", [None, ssl.TLSVersion.TLSv1_2], ids=["tls1.3", "tls1.2"])
def test_gunicorn_resumes_sessions_with_the_identity_not_past_a_reload_or_revocation(
        pki, tmp_path, gunicorn_command, worker_class, maximum):
    # One worker (a session resumes on the worker that made it), allow-list: good only.
    good, other = _client_context(pki, "good", maximum), _client_context(pki, "other", maximum)
    with _serving(pki, tmp_path, gunicorn_command, "resume-gunicorn-crls.pem", worker_class=worker_class,
                  allowed_common_names=["good"]) as (server, port):
        status, reused, good_session = _session_request(port, good)
        assert (status, reused) == (200, False)
        status, reused, _session = _session_request(port, good, good_session)
        assert (status, reused) == (200, True), server.output()
        # A resumed session carries its certificate's identity into the allow-list: other stays refused.
        status, reused, other_session = _session_request(port, other)
        assert (status, reused) == (403, False)
        assert _session_request(port, other, other_session)[:2] == (403, True)
        # A reload (a switch of mode, a renewed certificate): new workers, new contexts, no session from before.
        server.process.send_signal(signal.SIGHUP)
        server.wait_ready(port, booted=2, also="Worker exiting")
        status, reused, good_session = _session_request(port, good, good_session)
        assert (status, reused) == (200, False)
        # good's certificate revoked (the CRL file replaced, no reload): its session does not resume, the full
        # handshake refuses it.
        pki.write("resume-gunicorn-crls.pem", pki.crls(revoked=[pki.clients["revoked"], pki.clients["good"]]))
        status, reused, _session = _session_request(port, good, good_session)
        assert str(status).startswith("refused") and not reused
        time.sleep(0.3)
        log = _access_log(tmp_path)
    seen = [(entry["tls_client_subject"], entry["tls_client_verify"], entry["status"], entry.get("tls_resumed"))
            for entry in log]
    # tls_resumed: which requests came on a resumed session (a refused handshake has no request).
    assert seen == [("CN=good", "SUCCESS", 200, "0"), ("CN=good", "SUCCESS", 200, "1"),
                    ("CN=other", "SUCCESS", 403, "0"), ("CN=other", "SUCCESS", 403, "1"),
                    ("CN=good", "SUCCESS", 200, "0"), ("", "FAILED:certificate revoked", 0, None)], server.output()


@pytest.mark.parametrize("maximum", [None, ssl.TLSVersion.TLSv1_2], ids=["tls1.3", "tls1.2"])
def test_gunicorn_ends_each_connection_with_close_notify_so_strict_clients_keep_their_session(
        pki, tmp_path, gunicorn_command, worker_class, maximum):
    # A client that reads each response to its end and takes an end without close_notify for an error (Python on
    # Debian 13): each read ends cleanly, and each session resumes on the next connection (with OpenSSL 3.5 it
    # would not after an unexpected end; OpenSSL 3.0 keeps it, and reports the error).
    client = _client_context(pki, "good", maximum, strict_eof=True)
    with _serving(pki, tmp_path, gunicorn_command, "close-notify-crls.pem",
                  worker_class=worker_class) as (server, port):
        status, reused, session = _session_request(port, client)
        assert (status, reused) == (200, False), server.output()
        for _connection in range(3):
            status, reused, session = _session_request(port, client, session)
            assert (status, reused) == (200, True), server.output()


# A request in a process of its own (argv: port, client PEM); prints the HTTP status line.
_CHILD_REQUEST = """
import socket, ssl, sys
context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
context.load_cert_chain(sys.argv[2])
with socket.create_connection(("127.0.0.1", int(sys.argv[1]))) as raw, context.wrap_socket(raw) as tls:
    tls.sendall(b"GET / HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n")
    print(tls.makefile("rb").readline().decode("ascii").strip())
"""


def test_a_client_that_never_reads_does_not_hold_the_worker(pki, tmp_path, gunicorn_command, worker_class):
    # One worker. A client sends its request, then neither reads nor closes: the worker's close must not wait for
    # its close_notify. A second client, in a child process killed after 15 s (half the worker timeout, after which
    # gunicorn's arbiter would kill a worker stuck there), is served.
    with _serving(pki, tmp_path, gunicorn_command, "never-reads-crls.pem",
                  worker_class=worker_class) as (server, port):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
            with _client_context(pki, "good", strict_eof=True).wrap_socket(raw, suppress_ragged_eofs=False) as idle:
                idle.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
                try:
                    second = subprocess.run([sys.executable, "-c", _CHILD_REQUEST, str(port), pki.path("good.pem")],
                                            capture_output=True, text=True, timeout=15, check=False)
                except subprocess.TimeoutExpired:
                    pytest.fail("the worker was held by a client that does not read:\n%s" % server.output())
                assert second.stdout.strip() == "HTTP/1.0 200 OK", second.stderr
                # The idle client still gets its whole response, then the close_notify.
                data, error = _read_to_eof(idle)
                assert data.startswith(b"HTTP/1.0 200 OK") and error is None


def test_gunicorn_without_crl_serves_a_revoked_client(pki, tmp_path, gunicorn_command, worker_class):
    # mtls_python_service_crl_path: null (unsafe, documented): nothing checks revocation.
    port = free_port()
    config = render_configuration(pki, tmp_path, port, None, worker_class=worker_class)
    assert "def ssl_context" not in config.read_text()
    server = Gunicorn(gunicorn_command, config, tmp_path / "gunicorn.log")
    try:
        server.wait_ready(port)
        assert _request(pki, port, "revoked") == 200
    finally:
        server.stop()


@contextlib.contextmanager
def _edited(pki, tmp_path, gunicorn_command, crl_name, edit, **configuration):
    """gunicorn, started (not waited for) with the role's configuration passed through edit(text): (server, port)."""
    crl = pki.write(crl_name, pki.crls())
    port = free_port()
    config = render_configuration(pki, tmp_path, port, crl, **configuration)
    config.write_text(edit(config.read_text()))
    server = Gunicorn(gunicorn_command, config, tmp_path / "gunicorn.log")
    try:
        yield server, port
    finally:
        server.stop()


def _failed_to_boot(server, message):
    """Whether gunicorn exited, its worker having refused to boot with message."""
    server.process.wait(30)
    return server.process.returncode != 0 and message in server.output()


def test_gunicorn_worker_refuses_to_serve_without_the_hook(pki, tmp_path, gunicorn_command, worker_class):
    # A CRL configured but the ssl_context hook gone (gunicorn >= 21), or a sync worker the shim does not know:
    # the worker does not boot rather than serve without the check. On gunicorn 20.1 the shim does the check
    # without the hook.
    with _edited(pki, tmp_path, gunicorn_command, "gunicorn-crls.pem",
                 lambda text: text[:text.index("\n\ndef ssl_context")] + "\n",
                 worker_class=worker_class) as (server, port):
        version = subprocess.run(gunicorn_command + ["--version"], capture_output=True, text=True, timeout=30,
                                 check=False)
        if "20.1" in version.stdout + version.stderr:
            server.wait_ready(port)
            assert str(_request(pki, port, "revoked")).startswith("refused")
            assert _request(pki, port, "good") == 200
        else:
            assert _failed_to_boot(server, "does not check it"), server.output()


# --- keep-alive (fleet_mtls_identity.ThreadWorker): several requests over one TLS connection -----------------

_THREAD_WORKER = "fleet_mtls_identity.ThreadWorker"


def _connect(port, client_context):
    """A TLS connection to the server (handshake done), whose reads wait at most 10 s."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return client_context.wrap_socket(raw, suppress_ragged_eofs=False)


def _exchange(tls, path):
    """GET path over tls in HTTP/1.1: (status, its Connection header), or None when the connection ended without an
    answer (closed, reset, or a TLS error)."""
    try:
        tls.sendall(b"GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path.encode("ascii"))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = tls.recv(4096)
            if not chunk:
                return None
            data += chunk
    except (ssl.SSLError, OSError):
        return None
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, value in
               (line.split(":", 1) for line in lines[1:])}
    while len(body) < int(headers.get("content-length", "0")):
        body += tls.recv(4096)
    return int(lines[0].split(" ", 2)[1]), headers.get("connection", "").lower()


def test_keep_alive_serves_each_connection_with_its_own_identity(pki, tmp_path, gunicorn_command, worker_class):
    # Two clients, each with its connection kept alive, their requests interleaved on one worker (one thread):
    # ThreadWorker serves all four, each logged with the identity of its own connection. The sync worker answers
    # "Connection: close" and ends each connection after its first response.
    with _serving(pki, tmp_path, gunicorn_command, "keep-alive-crls.pem", worker_class=worker_class,
                  keepalive=10) as (server, port):
        # Each connection sends its request as soon as it is made: a thread reads a request whole, handshake first.
        with _connect(port, _client_context(pki, "good")) as good:
            answers = [_exchange(good, "/good/1")]
            with _connect(port, _client_context(pki, "other")) as other:
                answers += [_exchange(other, "/other/1"), _exchange(good, "/good/2"), _exchange(other, "/other/2")]
        time.sleep(0.3)
        log = _access_log(tmp_path)
    seen = [(entry["path"], entry["tls_client_subject"], entry["tls_client_verify"], entry["status"])
            for entry in log]
    if worker_class == _THREAD_WORKER:
        assert answers == [(200, "keep-alive")] * 4, server.output()
        assert seen == [("/good/1", "CN=good", "SUCCESS", 200), ("/other/1", "CN=other", "SUCCESS", 200),
                        ("/good/2", "CN=good", "SUCCESS", 200), ("/other/2", "CN=other", "SUCCESS", 200)]
    else:
        assert answers == [(200, "close"), (200, "close"), None, None], server.output()
        assert seen == [("/good/1", "CN=good", "SUCCESS", 200), ("/other/1", "CN=other", "SUCCESS", 200)]


def test_a_kept_alive_connection_does_not_outlive_a_change_of_trust(pki, tmp_path, gunicorn_command):
    # Two connections of good kept alive (keepalive 10 s), then the CRL file revokes good (no reload). The one
    # that sends its next request at once is closed before that request is read; the idle one is closed by the
    # worker within about a second, long before its keep-alive timeout; a new connection is refused.
    with _serving(pki, tmp_path, gunicorn_command, "kept-alive-trust-crls.pem", worker_class=_THREAD_WORKER,
                  keepalive=10) as (server, port):
        with contextlib.ExitStack() as stack:
            busy = stack.enter_context(_connect(port, _client_context(pki, "good")))
            assert _exchange(busy, "/busy/1") == (200, "keep-alive")
            idle = stack.enter_context(_connect(port, _client_context(pki, "good")))
            assert _exchange(idle, "/idle/1") == (200, "keep-alive")
            time.sleep(1.5)  # a few turns of the worker's loop: the same trust keeps them
            assert _exchange(idle, "/idle/2") == (200, "keep-alive")
            pki.write("kept-alive-trust-crls.pem",
                      pki.crls(revoked=[pki.clients["revoked"], pki.clients["good"]]))
            changed = time.monotonic()
            assert _exchange(busy, "/busy/2") is None, server.output()
            data, error = _read_to_eof(idle)
            assert (data, error) == (b"", None)  # ended cleanly, by the worker (close_notify)
            assert time.monotonic() - changed < 5
        assert str(_request(pki, port, "good")).startswith("refused")
        time.sleep(0.3)
        log = _access_log(tmp_path)
    seen = [(entry.get("path", ""), entry["tls_client_verify"], entry["status"]) for entry in log]
    assert seen == [("/busy/1", "SUCCESS", 200), ("/idle/1", "SUCCESS", 200), ("/idle/2", "SUCCESS", 200),
                    ("", "FAILED:certificate revoked", 0)], server.output()


def test_a_client_that_sends_nothing_holds_a_worker_at_most_its_timeout(pki, tmp_path, gunicorn_command,
                                                                        worker_class):
    # One worker, one thread, timeout 3 s. A client connects and sends nothing. The sync worker waits in its
    # handshake until the arbiter kills it (timeout); gunicorn 20.1's gthread hands the connection to its one
    # thread at once, where ThreadWorker waits at most timeout (gunicorn 23 waits until the client sends). Either
    # way the next client is served within a few seconds.
    with _serving(pki, tmp_path, gunicorn_command, "silent-crls.pem", worker_class=worker_class,
                  timeout=3) as (server, port):
        with socket.create_connection(("127.0.0.1", port)):
            time.sleep(0.2)
            started = time.monotonic()
            status = _request(pki, port, "good")
            waited = time.monotonic() - started
    assert status == 200 and waited < 9, (waited, server.output())


def test_thread_worker_refuses_a_handshake_in_its_main_loop(pki, tmp_path, gunicorn_command):
    # do_handshake_on_connect = True: gthread would make each handshake in its main loop (and a refused one would
    # end the worker). The role never sets it; ThreadWorker does not boot with it.
    with _edited(pki, tmp_path, gunicorn_command, "handshake-on-connect-crls.pem",
                 lambda text: text.replace("do_handshake_on_connect = False", "do_handshake_on_connect = True"),
                 worker_class=_THREAD_WORKER) as (server, _port):
        assert _failed_to_boot(server, "do_handshake_on_connect must be False"), server.output()


# --- reloads: a renewed certificate ---------------------------------------------------------------------------------

# Appended to the role's configuration: each worker notes when its SIGTERM handler runs (its pid and CLOCK_MONOTONIC,
# which is the same clock in every process), then runs the worker's own handler.
_NOTE_SIGTERM = '''

import os as _os, signal as _signal, time as _time

_role_post_worker_init = post_worker_init


def post_worker_init(worker):
    _role_post_worker_init(worker)
    handler = _signal.getsignal(_signal.SIGTERM)

    def noted(sig, frame):
        fd = _os.open(NOTES, _os.O_WRONLY | _os.O_APPEND | _os.O_CREAT, 0o600)
        _os.write(fd, ("%d %d\\n" % (_os.getpid(), _time.monotonic_ns())).encode())
        _os.close(fd)
        handler(sig, frame)

    _signal.signal(_signal.SIGTERM, noted)
'''


def _served(port, client_context):
    """GET / over a new TLS connection: (when it began to connect, time.monotonic_ns(); the server's certificate,
    DER, or None; the HTTP status, or the error that ended it)."""
    started, der = time.monotonic_ns(), None
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with client_context.wrap_socket(raw) as tls:
                der = tls.getpeercert(binary_form=True)
                tls.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
                line = tls.makefile("rb").readline()
        return started, der, int(line.split(b" ", 2)[1]) if line.startswith(b"HTTP/") else "no answer"
    except (ssl.SSLError, OSError) as exc:
        return started, der, "refused: %s" % exc


def _reloaded(server, port, client, pki, notes, certificate, reloads):
    """Each reload: certificate renewed, HUP, then new connections one after the other for 1.5 s, until the old
    worker is gone. Yields (when the HUP was sent, time.monotonic_ns(); the connections made since (see _served); the
    old certificate, DER; the new one; when the old worker's SIGTERM handler ran)."""
    _started, old, status = _served(port, client)
    assert status == 200, server.output()
    for reload in range(1, reloads + 1):
        new = pki.server(certificate).public_bytes(serialization.Encoding.DER)
        hup = time.monotonic_ns()
        server.process.send_signal(signal.SIGHUP)
        served, deadline = [], time.monotonic() + 1.5
        while time.monotonic() < deadline:
            served.append(_served(port, client))
        server.wait_ready(port, booted=reload + 1)
        deadline = time.monotonic() + 15
        while server.output().count("Worker exiting") < reload and time.monotonic() < deadline:
            time.sleep(0.1)
        terms = {}  # the arbiter sends SIGTERM again, each second, while an old worker lives on: the first counts
        for line in (notes.read_text() if notes.exists() else "").splitlines():
            pid, when = map(int, line.split())
            terms[pid] = min(terms.get(pid, when), when)
        assert len(terms) == reload, server.output()  # one old worker each time (the new one has had none)
        yield hup, served, old, new, sorted(terms.values())[-1]
        old = new


def test_after_a_reload_no_old_worker_takes_a_new_connection(pki, tmp_path, gunicorn_command, worker_class):
    # The role's renewal: the certificate file replaced, then a reload (HUP). The arbiter reads its configuration
    # again, starts a new worker (which pins the new certificate) and sends the old one SIGTERM. From the HUP on, new
    # connections one after the other: each is answered, and once the old worker has its SIGTERM no connection made
    # after it gets the old certificate. Those made in between (the arbiter still reading its configuration, 10 to
    # 180 ms here) go to the old worker, the only one there, with either worker class. Three reloads: an old worker
    # that still accepts after its SIGTERM may lose the race for a connection to the new one.
    notes = tmp_path / "sigterm.notes"
    pki.server("reload-server.pem")
    with _edited(pki, tmp_path, gunicorn_command, "reload-crls.pem",
                 lambda text: text + _NOTE_SIGTERM.replace("NOTES", repr(str(notes))),
                 worker_class=worker_class, certificate="reload-server.pem") as (server, port):
        server.wait_ready(port)
        client = _client_context(pki, "good")
        for hup, served, old, new, sigterm in _reloaded(server, port, client, pki, notes, "reload-server.pem", 3):

            def ms(when, hup=hup):
                return round((when - hup) / 1e6, 1)

            summary = {"sigterm": ms(sigterm), "connections": len(served),
                       "old certificate": [ms(started) for started, der, _status in served if der == old],
                       "new certificate from": min((ms(started) for started, der, _status in served if der == new),
                                                   default=None),
                       "not answered": [(ms(started), status) for started, _der, status in served if status != 200]}
            print(summary)
            assert not summary["not answered"], (summary, server.output())
            assert all(der in (old, new) for _started, der, _status in served)
            late = [ms(started) for started, der, _status in served if started > sigterm and der != new]
            assert not late, (summary, server.output())
            assert served[-1][1] == new, summary


def test_a_connection_accepted_before_a_reload_is_served_when_its_client_speaks(
        pki, tmp_path, gunicorn_command, worker_class):
    # A client connects and says nothing yet (a preconnect): the worker accepts it (gunicorn 23's gthread then
    # waits in its loop for its first bytes; 20.1's hands it to a thread; the sync worker waits in the handshake).
    # A reload stops that worker, and only then does the client send its handshake and request: the old worker
    # still answers it, with its own certificate, before it exits.
    with _serving(pki, tmp_path, gunicorn_command, "preconnect-crls.pem",
                  worker_class=worker_class) as (server, port):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            time.sleep(0.3)  # accepted
            server.process.send_signal(signal.SIGHUP)
            server.wait_ready(port, booted=2)
            time.sleep(1.5)  # the old worker has left its loop (gthread's waits at most a second)
            assert "Worker exiting" not in server.output()  # it waits for the connection it accepted
            with _client_context(pki, "good").wrap_socket(raw) as tls:
                tls.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
                line = tls.makefile("rb").readline()
    assert line.startswith(b"HTTP/1.0 200 "), server.output()
