"""Test tooling only: the client host's side of the test client credentials.

The scenarios need a dozen credentials that a well-run fleet never makes
(a wrong identity, a certificate for servers, expired, self-signed, two CNs,
...). Making each with its own module run cost a scenario's preparation
about thirty module runs on one host; this script makes them in two. The
keys are made here, on the client, and never leave it; only the requests go
to the CA host, whose signers (fleet.mtls.sign, sign_with_dates.py) return
certificates.

Usage (SPEC_BASE64: the JSON below, base64-encoded):

  test_credentials.py requests SPEC_BASE64
      {"dir": DIR, "copies": [[SOURCE, NAME, MODE], ...],
       "requests": [{"kind": KIND, "subject": [[ATTRIBUTE, VALUE], ...],
                     "dns": [NAME, ...], "uris": [URI, ...]}, ...],
       "self_signed": [{"kind": KIND, "cn": CN, "days": DAYS}, ...]}
    Makes DIR (0700), copies each SOURCE into it, makes an EC P-256 key
    DIR/KIND.key (0600) for each request and self-signed credential, and a
    self-signed client certificate DIR/KIND.crt for each of the latter.
    Prints {KIND: CSR_PEM} for the requests. A key already there is kept.

  test_credentials.py install SPEC_BASE64
      {"dir": DIR, "certificates": {KIND: PEM, ...}}
    Writes each PEM to DIR/KIND.crt (0644), replacing the file atomically.
"""
import base64
import datetime
import json
import os
import sys
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ATTRIBUTES = {"CN": NameOID.COMMON_NAME, "O": NameOID.ORGANIZATION_NAME}


def write(path, data, mode):
    handle, staged = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".staged-")
    try:
        os.fchmod(handle, mode)
        os.write(handle, data)
        os.fsync(handle)
    finally:
        os.close(handle)
    os.replace(staged, path)


def key_for(directory, kind):
    path = os.path.join(directory, kind + ".key")
    if os.path.exists(path):
        with open(path, "rb") as handle:
            return serialization.load_pem_private_key(handle.read(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    write(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()), 0o600)
    return key


def requests(spec):
    directory = spec["dir"]
    os.makedirs(directory, mode=0o700, exist_ok=True)
    os.chmod(directory, 0o700)
    for source, name, mode in spec.get("copies", []):
        with open(source, "rb") as handle:
            write(os.path.join(directory, name), handle.read(), int(mode, 8))
    csrs = {}
    for request in spec.get("requests", []):
        key = key_for(directory, request["kind"])
        # A list of attributes, not a mapping: a subject may hold one attribute twice.
        subject = x509.Name([x509.NameAttribute(ATTRIBUTES[attribute], value)
                             for attribute, value in request["subject"]])
        names = ([x509.DNSName(name) for name in request.get("dns", [])]
                 + [x509.UniformResourceIdentifier(uri) for uri in request.get("uris", [])])
        builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        csrs[request["kind"]] = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0)
    for wanted in spec.get("self_signed", []):
        key = key_for(directory, wanted["kind"])
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, wanted["cn"])])
        certificate = (x509.CertificateBuilder()
                       .subject_name(name).issuer_name(name).public_key(key.public_key())
                       .serial_number(x509.random_serial_number())
                       .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=wanted["days"]))
                       # as `openssl req -x509` makes it: a CA certificate too
                       .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                       .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                       .add_extension(x509.SubjectAlternativeName([x509.DNSName(wanted["cn"])]), critical=False)
                       .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                       .sign(key, hashes.SHA256()))
        write(os.path.join(directory, wanted["kind"] + ".crt"),
              certificate.public_bytes(serialization.Encoding.PEM), 0o644)
    json.dump(csrs, sys.stdout)


def install(spec):
    for kind, pem in spec["certificates"].items():
        x509.load_pem_x509_certificate(pem.encode())  # a certificate, or nothing is written
        write(os.path.join(spec["dir"], kind + ".crt"), pem.encode(), 0o644)
    json.dump(sorted(spec["certificates"]), sys.stdout)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("requests", "install"):
        sys.exit(__doc__)
    {"requests": requests, "install": install}[sys.argv[1]](json.loads(base64.b64decode(sys.argv[2])))
