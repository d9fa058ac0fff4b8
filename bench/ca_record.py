"""What a sign run costs against an empty CA record and against a large one.

Usage: ca_record.py [--entries N] [--csrs M] [--rounds R] [--baseline REV]

Signs M CSRs (default 50) in one fleet.mtls.sign run against a record that
is empty and against one that holds N entries (default 100000: 10k hosts,
about 18 months of 90-day certificates renewed at two thirds of their
life), alternately, R times each (default 5), every round from a fresh
copy of the same record. The module runs as Ansible runs it on the CA
host: a new process of the host's Python with the module's arguments, so
the time includes the interpreter, the imports and the signing, the work
that does not depend on the record, as well as the record's own.

With --baseline REV, the collection's plugins as of that git revision run
the same cases side by side (for example the last revision whose record
was a JSON document), against an index.json holding the same entries.

It prints the median wall and CPU seconds of each case and the ratio
large / empty. The target is a ratio of at most 1.2.
"""
import argparse
import datetime
import io
import json
import os
import pathlib
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
PYTHON = "/usr/bin/python3"
DOMAIN = "fleet.example"


def make_ca(directory):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bench Issuing CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    (directory / "issuing.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "issuing.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    os.chmod(str(directory / "issuing.key"), 0o600)


def make_csrs(count):
    csrs = []
    for number in range(count):
        host = "host%05d.%s" % (number, DOMAIN)
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
               .sign(key, hashes.SHA256()))
        csrs.append(dict(name="%s/server" % host, csr=csr.public_bytes(serialization.Encoding.PEM).decode()))
    return csrs


def entries(count):
    """Entries shaped like the ones sign records, a third of them expired, one in fifty revoked."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    made = []
    for number in range(count):
        host = "host%05d.%s" % (number % 10000, DOMAIN)
        issued = now - datetime.timedelta(days=540) + datetime.timedelta(minutes=7 * number % (540 * 1440))
        stamp = issued.strftime("%Y-%m-%dT%H:%M:%SZ")
        entry = dict(serial="%X" % (secrets.randbits(156) | 1 << 156), name="%s/server" % host, requester=host,
                     profile="server_client", subject="CN=%s" % host,
                     subject_alt_names=["DNS:%s" % host, "URI:spiffe://%s/host/%s" % (DOMAIN, host)],
                     not_before=stamp, not_after=(issued + datetime.timedelta(days=90)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                     fingerprint_sha256=":".join("%02X" % b for b in secrets.token_bytes(32)),
                     issuer="CN=Bench Issuing CA", issued_at=stamp, revoked_at=None, revocation_reason=None)
        if number % 50 == 0:
            entry.update(revoked_at=stamp, revocation_reason="superseded")
        made.append(entry)
    return made


def collection(top, revision):
    """An ansible_collections tree holding fleet.mtls: the working tree's, or a git revision's plugins."""
    root = top / ("collections-" + (revision or "tree"))
    target = root / "ansible_collections" / "fleet"
    target.mkdir(parents=True)
    if revision is None:
        os.symlink(str(REPO), str(target / "mtls"))
        return root
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision, "plugins"], capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(str(target / "mtls"))
    return root


def sign_once(collections, ca_dir, index_path, csrs):
    args = dict(ANSIBLE_MODULE_ARGS=dict(
        ca_cert_path=str(ca_dir / "issuing.crt"), ca_key_path=str(ca_dir / "issuing.key"),
        index_path=str(index_path), csrs=csrs, profile="server_client", allowed_domains=[DOMAIN]))
    args_path = ca_dir / "args.json"
    args_path.write_text(json.dumps(args))
    module = collections / "ansible_collections/fleet/mtls/plugins/modules/sign.py"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(collections), ansible_path()]))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([PYTHON, str(module), str(args_path)], env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        result = json.loads(done.stdout)
    except ValueError:
        result = {"failed": True, "msg": done.stderr[-2000:]}
    if result.get("failed") or len(result.get("certificates", [])) != len(csrs):
        sys.exit("sign failed: %s" % result.get("msg"))
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def ansible_path():
    """Where the test virtualenv's ansible-core is, for the module's ansible.module_utils imports."""
    venv_python = REPO / ".venv" / "bin" / "python"
    return subprocess.run([str(venv_python), "-c", "import ansible, os; print(os.path.dirname(os.path.dirname("
                           "ansible.__file__)))"], capture_output=True, text=True, check=True).stdout.strip()


def prepare(top, label, collections, count, json_document, record_name):
    """A template CA directory whose record holds count entries: the JSON document, imported when record_name is .db."""
    template = top / ("template-%s-%d" % (label, count))
    template.mkdir()
    make_ca(template)
    legacy = template / "index.json"
    if count:
        legacy.write_bytes(json_document)
    if record_name.endswith(".db") and count:
        # The first writing run imports the JSON; signing nothing keeps the record as it is otherwise.
        script = ("from ansible_collections.fleet.mtls.plugins.module_utils import _index\n"
                  "with _index.CertificateIndex(%r):\n    pass\n" % str(template / record_name))
        subprocess.run([PYTHON, "-c", script], check=True,
                       env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(collections), ansible_path()])))
        os.unlink(str(template / "index.json.imported"))
    return template


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100000)
    parser.add_argument("--csrs", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", help="a git revision whose plugins run the same cases")
    options = parser.parse_args()

    top = pathlib.Path(tempfile.mkdtemp(prefix="fleet-mtls-record-bench."))
    try:
        csrs = make_csrs(options.csrs)
        document = json.dumps({"format": 1, "certificates": entries(options.entries)}, indent=1,
                              sort_keys=True).encode() + b"\n"
        variants = [("this tree", None, "index.db")]
        if options.baseline:
            variants.append(("baseline %s" % options.baseline, options.baseline, "index.json"))
        cases = []
        for label, revision, record_name in variants:
            collections = collection(top, revision)
            for count in (0, options.entries):
                template = prepare(top, label.split()[0] + str(len(cases)), collections, count, document,
                                   record_name)
                cases.append(dict(label=label, count=count, collections=collections, template=template,
                                  record=record_name, wall=[], cpu=[]))
        for number in range(options.rounds):
            for case in cases:
                work = top / "work"
                shutil.copytree(str(case["template"]), str(work))
                wall, cpu = sign_once(case["collections"], work, work / case["record"], csrs)
                shutil.rmtree(str(work))
                case["wall"].append(wall)
                case["cpu"].append(cpu)
            print("round %d of %d done" % (number + 1, options.rounds), file=sys.stderr)
        print("| plugins | record | entries | wall s (median) | CPU s (median) | ratio to empty (wall) |")
        print("|---|---|---|---|---|---|")
        empty = {}
        for case in cases:
            wall, cpu = statistics.median(case["wall"]), statistics.median(case["cpu"])
            empty.setdefault(case["label"], wall)
            ratio = wall / empty[case["label"]]
            print("| %s | %s | %d | %.3f | %.3f | %.2f |"
                  % (case["label"], case["record"], case["count"], wall, cpu, ratio))
        print("\n%d CSRs per run, %d rounds, %s, cores: %d" % (options.csrs, options.rounds, PYTHON, os.cpu_count()))
    finally:
        shutil.rmtree(str(top), ignore_errors=True)


if __name__ == "__main__":
    main()
