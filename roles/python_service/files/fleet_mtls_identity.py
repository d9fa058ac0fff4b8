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
:class:`SyncWorker` (the role's gunicorn worker class) logs them in the same
access log with ``tls_client_verify`` = ``FAILED:<reason>`` and status 0.
:func:`pin_server_certificate` (from gunicorn's ``post_fork`` hook) gives each
worker its own copy of the certificate and key, so that a renewal never meets
a connection half-way.

No dependency beyond the standard library (and gunicorn for the worker).
"""

import datetime
import json
import os
import ssl
import threading
import time

__all__ = ["IdentityMiddleware", "peer_identity", "configure", "create_access_log", "AccessLog",
           "pin_server_certificate"]

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
                                      probe=environ.get("HTTP_X_FLEET_MTLS_PROBE", ""))
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
_settings = {"access_log": None, "allowed_spiffe_ids": (), "allowed_common_names": ()}


def configure(access_log_path="", site="", allowed_spiffe_ids=(), allowed_common_names=()):
    """Called from the gunicorn configuration file, in the arbiter, before workers are forked."""
    _settings["access_log"] = AccessLog(access_log_path, site=site) if access_log_path else None
    _settings["allowed_spiffe_ids"] = tuple(allowed_spiffe_ids)
    _settings["allowed_common_names"] = tuple(allowed_common_names)


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


try:
    from gunicorn.workers.sync import SyncWorker as _GunicornSyncWorker
except ImportError:  # not under gunicorn: the middleware still works
    _GunicornSyncWorker = None

if _GunicornSyncWorker is not None:

    class SyncWorker(_GunicornSyncWorker):
        """gunicorn's sync worker that also logs refused client certificates in the JSON access log."""

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
