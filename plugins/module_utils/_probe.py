# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Probe a TLS server as a client does, and say what the server made of us.

``probe()`` opens one connection (SNI, verification of the server against a
bundle, optional client certificate), always reads once after the handshake
(under TLS 1.3 a server refuses a client certificate only then, with an
alert) and classifies what happened in one word, the ``outcome``.

The client certificate and the HTTP request go only to a server whose
certificate verified: OpenSSL checks the server's certificate as soon as it
arrives, before the client's own flight, and the request waits for the end of
the handshake. A probe told not to verify (``verify_server=False``) presents
no certificate and sends no request; it only shows what the server offers.

Python's ssl module has no public API for what the server asked of us, so
the handshake is watched through ``SSLContext._msg_callback`` (private, in
CPython 3.8 to 3.13): it sees every handshake message, TLS 1.3's encrypted
ones included, which gives the CertificateRequest and the certificate
authorities it names, the ServerHello and the server's certificate even when
the handshake fails. Without the hook those facts are None.

Everything here is plain functions and data, so unit tests drive it against
real servers; the module only maps options to ``probe()``.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time

from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _der_name
from ansible_collections.fleet.mtls.plugins.module_utils import _files
from ansible_collections.fleet.mtls.plugins.module_utils import _tls_wire as w
from ansible_collections.fleet.mtls.plugins.module_utils import _x509
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError

if c.HAS_CRYPTOGRAPHY:
    from cryptography import x509

OUTCOMES = ("accepted", "rejected_no_client_cert", "rejected_untrusted_client_cert", "server_cert_untrusted",
            "connection_failed", "protocol_error")
HANDSHAKE_STATES = ("ok", "failed")
TLS_VERSIONS = ("1.2", "1.3")

HAS_MSG_CALLBACK = hasattr(ssl.SSLContext, "_msg_callback")

USER_AGENT = "fleet.mtls-tls_probe"


# --- watching the handshake -------------------------------------------------------


class HandshakeRecorder(object):
    """The SSLContext._msg_callback: what the server sent and asked for.

    It never raises (an exception there would surface in the handshake);
    a message it cannot parse is noted in ``parse_errors``.
    """

    def __init__(self):
        self.version = None
        self.cipher_suite = None
        self.server_flight_done = False
        self.certificate_request_seen = False
        self.ca_names_der = []
        self.server_certs_der = []
        self.client_cert_sent = None
        self.alerts_received = []
        self.parse_errors = []

    def __call__(self, conn, direction, version, content_type, msg_type, data):
        try:
            self.record(direction, int(version), int(content_type), bytes(data))
        except (ValueError, TypeError, IndexError) as exc:
            self.parse_errors.append(str(exc))

    def record(self, direction, version, content_type, data):
        received = direction == "read"
        if content_type == w.CONTENT_ALERT and received and len(data) >= 2:
            self.alerts_received.append((data[0], data[1]))
            return
        if content_type != w.CONTENT_HANDSHAKE or len(data) < 4:
            return
        msg_type = data[0]
        body = data[4:4 + int.from_bytes(data[1:4], "big")]
        # Until the ServerHello is read the callback's version is the client's
        # highest; after it, the negotiated one.
        tls_version = self.version or version
        if received and msg_type == w.SERVER_HELLO:
            self.version, self.cipher_suite = w.parse_server_hello(body)
        elif received and msg_type == w.CERTIFICATE_REQUEST:
            self.certificate_request_seen = True
            self.ca_names_der = w.parse_certificate_request(body, tls_version)
        elif received and msg_type == w.CERTIFICATE and not self.server_certs_der:
            self.server_certs_der = w.parse_certificate_message(body, tls_version)
        elif received and msg_type in (w.SERVER_HELLO_DONE, w.FINISHED):
            # TLS 1.2's ServerHelloDone and TLS 1.3's server Finished end the flight
            # that would carry a CertificateRequest.
            self.server_flight_done = True
        elif not received and msg_type == w.CERTIFICATE:
            self.client_cert_sent = bool(w.parse_certificate_message(body, tls_version))

    def cert_requested(self):
        """True, False, or None when the server's flight was not seen to its end."""
        if self.certificate_request_seen:
            return True
        return False if self.server_flight_done else None

    def fatal_alert(self):
        """The description of the last alert received, close_notify aside; None when none."""
        for _level, description in reversed(self.alerts_received):
            if description != w.CLOSE_NOTIFY:
                return description
        return None


# --- options --------------------------------------------------------------------


def _tls_version(value, option):
    if value is None:
        return None
    if value not in TLS_VERSIONS:
        raise PkiError("%s must be one of %s, not %r" % (option, ", ".join(TLS_VERSIONS), value))
    return ssl.TLSVersion.TLSv1_3 if value == "1.3" else ssl.TLSVersion.TLSv1_2


def _no_line_breaks(value, what):
    text = str(value)
    if "\r" in text or "\n" in text:
        raise PkiError("%s must not contain a line break" % what)
    return text


class ProbeOptions(object):
    """The checked values of a probe. No file is read here: load() also checks the files.

    A probe verifies the server against ca_bundle_path unless verify_server is
    false; then it has no bundle, no client certificate and no request to send.
    ``http`` is the request's parts (method, path, host, headers), made into
    the bytes to send by http_request().
    """

    def __init__(self, host, port=443, server_name=None, client_cert_path=None, client_key_path=None,
                 client_key_passphrase=None, ca_bundle_path=None, min_tls_version=None, max_tls_version=None,
                 timeout=10.0, http=None, body_bytes=4096, alert_wait=1.0, verify_server=True):
        self.verify_server = bool(verify_server)
        if self.verify_server and not ca_bundle_path:
            raise PkiError("tls_probe verifies the server: give ca_bundle_path, or verify_server: false to probe "
                           "without verifying")
        if not self.verify_server:
            if ca_bundle_path:
                raise PkiError("ca_bundle_path and verify_server: false exclude each other: drop verify_server to "
                               "verify the server against the bundle, or ca_bundle_path to probe without verifying")
            if client_cert_path:
                raise PkiError("client_cert_path needs a verified server: tls_probe presents a client certificate "
                               "only to a server whose certificate verified against ca_bundle_path, never with "
                               "verify_server: false")
            if http is not None:
                raise PkiError("http_path needs a verified server: tls_probe sends a request only to a server whose "
                               "certificate verified against ca_bundle_path, never with verify_server: false")
        if not host:
            raise PkiError("host is empty")
        if not 0 < int(port) < 65536:
            raise PkiError("port %s is out of range" % port)
        if not timeout or timeout <= 0:
            raise PkiError("timeout must be positive")
        if alert_wait is None or alert_wait <= 0:
            raise PkiError("alert_wait must be positive")
        if body_bytes is None or body_bytes < 0:
            raise PkiError("body_bytes must not be negative")
        if client_key_path and not client_cert_path:
            raise PkiError("client_key_path needs client_cert_path")
        self.host = host
        self.port = int(port)
        self.server_name = server_name or host
        self.timeout = float(timeout)
        self.alert_wait = float(alert_wait)
        self.body_bytes = int(body_bytes)
        self.min_version = _tls_version(min_tls_version, "min_tls_version")
        self.max_version = _tls_version(max_tls_version, "max_tls_version")
        if self.min_version and self.max_version and self.min_version > self.max_version:
            raise PkiError("min_tls_version %s is above max_tls_version %s" % (min_tls_version, max_tls_version))
        self.ca_bundle_path = ca_bundle_path
        self.client_cert_path = client_cert_path
        self.client_key_path = client_key_path
        self.client_key_passphrase = client_key_passphrase
        self.http = None if http is None else http_request(http, self.server_name, self.port)

    @classmethod
    def load(cls, *args, **kwargs):
        """ProbeOptions whose files were read and checked, so that a probe fails early and clearly."""
        options = cls(*args, **kwargs)
        check_files(options)
        return options


def check_files(options):
    """Read the bundle and the client credentials of options: PkiError when one is missing, unreadable,
    not what it should be, or when the client's certificate and key do not match."""
    if options.verify_server:
        _x509.load_certificates(_files.read_required(options.ca_bundle_path, "CA bundle"),
                                source="CA bundle %s" % options.ca_bundle_path)
    cert_path, key_path = options.client_cert_path, options.client_key_path
    if not cert_path:
        return
    cert_data = _files.read_required(cert_path, "client certificate")
    cert = _x509.load_certificate(cert_data, source="client certificate %s" % cert_path)
    if key_path:
        key_data = _files.read_required(key_path, "client key")
        key_source = "client key %s" % key_path
    elif c.has_private_key(cert_data):
        key_data, key_source = cert_data, "key in client certificate %s" % cert_path
    else:
        raise PkiError("client certificate %s holds no private key: set client_key_path" % cert_path)
    key = c.load_private_key(key_data, options.client_key_passphrase, source=key_source)
    if not c.same_public_key(cert.public_key(), key):
        raise PkiError("client certificate %s and %s do not match" % (cert_path, key_source))


def http_request(http, server_name, port):
    """The HTTP/1.1 request of a probe: dict(method, request bytes). Refuses what would split the request:
    a line break anywhere, a space in the path, a header name that is not one."""
    method = _no_line_breaks(http.get("method") or "GET", "http_method").upper()
    if not method.isalpha():
        raise PkiError("http_method %r is not an HTTP method" % method)
    path = _no_line_breaks(http.get("path") or "/", "http_path")
    if " " in path or "\t" in path:
        raise PkiError("http_path %r must not contain spaces (percent-encode them)" % path)
    host_header = http.get("host")
    if not host_header:
        host_header = server_name
        if ":" in host_header:
            host_header = "[%s]" % host_header
        if port != 443:
            host_header = "%s:%d" % (host_header, port)
    headers = [("Host", _no_line_breaks(host_header, "http_host")), ("User-Agent", USER_AGENT),
               ("Accept", "*/*"), ("Connection", "close")]
    for name, value in sorted((http.get("headers") or {}).items()):
        name = _no_line_breaks(name, "http_headers")
        if not name or ":" in name or " " in name:
            raise PkiError("http_headers: %r is not a header name" % name)
        headers = [h for h in headers if h[0].lower() != name.lower()]
        headers.append((name, _no_line_breaks(value, "http_headers.%s" % name)))
    lines = ["%s %s HTTP/1.1" % (method, path)] + ["%s: %s" % header for header in headers]
    return dict(method=method, request=("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))


def client_context(options, verify):
    """The SSLContext of one attempt.

    Verifying, it checks the server's chain and name against the bundle and
    holds the client certificate; not verifying, it holds no certificate at
    all, so that none can go to a server nobody checked.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        context.load_verify_locations(cafile=options.ca_bundle_path)
        context.check_hostname = True
        context.verify_mode = ssl.CERT_REQUIRED
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if options.min_version is not None:
        context.minimum_version = options.min_version
    if options.max_version is not None:
        context.maximum_version = options.max_version
    if verify and options.client_cert_path:
        try:
            context.load_cert_chain(options.client_cert_path, options.client_key_path,
                                    password=options.client_key_passphrase or None)
        except (ssl.SSLError, OSError) as exc:
            raise PkiError("client certificate %s could not be used: %s" % (options.client_cert_path, exc))
    if hasattr(context, "post_handshake_auth"):
        # Lets a TLS 1.3 server ask for the certificate after the handshake
        # (Apache's per-location client authentication does).
        context.post_handshake_auth = True
    return context


# --- one attempt ------------------------------------------------------------------


def _empty_facts(options):
    return dict(
        host=options.host, port=options.port, server_name=options.server_name,
        handshake="failed", outcome=None, alert=None, error=None,
        protocol=None, cipher=None,
        client_cert_requested=None, client_ca_names=None,
        server_cert=None, server_cert_verified=None, verify_error=None,
        status=None, reason=None, headers=None, body=None,
    )


def _alert_of(exc, recorder):
    """(alert code, OpenSSL's text) of the alert the server sent, or (None, None)."""
    code = recorder.fatal_alert()
    reason = getattr(exc, "reason", None) if exc is not None else None
    if code is None and reason in w.ALERT_BY_REASON:
        code = w.ALERT_BY_REASON[reason]
    if code is None:
        return None, None
    name = reason if w.ALERT_BY_REASON.get(reason) == code else w.ALERTS.get(code)
    return code, name.lower().replace("_", " ") if name else "tls alert %d" % code


def classify_alert(code, cert_sent, cert_requested):
    """The outcome an alert from the server means."""
    if code in w.NO_CLIENT_CERT:
        return "rejected_no_client_cert"
    if code in w.CLIENT_CERT_REJECTIONS:
        return "rejected_no_client_cert" if cert_sent is False else "rejected_untrusted_client_cert"
    if code == w.HANDSHAKE_FAILURE and cert_requested and cert_sent is False:
        return "rejected_no_client_cert"
    return "protocol_error"


def _is_closed(exc):
    """An error that only says the peer closed the connection (no alert)."""
    return isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionError, EOFError))


def connect(options):
    """The TCP connection of one attempt, with TCP_NODELAY: the probe's few small writes go out at once."""
    raw = socket.create_connection((options.host, options.port), timeout=options.timeout)
    try:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        raw.close()
        raise
    return raw


class _Attempt(object):
    """One connection: connect, handshake, then the read that hears a TLS 1.3 verdict.

    Only a verifying attempt presents the client certificate and sends the
    request, so both reach a server only after its certificate verified.
    """

    def __init__(self, options, verify, wait_after):
        self.options = options
        self.verify = verify
        self.client_cert = verify and bool(options.client_cert_path)
        self.send_http = verify and options.http is not None
        self.wait_after = wait_after
        self.context = client_context(options, verify)
        self.recorder = HandshakeRecorder()
        if HAS_MSG_CALLBACK:
            self.context._msg_callback = self.recorder
        self.facts = _empty_facts(options)
        self.peer_der = None

    def run(self):
        facts = self.facts
        try:
            raw = connect(self.options)
        except socket.gaierror as exc:
            return self._done("connection_failed", "cannot resolve %s: %s" % (self.options.host, exc))
        except socket.timeout:
            return self._done("connection_failed", "timed out after %ss connecting to %s:%d"
                              % (self.options.timeout, self.options.host, self.options.port))
        except OSError as exc:
            return self._done("connection_failed", "cannot connect to %s:%d: %s"
                              % (self.options.host, self.options.port, exc.strerror or exc))
        try:
            tls = self.context.wrap_socket(raw, server_hostname=self.options.server_name,
                                           do_handshake_on_connect=False, suppress_ragged_eofs=False)
        except (ssl.SSLError, ValueError) as exc:
            raw.close()
            return self._done("protocol_error", "cannot start TLS: %s" % exc)
        try:
            try:
                tls.do_handshake()
            except ssl.SSLCertVerificationError as exc:
                facts["server_cert_verified"] = False
                facts["verify_error"] = exc.verify_message or str(exc)
                return self._done("server_cert_untrusted", "the server's certificate did not verify: %s"
                                  % facts["verify_error"])
            except socket.timeout:
                return self._failed(None, "timed out after %ss in the TLS handshake" % self.options.timeout)
            except (ssl.SSLError, OSError) as exc:
                return self._failed(exc, "the TLS handshake failed: %s" % exc, closed_text=(
                    "the server closed the connection during the handshake without a TLS alert"))
            facts["handshake"] = "ok"
            facts["protocol"] = tls.version()
            facts["cipher"] = (tls.cipher() or (None,))[0]
            self.peer_der = tls.getpeercert(binary_form=True)
            if self.verify:
                facts["server_cert_verified"] = True
            if self.send_http:
                return self._http(tls)
            if self.wait_after:
                return self._wait(tls)
            return self._done("accepted")
        finally:
            tls.close()

    def _wait(self, tls):
        """No request to send: a short read; silence or data means accepted, an alert a refusal."""
        tls.settimeout(self.options.alert_wait)
        try:
            data = tls.recv(1)
        except socket.timeout:
            return self._done("accepted")
        except (ssl.SSLError, OSError) as exc:
            return self._failed(exc, "the server ended the connection after the handshake: %s" % exc,
                                closed_text="the server closed the connection right after the handshake, "
                                            "without a TLS alert")
        if data:
            return self._done("accepted")
        return self._failed(None, None, closed_text="the server closed the connection right after the handshake, "
                                                    "without a TLS alert")

    def _http(self, tls):
        facts = self.facts
        options = self.options
        deadline = time.monotonic() + options.timeout
        tls.settimeout(options.timeout)
        try:
            tls.sendall(options.http["request"])
        except (ssl.SSLError, OSError) as exc:
            # The server may have refused us and closed already: its alert may
            # still wait to be read.
            tls.settimeout(min(options.alert_wait, options.timeout))
            try:
                tls.recv(1)
            except (ssl.SSLError, OSError) as read_exc:
                exc = read_exc
            return self._failed(exc, "sending the HTTP request failed: %s" % exc,
                                closed_text="the server closed the connection before the HTTP request")
        response = http.client.HTTPResponse(tls, method=options.http["method"])
        try:
            response.begin()
        except socket.timeout:
            response.close()
            return self._failed(None, "no HTTP response within %ss" % options.timeout)
        except (ssl.SSLError, OSError, http.client.HTTPException) as exc:
            response.close()
            return self._failed(exc, "reading the HTTP response failed: %s" % exc,
                                closed_text="the server closed the connection without an HTTP response")
        facts["status"] = response.status
        facts["reason"] = response.reason
        headers = {}
        for name, value in response.getheaders():
            key = name.lower()
            headers[key] = "%s, %s" % (headers[key], value) if key in headers else value
        facts["headers"] = headers
        body = b""
        try:
            while len(body) < options.body_bytes and time.monotonic() < deadline:
                chunk = response.read1(options.body_bytes - len(body))
                if not chunk:
                    break
                body += chunk
        except (ssl.SSLError, OSError, http.client.HTTPException):
            pass  # a body cut short (timeout, close without close_notify) is still the body read so far
        finally:
            response.close()
        facts["body"] = body.decode("utf-8", "replace")
        return self._done("accepted")

    def _failed(self, exc, text, closed_text=None):
        """Classify an error: a server alert, a close without one, or anything else."""
        code, alert = _alert_of(exc, self.recorder)
        if code is not None:
            self.facts["alert"] = alert
            sent = self.recorder.client_cert_sent
            if sent is None:
                sent = self.client_cert
            outcome = classify_alert(code, sent, self.recorder.cert_requested())
            if outcome != "protocol_error":
                self.facts["handshake"] = "failed"
            return self._done(outcome, "the server sent the alert %r" % alert)
        if closed_text and (exc is None or _is_closed(exc)):
            return self._done("protocol_error", closed_text)
        return self._done("protocol_error", text)

    def _done(self, outcome, error=None):
        self.facts["outcome"] = outcome
        self.facts["error"] = error
        if outcome in ("server_cert_untrusted", "connection_failed"):
            self.facts["handshake"] = "failed"
        return self.facts


# --- the probe --------------------------------------------------------------------


def _cipher_names(context):
    names = {}
    for cipher in context.get_ciphers():
        names[cipher["id"] & 0xFFFF] = cipher["name"]
    return names


def _complete(attempt, facts, now=None):
    """Fill in what the handshake recorder saw, where the socket could not tell."""
    recorder = attempt.recorder
    if facts["protocol"] is None and recorder.version is not None:
        facts["protocol"] = w.PROTOCOL_NAMES.get(recorder.version, "0x%04X" % recorder.version)
    if facts["cipher"] is None and recorder.cipher_suite is not None:
        facts["cipher"] = _cipher_names(attempt.context).get(recorder.cipher_suite, "0x%04X" % recorder.cipher_suite)
    if attempt.verify and facts["server_cert_verified"] is None and recorder.server_flight_done:
        # The client checks the server's certificate as soon as it arrives; a
        # handshake that went on to the end of the server's flight passed that check.
        facts["server_cert_verified"] = True
    if HAS_MSG_CALLBACK and facts["client_cert_requested"] is None:
        requested = recorder.cert_requested()
        facts["client_cert_requested"] = requested
        if requested is not None:
            facts["client_ca_names"] = [_der_name.der_name_to_string(der) for der in recorder.ca_names_der]
    if facts["server_cert"] is None:
        der = attempt.peer_der or (recorder.server_certs_der[0] if recorder.server_certs_der else None)
        if der:
            try:
                cert = x509.load_der_x509_certificate(der)
            except ValueError:
                cert = None
            if cert is not None:
                facts["server_cert"] = _x509.describe_certificate(cert, now)
    return facts


def probe(options, now=None):
    """Probe the server of options (a ProbeOptions); the facts as a dict.

    With options.verify_server, the client certificate and the request go
    out only once the server's certificate verified. When it does not, a
    second handshake (no verification, no client certificate, no request)
    shows what was served and what the server asks of clients.

    Without verify_server, one attempt of that kind, which also waits for the
    server's verdict on a client without a certificate.
    """
    if not options.verify_server:
        attempt = _Attempt(options, verify=False, wait_after=True)
        return _complete(attempt, attempt.run(), now)
    attempt = _Attempt(options, verify=True, wait_after=True)
    facts = _complete(attempt, attempt.run(), now)
    if facts["outcome"] == "server_cert_untrusted":
        second = _Attempt(options, verify=False, wait_after=False)
        second.run()
        for key in ("protocol", "cipher"):
            if facts[key] is None:
                facts[key] = second.facts[key]
        _complete(second, facts, now)
    return facts


# --- expectations -----------------------------------------------------------------
