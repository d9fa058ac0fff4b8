"""Verified client identity for WSGI applications served by gunicorn over mutual TLS.

Installed by the fleet.mtls.python_service role next to the application
(gunicorn's ``pythonpath``). It gives the application the identity of the
caller as the TLS handshake verified it, enforces an optional allow-list, and
writes the JSON access log the phased rollout counts.

In the application::

    import fleet_mtls_identity

    def app(environ, start_response):
        peer = fleet_mtls_identity.peer_identity(environ)
        # peer["verify"]     "SUCCESS" or "NONE"
        # peer["subject"]    "CN=client1" (RFC 4514, as nginx's $ssl_client_s_dn)
        # peer["common_name"], peer["spiffe_id"], peer["serial"] (upper-case hex)
        ...

The role wraps the application in :class:`IdentityMiddleware` itself (from
gunicorn's ``post_worker_init`` hook), which stores the same values in the
WSGI environ under ``fleet_mtls.*`` keys, answers 403 to callers that are not
on the allow-list, and writes one JSON object per request to the access log.
Handshakes that fail on the client certificate never reach the application;
the role's gunicorn worker classes (:class:`SyncWorker`, :class:`ThreadWorker`)
log them in the same access log with ``tls_client_verify`` = ``FAILED:<reason>``
and status 0.
:func:`pin_server_certificate` (from gunicorn's ``post_fork`` hook) gives each
worker its own copy of the certificate and key, so that a renewal never meets
a connection half-way.

Revocation: with a CRL file configured (``configure(crl_path=...)``), every
TLS context the service builds for a connection goes through
:func:`check_revocation`, which loads the CRLs and sets
``ssl.VERIFY_CRL_CHECK_CHAIN``: OpenSSL then refuses a client certificate
revoked by the CRL of any CA of its chain, a chain with a CA whose CRL is
missing ("unable to get certificate CRL"), and a CRL past its next update
("CRL has expired"); it also clears ``ssl.VERIFY_X509_PARTIAL_CHAIN`` (set by
Python 3.13), so that the chain always runs up to the root whose CRL is in
the file. Each worker builds that context once and shares it among its
connections (:class:`WorkerContext`), so that TLS sessions resume; before
each connection it looks at the CA bundle and the CRL file (``os.stat``), and
builds a new context when either was replaced or changed. Sessions resume
by TLS session tickets, sealed with a key OpenSSL makes with the context, so
a session ends with its context: no session from before a change of trust
(a CRL revoking a client, a new bundle) resumes, each client makes a full
handshake, checked against the new files. A change of mode (strict) or of
certificate comes with a reload, hence new workers and new contexts. A
session resumes only on the worker that made it. The context's connections
end with a TLS close_notify (:class:`CloseNotifySocket`; gunicorn sends
none): a client that reads a response to its end, and takes an end without
close_notify for an error (Python on Debian 13, by default), would otherwise
drop its session. How the context gets there depends on gunicorn:

- gunicorn 21 and later build each connection's context in
  ``gunicorn.sock.ssl_context()``, which calls the ``ssl_context`` server hook;
  the role's configuration defines that hook as :func:`worker_ssl_context`:
  ``check_revocation(default_ssl_context_factory())``, kept per worker.
- gunicorn 20.1 (Debian 12) has no such hook: its sync worker wraps each
  connection with ``ssl.wrap_socket(client, server_side=True,
  **cfg.ssl_options)``, ``ssl`` being the global of module
  ``gunicorn.workers.sync``; its gthread worker does the same in
  ``TConn.init()``, with the global ``ssl`` of ``gunicorn.workers.gthread``.
  There, and only there (never in gunicorn 21 or later), the role's worker
  class replaces that global of its own module, in its own process, with
  :class:`WrapSocketShim` (:func:`install_wrap_socket_shim`): the same module
  ``ssl`` except ``wrap_socket``, which builds the context as gunicorn 23 does
  (:func:`server_context`: the CA bundle only, never the system's trust
  store; the worker's pinned certificate; ``cert_reqs``; ``ciphers``), adds the
  CRL check, keeps it per worker as above, and wraps the socket with it.

Either way the role's worker class (:class:`RoleWorker`) builds one context
as a connection would when it starts, and refuses to serve (the worker fails
to boot) when that context does not check CRLs for the whole chain. Only
:class:`SyncWorker` and :class:`ThreadWorker` are known to check them on
gunicorn 20.1, so the role refuses any other class while a CRL is set.
:class:`ThreadWorker` keeps connections alive; one it kept alive from
before a change of the CA bundle or the CRL file is closed before it serves
another request, so that no request is served under trust that has changed.
A refused certificate is logged as any other refused handshake, e.g.
``tls_client_verify`` = ``FAILED:certificate revoked``.

No dependency beyond the standard library (and gunicorn for the worker).
"""

import datetime
import functools
import json
import os
import selectors
import ssl
import threading
import time

__all__ = ["IdentityMiddleware", "peer_identity", "session_resumed", "configure", "create_access_log", "AccessLog",
           "pin_server_certificate", "check_revocation", "checks_crls", "server_context", "WrapSocketShim",
           "install_wrap_socket_shim", "WorkerContext", "worker_ssl_context", "CloseNotifySocket",
           "connection_context", "RoleWorker"]

ENVIRON_KEYS = {
    "verify": "fleet_mtls.verify",
    "subject": "fleet_mtls.subject",
    "common_name": "fleet_mtls.common_name",
    "spiffe_id": "fleet_mtls.spiffe_id",
    "serial": "fleet_mtls.serial",
}

# Short names of the attributes getpeercert() reports, as RFC 4514 writes them.
_ATTRIBUTE_NAMES = {
    "commonName": "CN",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "stateOrProvinceName": "ST",
    "localityName": "L",
    "domainComponent": "DC",
    "userId": "UID",
    "streetAddress": "STREET",
}


def _escape(value):
    out = []
    for i, char in enumerate(value):
        if char in ',+"\\<>;=' or (i == 0 and char in "# ") or (i == len(value) - 1 and char == " "):
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def _subject_string(subject):
    """getpeercert()'s subject (RDN tuples, most significant first) as an RFC 4514 string."""
    rdns = []
    for rdn in subject:
        rdns.append("+".join("%s=%s" % (_ATTRIBUTE_NAMES.get(name, name), _escape(value)) for name, value in rdn))
    return ",".join(reversed(rdns))


def describe_peer_certificate(cert):
    """The identity in a certificate as ``ssl.SSLSocket.getpeercert()`` returns it (a dict).

    ``common_name`` is set only for a subject of exactly one CN and nothing
    else (the subject the fleet's CA builds), ``spiffe_id`` only for a
    certificate with exactly one SPIFFE URI: a subject with two CNs, or two
    SPIFFE IDs, names nobody, so that no allow-list entry can match it.
    """
    if not cert:
        return {"verify": "NONE", "subject": "", "common_name": "", "spiffe_id": "", "serial": ""}
    attributes = [attribute for rdn in cert.get("subject", ()) for attribute in rdn]
    common_name = ""
    if len(attributes) == 1 and attributes[0][0] == "commonName":
        common_name = attributes[0][1]
    spiffe_ids = [value for kind, value in cert.get("subjectAltName", ())
                  if kind == "URI" and value.startswith("spiffe://")]
    return {
        "verify": "SUCCESS",
        "subject": _subject_string(cert.get("subject", ())),
        "common_name": common_name,
        "spiffe_id": spiffe_ids[0] if len(spiffe_ids) == 1 else "",
        "serial": (cert.get("serialNumber") or "").upper(),
    }


def peer_identity(environ):
    """The caller's verified identity, from the WSGI environ of a gunicorn request.

    Returns a dict with ``verify`` ("SUCCESS" when the caller presented a
    certificate the handshake verified, "NONE" when it presented none),
    ``subject``, ``common_name``, ``spiffe_id`` and ``serial`` (empty strings
    when absent). gunicorn only hands a request to the application after the
    handshake succeeded, so a certificate seen here has been verified against
    the service's CA bundle.
    """
    if ENVIRON_KEYS["verify"] in environ:
        return {key: environ[name] for key, name in ENVIRON_KEYS.items()}
    sock = environ.get("gunicorn.socket")
    cert = None
    if isinstance(sock, ssl.SSLSocket):
        try:
            cert = sock.getpeercert()
        except (ValueError, OSError):
            cert = None
    return describe_peer_certificate(cert)


def session_resumed(environ):
    """"1" when the request's TLS connection resumed a session (its client skipped the certificate exchange), else "0".

    Written into the access log as ``tls_resumed``, as nginx's and HAProxy's
    logs of the role's other services write it.
    """
    sock = environ.get("gunicorn.socket")
    return "1" if isinstance(sock, ssl.SSLSocket) and sock.session_reused else "0"


class AccessLog:
    """One JSON object per line, appended with a single write (O_APPEND) so that workers never interleave."""

    def __init__(self, path, server="python_service", site=""):
        self.path = path
        self.server = server
        self.site = site
        self._fd = None
        self._lock = threading.Lock()

    def _open(self):
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        return self._fd

    def write(self, client_addr, identity, status, **extra):
        record = {
            "time": datetime.datetime.now(datetime.timezone.utc).astimezone().isoformat(timespec="milliseconds"),
            "server": self.server,
            "site": self.site,
            "client_addr": client_addr or "",
            "tls_client_verify": identity["verify"],
            "tls_client_subject": identity["subject"],
            "tls_client_serial": identity["serial"],
            "tls_client_spiffe_id": identity["spiffe_id"],
            "status": int(status),
        }
        record.update(extra)
        line = (json.dumps(record, separators=(",", ":"), sort_keys=False) + "\n").encode("utf-8")
        if not self.path:
            return
        with self._lock:
            os.write(self._open(), line)


class IdentityMiddleware:
    """WSGI middleware: identity in the environ, optional allow-list (403), JSON access log.

    ``allowed_spiffe_ids`` and ``allowed_common_names``: when either is not
    empty, a caller with a certificate must match one entry of either list
    exactly (its one SPIFFE ID, or the one CN of a one-CN subject; see
    describe_peer_certificate) or gets 403. A caller without a certificate (possible only in permissive
    mode) is not judged by the allow-list: permissive exists to serve such
    callers while they move to certificates.
    """

    def __init__(self, app, access_log=None, allowed_spiffe_ids=(), allowed_common_names=()):
        self.app = app
        self.access_log = access_log
        self.allowed_spiffe_ids = frozenset(allowed_spiffe_ids or ())
        self.allowed_common_names = frozenset(allowed_common_names or ())

    def allowed(self, identity):
        if identity["verify"] != "SUCCESS":
            return True
        if not (self.allowed_spiffe_ids or self.allowed_common_names):
            return True
        return ((identity["spiffe_id"] != "" and identity["spiffe_id"] in self.allowed_spiffe_ids)
                or (identity["common_name"] != "" and identity["common_name"] in self.allowed_common_names))

    def __call__(self, environ, start_response):
        identity = peer_identity(environ)
        for key, name in ENVIRON_KEYS.items():
            environ[name] = identity[key]
        client_addr = environ.get("REMOTE_ADDR", "")

        def logging_start_response(status, headers, exc_info=None):
            if self.access_log is not None:
                try:
                    code = int(str(status).split(None, 1)[0])
                except ValueError:
                    code = 0
                self.access_log.write(client_addr, identity, code,
                                      method=environ.get("REQUEST_METHOD", ""), path=environ.get("PATH_INFO", ""),
                                      user_agent=environ.get("HTTP_USER_AGENT", ""),
                                      probe=environ.get("HTTP_X_FLEET_MTLS_PROBE", ""),
                                      tls_resumed=session_resumed(environ))
            if exc_info is not None:
                return start_response(status, headers, exc_info)
            return start_response(status, headers)

        if not self.allowed(identity):
            body = json.dumps({"error": "forbidden", "reason": "client identity not allowed",
                               "spiffe_id": identity["spiffe_id"], "common_name": identity["common_name"]}).encode()
            logging_start_response("403 Forbidden", [("Content-Type", "application/json"),
                                                     ("Content-Length", str(len(body)))])
            return [body]
        return self.app(environ, logging_start_response)


# What the service's gunicorn configuration sets (configure()); read by the
# worker class and by wrap().
_settings = {"access_log": None, "allowed_spiffe_ids": (), "allowed_common_names": (), "crl_path": None}


def configure(access_log_path="", site="", allowed_spiffe_ids=(), allowed_common_names=(), crl_path=None):
    """Called from the gunicorn configuration file, in the arbiter, before workers are forked.

    ``crl_path``: PEM file of the CRLs of every CA of the client chains (None:
    revocation is not checked).
    """
    _settings["access_log"] = AccessLog(access_log_path, site=site) if access_log_path else None
    _settings["allowed_spiffe_ids"] = tuple(allowed_spiffe_ids)
    _settings["allowed_common_names"] = tuple(allowed_common_names)
    _settings["crl_path"] = crl_path or None


def create_access_log():
    """Create the configured access log if it does not exist yet (mode 0640), without writing to it."""
    log = _settings["access_log"]
    if log is not None and log.path:
        os.close(os.open(log.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640))


def wrap(app):
    """The application wrapped in IdentityMiddleware with the configured settings."""
    return IdentityMiddleware(app, _settings["access_log"], _settings["allowed_spiffe_ids"],
                              _settings["allowed_common_names"])


def handshake_failure_identity(exc):
    """tls_client_verify for a handshake that failed with ``exc``, or None when it is not about the client's certificate.

    Spelled as nginx's $ssl_client_verify: "FAILED:<reason>" when the client's
    certificate did not verify, "NONE" when a certificate was required and the
    client sent none.
    """
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or exc.reason or "certificate verify failed"
        verify = "FAILED:%s" % reason
    elif isinstance(exc, ssl.SSLError) and exc.reason in ("PEER_DID_NOT_RETURN_A_CERTIFICATE", "NO_CERTIFICATE_RETURNED"):
        verify = "NONE"
    else:
        return None
    return {"verify": verify, "subject": "", "common_name": "", "spiffe_id": "", "serial": ""}


def pin_server_certificate(cfg, attempts=5, pause=0.05):
    """Serve this worker from one fixed copy of its certificate, chain and key.

    gunicorn's own workers build a TLS context for every connection from
    ``certfile`` and ``keyfile``, opening the files one after the other (even
    when both name the same file): a connection that opens them across the
    rename of a renewal gets the old certificate with the new key and is
    refused ("key values mismatch"). Called in each worker right after the
    fork (the ``post_fork`` hook), this reads the files once into an
    anonymous in-memory file, checks that the certificate and key match
    (reading again while a renewal is half-way), and points the worker's
    ``certfile`` and ``keyfile`` at that copy. The key never touches the
    disk. The role reloads gunicorn after every renewal, so the new workers
    copy the new pair.

    Returns the copy's path (``/proc/self/fd/N``), or None without TLS.
    """
    certfile, keyfile = cfg.certfile, cfg.keyfile or cfg.certfile
    if not certfile:
        return None
    for attempt in range(1, attempts + 1):
        with open(certfile, "rb") as handle:
            pem = handle.read()
        if keyfile != certfile:
            with open(keyfile, "rb") as handle:
                pem = pem.rstrip(b"\n") + b"\n" + handle.read()
        fd = os.memfd_create("fleet-mtls-server-pem", os.MFD_CLOEXEC)
        path = "/proc/self/fd/%d" % fd
        try:
            view = memoryview(pem)
            while view:
                view = view[os.write(fd, view):]
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(path)
        except (ssl.SSLError, OSError):
            os.close(fd)
            if attempt == attempts:
                raise
            time.sleep(pause)
            continue
        cfg.set("certfile", path)
        cfg.set("keyfile", path)
        return path
    return None


# --- revocation -------------------------------------------------------------

def checks_crls(context):
    """Whether ``context`` checks the CRL of every CA of a client's chain (and has CRLs to check against)."""
    flags = ssl.VERIFY_CRL_CHECK_CHAIN
    return (context.verify_flags & flags) == flags and context.cert_store_stats().get("crl", 0) > 0


def check_revocation(context, crl_path=None):
    """Make ``context`` refuse a peer certificate revoked by the CRL of any CA of its chain; returns it.

    Loads the PEM CRLs of ``crl_path`` (default: the one given to
    configure()) into the context's store and sets
    ``ssl.VERIFY_CRL_CHECK_CHAIN``. OpenSSL then wants a CRL for every CA of
    the chain (root included): a CA without one refuses the chain ("unable
    to get certificate CRL"), and so does a CRL past its next update ("CRL
    has expired"). Raises (OSError, ssl.SSLError, ValueError) rather than
    return a context that does not check: a file that cannot be read, or
    holds no CRL.

    Also clears ``ssl.VERIFY_X509_PARTIAL_CHAIN``, which Python 3.13's
    create_default_context() sets (gunicorn 23 on Debian 13): with it, a CA
    bundle that also holds the issuing CA ends the chain there, and OpenSSL
    cannot check that CA against the root's CRL, so that every client is
    refused ("unable to get certificate CRL"). Without it the chain always
    runs up to a self-signed root of the bundle, as on Python 3.11 and in
    nginx and HAProxy: only stricter, never more lenient.
    """
    crl_path = crl_path or _settings["crl_path"]
    if not crl_path:
        raise ValueError("check_revocation: no CRL file configured")
    crls_before = context.cert_store_stats().get("crl", 0)
    context.load_verify_locations(cafile=crl_path)
    if context.cert_store_stats().get("crl", 0) <= crls_before:
        raise ValueError("check_revocation: %s holds no CRL" % crl_path)
    context.verify_flags = ((context.verify_flags | ssl.VERIFY_CRL_CHECK_CHAIN)
                            & ~getattr(ssl, "VERIFY_X509_PARTIAL_CHAIN", 0))
    return context


def server_context(certfile, keyfile=None, ca_certs=None, cert_reqs=ssl.CERT_NONE, ciphers=None):
    """The server context gunicorn 23 builds for a connection (``gunicorn.sock.ssl_context``), for gunicorn 20.1.

    Trusts ``ca_certs`` alone, never the system's trust store: without
    ``ca_certs`` it refuses (ValueError).
    """
    if not ca_certs:
        raise ValueError("server_context: ca_certs (the CA bundle client certificates must chain to) is required")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca_certs)
    context.load_cert_chain(certfile=certfile, keyfile=keyfile)
    context.verify_mode = cert_reqs
    if ciphers:
        context.set_ciphers(ciphers)
    return context


def _file_signature(path):
    """What changes when a file is replaced (the certificate role renames a new one in place) or edited."""
    info = os.stat(path)
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


class CloseNotifySocket(ssl.SSLSocket):
    """A server-side TLS connection that ends with a close_notify, and never waits for the client's.

    gunicorn closes a connection with ``close()`` alone: the socket's file
    descriptor is closed without a TLS close_notify, so the client reads a
    bare end of stream. A client that does not take that for a clean end
    (OpenSSL 3 without ``SSL_OP_IGNORE_UNEXPECTED_EOF``: Python's default
    client context on Debian 13, not on Debian 12) reports "unexpected eof
    while reading", and OpenSSL 3.5 (Debian 13) then marks the session it
    got on that connection not resumable.

    When the socket is really closed (``_real_close``, which ``close()``
    calls once no ``makefile()`` holds the socket) after a completed
    handshake, it sets the socket non-blocking and shuts TLS down once: the
    first ``SSL_shutdown`` writes close_notify, the second tries to read the
    client's and, finding none yet, ends at once with ``SSLWantReadError``;
    a close_notify the client already sent ends it cleanly. Either way the
    socket is then closed as before, so a sync worker never waits on a
    client. Any error of the shutdown (``OSError``, ``ValueError``: a
    client gone, a full send buffer, a connection that failed) is left
    unreported: the connection is being closed, and gunicorn ignores errors
    of ``close()`` too. A handshake that did not complete (a refused
    certificate) gets no close_notify, and neither does a connection
    gunicorn aborts with ``shutdown()`` (an error after the response's
    headers), which drops the TLS object first: its client sees a truncated
    response as such.

    Installed with the documented ``SSLContext.sslsocket_class`` attribute on
    the context :class:`WorkerContext` hands out: both gunicorn's
    ``ssl_wrap_socket()`` (21 and later) and :class:`WrapSocketShim`
    (20.1) wrap with ``context.wrap_socket()``.
    """

    def _real_close(self):
        sslobj = self._sslobj
        if sslobj is not None and sslobj.version() is not None:  # version(): None until the handshake completes
            try:
                self.setblocking(False)
                sslobj.shutdown()
            except (OSError, ValueError):
                pass
        super()._real_close()


class WorkerContext:
    """A worker's TLS context: built once, shared by its connections, built again when its trust files change.

    gunicorn builds a new context for every connection: each handshake then
    reads and parses the CA bundle, the CRLs and the certificate again, and
    no TLS session can resume, since a session lives in the context that made
    it. get() returns the context it built last while the files it was built
    from (``paths``: the CA bundle and the CRL file) and ``options`` are
    unchanged, and builds a new one otherwise. The new context's
    session-ticket key and session cache are new, so a session from before
    the change cannot resume: the client makes a full handshake, verified
    against the new files. Every context it returns wraps connections as
    :class:`CloseNotifySocket`, so that clients keep their sessions.

    A file that cannot be read is never cached around: build() runs, and
    fails as gunicorn's own per-connection build would. A file replaced
    while get() builds is seen at the next connection, which builds again.

    Safe to call from several threads (:class:`ThreadWorker`'s): get()
    builds under a lock, so that callers that find the files changed at
    the same time wait for one build and return the context it made, and a
    context is handed out only once it is whole (its CRLs loaded, its
    socket class set). The key is read before the build, never after: a
    context is never kept under a key newer than the files it read.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._key = None
        self._context = None

    def get(self, build, paths, options=()):
        try:
            key = (tuple(options), tuple((path, _file_signature(path)) for path in paths if path))
        except OSError:
            key = None
        with self._lock:
            if key is None or key != self._key:
                self._context = self._key = None
                context = build()
                context.sslsocket_class = CloseNotifySocket
                if key is None:
                    return context
                self._context, self._key = context, key
            return self._context


# The context of this process's connections (a worker's, after the fork).
_worker_context = WorkerContext()


def worker_ssl_context(conf, default_ssl_context_factory, crl_path=None):
    """The ``ssl_context`` hook of gunicorn 21 and later: gunicorn's context plus the CRL check, kept per worker.

    ``crl_path`` defaults to the one given to configure().
    """
    crl_path = crl_path or _settings["crl_path"]
    return _worker_context.get(
        lambda: check_revocation(default_ssl_context_factory(), crl_path),
        (conf.ca_certs, crl_path), (conf.certfile, conf.keyfile, conf.cert_reqs, conf.ciphers))


class WrapSocketShim:
    """Module ``ssl`` as gunicorn 20.1's sync worker sees it, with a ``wrap_socket`` that checks CRLs.

    gunicorn 20.1 has no hook for its TLS context: ``SyncWorker.handle()``
    calls ``ssl.wrap_socket(client, server_side=True, **cfg.ssl_options)``
    for every connection. Put in place of the global ``ssl`` of module
    ``gunicorn.workers.sync`` (in a worker process only, by
    install_wrap_socket_shim()), this object answers every other name
    (``SSLError``, ``SSL_ERROR_EOF``, ...) from the real module, and wraps
    with server_context() from the same options plus check_revocation(): the
    context gunicorn 23 builds with the role's ``ssl_context`` hook.
    """

    def __init__(self, module=ssl, crl_path=None):
        self._module = module
        self._crl_path = crl_path
        self._context = WorkerContext()

    def __getattr__(self, name):
        if name == "_module":  # not yet set (copy, pickle): never recurse
            raise AttributeError(name)
        return getattr(self._module, name)

    def context(self, certfile=None, keyfile=None, ca_certs=None, cert_reqs=ssl.CERT_NONE, ciphers=None, **_ignored):
        """The context for a connection, from gunicorn's ``cfg.ssl_options``: kept per worker (WorkerContext).

        ``ssl_version`` is not used, as in gunicorn 23 (create_default_context's protocol).
        """
        crl_path = self._crl_path or _settings["crl_path"]
        return self._context.get(
            lambda: check_revocation(server_context(certfile, keyfile, ca_certs, cert_reqs, ciphers), crl_path),
            (ca_certs, crl_path), (certfile, keyfile, cert_reqs, ciphers))

    def wrap_socket(self, sock, server_side=False, do_handshake_on_connect=True, suppress_ragged_eofs=True, **options):
        if not server_side:
            raise ValueError("WrapSocketShim: only server-side sockets (gunicorn's workers) are wrapped here")
        return self.context(**options).wrap_socket(sock, server_side=True,
                                                   do_handshake_on_connect=do_handshake_on_connect,
                                                   suppress_ragged_eofs=suppress_ragged_eofs)


def install_wrap_socket_shim(worker_module=None, sock_module=None, crl_path=None, caller=("SyncWorker", "handle")):
    """Make gunicorn 20.1's sync or gthread worker check CRLs (see WrapSocketShim); True when installed.

    ``worker_module``: the module whose global ``ssl`` wraps the worker's
    connections (default ``gunicorn.workers.sync``); ``caller``: the class and
    function of that module that calls ``ssl.wrap_socket()``: ``("SyncWorker",
    "handle")`` for the sync worker, ``("TConn", "init")`` for gthread's.

    Does nothing and returns False on gunicorn 21 and later (``gunicorn.sock``
    has ``ssl_context``: the role's ``ssl_context`` hook does it there).
    Raises RuntimeError, rather than serve without the check, when that
    function does not wrap the connections with ``ssl.wrap_socket``.
    """
    if sock_module is None:
        import gunicorn.sock as sock_module
    if hasattr(sock_module, "ssl_context"):
        return False
    if worker_module is None:
        import gunicorn.workers.sync as worker_module
    owner, function = caller
    code = getattr(getattr(getattr(worker_module, owner, None), function, None), "__code__", None)
    names = getattr(code, "co_names", ())
    if "ssl" not in names or "wrap_socket" not in names:
        raise RuntimeError("fleet_mtls_identity: this gunicorn has neither the ssl_context hook nor the "
                           "ssl.wrap_socket() call of gunicorn 20.1's %s.%s.%s: CRLs cannot be checked"
                           % (getattr(worker_module, "__name__", "?"), owner, function))
    current = worker_module.ssl
    real = current._module if isinstance(current, WrapSocketShim) else current
    worker_module.ssl = WrapSocketShim(real, crl_path)
    return True


def connection_context(cfg, worker_module=None):
    """The TLS context a new connection to this worker gets (gunicorn 20.1 with the shim, or 21 and later).

    ``worker_module``: on gunicorn 20.1, the module whose global ``ssl`` wraps
    the worker's connections (default ``gunicorn.workers.sync``).
    """
    import gunicorn.sock
    if hasattr(gunicorn.sock, "ssl_context"):
        return gunicorn.sock.ssl_context(cfg)
    if worker_module is None:
        import gunicorn.workers.sync as worker_module
    shim = worker_module.ssl
    if not isinstance(shim, WrapSocketShim):
        return ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)  # what ssl.wrap_socket builds: no CRL check
    return shim.context(**cfg.ssl_options)


class RoleWorker:
    """What the role's worker classes add to a gunicorn worker class (put it first among the bases).

    With a CRL configured, makes sure every connection's context checks it:
    on gunicorn 20.1 by installing WrapSocketShim, in its own process, in
    the module whose ``ssl.wrap_socket()`` wraps the worker's connections
    (``wrap_socket_in``: the module, and its class and function that make
    the call); on any version by building one connection's context when the
    worker starts and refusing to serve when that does not check CRLs for
    the whole chain (the worker fails to boot, which stops gunicorn). And
    logs every handshake refused because of the client's certificate in the
    JSON access log (``handle_error``, which gunicorn's sync and gthread
    workers both call with no request for an ``ssl.SSLError`` of the
    handshake).
    """

    wrap_socket_in = (None, "SyncWorker", "handle")

    def connection_context(self):
        """The context a new connection to this worker gets now (see the module's connection_context())."""
        return connection_context(self.cfg, self.wrap_socket_in[0])

    def init_process(self):
        # Runs in the worker after post_fork (the pinned certificate);
        # gunicorn's init_process() ends in the request loop.
        crl_path = _settings["crl_path"]
        if crl_path and self.cfg.is_ssl:
            module, owner, function = self.wrap_socket_in
            install_wrap_socket_shim(module, crl_path=crl_path, caller=(owner, function))
            if not checks_crls(self.connection_context()):
                raise RuntimeError("fleet_mtls_identity: a CRL is configured (%s) but this worker's TLS "
                                   "context does not check it: is the ssl_context hook of the role's "
                                   "configuration missing?" % crl_path)
        super().init_process()

    def handle_error(self, req, client, addr, exc):
        access_log = _settings["access_log"]
        if req is None and access_log is not None and isinstance(exc, ssl.SSLError):
            identity = handshake_failure_identity(exc)
            if identity is not None:
                try:
                    access_log.write((addr or ("",))[0], identity, 0, tls_error=str(exc))
                except OSError:
                    self.log.exception("Could not write the access log")
                # The handshake is over: there is no TLS channel to send an HTTP error on.
                self.log.info("TLS handshake refused from %s: %s", (addr or ("",))[0], identity["verify"])
                return
        super().handle_error(req, client, addr, exc)


try:
    import gunicorn.workers.sync as _gunicorn_sync
except ImportError:  # not under gunicorn: the middleware still works
    _gunicorn_sync = None
try:
    import gunicorn.workers.gthread as _gunicorn_gthread
except ImportError:
    _gunicorn_gthread = None

if _gunicorn_sync is not None:

    class SyncWorker(RoleWorker, _gunicorn_sync.SyncWorker):
        """gunicorn's sync worker that also logs refused client certificates in the JSON access log.

        With a CRL configured it also makes sure every connection's context
        checks it (RoleWorker). One connection at a time, each closed after
        its response: no keep-alive.
        """

        wrap_socket_in = (_gunicorn_sync, "SyncWorker", "handle")

if _gunicorn_gthread is not None:

    class ThreadWorker(RoleWorker, _gunicorn_gthread.ThreadWorker):
        """gunicorn's gthread worker (keep-alive, ``threads``) with every guarantee of :class:`SyncWorker`.

        The same CRL check and access log (RoleWorker): on gunicorn 20.1 the
        shim goes into ``gunicorn.workers.gthread``, whose ``TConn.init()``
        wraps each connection with ``ssl.wrap_socket``. One context per
        worker, shared by its threads (:class:`WorkerContext`; gthread wraps
        every connection in the worker's main thread, its threads only read
        and write).

        A connection kept alive never outlives a change of trust: once the CA
        bundle or the CRL file changes, a kept-alive connection whose
        context is no longer the one a new connection gets is closed, at its
        next request before it is read (``enqueue_req``) and, idle, within
        about a second (``murder_keepalived``, which gthread's loop calls at
        least once a second): its client connects again, and the new
        handshake is checked against the new files. A request being served
        at the moment of the change ends normally, and its connection is
        closed after it. Without a CRL (no context kept per worker) kept-alive
        connections end only with gunicorn's ``keepalive`` timeout or a reload.

        Stops taking connections as soon as it gets SIGTERM (a reload: new
        workers take them), as the sync worker does. gunicorn's gthread loop
        waits on its poller, which does not watch the wakeup pipe of the
        signal handlers: after SIGTERM it went on waiting, up to a second,
        and accepted one more connection, served with the worker's pinned
        certificate (the old one after a renewal; on gunicorn 23 dropped
        unanswered instead). This class puts that pipe in the poller, so the
        loop wakes at once, and accepts nothing once the worker is stopping.
        What it has accepted it still serves: requests in flight get
        ``graceful_timeout``, a request already arrived on a kept-alive
        connection is answered (``Connection: close``), and a connection
        accepted whose first bytes gunicorn 23 still waits for in its loop is
        handed to a thread rather than dropped. Idle kept-alive connections
        end with the worker, as in gunicorn.

        Refuses ``do_handshake_on_connect``: gthread wraps connections in its
        main loop, where a handshake would hold every connection of the
        worker, and a refused one would end the worker.

        A connection in a thread waits at most gunicorn's ``timeout`` for
        each read or write (the handshake included). gthread's main loop
        keeps reporting to the arbiter while a thread waits, so gunicorn's
        own ``timeout`` never frees a thread held by a client that sends
        nothing, which gunicorn 20.1 hands to a thread as soon as it
        connects (23 waits until it sends). The sync worker is bounded by
        the same ``timeout``: the arbiter kills a worker that waits longer.
        """

        wrap_socket_in = (_gunicorn_gthread, "TConn", "init")
        checks_trust = False

        def init_process(self):
            if self.cfg.is_ssl and self.cfg.do_handshake_on_connect:
                raise RuntimeError("fleet_mtls_identity.ThreadWorker: do_handshake_on_connect must be False "
                                   "(the handshake then runs in a thread, on the first read)")
            self.checks_trust = bool(_settings["crl_path"] and self.cfg.is_ssl)
            super().init_process()

        def current_context(self):
            """The context a new connection gets now, or None when it cannot be built (a trust file unreadable)."""
            try:
                return self.connection_context()
            except (OSError, ValueError):
                return None

        def run(self):
            # The pipe gunicorn's signal handlers write to (set_wakeup_fd), watched as the sync worker's select
            # watches it: SIGTERM wakes the loop at once.
            self.poller.register(self.PIPE[0], selectors.EVENT_READ, self.drain_wakeup)
            super().run()

        def drain_wakeup(self, fd):
            try:
                os.read(fd, 4096)
            except OSError:  # empty (non-blocking)
                pass

        def accept(self, server, listener):
            if self.alive:  # stopping: the connection is left to the new workers
                super().accept(server, listener)

        def serve_accepted(self):
            """Hand to the threads the connections accepted whose first bytes the loop still waits for (gunicorn 23):
            the loop is ending, and would drop them unanswered."""
            readable = getattr(self, "on_client_socket_readable", None)  # not in 20.1, which hands them at once
            with self._lock:
                waiting = [key for key in self.poller.get_map().values()
                           if isinstance(key.data, functools.partial) and key.data.func == readable
                           and not key.data.args[0].initialized]
            for key in waiting:
                key.data(key.fileobj)

        def handle(self, conn):
            # In the thread, before the first read (the handshake): no wait on the client beyond timeout.
            conn.sock.settimeout(self.cfg.timeout or None)
            return super().handle(conn)

        def enqueue_req(self, conn):
            # A kept-alive connection (its parser exists) made before a change of trust: closed, not served.
            if self.checks_trust and conn.parser is not None and conn.sock.context is not self.current_context():
                self.nr_conns -= 1
                conn.close()
                return
            super().enqueue_req(conn)

        def murder_keepalived(self):
            # Called at the end of each turn of the loop, the last one included.
            super().murder_keepalived()
            if not self.alive:
                self.serve_accepted()
            if not (self.checks_trust and self._keep):
                return
            current = self.current_context()
            with self._lock:
                stale = [conn for conn in self._keep if conn.sock.context is not current]
                for conn in stale:
                    self._keep.remove(conn)
                    try:
                        self.poller.unregister(conn.sock)
                    except (OSError, KeyError, ValueError):
                        pass
            for conn in stale:
                self.nr_conns -= 1
                conn.close()
