# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An offline root: the issuing CA asks with a CSR (ca), the root signs it on its own host (ca_certificate), the issuing
CA installs what fits (ca with certificate).

Two directories stand for the two hosts. The root's key is only ever in the
root's, the issuing CA's key only in the issuing CA's; every refusal leaves
the directory it concerns byte-identical, and check mode writes nothing in
any step.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import shutil
import subprocess

import pytest

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ansible.module_utils.testing import patch_module_args

from ansible_collections.fleet.mtls.plugins.module_utils import _ca
from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _index
from ansible_collections.fleet.mtls.plugins.module_utils import _x509
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError
from ansible_collections.fleet.mtls.plugins.modules import ca
from ansible_collections.fleet.mtls.plugins.modules import ca_certificate
from ansible_collections.fleet.mtls.tests.unit.plugins.modules import ca_host

DAY = datetime.timedelta(days=1)
SUBJECT = {"CN": "Test Issuing CA", "O": "fleet.mtls tests"}
PERMITTED = ["DNS:lab.internal", "IP:10.0.0.0/8"]
ROOT_PASSPHRASE = "root-secret-passphrase"


def run(module, args, capsys, check_mode=False):
    """main() of module with args, as Ansible runs it; the result it printed. No result ever holds key material."""
    if check_mode:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(dict(args, _ansible_diff=True)):
        with pytest.raises(SystemExit) as exited:
            module.main()
    out = capsys.readouterr().out
    result = json.loads(out)
    assert bool(exited.value.code) == bool(result.get("failed")), result
    assert "PRIVATE KEY" not in out and ROOT_PASSPHRASE not in out, out
    return result


class Hosts(object):
    """The root's host (its key and certificate) and the issuing CA's host (the root's certificate alone, at first)."""

    def __init__(self, tmp_path, capsys, root_path_length=1, root_days=3650):
        self.capsys = capsys
        self.root_dir = tmp_path / "root-host"
        self.issuing_dir = tmp_path / "issuing-host"
        self.root_dir.mkdir()
        self.issuing_dir.mkdir()
        made = self.run(ca, dict(key_path=str(self.root_dir / "root.key"), cert_path=str(self.root_dir / "root.crt"),
                                 key_passphrase=ROOT_PASSPHRASE, subject={"CN": "Test Root"},
                                 path_length=root_path_length, validity_days=root_days))
        assert made["changed"] and made["root"], made
        # The root's certificate is public: it travels to the issuing host, as a trust anchor does.
        shutil.copy(str(self.root_dir / "root.crt"), str(self.issuing_dir / "root.crt"))
        self.root_cert = _x509.load_certificate((self.root_dir / "root.crt").read_bytes())
        self.root_key = c.load_private_key((self.root_dir / "root.key").read_bytes(), ROOT_PASSPHRASE)

    def run(self, module, args, check_mode=False):
        return run(module, args, self.capsys, check_mode=check_mode)

    def issuing_args(self, **extra):
        args = dict(key_path=str(self.issuing_dir / "issuing.key"), cert_path=str(self.issuing_dir / "issuing.crt"),
                    subject=SUBJECT, path_length=0, name_constraints_permitted=PERMITTED,
                    parent_cert_path=str(self.issuing_dir / "root.crt"))
        args.update(extra)
        return args

    def root_args(self, csr, **extra):
        args = dict(csr=csr, ca_cert_path=str(self.root_dir / "root.crt"), ca_key_path=str(self.root_dir / "root.key"),
                    ca_key_passphrase=ROOT_PASSPHRASE, subject=SUBJECT, path_length=0,
                    name_constraints_permitted=PERMITTED, validity_days=1825,
                    index_path=str(self.root_dir / "index.db"), name="issuing")
        args.update(extra)
        return args

    def ask(self, **extra):
        """Step 1, on the issuing host: its key, and a CSR."""
        asked = self.run(ca, self.issuing_args(**extra))
        assert not asked.get("failed") and asked["needs_certificate"], asked
        return asked

    def sign(self, csr, check_mode=False, **extra):
        """Step 2, on the root's host."""
        signed = self.run(ca_certificate, self.root_args(csr, **extra), check_mode=check_mode)
        assert not signed.get("failed"), signed
        return signed

    def install(self, certificate, check_mode=False, **extra):
        """Step 3, on the issuing host."""
        return self.run(ca, self.issuing_args(certificate=certificate, **extra), check_mode=check_mode)

    def issuing_key(self):
        return c.load_private_key((self.issuing_dir / "issuing.key").read_bytes())

    def settled(self):
        """The whole flow once: the issuing CA's certificate in PEM."""
        signed = self.sign(self.ask()["csr"])
        installed = self.install(signed["certificate"])
        assert not installed.get("failed"), installed
        return signed["certificate"]


@pytest.fixture
def hosts(tmp_path, capsys):
    return Hosts(tmp_path, capsys)


def files(directory):
    return sorted(os.listdir(str(directory)))


def contents(directory):
    return b"".join(path.read_bytes() for path in sorted(directory.iterdir()) if path.is_file())


def public_pem(key):
    return c.public_key_pem(key)


def key_material(key):
    """What of a private key could be in a file: its PEM, unencrypted, and its private number."""
    numbers = key.private_numbers()
    secret = numbers.private_value if hasattr(numbers, "private_value") else numbers.d
    return c.serialize_private_key(key), secret.to_bytes((secret.bit_length() + 7) // 8, "big")


# --- the flow -------------------------------------------------------------


def test_the_two_host_flow_settles(hosts):
    asked = hosts.ask()
    assert asked["changed"] and asked["key_generated"] and not asked["cert_issued"], asked
    assert asked["certificate"] is None and asked["serial"] is None and asked["not_after"] is None
    assert asked["misfit_reasons"] == ["there is no certificate"]
    assert asked["root"] is False
    assert files(hosts.issuing_dir) == ["issuing.key", "issuing.key.lock", "root.crt"]
    csr = _x509.load_csr(asked["csr"])
    assert csr.subject == _x509.build_name(SUBJECT)
    assert c.same_public_key(csr.public_key(), hosts.issuing_key())
    basic = csr.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca and basic.value.path_length == 0
    assert asked["public_key_fingerprint"] == c.public_key_fingerprint(hosts.issuing_key())

    signed = hosts.sign(asked["csr"])
    assert signed["changed"] and signed["misfit_reasons"] == ["there is no certificate"], signed
    cert = _x509.load_certificate(signed["certificate"])
    facts = _x509.describe_certificate(cert)
    assert signed["serial"] == facts["serial"] and signed["not_after"] == facts["not_after"]
    assert signed["subject"] == "CN=Test Issuing CA,O=fleet.mtls tests"
    assert cert.issuer == hosts.root_cert.subject and c.cert_signed_by(cert, hosts.root_cert)
    assert c.same_public_key(cert.public_key(), hosts.issuing_key())
    assert facts["path_length"] == 0 and facts["is_ca"]
    assert sorted(facts["key_usage"]) == ["cRLSign", "digitalSignature", "keyCertSign"]
    assert _x509.name_constraints_of(cert) == _x509.build_name_constraints(PERMITTED, [])
    assert (c.not_valid_after(cert) - c.not_valid_before(cert)).days == 1825
    assert signed["index_path"] == str(hosts.root_dir / "index.db")
    entries = _index.read_entries(signed["index_path"])
    assert [(e["serial"], e["name"], e["requester"], e["profile"]) for e in entries] == \
        [(signed["serial"], "issuing", "issuing", "ca")]
    assert files(hosts.root_dir) == ["index.db", "index.db.lock", "root.crt", "root.key", "root.key.lock"]

    installed = hosts.install(signed["certificate"])
    assert installed["changed"] and installed["cert_issued"] and not installed["needs_certificate"], installed
    assert installed["csr"] is None and installed["certificate"] == signed["certificate"]
    assert installed["serial"] == signed["serial"] and installed["misfit_reasons"] == ["there is no certificate"]
    assert (hosts.issuing_dir / "issuing.crt").read_text() == signed["certificate"]
    assert oct(os.stat(str(hosts.issuing_dir / "issuing.crt")).st_mode & 0o777) == "0o644"
    assert oct(os.stat(str(hosts.issuing_dir / "issuing.key")).st_mode & 0o777) == "0o600"

    again = hosts.run(ca, hosts.issuing_args())
    assert not again["changed"] and not again["needs_certificate"] and again["csr"] is None, again
    assert again["misfit_reasons"] == [] and again["certificate"] == signed["certificate"]
    assert not hosts.install(signed["certificate"])["changed"]

    # The root asked again, with what the issuing CA holds: nothing signed, nothing recorded.
    kept = hosts.sign(asked["csr"], current_certificate=again["certificate"])
    assert not kept["changed"] and kept["certificate"] == signed["certificate"] and kept["misfit_reasons"] == []
    assert len(_index.read_entries(signed["index_path"])) == 1

    # Neither key ever reached the other host: no file of it, nothing of it in any file.
    assert files(hosts.issuing_dir) == ["issuing.crt", "issuing.key", "issuing.key.lock", "root.crt"]
    assert files(hosts.root_dir) == ["index.db", "index.db.lock", "root.crt", "root.key", "root.key.lock"]
    for material in key_material(hosts.issuing_key()):
        assert material not in contents(hosts.root_dir)
    for material in key_material(hosts.root_key):
        assert material not in contents(hosts.issuing_dir)


def test_the_installed_chain_verifies_strictly(hosts, tmp_path):
    """A leaf of the issuing CA verifies against the root with OpenSSL's X509_STRICT, as Python 3.13 clients check."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command")
    hosts.settled()
    issuing = _x509.load_certificate((hosts.issuing_dir / "issuing.crt").read_bytes())
    key = c.generate_private_key("ec")
    csr = _x509.build_csr(key, {"CN": "web1"}, _x509.build_sans(["DNS:web1.lab.internal"]))
    now = c.utcnow()
    leaf = _x509.build_leaf_certificate(csr, "web1", issuing, hosts.issuing_key(), _x509.sans_of(csr),
                                        ["serverAuth"], now - DAY, now + DAY, _x509.random_serial())
    ok, error, path = _x509.verify_chain(leaf, [issuing], [hosts.root_cert])
    assert ok, error
    (tmp_path / "leaf.crt").write_bytes(_x509.certificate_pem(leaf))
    verified = subprocess.run(["openssl", "verify", "-x509_strict", "-CAfile", str(hosts.issuing_dir / "root.crt"),
                               "-untrusted", str(hosts.issuing_dir / "issuing.crt"), str(tmp_path / "leaf.crt")],
                              check=False, capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_check_mode_writes_nothing_in_any_step(hosts):
    issuing_before, root_before = ca_host.snapshot(hosts.issuing_dir), ca_host.snapshot(hosts.root_dir)
    would_ask = hosts.run(ca, hosts.issuing_args(), check_mode=True)
    assert would_ask["changed"] and would_ask["key_generated"] and would_ask["needs_certificate"], would_ask
    assert ca_host.snapshot(hosts.issuing_dir) == issuing_before
    # The CSR of a key that is not kept: signing it gives a certificate no run installs.
    would_sign = hosts.sign(would_ask["csr"], check_mode=True)
    assert would_sign["changed"] and would_sign["certificate"] is None and would_sign["serial"] is None, would_sign
    assert ca_host.snapshot(hosts.root_dir) == root_before
    refused = hosts.install(hosts.sign(would_ask["csr"])["certificate"])
    assert refused.get("failed") and "CA key %s does not exist" % (hosts.issuing_dir / "issuing.key") in refused["msg"]
    assert ca_host.snapshot(hosts.issuing_dir) == issuing_before

    asked = hosts.ask()
    assert asked["key_generated"]
    issuing_before, root_before = ca_host.snapshot(hosts.issuing_dir), ca_host.snapshot(hosts.root_dir)
    again = hosts.run(ca, hosts.issuing_args(), check_mode=True)
    assert not again["changed"] and again["needs_certificate"] and again["csr"], again
    assert hosts.sign(asked["csr"], check_mode=True)["changed"]
    assert ca_host.snapshot(hosts.root_dir) == root_before
    signed = hosts.sign(asked["csr"])
    root_before = ca_host.snapshot(hosts.root_dir)
    would_install = hosts.install(signed["certificate"], check_mode=True)
    assert would_install["changed"] and would_install["cert_issued"] and would_install["diff"], would_install
    assert ca_host.snapshot(hosts.issuing_dir) == issuing_before
    kept = hosts.sign(asked["csr"], check_mode=True, current_certificate=signed["certificate"])
    assert not kept["changed"] and kept["certificate"] == signed["certificate"], kept
    assert ca_host.snapshot(hosts.root_dir) == root_before


def test_a_certificate_that_fits_is_kept_and_force_asks_anew(hosts):
    certificate = hosts.settled()
    before = ca_host.snapshot(hosts.issuing_dir)
    forced = hosts.run(ca, hosts.issuing_args(force=True))
    assert forced["needs_certificate"] and forced["csr"] and not forced["changed"], forced
    assert forced["misfit_reasons"] == [] and forced["certificate"] is None
    assert ca_host.snapshot(hosts.issuing_dir) == before
    renewed = hosts.sign(forced["csr"])
    assert renewed["certificate"] != certificate
    assert hosts.install(renewed["certificate"])["changed"]
    assert not hosts.run(ca, hosts.issuing_args())["changed"]
    assert len(_index.read_entries(str(hosts.root_dir / "index.db"))) == 2


def test_a_changed_wish_asks_for_a_new_certificate_for_the_same_key(hosts):
    hosts.settled()
    before = ca_host.snapshot(hosts.issuing_dir)
    asked = hosts.ask(name_constraints_permitted=["DNS:lab.internal"])
    assert not asked["changed"] and not asked["key_generated"]
    assert asked["misfit_reasons"] == ["its name constraints are permitted DNS:lab.internal, IP:10.0.0.0/8, not "
                                       "permitted DNS:lab.internal"]
    assert ca_host.snapshot(hosts.issuing_dir) == before
    assert c.same_public_key(_x509.load_csr(asked["csr"]).public_key(), hosts.issuing_key())


# --- what the issuing CA refuses to install ---------------------------------


def build(public_key, signer, issuer_name, subject=None, not_before=None, not_after=None, basic=True,
          usages=("digitalSignature", "keyCertSign", "cRLSign"), path_length=0, permitted=None, aki_of=None):
    """A CA certificate made by hand, with the one detail a test changes (the subject and constraints: the wanted ones)."""
    now = c.utcnow()
    permitted = PERMITTED if permitted is None else permitted
    builder = (x509.CertificateBuilder().subject_name(_x509.build_name(subject or SUBJECT)).issuer_name(issuer_name)
               .public_key(public_key).serial_number(_x509.random_serial())
               .not_valid_before(not_before or now - DAY).not_valid_after(not_after or now + 365 * DAY)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(aki_of or signer.public_key()),
                              critical=False)
               .add_extension(_x509.build_key_usage(list(usages)), critical=True))
    if basic:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
    else:
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    constraints = _x509.build_name_constraints(permitted, [])
    if constraints is not None:
        builder = builder.add_extension(constraints, critical=True)
    return _x509.certificate_pem(builder.sign(signer, c.signature_hash(signer))).decode("ascii")


def misfit(hosts, other_pki):
    """name -> (certificate, what the refusal says) for every way a certificate can fail to fit."""
    key = hosts.issuing_key().public_key()
    root_key, root_name = hosts.root_key, hosts.root_cert.subject
    now = c.utcnow()
    impostor = c.generate_private_key("ec", 384)
    return {
        "wrong key": (build(c.generate_private_key("ec").public_key(), root_key, root_name), "it is for another key"),
        "wrong subject": (build(key, root_key, root_name, subject={"CN": "Someone Else"}),
                          "its subject is CN=Someone Else, not CN=Test Issuing CA,O=fleet.mtls tests"),
        "wrong parent": (build(key, other_pki.root_key, other_pki.root.subject),
                         "it was not issued by CN=Test Root"),
        "impostor parent": (build(key, impostor, root_name, aki_of=root_key.public_key()),
                            "it was not issued by CN=Test Root (issuer name or signature)"),
        "expired": (build(key, root_key, root_name, not_before=now - 30 * DAY, not_after=now - DAY), "it expired on"),
        "not yet valid": (build(key, root_key, root_name, not_before=now + DAY), "it is not valid before"),
        "not a CA": (build(key, root_key, root_name, basic=False, usages=("digitalSignature",), permitted=[]),
                     "it is not a CA (no basicConstraints CA:TRUE); its keyUsage lacks keyCertSign, cRLSign; its "
                     "name constraints are none"),
        "no cRLSign": (build(key, root_key, root_name, usages=("digitalSignature", "keyCertSign")),
                       "its keyUsage lacks cRLSign"),
        "wrong path length": (build(key, root_key, root_name, path_length=None),
                              "its path length is unlimited, not 0"),
        "wrong constraints": (build(key, root_key, root_name, permitted=["DNS:example.com"]),
                              "its name constraints are permitted DNS:example.com, not permitted DNS:lab.internal, "
                              "IP:10.0.0.0/8"),
        "another issuer's key identifier": (build(key, root_key, root_name, aki_of=impostor.public_key()),
                                            "its authorityKeyIdentifier does not name the key of CN=Test Root"),
    }


MISFITS = ["wrong key", "wrong subject", "wrong parent", "impostor parent", "expired", "not yet valid", "not a CA",
           "no cRLSign", "wrong path length", "wrong constraints", "another issuer's key identifier"]


@pytest.mark.parametrize("installed", [False, True], ids=["nothing-installed", "fitting-installed"])
@pytest.mark.parametrize("case", MISFITS)
def test_a_certificate_that_does_not_fit_is_refused(hosts, other_pki, case, installed):
    if installed:
        hosts.settled()
    else:
        hosts.ask()
    certificate, why = misfit(hosts, other_pki)[case]
    for check_mode in (True, False):
        msg = ca_host.refused(lambda args, check_mode: hosts.run(ca, args, check_mode=check_mode), hosts.issuing_dir,
                              hosts.issuing_args(certificate=certificate), why, "nothing was written",
                              check_mode=check_mode)
        assert msg.startswith("certificate does not fit the CA %s: " % (hosts.issuing_dir / "issuing.crt")), msg


def test_a_certificate_for_a_key_that_is_not_there_writes_no_key(hosts):
    hosts.settled()
    certificate = (hosts.issuing_dir / "issuing.crt").read_text()
    os.unlink(str(hosts.issuing_dir / "issuing.key"))
    for check_mode in (True, False):
        ca_host.refused(lambda args, check_mode: hosts.run(ca, args, check_mode=check_mode), hosts.issuing_dir,
                        hosts.issuing_args(certificate=certificate), "does not exist", "the key its CSR came from",
                        check_mode=check_mode)


@pytest.mark.parametrize("extra,why", [
    (dict(certificate="not a certificate"), "certificate holds no PEM certificate"),
    (dict(validity_days=30), "validity_days is decided where the parent's key is"),
    (dict(renew_days_before=-1), "renew_days_before must be a whole number from 0 to 36500 days, not -1"),
    (dict(path_length=101), "path_length must be a whole number from 0 to 100"),
    (dict(subject={"O": "no CN"}), "a CA subject needs a CN"),
])
@pytest.mark.parametrize("check_mode", [False, True])
def test_options_are_checked_before_anything_is_written(hosts, extra, why, check_mode):
    ca_host.refused(lambda args, check_mode: hosts.run(ca, args, check_mode=check_mode), hosts.issuing_dir,
                    hosts.issuing_args(**extra), why, check_mode=check_mode)


def test_a_certificate_with_its_chain_is_refused(hosts):
    asked = hosts.ask()
    signed = hosts.sign(asked["csr"])
    ca_host.refused(lambda args, check_mode: hosts.run(ca, args, check_mode=check_mode), hosts.issuing_dir,
                    hosts.issuing_args(certificate=signed["certificate"] + (hosts.issuing_dir / "root.crt").read_text()),
                    "certificate holds 2 certificates; give the CA certificate alone")


def test_an_empty_certificate_is_none(hosts):
    asked = hosts.run(ca, hosts.issuing_args(certificate=""))
    assert asked["needs_certificate"] and asked["csr"], asked


@pytest.mark.parametrize("args,why", [
    (dict(certificate="x", parent_key_path="/nonexistent"), "mutually exclusive"),
    (dict(certificate="x", parent_cert_path=None), "missing parameter(s) required by 'certificate': parent_cert_path"),
])
def test_certificate_is_for_an_intermediate_signed_elsewhere_only(hosts, args, why):
    ca_host.refused(lambda a, check_mode: hosts.run(ca, a, check_mode=check_mode), hosts.issuing_dir,
                    hosts.issuing_args(**args), why)


@pytest.mark.parametrize("root_path_length,root_days,why", [
    (0, 3650, "has path length 0: no CA certificate it issues would verify"),
    (1, -1, "expired on"),
])
def test_a_parent_that_cannot_have_this_ca_below_it_makes_no_key(tmp_path, capsys, root_path_length, root_days, why):
    hosts = Hosts(tmp_path, capsys, root_path_length=root_path_length, root_days=max(root_days, 1))
    if root_days < 0:
        expired = _x509.build_ca_certificate(hosts.root_key, {"CN": "Test Root"}, c.utcnow() - 10 * DAY,
                                             c.utcnow() - DAY, path_length=1)
        (hosts.issuing_dir / "root.crt").write_bytes(_x509.certificate_pem(expired))
    for check_mode in (True, False):
        ca_host.refused(lambda args, check_mode: hosts.run(ca, args, check_mode=check_mode), hosts.issuing_dir,
                        hosts.issuing_args(), why, check_mode=check_mode)
    assert files(hosts.issuing_dir) == ["root.crt"]


# --- renewal --------------------------------------------------------------


def test_renewal_asks_before_expiry_and_settles_under_a_short_lived_root(tmp_path, capsys):
    hosts = Hosts(tmp_path, capsys, root_days=100)
    # The root ends in 100 days: a certificate lasting as long as the root is as long as any could be.
    signed = hosts.sign(hosts.ask(renew_days_before=200)["csr"], renew_days_before=200)
    assert signed["not_after"] == _x509.describe_certificate(hosts.root_cert)["not_after"]
    assert hosts.install(signed["certificate"], renew_days_before=200)["changed"]
    settled = hosts.run(ca, hosts.issuing_args(renew_days_before=200))
    assert not settled["changed"] and not settled["needs_certificate"], settled
    kept = hosts.sign(hosts.ask(force=True, renew_days_before=200)["csr"], renew_days_before=200,
                      current_certificate=signed["certificate"])
    assert not kept["changed"] and kept["certificate"] == signed["certificate"], kept


def test_a_certificate_within_renew_days_before_is_renewed(hosts):
    asked = hosts.ask()
    short = hosts.sign(asked["csr"], validity_days=20)
    assert hosts.install(short["certificate"])["changed"]
    assert not hosts.run(ca, hosts.issuing_args())["needs_certificate"]
    due = hosts.run(ca, hosts.issuing_args(renew_days_before=30))
    assert due["needs_certificate"] and not due["changed"], due
    assert len(due["misfit_reasons"]) == 1 and due["misfit_reasons"][0].endswith("within renew_days_before (30 days)")
    renewed = hosts.sign(due["csr"], renew_days_before=30, current_certificate=short["certificate"])
    assert renewed["changed"] and renewed["misfit_reasons"] == due["misfit_reasons"], renewed
    refused = hosts.install(short["certificate"], renew_days_before=30)
    assert refused.get("failed") and "within renew_days_before" in refused["msg"]
    assert hosts.install(renewed["certificate"], renew_days_before=30)["changed"]
    assert not hosts.run(ca, hosts.issuing_args(renew_days_before=30))["needs_certificate"]


# --- what the root refuses to sign, or ignores ------------------------------


def refused_by_root(hosts, csr, *fragments, **extra):
    for check_mode in (True, False):
        ca_host.refused(lambda args, check_mode: hosts.run(ca_certificate, args, check_mode=check_mode),
                        hosts.root_dir, hosts.root_args(csr, **extra), *fragments, check_mode=check_mode)


def csr_pem(key, subject=None, extensions=(), algorithm="default"):
    builder = x509.CertificateSigningRequestBuilder().subject_name(_x509.build_name(subject or SUBJECT))
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return _x509.csr_pem(builder.sign(key, c.signature_hash(key) if algorithm == "default" else algorithm)).decode()


def der_to_csr_pem(der):
    return (b"-----BEGIN CERTIFICATE REQUEST-----\n" + base64.encodebytes(bytes(der)) +
            b"-----END CERTIFICATE REQUEST-----\n").decode()


def test_a_csr_whose_signature_does_not_verify_is_refused(hosts):
    der = bytearray(_x509.load_csr(hosts.ask()["csr"]).public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0xFF  # inside the signature
    refused_by_root(hosts, der_to_csr_pem(der), "signature does not verify")


@pytest.mark.parametrize("victim", ["issuing", "root"])
def test_a_csr_for_a_key_its_sender_does_not_hold_is_refused(hosts, victim):
    """The attacker's CSR with another's public key put in: the proof of possession fails."""
    hosts.ask()
    target = (hosts.issuing_key() if victim == "issuing" else hosts.root_key).public_key()
    attacker = c.generate_private_key("ec", target.curve.key_size)  # a public key of the same length
    der = _x509.load_csr(csr_pem(attacker)).public_bytes(serialization.Encoding.DER)
    swapped = der.replace(c.public_key_der(attacker), c.public_key_der(target))
    assert swapped != der and len(swapped) == len(der)
    refused_by_root(hosts, der_to_csr_pem(swapped), "signature does not verify")


def weak_keys():
    keys = [pytest.param(rsa.generate_private_key(public_exponent=65537, key_size=1024), "an RSA key of 1024 bits",
                         id="rsa1024")]
    for curve, name in ((ec.SECP192R1, "secp192r1"), (ec.SECP256K1, "secp256k1")):
        try:
            keys.append(pytest.param(ec.generate_private_key(curve()), "curve %s" % name, id=name))
        except Exception:  # a curve this OpenSSL does not have: nothing to test
            pass
    return keys


@pytest.mark.parametrize("key,why", weak_keys())
def test_a_csr_with_a_weak_key_is_refused(hosts, key, why):
    refused_by_root(hosts, csr_pem(key), "CSR issuing has", why)


@pytest.mark.parametrize("digest", ["sha1", "md5"])
def test_a_weakly_signed_csr_is_refused(hosts, tmp_path, digest):
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command")
    key_path = tmp_path / "weak.key"
    key_path.write_bytes(c.serialize_private_key(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    pem = subprocess.run(["openssl", "req", "-new", "-" + digest, "-key", str(key_path), "-subj", "/CN=Test Issuing CA"],
                         check=True, capture_output=True, text=True).stdout
    refused_by_root(hosts, pem, "CSR issuing is signed with %s" % digest.upper())


def test_a_csr_for_the_roots_own_key_is_refused(hosts):
    refused_by_root(hosts, csr_pem(hosts.root_key), "is for the key of the signing CA itself (CN=Test Root)",
                    "never certifies its own key")


def test_a_subordinate_with_the_roots_subject_is_refused(hosts):
    refused_by_root(hosts, hosts.ask()["csr"], "subject CN=Test Root is the signing CA's own", subject={"CN": "Test Root"})


@pytest.mark.parametrize("csr,why", [
    ("not a csr", "is not a PEM certificate request"),
    ("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", "is corrupt"),
])
def test_what_is_not_a_csr_is_refused(hosts, csr, why):
    refused_by_root(hosts, csr, why)


def test_a_private_key_given_as_the_csr_is_refused_unseen(hosts):
    pem = c.serialize_private_key(c.generate_private_key("ec")).decode()
    refused_by_root(hosts, pem, "csr holds a private key")


def test_what_the_csr_asks_for_is_ignored(hosts):
    """Another subject, no path length, no constraints, SANs, usages: the certificate says what the controller decided."""
    key = c.generate_private_key("ec", 384)
    greedy = csr_pem(key, subject={"CN": "Evil Root", "O": "evil"}, extensions=[
        (x509.BasicConstraints(ca=True, path_length=None), True),
        (_x509.build_key_usage(["digitalSignature", "keyCertSign", "cRLSign", "keyEncipherment"]), True),
        (x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False),
        (x509.SubjectAlternativeName([x509.DNSName("evil.example")]), False),
        (x509.NameConstraints(permitted_subtrees=[x509.DNSName("evil.example")], excluded_subtrees=None), True),
    ])
    signed = hosts.sign(greedy)
    cert = _x509.load_certificate(signed["certificate"])
    facts = _x509.describe_certificate(cert)
    assert cert.subject == _x509.build_name(SUBJECT) and facts["path_length"] == 0
    assert _x509.name_constraints_of(cert) == _x509.build_name_constraints(PERMITTED, [])
    assert facts["subject_alt_names"] == [] and facts["extended_key_usage"] == []
    assert sorted(facts["key_usage"]) == ["cRLSign", "digitalSignature", "keyCertSign"]
    assert sorted(type(e.value).__name__ for e in cert.extensions) == [
        "AuthorityKeyIdentifier", "BasicConstraints", "KeyUsage", "NameConstraints", "SubjectKeyIdentifier"]
    assert c.same_public_key(cert.public_key(), key)


def test_a_root_that_may_certify_no_ca_refuses(tmp_path, capsys):
    hosts = Hosts(tmp_path, capsys, root_path_length=0)
    key = c.generate_private_key("ec", 384)
    refused_by_root(hosts, csr_pem(key), "has path length 0: no CA certificate it issues would verify")


@pytest.mark.parametrize("extra,why", [
    (dict(validity_days=0), "validity_days must be a whole number from 1 to 36500 days, not 0"),
    (dict(validity_days=36501), "validity_days must be a whole number from 1 to 36500 days, not 36501"),
    (dict(path_length=-1), "path_length must be a whole number from 0 to 100 CA certificates, not -1"),
    (dict(renew_days_before=1825), "renew_days_before (1825) must be less than validity_days (1825)"),
    (dict(subject={"CN": "x", "C": "USA"}), "two-letter country code"),
    (dict(name_constraints_permitted=["DNS:"]), "name constraint"),
    (dict(name=None), "missing parameter(s) required by 'index_path': name"),
    (dict(ca_key_passphrase="wrong"), "could not be decrypted"),
])
def test_the_roots_options_are_checked_before_anything_is_written(hosts, extra, why):
    refused_by_root(hosts, csr_pem(c.generate_private_key("ec")), why, **extra)


def test_a_lifetime_beyond_the_roots_ends_with_it(hosts):
    signed = hosts.sign(csr_pem(c.generate_private_key("ec")), validity_days=36500)
    assert signed["not_after"] == _x509.describe_certificate(hosts.root_cert)["not_after"]


def test_without_index_path_nothing_is_recorded(hosts):
    before = files(hosts.root_dir)
    signed = hosts.sign(csr_pem(c.generate_private_key("ec")), index_path=None, name=None)
    assert signed["changed"] and signed["index_path"] is None and signed["certificate"]
    assert files(hosts.root_dir) == before


def test_a_record_that_cannot_be_written_returns_no_certificate(hosts):
    """Check mode does not touch the record; the real run fails before it signs, and returns no certificate."""
    (hosts.root_dir / "taken").mkdir()
    ca_host.refused(lambda args, check_mode: hosts.run(ca_certificate, args, check_mode=check_mode), hosts.root_dir,
                    hosts.root_args(csr_pem(c.generate_private_key("ec")), index_path=str(hosts.root_dir / "taken")),
                    "it is a directory")


def test_the_root_can_revoke_the_issuing_ca(hosts):
    """The record lets the root's CRL name the issuing CA: crl revokes it by name."""
    from ansible_collections.fleet.mtls.plugins.modules import crl

    signed = hosts.sign(hosts.ask()["csr"])
    published = hosts.run(crl, dict(ca_cert_path=str(hosts.root_dir / "root.crt"),
                                    ca_key_path=str(hosts.root_dir / "root.key"), ca_key_passphrase=ROOT_PASSPHRASE,
                                    path=str(hosts.root_dir / "root.crl"), revoke=[dict(name="issuing")]))
    assert not published.get("failed"), published
    assert published["revoked_serials"] == [signed["serial"]]


# --- the pieces -------------------------------------------------------------


def test_misfits_of_a_root_are_those_of_a_self_signed_certificate(pki):
    wanted = _ca.Wanted({"CN": "Test Root"}, 1)
    assert _ca.misfits(pki.root, pki.root_key.public_key(), wanted, None, pki.now) == []
    assert _ca.misfits(pki.issuing, pki.issuing_key.public_key(), _ca.Wanted({"CN": "Test Issuing"}, 0), None,
                       pki.now) == ["it is not self-signed"]


def test_a_subordinate_is_built_from_a_public_key_and_a_root_needs_its_private_key(pki):
    key = c.generate_private_key("ec")
    wanted = _ca.Wanted({"CN": "Sub"}, 0)
    cert = _ca.issue(key.public_key(), wanted, pki.root, pki.root_key, 30, pki.now)
    assert _ca.misfits(cert, key.public_key(), wanted, pki.root, pki.now) == []
    with pytest.raises(PkiError, match="needs the CA's private key"):
        _ca.issue(key.public_key(), wanted, None, None, 30, pki.now)


def test_a_csr_naming_no_ca_is_still_signed_as_the_controller_says(hosts):
    key = c.generate_private_key("ed25519")
    plain = csr_pem(key, subject={"CN": "anything"}, extensions=[
        (x509.BasicConstraints(ca=False, path_length=None), True)])
    cert = _x509.load_certificate(hosts.sign(plain)["certificate"])
    assert _x509.is_ca(cert) and cert.subject == _x509.build_name(SUBJECT)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Test Issuing CA"
