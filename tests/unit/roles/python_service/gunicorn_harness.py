# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the Python service's tests and its handshake benchmark share: a tiny CA, and real gunicorn with the role's
configuration.

gunicorn executables: FLEET_MTLS_TEST_GUNICORN, separated by ``os.pathsep``
(for example ``/tmp/gunicorn20/bin/gunicorn:/tmp/gunicorn23/bin/gunicorn``),
or ``python -m gunicorn`` when gunicorn is importable.
"""

from __future__ import annotations

import datetime
import importlib.util
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time

import jinja2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROLE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "roles", "python_service"))
FILES = os.path.join(ROLE, "files")

NOW = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
DAY = datetime.timedelta(days=1)


# --- a tiny CA ---------------------------------------------------------------

def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key):
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
        sans = [x509.DNSName(common_name)] + ([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
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
        self.server("server.combined.pem")
        self.clients = {}
        for name in ("good", "revoked", "other"):
            cert, key = self.issuing.issue(name, ExtendedKeyUsageOID.CLIENT_AUTH)
            self.clients[name] = cert
            self.write("%s.pem" % name, pem(cert) + pem(self.issuing.cert) + key_pem(key))
        cert, key = self.outside.issue("outsider", ExtendedKeyUsageOID.CLIENT_AUTH)
        self.write("outsider.pem", pem(cert) + key_pem(key))
        self.write("outside-ca.pem", pem(self.outside.cert))
        self.write("ca-bundle.pem", pem(self.root.cert))
        self.write("ca-bundle-with-issuing.pem", pem(self.root.cert) + pem(self.issuing.cert))
        self.write("crls.pem", self.crls())

    def server(self, name):
        """A new server certificate (localhost, 127.0.0.1) with its chain and key, written to name (as the
        certificate role writes server.combined.pem, renewals included); returns the certificate."""
        cert, key = self.issuing.issue("localhost", ExtendedKeyUsageOID.SERVER_AUTH)
        self.write(name, pem(cert) + pem(self.issuing.cert) + key_pem(key))
        return cert

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


# The role's worker classes: each keeps every TLS guarantee; ThreadWorker (gthread) also keeps connections alive.
WORKER_CLASSES = ("fleet_mtls_identity.SyncWorker", "fleet_mtls_identity.ThreadWorker")


def gunicorns():
    found = [[path] for path in os.environ.get("FLEET_MTLS_TEST_GUNICORN", "").split(os.pathsep) if path]
    if not found and importlib.util.find_spec("gunicorn") is not None:
        found = [[sys.executable, "-m", "gunicorn"]]
    return found


def render_configuration(pki, tmp_path, port, crl_path, allowed_common_names=(),
                         worker_class="fleet_mtls_identity.SyncWorker", threads=1, keepalive=2, timeout=30,
                         certificate="server.combined.pem"):
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.join(ROLE, "templates")),
                                     trim_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    environment.filters["to_json"] = json.dumps
    environment.filters["unique"] = lambda items: list(dict.fromkeys(items))  # Ansible's: a list, in order
    variables = {
        "ansible_managed": "test", "mtls_python_service_name": "crl-test", "mtls_python_service_mode": "strict",
        "mtls_python_service_lib_dir": FILES, "mtls_python_service_app_dir": FILES,
        "mtls_python_service_app": "fleet_mtls_demo:app",
        "mtls_python_service_worker_class": worker_class, "mtls_python_service_threads": threads,
        "mtls_python_service_keepalive": keepalive,
        "mtls_python_service_bind_address": "127.0.0.1", "mtls_python_service_port": port,
        "mtls_python_service_workers": 1, "mtls_python_service_timeout": timeout,
        "mtls_python_service_graceful_timeout": 5,
        "mtls_python_service_certificate_path": pki.path(certificate),
        "mtls_python_service_key_path": None, "mtls_python_service_ca_bundle_path": pki.path("ca-bundle.pem"),
        "mtls_python_service_crl_path": crl_path, "mtls_python_service_access_log": str(tmp_path / "access.json"),
        "mtls_python_service_site": "crl-test", "mtls_python_service_allowed_spiffe_ids": [],
        "mtls_python_service_allowed_common_names": list(allowed_common_names),
    }
    path = tmp_path / "gunicorn.conf.py"
    path.write_text(environment.get_template("gunicorn.conf.py.j2").render(variables))
    return path


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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
