# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CA decides who gets which name: sign, attacked as one fleet host would.

Each refusal is of the whole batch (a good request rides along), names the
request and what it asked for, and leaves every file of the CA byte-identical.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import pathlib
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID, ObjectIdentifier

from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _index
from ansible_collections.fleet.mtls.plugins.module_utils import _x509
from ansible_collections.fleet.mtls.plugins.modules import sign


MODULE = sign


def csr_pem(names, subject=None, key=None, hash_algorithm=None, eku=True):
    """A CSR as a host could make it, with anything in it."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        subject if subject is not None else x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "web1")]))
    builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
                                                               x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]),
                                        critical=False)
    return builder.sign(key, hash_algorithm or hashes.SHA256()).public_bytes(c.serialization.Encoding.PEM).decode()


def tmp_path_of(args):
    return pathlib.Path(args["ca_cert_path"]).parent


def dns(*values):
    return [x509.DNSName(value) for value in values]


@pytest.fixture
def ca(tmp_path, pki):
    """The CA's directory with a CA and an index that already holds an entry: (args, fingerprint())."""
    (tmp_path / "issuing.crt").write_bytes(_x509.certificate_pem(pki.issuing))
    (tmp_path / "issuing.key").write_bytes(c.serialize_private_key(pki.issuing_key))
    (tmp_path / "index.json").write_text(json.dumps({"format": _index.INDEX_FORMAT, "certificates": []}))
    # The policy allows every name these tests use: what is refused, identity decides.
    args = dict(ca_cert_path=str(tmp_path / "issuing.crt"), ca_key_path=str(tmp_path / "issuing.key"),
                validity_days=90, allowed_domains=["web1", "web2", "client1", "example.com"],
                allowed_ip_ranges=["0.0.0.0/0"], spiffe_trust_domain="fleet.test")

    def fingerprint():
        return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(tmp_path.iterdir())}

    return args, fingerprint


def authorized(name="web1/server", csr=None, common_name="web1", sans=("DNS:web1",), **extra):
    item = dict(name=name, csr=csr or csr_pem(dns("web1")), requester=name.split("/")[0],
                common_name=common_name, subject_alt_names=list(sans))
    item.update(extra)
    return item


def refused(run_module, ca, items, *fragments, **options):
    args, fingerprint = ca
    before = fingerprint()
    good = authorized(name="web2/server", csr=csr_pem(dns("web2")), common_name="web2", sans=["DNS:web2"])
    result = run_module(dict(args, csrs=[good] + items, **options))
    assert result.get("failed"), result
    for fragment in fragments:
        assert fragment in result["msg"], result["msg"]
    assert fingerprint() == before
    return result["msg"]


def test_the_authorized_identity_is_signed_with_a_subject_built_by_the_ca(run_module, ca):
    args, _fingerprint = ca
    evil_subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "evil"),
                              x509.NameAttribute(NameOID.COMMON_NAME, "admin.evil.example.com")])
    result = run_module(dict(args, csrs=[authorized(csr=csr_pem(dns("web1"), subject=evil_subject))]))
    assert not result.get("failed") and result["changed"], result
    cert = x509.load_pem_x509_certificate(result["certificates"][0]["certificate"].encode())
    assert cert.subject.rfc4514_string() == "CN=web1"
    assert _x509.sorted_san_strings(_x509.sans_of(cert)) == ["DNS:web1"]
    entries = _index.read_entries(str(tmp_path_of(args) / "index.db"))
    assert [(entry["name"], entry["subject"]) for entry in entries] == [("web1/server", "CN=web1")]


@pytest.mark.parametrize("names,asked", [
    (dns("web1", "web2"), "DNS:web1, DNS:web2"),          # another host's name too
    (dns("client1"), "DNS:client1"),                       # another identity altogether
    ([x509.DNSName("web1"), x509.UniformResourceIdentifier("spiffe://fleet.test/web/web2")],
     "URI:spiffe://fleet.test/web/web2"),                  # another workload's SPIFFE ID
])
def test_names_other_than_the_authorized_ones_are_refused(run_module, ca, names, asked):
    refused(run_module, ca, [authorized(csr=csr_pem(names))], "CSR web1/server asks for the names", asked,
            "may be issued exactly DNS:web1")


def test_two_common_names_are_never_copied(run_module, ca):
    two_cns = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "web2"),
                         x509.NameAttribute(NameOID.COMMON_NAME, "allowed-client")])
    item = dict(name="web1/server", csr=csr_pem(dns("web1"), subject=two_cns))  # no CN from the caller
    refused(run_module, ca, [item], "web1/server", "single CN")


@pytest.mark.parametrize("common_name", ["web1,CN=admin", "web1\n", "web1\nCN=admin", "", "-web1"])
def test_a_common_name_with_dn_syntax_is_refused(run_module, ca, common_name):
    refused(run_module, ca, [authorized(common_name=common_name)], "is not one word")


@pytest.mark.parametrize("key,why", [
    (rsa.generate_private_key(public_exponent=65537, key_size=1024), "RSA key of 1024 bits"),
    (ec.generate_private_key(ec.SECP256K1()), "curve secp256k1"),
])
def test_weak_keys_are_refused(run_module, ca, key, why):
    refused(run_module, ca, [authorized(csr=csr_pem(dns("web1"), key=key))], "web1/server", why)


@pytest.mark.parametrize("digest", ["sha1", "md5"])
def test_a_weakly_signed_csr_is_refused_as_such(run_module, ca, tmp_path, digest):
    """Made with openssl: newer cryptography neither signs nor verifies with these, and the CA must still say why."""
    key_path = tmp_path / "weak.key"
    key_path.write_bytes(c.serialize_private_key(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    pem = subprocess.run(["openssl", "req", "-new", "-" + digest, "-key", str(key_path), "-subj", "/CN=web1",
                          "-addext", "subjectAltName=DNS:web1", "-addext", "extendedKeyUsage=serverAuth,clientAuth"],
                         check=True, capture_output=True, text=True).stdout
    refused(run_module, ca, [authorized(csr=pem)], "web1/server is signed with %s" % digest.upper())


@pytest.mark.parametrize("value", ["web 1", "web1\x00.evil", "web1/x", "*.*.lab", "*.lab", "Web1", "web1.", "web1\n",
                                   "web1\n.lab"])
def test_dns_names_the_ca_never_issues(run_module, ca, value):
    item = dict(name="web1/server", csr=csr_pem(dns(value)), profile="server_client")
    refused(run_module, ca, [item], "names the CA never issues", "DNS:")


@pytest.mark.parametrize("general_name,kind", [
    (x509.DirectoryName(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "admin")])), "DirectoryName"),
    (x509.OtherName(ObjectIdentifier("1.3.6.1.4.1.311.20.2.3"), b"\x0c\x05admin"), "OtherName"),
    (x509.RegisteredID(ObjectIdentifier("1.2.3.4")), "RegisteredID"),
])
def test_other_kinds_of_names_are_refused(run_module, ca, general_name, kind):
    item = dict(name="web1/server", csr=csr_pem([x509.DNSName("web1"), general_name]))
    refused(run_module, ca, [item], kind, "only DNS, IP, URI (SPIFFE ID) and email")


def test_too_many_names_are_refused(run_module, ca):
    names = [x509.IPAddress(ipaddress.ip_address("10.0.0.%d" % i)) for i in range(1, 34)]
    refused(run_module, ca, [dict(name="web1/server", csr=csr_pem(names))], "asks for 33 names", "at most 32")


@pytest.mark.parametrize("days", [100000, 999999999])
def test_a_request_cannot_extend_the_validity(run_module, ca, days):
    refused(run_module, ca, [authorized(validity_days=days)], "asks for %d days" % days, "at most 90")


def test_check_mode_refuses_what_the_real_run_refuses(run_module, ca):
    args, fingerprint = ca
    before = fingerprint()
    result = run_module(dict(args, csrs=[authorized(validity_days=-5)]), check_mode=True)
    assert result.get("failed") and "positive number of days" in result["msg"], result
    assert fingerprint() == before


@pytest.mark.parametrize("names,asked", [
    (dns("www.example.com"), "DNS:www.example.com"),
    ([x509.IPAddress(ipaddress.ip_address("8.8.8.8"))], "IP:8.8.8.8"),
])
def test_an_open_policy_is_no_way_past_the_default(run_module, ca, names, asked):
    """With no policy options at all, sign certifies no name: the default is closed."""
    args, fingerprint = ca
    closed = {key: value for key, value in args.items()
              if key not in ("allowed_domains", "allowed_ip_ranges", "spiffe_trust_domain")}
    before = fingerprint()
    result = run_module(dict(closed, csrs=[dict(name="web1/server", csr=csr_pem(names))]))
    assert result.get("failed") and asked in result["msg"] and "none" in result["msg"], result
    assert fingerprint() == before


def test_a_name_outside_the_issuing_cas_constraints_is_refused(run_module, ca, pki):
    """The audit's case: the policy allowed it, the CA's own constraints did not; nothing is signed."""
    args, fingerprint = ca
    key = ec.generate_private_key(ec.SECP256R1())
    constrained = _x509.build_ca_certificate(key, {"CN": "Constrained Issuing"}, pki.now,
                                             c.not_valid_after(pki.issuing), issuer_cert=pki.root,
                                             issuer_key=pki.root_key, path_length=0,
                                             permitted=["DNS:web1", "DNS:web2"])
    folder = tmp_path_of(args)
    (folder / "issuing.crt").write_bytes(_x509.certificate_pem(constrained))
    (folder / "issuing.key").write_bytes(c.serialize_private_key(key))
    msg = refused(run_module, ca, [dict(name="web3/server", csr=csr_pem(dns("www.example.com")))],
                  "DNS:www.example.com (outside the CA's name constraints: DNS:web1, DNS:web2)")
    assert "web3/server" in msg
    ok = run_module(dict(args, csrs=[authorized()]))
    assert not ok.get("failed"), ok
