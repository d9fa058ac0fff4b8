# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleet_mtls_identity.pin_server_certificate: the worker's fixed copy of its certificate and key."""

from __future__ import annotations

import datetime
import os
import ssl
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "roles", "python_service", "files"))
import fleet_mtls_identity  # noqa: E402


class FakeConfig:
    """The two settings gunicorn's workers read per connection, and Config.set()."""

    def __init__(self, certfile, keyfile=None):
        self.certfile, self.keyfile = certfile, keyfile

    def set(self, name, value):
        setattr(self, name, value)


def _pair(common_name):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _write(path, data):
    # As the collection replaces files: a whole new file renamed over the old.
    with open(str(path) + ".tmp", "wb") as handle:
        handle.write(data)
    os.rename(str(path) + ".tmp", str(path))


def _read(path):
    with open(path, "rb") as handle:
        return handle.read()


def _served_common_name(path):
    """The CN of the certificate a TLS server context loaded from path serves."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(path)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
    server_in, server_out, client_in, client_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    server_side = server.wrap_bio(server_in, server_out, server_side=True)
    client_side = client.wrap_bio(client_in, client_out)
    for _round in range(10):
        for side in (client_side, server_side):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
        server_in.write(client_out.read())
        client_in.write(server_out.read())
    der = client_side.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der).subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


@pytest.fixture
def pairs():
    return {name: _pair(name) for name in ("old", "new")}


def test_combined_file_is_copied_and_outlives_a_renewal(tmp_path, pairs):
    combined = tmp_path / "server.combined.pem"
    _write(combined, b"".join(pairs["old"]))
    cfg = FakeConfig(str(combined))

    path = fleet_mtls_identity.pin_server_certificate(cfg)

    assert path.startswith("/proc/self/fd/")
    assert cfg.certfile == cfg.keyfile == path
    _write(combined, b"".join(pairs["new"]))
    assert _served_common_name(cfg.certfile) == "old"
    assert _served_common_name(str(combined)) == "new"


def test_separate_certificate_and_key_become_one_copy(tmp_path, pairs):
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    _write(cert, pairs["new"][0].rstrip(b"\n"))
    _write(key, pairs["new"][1])
    cfg = FakeConfig(str(cert), str(key))

    fleet_mtls_identity.pin_server_certificate(cfg)

    assert cfg.certfile == cfg.keyfile
    assert _served_common_name(cfg.certfile) == "new"
    assert b"-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----" in _read(cfg.certfile)


def test_no_tls_leaves_the_configuration_alone():
    cfg = FakeConfig(None)
    assert fleet_mtls_identity.pin_server_certificate(cfg) is None
    assert cfg.certfile is None and cfg.keyfile is None


def test_a_pair_that_never_matches_is_refused_without_leaking(tmp_path, pairs):
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    _write(cert, pairs["old"][0])
    _write(key, pairs["new"][1])
    cfg = FakeConfig(str(cert), str(key))
    open_before = len(os.listdir("/proc/self/fd"))

    with pytest.raises(ssl.SSLError):
        fleet_mtls_identity.pin_server_certificate(cfg, attempts=3, pause=0)

    assert cfg.certfile == str(cert) and cfg.keyfile == str(key)
    assert len(os.listdir("/proc/self/fd")) == open_before


def _renewing_between_the_reads(monkeypatch, cert, key, renewals):
    """Land one renewal (key, then certificate, as the role writes them) between each copy's two reads."""
    pending = iter(renewals)
    real_open = open

    def opening(path, *args, **kwargs):
        if str(path) == str(key):
            renewal = next(pending, None)
            if renewal is not None:
                _write(key, renewal[1])
                _write(cert, renewal[0])
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(fleet_mtls_identity, "open", opening, raising=False)


def test_a_renewal_landing_during_the_copy_is_read_again(tmp_path, pairs, monkeypatch):
    # Each of three renewals lands after the certificate was read and before
    # the key: three mismatched pairs. The copy reads again until it has a
    # matching one, and serves that.
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    _write(cert, pairs["old"][0])
    _write(key, pairs["old"][1])
    _renewing_between_the_reads(monkeypatch, cert, key, [pairs["new"], pairs["old"], pairs["new"]])
    cfg = FakeConfig(str(cert), str(key))
    fleet_mtls_identity.pin_server_certificate(cfg, attempts=4, pause=0)
    assert _served_common_name(cfg.certfile) == "new"
    os.close(int(cfg.certfile.rsplit("/", 1)[1]))


# --- the identity and the allow-list: exact, never a CN taken anywhere in the subject ---

def _peer(*rdns, sans=()):
    return {"subject": tuple(tuple(rdn) for rdn in rdns), "subjectAltName": tuple(sans), "serialNumber": "0a"}


def _judged(cert, spiffe_ids=(), common_names=()):
    """(status, logged record) of one request from a caller with cert through IdentityMiddleware."""
    logged = []

    class Log:
        def write(self, client_addr, identity, status, **extra):
            logged.append(dict(identity, status=status, **extra))

    def app(environ, start_response):
        start_response("200 OK", [])
        return [b"ok"]

    identity = fleet_mtls_identity.describe_peer_certificate(cert)
    environ = {"fleet_mtls.%s" % key: value for key, value in identity.items()}
    environ.update(REMOTE_ADDR="10.0.0.5", HTTP_X_FLEET_MTLS_PROBE="token")
    statuses = []
    middleware = fleet_mtls_identity.IdentityMiddleware(app, Log(), spiffe_ids, common_names)
    middleware(environ, lambda status, headers, exc_info=None: statuses.append(status))
    return int(statuses[0].split()[0]), logged[0]


def test_the_one_cn_subject_the_ca_builds_is_served():
    status, logged = _judged(_peer([("commonName", "client1")]), common_names=["client1"])
    assert status == 200 and logged["common_name"] == "client1" and logged["probe"] == "token"


@pytest.mark.parametrize("cert", [
    _peer([("commonName", "web2")], [("commonName", "client1")]),      # two CNs, the allowed one last
    _peer([("commonName", "client1")], [("commonName", "web2")]),      # two CNs, the allowed one first
    _peer([("commonName", "client1"), ("organizationName", "x")]),     # a multi-valued RDN
    _peer([("organizationName", "Example")], [("commonName", "client1")]),  # another attribute besides
    _peer([("commonName", "client10")]),                               # another identity
    _peer([("commonName", "xclient1")]),
])
def test_any_other_subject_is_refused(cert):
    status, logged = _judged(cert, common_names=["client1"])
    assert status == 403 and logged["status"] == 403


def test_spiffe_ids_match_exactly_and_only_alone():
    one = _peer([("commonName", "a")], sans=[("URI", "spiffe://lab/client/client1")])
    two = _peer([("commonName", "a")], sans=[("URI", "spiffe://lab/client/client1"), ("URI", "spiffe://lab/x")])
    longer = _peer([("commonName", "a")], sans=[("URI", "spiffe://lab/client/client1/x")])
    assert _judged(one, spiffe_ids=["spiffe://lab/client/client1"])[0] == 200
    assert _judged(two, spiffe_ids=["spiffe://lab/client/client1"])[0] == 403
    assert _judged(longer, spiffe_ids=["spiffe://lab/client/client1"])[0] == 403
    # An empty identity never matches an empty entry.
    assert _judged(_peer([("organizationName", "x")]), common_names=[""])[0] == 403


def test_the_access_log_exists_before_the_first_request(tmp_path):
    path = tmp_path / "access.json"
    fleet_mtls_identity.configure(access_log_path=str(path), site="app")
    try:
        assert not path.exists()  # configure() also runs in gunicorn --check-config, as root: it creates nothing
        fleet_mtls_identity.create_access_log()
        assert path.read_bytes() == b"" and path.stat().st_mode & 0o777 == 0o640 & ~_umask()
        path.write_text("kept\n")
        fleet_mtls_identity.create_access_log()
        assert path.read_text() == "kept\n"
    finally:
        fleet_mtls_identity.configure()


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
