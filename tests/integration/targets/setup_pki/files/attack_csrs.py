"""Write the CSRs an attacker on host1 could send, as {case: PEM} in JSON: OUT_PATH.

Every CSR but the noted ones is well-formed and signed by its own key, so the
CA sees exactly what a host could hand it.
"""
import ipaddress
import json
import os
import subprocess
import sys
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

HOST = u"host1.lab.internal"


def csr(names, subject=None, key=None):
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = subject or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    builder = (x509.CertificateSigningRequestBuilder().subject_name(subject)
               .add_extension(x509.SubjectAlternativeName(names), critical=False)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                     ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode("ascii")


def openssl_sha1_csr():
    """A SHA-1 signed CSR, from openssl: newer cryptography refuses to make one."""
    with tempfile.TemporaryDirectory() as work:
        key_path = os.path.join(work, "k.pem")
        key = ec.generate_private_key(ec.SECP256R1())
        with open(key_path, "wb") as handle:
            handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        return subprocess.run(
            ["openssl", "req", "-new", "-sha1", "-key", key_path, "-subj", "/CN=" + HOST,
             "-addext", "subjectAltName=DNS:" + HOST, "-addext", "extendedKeyUsage=serverAuth,clientAuth"],
            check=True, capture_output=True, text=True).stdout


def dns(*values):
    return [x509.DNSName(value) for value in values]


def cn(*values):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, value) for value in values])


cases = {
    # The identity: the host's own name is host1.lab.internal and nothing else.
    "another_hosts_name": csr(dns(HOST, u"host2.lab.internal")),
    "another_workloads_spiffe_id": csr(dns(HOST) + [x509.UniformResourceIdentifier(
        u"spiffe://lab.internal/host/host2")]),
    # Subjects the CA must never copy (signed, with the CA's own subject).
    "admin_subject": csr(dns(HOST), subject=cn(u"admin.evil.example.com")),
    "two_common_names": csr(dns(HOST), subject=cn(u"host2.lab.internal", u"allowed-client")),
    # Names outside the policy.
    "public_name": csr(dns(u"www.example.com")),
    "public_address": csr([x509.IPAddress(ipaddress.ip_address(u"8.8.8.8"))]),
    "outside_the_cas_constraints": csr(dns(u"host1.example.com")),
    # Weak keys and signatures.
    "rsa_1024": csr(dns(HOST), key=rsa.generate_private_key(public_exponent=65537, key_size=1024)),
    "secp256k1": csr(dns(HOST), key=ec.generate_private_key(ec.SECP256K1())),
    "sha1_signature": openssl_sha1_csr(),
    # Odd names.
    "dns_with_a_space": csr(dns(u"host 1.lab.internal")),
    "dns_with_a_nul": csr(dns(u"host1\x00.lab.internal")),
    "dns_with_a_slash": csr(dns(u"host1/x.lab.internal")),
    "double_wildcard": csr(dns(u"*.*.lab.internal")),
    "directory_name": csr(dns(HOST) + [x509.DirectoryName(cn(u"admin"))]),
    "other_name_upn": csr(dns(HOST) + [x509.OtherName(ObjectIdentifier(u"1.3.6.1.4.1.311.20.2.3"), b"\x0c\x05admin")]),
    "registered_id": csr(dns(HOST) + [x509.RegisteredID(ObjectIdentifier(u"1.2.3.4"))]),
    "too_many_names": csr(dns(HOST, *(u"n%d.lab.internal" % i for i in range(32)))),
    # A plain good one, to ride along in each batch and for the validity case.
    "good": csr(dns(HOST)),
}
with open(sys.argv[1], "w") as handle:
    json.dump(cases, handle)
