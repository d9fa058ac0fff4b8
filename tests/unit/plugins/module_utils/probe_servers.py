# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real TLS servers on 127.0.0.1 for the tls_probe tests, and the certificates they use.

Every server listens on an ephemeral loopback port, bounds each of its waits,
and is stopped by the test fixture that started it. An openssl s_server also
ends with the process that started it: a test runner that forks a process
per test (ansible-test units) never runs a module fixture's teardown.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

from cryptography import x509

from ansible_collections.fleet.mtls.plugins.module_utils import _crl
from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _x509

DAY = datetime.timedelta(days=1)
LOOPBACK = "127.0.0.1"
SERVER_NAME = "server.probe.test"
OPENSSL = shutil.which("openssl")
TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


class ProbePki(object):
    """Two CAs, server certificates good and bad, every kind of client certificate, as PEM files, and a CRL."""

    def __init__(self, directory):
        self.directory = str(directory)
        self.certs = {}
        self.now = c.utcnow().replace(microsecond=0)
        self.ca_key = c.generate_private_key("ec")
        self.ca = _x509.build_ca_certificate(self.ca_key, {"CN": "Probe Test CA", "O": "Fleet, Test"},
                                             self.now - 30 * DAY, self.now + 365 * DAY)
        self.other_key = c.generate_private_key("ec")
        self.other = _x509.build_ca_certificate(self.other_key, {"CN": "Other Test CA"},
                                                self.now - 30 * DAY, self.now + 365 * DAY)
        self.ca_path = self._write_pem("ca.pem", _x509.certificate_pem(self.ca))
        self.other_ca_path = self._write_pem("other-ca.pem", _x509.certificate_pem(self.other))
        self.both_cas_path = self._write_pem("both-cas.pem", _x509.certificate_pem(self.ca)
                                             + _x509.certificate_pem(self.other))
        self.server = self.leaf("server", ["DNS:" + SERVER_NAME, "IP:127.0.0.1"], ["serverAuth"])
        # Server certificates a client must not trust for SERVER_NAME.
        self.expired_server = self.leaf("expired-server", ["DNS:" + SERVER_NAME, "IP:127.0.0.1"], ["serverAuth"],
                                        not_before=self.now - 20 * DAY, not_after=self.now - DAY)
        self.self_signed_server = self.self_signed("self-signed-server", SERVER_NAME, "serverAuth")
        self.wrong_name_server = self.leaf("wrong-name-server", ["DNS:elsewhere.probe.test"], ["serverAuth"])
        self.client = self.leaf("client", ["DNS:client.probe.test"], ["clientAuth"])
        self.other_client = self.leaf("other-client", ["DNS:other.probe.test"], ["clientAuth"],
                                      ca=self.other, ca_key=self.other_key)
        self.expired_client = self.leaf("expired-client", ["DNS:expired.probe.test"], ["clientAuth"],
                                        not_before=self.now - 20 * DAY, not_after=self.now - DAY)
        self.server_auth_client = self.leaf("serverauth-client", ["DNS:serverauth.probe.test"], ["serverAuth"])
        self.self_signed_client = self.self_signed("self-signed-client", "self.probe.test", "clientAuth")
        self.encrypted_client = self.leaf("encrypted-client", ["DNS:encrypted.probe.test"], ["clientAuth"],
                                          passphrase="probe-secret")
        self.revoked_client = self.leaf("revoked-client", ["DNS:revoked.probe.test"], ["clientAuth"])
        revoked = _crl.Revocation(c.serial_hex(self.certs["revoked-client"].serial_number), self.now - DAY,
                                  "key_compromise")
        self.crl_path = self._write_pem("ca.crl", _crl.crl_pem(
            _crl.build_crl(self.ca, self.ca_key, [revoked], 1, self.now, 7)))

    def _write_pem(self, name, data):
        path = os.path.join(self.directory, name)
        with open(path, "wb") as handle:
            handle.write(data)
        return path

    def leaf(self, name, sans, ekus, ca=None, ca_key=None, not_before=None, not_after=None, passphrase=None):
        """(cert path, key path) of a leaf made with the core: key, CSR, then the signature."""
        key = c.generate_private_key("ec")
        names = _x509.build_sans(sans)
        csr = _x509.build_csr(key, {"CN": sans[0].split(":", 1)[1]}, names, extended_key_usage=ekus)
        cert = _x509.build_leaf_certificate(csr, _x509.common_name(csr.subject), ca or self.ca, ca_key or self.ca_key, names, ekus,
                                            not_before or self.now - DAY, not_after or self.now + 30 * DAY,
                                            _x509.random_serial())
        self.certs[name] = cert
        cert_path = self._write_pem(name + ".crt", _x509.certificate_pem(cert))
        key_path = self._write_pem(name + ".key", c.serialize_private_key(key, passphrase))
        return cert_path, key_path

    def self_signed(self, name, dns_name, eku):
        """A self-signed end-entity certificate (not a CA) for eku, which nothing trusts."""
        key = c.generate_private_key("ec")
        subject = _x509.build_name({"CN": dns_name})
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                .public_key(key.public_key()).serial_number(_x509.random_serial())
                .not_valid_before(self.now - DAY).not_valid_after(self.now + 30 * DAY)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(_x509.build_extended_key_usage([eku]), critical=False)
                .add_extension(x509.SubjectAlternativeName(_x509.build_sans(["DNS:" + dns_name])), critical=False)
                .sign(key, c.signature_hash(key)))
        return (self._write_pem(name + ".crt", _x509.certificate_pem(cert)),
                self._write_pem(name + ".key", c.serialize_private_key(key)))


def _free_socket():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK, 0))
    sock.listen(16)
    sock.settimeout(0.2)
    return sock


class _ThreadedServer(object):
    """Accept loop in a thread, one thread per connection, every wait bounded."""

    connection_timeout = 5.0

    def __init__(self):
        self.sock = _free_socket()
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.handshakes = 0
        self.errors = []
        self._stop = threading.Event()
        self._threads = []
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                conn, _addr = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            conn.settimeout(self.connection_timeout)
            thread = threading.Thread(target=self._handle_safely, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _handle_safely(self, conn):
        try:
            self.handle(conn)
        except (OSError, ValueError) as exc:
            self.errors.append(exc)
        finally:
            conn.close()

    def handle(self, conn):
        raise NotImplementedError

    def stop(self):
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
        for thread in self._threads:
            thread.join(2)


def _read_request(tls, limit=65536):
    data = b""
    while b"\r\n\r\n" not in data and len(data) < limit:
        chunk = tls.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


class PythonTLSServer(_ThreadedServer):
    """Python's ssl server: client certificates required or optional, one TLS version, a tiny HTTP answer."""

    def __init__(self, pki, verify_mode, version, body=None, extra_headers=(), crl=False):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*pki.server)
        context.load_verify_locations(cafile=pki.ca_path)
        if crl:
            context.load_verify_locations(cafile=pki.crl_path)
            context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
        context.verify_mode = verify_mode
        context.minimum_version = context.maximum_version = TLS_VERSIONS[version]
        self.context = context
        self.body = body
        self.extra_headers = list(extra_headers)
        super(PythonTLSServer, self).__init__()

    def handle(self, conn):
        try:
            tls = self.context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            return  # the refusal (alert) is already sent
        with tls:
            self.handshakes += 1
            request = _read_request(tls)
            if not request:
                return
            peer = tls.getpeercert()
            who = "anonymous"
            if peer:
                who = dict(item[0] for item in peer["subject"]).get("commonName", "?")
            body = self.body if self.body is not None else ("hello %s\n" % who).encode("utf-8")
            head = ["HTTP/1.1 200 OK", "Content-Type: text/plain; charset=utf-8", "Content-Length: %d" % len(body),
                    "Connection: close"] + self.extra_headers
            tls.sendall(("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body)


_ALERT = 21
_HANDSHAKE = 22
_CERTIFICATE = 11


class RecordingTLSServer(_ThreadedServer):
    """Python's ssl server that asks every client for a certificate and records what each one sent.

    It serves cert (a (cert path, key path) pair) at one TLS version and
    trusts the test CA; verify_mode CERT_OPTIONAL (the default) lets a client
    without a certificate finish the handshake. Its handshake hook sees every
    message a client sends, also in a handshake that fails later:
    ``client_certificates`` holds, for each Certificate message a client sent,
    how many certificates it carried (0 for the empty answer of a client
    without one), and ``alerts`` the alert descriptions clients sent.
    ``received`` is every byte of application data read (the request); a
    connection that sent one gets a 200 answer.
    """

    def __init__(self, pki, cert, version, verify_mode=ssl.CERT_OPTIONAL):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*cert)
        context.load_verify_locations(cafile=pki.ca_path)
        context.verify_mode = verify_mode
        context.minimum_version = context.maximum_version = TLS_VERSIONS[version]
        context._msg_callback = self._record
        self.context = context
        self.tls13 = version == "1.3"
        self.client_certificates = []
        self.alerts = []
        self.received = b""
        super(RecordingTLSServer, self).__init__()

    def _record(self, conn, direction, version, content_type, msg_type, data):
        if direction != "read":
            return
        data = bytes(data)
        if content_type == _ALERT and len(data) >= 2:
            self.alerts.append(data[1])
        elif content_type == _HANDSHAKE and data[:1] == bytes([_CERTIFICATE]):
            self.client_certificates.append(self._certificate_count(data[4:]))

    def _certificate_count(self, body):
        """Certificates in a Certificate message body (RFC 8446 4.4.2; RFC 5246 7.4.2)."""
        pos = 1 + body[0] if self.tls13 else 0  # TLS 1.3's certificate_request_context
        end = pos + 3 + int.from_bytes(body[pos:pos + 3], "big")
        pos += 3
        count = 0
        while pos < end:
            pos += 3 + int.from_bytes(body[pos:pos + 3], "big")
            if self.tls13:
                pos += 2 + int.from_bytes(body[pos:pos + 2], "big")  # the entry's extensions
            count += 1
        return count

    @property
    def certificates_presented(self):
        """How many Certificate messages carried at least one certificate."""
        return len([count for count in self.client_certificates if count])

    def handle(self, conn):
        try:
            tls = self.context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            return
        with tls:
            self.handshakes += 1
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = tls.recv(4096)
                if not chunk:
                    return
                request += chunk
                self.received += chunk
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")


class ClosingTLSServer(_ThreadedServer):
    """Completes the handshake, then closes the TCP connection without a TLS alert or close_notify."""

    def __init__(self, pki, version):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(*pki.server)
        self.context.minimum_version = self.context.maximum_version = TLS_VERSIONS[version]
        super(ClosingTLSServer, self).__init__()

    def handle(self, conn):
        try:
            tls = self.context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            return
        self.handshakes += 1
        # SSLSocket.shutdown() shuts the TCP connection under TLS: no alert, no close_notify.
        tls.shutdown(socket.SHUT_RDWR)
        tls.close()


class RawServer(_ThreadedServer):
    """Not TLS at all: sends a fixed greeting (or nothing) and closes."""

    def __init__(self, greeting=b""):
        self.greeting = greeting
        super(RawServer, self).__init__()

    def handle(self, conn):
        if self.greeting:
            conn.sendall(self.greeting)
        conn.shutdown(socket.SHUT_RDWR)


def unused_port():
    """A loopback port nobody listens on (bound, then released)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((LOOPBACK, 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _end_with_parent():
    """In the child before exec: SIGTERM when the process that started it ends (Linux; elsewhere nothing)."""
    name = ctypes.util.find_library("c")
    if name:
        ctypes.CDLL(name, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class OpenSSLServer(object):
    """``openssl s_server -www`` on an ephemeral loopback port; the port is read from its ACCEPT line."""

    def __init__(self, pki, require, version, log_dir, crl=False):
        self.log_path = os.path.join(str(log_dir), "s_server-%s-%s-%d.log"
                                     % ("required" if require else "optional", version, id(self)))
        args = [OPENSSL, "s_server", "-accept", LOOPBACK + ":0", "-www",
                "-cert", pki.server[0], "-key", pki.server[1], "-CAfile", pki.ca_path,
                "-Verify" if require else "-verify", "1", "-verify_return_error",
                "-tls1_3" if version == "1.3" else "-tls1_2"]
        if crl:
            args += ["-CRL", pki.crl_path, "-crl_check"]
        self.log = open(self.log_path, "wb")
        # preexec_fn calls prctl() only.
        # pylint: disable-next=subprocess-popen-preexec-fn
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
                                        preexec_fn=_end_with_parent)
        self.port = None
        deadline = time.monotonic() + 10
        while self.port is None and time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            with open(self.log_path, "rb") as handle:
                for line in handle.read().decode("utf-8", "replace").splitlines():
                    if line.startswith("ACCEPT ") and ":" in line:
                        self.port = int(line.rsplit(":", 1)[1])
            if self.port is None:
                time.sleep(0.05)
        if self.port is None:
            self.stop()
            with open(self.log_path, "rb") as handle:
                raise RuntimeError("openssl s_server did not start: %s" % handle.read().decode("utf-8", "replace"))

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.log.close()
