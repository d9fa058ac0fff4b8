# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What one TLS 1.3 handshake costs the server, by the curve of the CAs: in memory, no network, no HTTP.

    handshake_cost.py [--handshakes 300]

For CA keys on P-256 and on P-384 (a root and an issuing CA, as role ca
makes them, with a CRL each; the leaf keys P-256), makes handshakes between
a server and a client context in memory (ssl.MemoryBIO) and times the
server's side only (process CPU), three ways: one-way TLS, mutual TLS, and
mutual TLS with the CRLs of the whole chain checked (VERIFY_CRL_CHECK_CHAIN,
as the role's services do). Prints the median of 5 rounds in ms per
handshake. Needs Python's cryptography (Debian: python3-cryptography) to
make the keys; the handshakes are the ssl module's (the host's OpenSSL).
"""
import argparse
import datetime
import os
import ssl
import statistics
import sys
import tempfile
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CURVES = {"P-256": (ec.SECP256R1, hashes.SHA256), "P-384": (ec.SECP384R1, hashes.SHA384)}


def name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def certificate(subject_key, subject, issuer_key, issuer, digest, ca, path_length=None, sans=()):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
               .public_key(subject_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(subject_key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                              critical=False))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False),
                                        critical=True)
    else:
        builder = (builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                                ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False))
    return builder.sign(issuer_key, digest())


def crl(issuer_key, issuer, digest):
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateRevocationListBuilder().issuer_name(issuer)
            .last_update(now - datetime.timedelta(minutes=5)).next_update(now + datetime.timedelta(days=1))
            .add_extension(x509.CRLNumber(1), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                           critical=False)
            .sign(issuer_key, digest()))


def pki(directory, curve):
    """Files of a root, an issuing CA (both on curve), a P-256 leaf for server and client, and both CRLs."""
    ca_curve, digest = CURVES[curve]
    root_key, issuing_key, leaf_key = ec.generate_private_key(ca_curve()), ec.generate_private_key(ca_curve()), \
        ec.generate_private_key(ec.SECP256R1())
    root = certificate(root_key, name("root"), root_key, name("root"), digest, True, 1)
    issuing = certificate(issuing_key, name("issuing"), root_key, name("root"), digest, True, 0)
    leaf = certificate(leaf_key, name("leaf"), issuing_key, name("issuing"), digest, False, sans=["leaf"])
    pem = serialization.Encoding.PEM
    files = {
        "ca": root.public_bytes(pem),
        "chain": leaf.public_bytes(pem) + issuing.public_bytes(pem),
        "key": leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        "crls": crl(root_key, name("root"), digest).public_bytes(pem)
        + crl(issuing_key, name("issuing"), digest).public_bytes(pem),
    }
    paths = {}
    for kind, data in files.items():
        paths[kind] = os.path.join(directory, "%s-%s.pem" % (curve, kind))
        with open(paths[kind], "wb") as handle:
            handle.write(data)
    return paths


def contexts(paths, mtls, crls):
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.minimum_version = server.maximum_version = ssl.TLSVersion.TLSv1_3
    server.load_cert_chain(paths["chain"], paths["key"])
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(paths["ca"])
    if mtls:
        server.verify_mode = ssl.CERT_REQUIRED
        server.load_verify_locations(paths["ca"])
        client.load_cert_chain(paths["chain"], paths["key"])
    if crls:
        server.load_verify_locations(paths["crls"])
        server.verify_flags |= ssl.VERIFY_CRL_CHECK_CHAIN
    return server, client


def server_cpu_per_handshake(server, client, count):
    spent = 0.0
    for _handshake in range(count):
        to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
        server_in, server_out = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls_client = client.wrap_bio(to_client, to_server, server_hostname="leaf")
        tls_server = server.wrap_bio(server_in, server_out, server_side=True)
        client_done = server_done = False
        while not (client_done and server_done):
            if not client_done:
                try:
                    tls_client.do_handshake()
                    client_done = True
                except ssl.SSLWantReadError:
                    pass
            server_in.write(to_server.read())
            if not server_done:
                start = time.process_time()
                try:
                    tls_server.do_handshake()
                    server_done = True
                except ssl.SSLWantReadError:
                    pass
                spent += time.process_time() - start
            to_client.write(server_out.read())
    return 1000.0 * spent / count


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--handshakes", type=int, default=300)
    args = parser.parse_args(argv)
    print("%s, Python %s: the server's CPU, ms per TLS 1.3 handshake (median of 5 rounds of %d)"
          % (ssl.OPENSSL_VERSION, sys.version.split()[0], args.handshakes))
    print("| CA keys | one-way | mTLS | mTLS + CRLs of the chain |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as directory:
        for curve in CURVES:
            paths = pki(directory, curve)
            cells = []
            for mtls, crls in ((False, False), (True, False), (True, True)):
                server, client = contexts(paths, mtls, crls)
                cells.append(statistics.median(server_cpu_per_handshake(server, client, args.handshakes)
                                               for _round in range(5)))
            print("| %s | %.2f | %.2f | %.2f |" % (curve, cells[0], cells[1], cells[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
