"""Test tooling only: sign CSRs with chosen validity dates, to make expired
and not-yet-valid client certificates (and, from a subject with two CNs, what
a CA that copies the CSR's subject would issue).

Usage:
  sign_with_dates.py CA_CERT CA_KEY DAYS_FROM DAYS_TO CSR_BASE64
      prints the certificate and its chain
  sign_with_dates.py CA_CERT CA_KEY JOBS_BASE64
      JOBS: the JSON [{"name": NAME, "days_from": N, "days_to": N, "csr": CSR_PEM}, ...];
      prints the JSON {NAME: certificate and chain, ...}
"""
import base64
import datetime
import json
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID


def sign(ca_cert, ca_key, days_from, days_to, csr_pem):
    csr = x509.load_pem_x509_csr(csr_pem)
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
    return (cert.public_bytes(serialization.Encoding.PEM)
            + ca_cert.public_bytes(serialization.Encoding.PEM)).decode("ascii")


def main(args):
    if len(args) not in (3, 5):
        sys.exit(__doc__)
    with open(args[0], "rb") as handle:
        ca_cert = x509.load_pem_x509_certificate(handle.read())
    with open(args[1], "rb") as handle:
        ca_key = serialization.load_pem_private_key(handle.read(), password=None)
    if len(args) == 5:
        sys.stdout.write(sign(ca_cert, ca_key, args[2], args[3], base64.b64decode(args[4])))
        return
    jobs = json.loads(base64.b64decode(args[2]))
    json.dump({job["name"]: sign(ca_cert, ca_key, job["days_from"], job["days_to"], job["csr"].encode())
               for job in jobs}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
