"""Test tooling only: sign a CSR with chosen validity dates, to make expired
and not-yet-valid client certificates. Prints the certificate and its chain.

Usage: sign_with_dates.py CA_CERT CA_KEY DAYS_FROM DAYS_TO CSR_BASE64
"""
import base64
import datetime
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

ca_cert_path, ca_key_path, days_from, days_to, csr_b64 = sys.argv[1:6]
with open(ca_cert_path, "rb") as handle:
    ca_cert = x509.load_pem_x509_certificate(handle.read())
with open(ca_key_path, "rb") as handle:
    ca_key = serialization.load_pem_private_key(handle.read(), password=None)
csr = x509.load_pem_x509_csr(base64.b64decode(csr_b64))
now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0)
ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
cert = (x509.CertificateBuilder()
        .subject_name(csr.subject).issuer_name(ca_cert.subject).public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(days=int(days_from)))
        .not_valid_after(now + datetime.timedelta(days=int(days_to)))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(csr.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .add_extension(sans, critical=False)
        .sign(ca_key, hashes.SHA384()))
sys.stdout.write((cert.public_bytes(serialization.Encoding.PEM)
                  + ca_cert.public_bytes(serialization.Encoding.PEM)).decode("ascii"))
