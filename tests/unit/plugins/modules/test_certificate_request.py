# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""certificate_request end to end, and its memo: a re-run that changes nothing answers
from it, and anything the decision depends on makes it decide in full again."""

from __future__ import annotations

import ast
import datetime
import json
import os
import pathlib
import pwd

import pytest

from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _memo
from ansible_collections.fleet.mtls.plugins.module_utils import _policy
from ansible_collections.fleet.mtls.plugins.module_utils import _request
from ansible_collections.fleet.mtls.plugins.module_utils import _x509
from ansible_collections.fleet.mtls.plugins.modules import certificate_request


MODULE = certificate_request
DAY = datetime.timedelta(days=1)


@pytest.fixture
def decisions(monkeypatch):
    """How many times the module decided in full (not from its memo)."""
    calls = []
    decide = _request.decide

    def counting(params, files, memo):
        calls.append(files.check_mode)
        return decide(params, files, memo)

    monkeypatch.setattr(_request, "decide", counting)
    return calls


@pytest.fixture
def host(tmp_path, run_module, pki):
    """A host whose one certificate was requested, signed and installed: (args, directory)."""
    directory = tmp_path / "certs"
    args = dict(directory=str(directory), requester="web1", ca_bundle_path=str(directory / "ca-bundle.pem"),
                trust_certificates=[pki.bundle_pem().decode("ascii")], renew_fraction=0.6667, renew_jitter=0.1,
                certificates=[dict(name="server", common_name="web1", subject_alt_names=["DNS:web1"])])
    first = run_module(args)
    assert [request["name"] for request in first["requests"]] == ["web1/server"]
    key = c.load_private_key((directory / "server.key").read_bytes())
    _key, cert = pki.leaf(["DNS:web1"], key=key)
    (directory / "server.crt").write_bytes(_x509.certificate_pem(cert))
    (directory / "server.chain.pem").write_bytes(_x509.certificate_pem(pki.issuing))
    (directory / "server.fullchain.pem").write_bytes(_x509.certificate_pem(cert) + _x509.certificate_pem(pki.issuing))
    assert not (directory / _memo.MEMO_NAME).exists()  # a run that requested something remembers nothing
    return args, directory


def test_no_op_is_remembered_then_recalled(run_module, host, decisions):
    args, directory = host
    decided = run_module(args)
    assert decided["changed"] is False and decided["requests"] == []
    assert decided["certificates"][0]["reasons"] == []
    memo_path = directory / _memo.MEMO_NAME
    assert oct(memo_path.stat().st_mode & 0o777) == "0o600"
    memo = json.loads(memo_path.read_text())
    renew_at = datetime.datetime.fromisoformat(decided["certificates"][0]["renew_at"].replace("Z", "+00:00"))
    assert memo["valid_until"] == pytest.approx(renew_at.timestamp(), abs=1)
    assert decisions == [False]

    recalled = run_module(args)
    assert decisions == [False]  # answered from the memo
    assert recalled == decided
    assert run_module(args, check_mode=True) == decided
    assert decisions == [False]


def test_each_certificate_names_its_files(run_module, host):
    args, directory = host
    base = str(directory / "server")
    wanted = dict(key=base + ".key", pending_key=base + ".key.pending", cert=base + ".crt", chain=base + ".chain.pem",
                  fullchain=base + ".fullchain.pem", combined=None)
    decided = run_module(args)
    assert decided["certificates"][0]["files"] == wanted
    assert run_module(args)["certificates"][0]["files"] == wanted  # from the memo too
    combined = dict(args, certificates=[dict(args["certificates"][0], combined=True)])
    wanted_combined = dict(wanted, combined=base + ".combined.pem")
    assert run_module(combined, check_mode=True)["certificates"][0]["files"] == wanted_combined
    params = dict(combined, crl_path=None)
    assert certificate_request.decision_paths(params) == [args["ca_bundle_path"], base + ".fullchain.pem", base + ".key",
                                                          base + ".crt", base + ".chain.pem", base + ".combined.pem"]


def test_memo_holds_until_the_renewal_time(run_module, host, decisions, monkeypatch):
    args, directory = host
    decided = run_module(args)
    valid_until = json.loads((directory / _memo.MEMO_NAME).read_text())["valid_until"]
    # The renewal time: the leaf (90 days) renews before any CA certificate ends.
    assert valid_until == pytest.approx(c.utcnow().timestamp() + 89 * 86400 * 0.6667, abs=0.1 * 90 * 86400)
    monkeypatch.setattr(certificate_request.time, "time", lambda: valid_until - 1)
    assert run_module(args) == decided
    assert len(decisions) == 1
    monkeypatch.setattr(certificate_request.time, "time", lambda: valid_until)
    run_module(args)
    assert len(decisions) == 2


def _key_mode_0644(args, directory, other_pki):
    os.chmod(str(directory / "server.key"), 0o644)
    return args


def _new_san(args, directory, other_pki):
    return dict(args, certificates=[dict(args["certificates"][0], subject_alt_names=["DNS:web1", "DNS:web1.lab"])])


def _other_ca(args, directory, other_pki):
    return dict(args, trust_certificates=[other_pki.bundle_pem().decode("ascii")])


def _bundle_edited(args, directory, other_pki):
    with open(str(directory / "ca-bundle.pem"), "ab") as bundle:
        bundle.write(b"\n")
    return args


def _certificate_removed(args, directory, other_pki):
    (directory / "server.fullchain.pem").unlink()
    return args


@pytest.mark.parametrize("change, changed, reasons", [
    (_key_mode_0644, True, []),
    (_new_san, True, ["identity_changed"]),
    (_other_ca, True, ["untrusted_issuer"]),
    (_bundle_edited, True, []),
    (_certificate_removed, True, ["missing"]),
], ids=["key mode", "wanted SANs", "trusted CA", "bundle edited", "certificate removed"])
def test_a_change_the_decision_depends_on_is_decided_in_full(run_module, host, decisions, other_pki, change, changed,
                                                             reasons):
    args, directory = host
    run_module(args)
    args = change(args, directory, other_pki)
    result = run_module(args)
    assert len(decisions) == 2
    assert result["changed"] is changed
    assert result["certificates"][0]["reasons"] == reasons
    assert oct((directory / "server.key").stat().st_mode & 0o777) == "0o600"


def test_force_renewal_never_uses_the_memo(run_module, host, decisions):
    args, _directory = host
    run_module(args)
    forced = run_module(dict(args, force_renewal=True))
    assert len(decisions) == 2
    assert forced["certificates"][0]["reasons"] == ["forced"]
    assert [request["name"] for request in forced["requests"]] == ["web1/server"]


def test_check_mode_writes_no_memo(run_module, host, decisions):
    args, directory = host
    assert run_module(args, check_mode=True)["changed"] is False
    assert not (directory / _memo.MEMO_NAME).exists()
    assert decisions == [True]


@pytest.mark.parametrize("content", [b"", b"{not json", b"[]", b'{"key": null}'])
def test_an_unreadable_memo_means_a_full_decision(run_module, host, decisions, content):
    args, directory = host
    run_module(args)
    (directory / _memo.MEMO_NAME).write_bytes(content)
    assert run_module(args)["changed"] is False
    assert len(decisions) == 2
    assert json.loads((directory / _memo.MEMO_NAME).read_text())["key"]  # written again


def test_other_code_means_a_full_decision(run_module, host, decisions, monkeypatch):
    args, _directory = host
    run_module(args)
    digest = _memo.code_digest
    monkeypatch.setattr(_memo, "code_digest", lambda *names: "changed:" + digest(*names))
    run_module(args)
    assert len(decisions) == 2


def test_an_unwritable_memo_is_no_error(run_module, host, decisions):
    args, directory = host
    (directory / _memo.MEMO_NAME).mkdir()  # a directory where the memo would go
    assert run_module(args)["changed"] is False
    assert run_module(args)["changed"] is False
    assert len(decisions) == 2


def _imported_module_utils(name, seen):
    """The collection's module_utils that name imports, all the way down."""
    if name in seen:
        return seen
    seen.add(name)
    package = "ansible_collections.fleet.mtls.plugins.module_utils"
    source = pathlib.Path(_memo.__file__).with_name(name + ".py").read_text()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module == package:
            for alias in node.names:
                _imported_module_utils(alias.name, seen)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(package + "."):
            _imported_module_utils(node.module.rsplit(".", 1)[1], seen)
    return seen


def test_the_memo_is_keyed_on_all_the_deciding_code():
    assert set(certificate_request.DECIDING_CODE) == _imported_module_utils("_request", set()) | {"_memo"}
    assert _memo.code_digest("certificate_request", certificate_request.DECIDING_CODE) is not None


def test_a_clock_set_back_before_the_decision_means_a_full_decision(run_module, host, decisions, monkeypatch):
    args, directory = host
    run_module(args)
    decided_at = json.loads((directory / _memo.MEMO_NAME).read_text())["decided_at"]
    monkeypatch.setattr(certificate_request.time, "time", lambda: decided_at - 60)
    run_module(args)
    assert len(decisions) == 2


def test_an_owner_name_given_to_another_id_means_a_full_decision(run_module, host, decisions, monkeypatch):
    args, directory = host
    args = dict(args, certificates=[dict(args["certificates"][0], owner="root", group="root")])
    run_module(args)
    run_module(args)
    assert len(decisions) == 1
    monkeypatch.setattr(_memo.pwd, "getpwnam", lambda name: pwd.struct_passwd(("root", "x", 4242, 0, "", "/", "")))
    run_module(args)
    assert len(decisions) == 2


def sign(pki, requests):
    """What fleet.mtls.sign returns for these requests, signed by the test PKI's issuing CA."""
    signed = []
    for request in requests:
        csr = _x509.load_csr(request["csr"].encode("ascii"))
        cert = _x509.build_leaf_certificate(csr, _x509.common_name(csr.subject), pki.issuing, pki.issuing_key, _x509.sans_of(csr),
                                            _policy.PROFILES[request["profile"]], pki.now - DAY, pki.now + 90 * DAY,
                                            _x509.random_serial())
        signed.append(dict(name=request["name"], certificate=_x509.certificate_pem(cert).decode("ascii"),
                           chain=_x509.certificate_pem(pki.issuing).decode("ascii"),
                           serial=c.serial_hex(cert.serial_number)))
    return signed


@pytest.fixture
def cold(tmp_path, run_module, pki):
    """A host with two certificates (one for HAProxy) requested, nothing signed yet: (args, directory, requests)."""
    directory = tmp_path / "certs"
    args = dict(directory=str(directory), requester="lb1", ca_bundle_path=str(directory / "ca-bundle.pem"),
                trust_certificates=[pki.bundle_pem().decode("ascii")], renew_fraction=0.6667,
                certificates=[dict(name="server", common_name="lb1", subject_alt_names=["DNS:lb1"], combined=True),
                              dict(name="client", profile="client", common_name="lb1", subject_alt_names=["DNS:lb1"])])
    requested = run_module(args)
    return args, directory, requested["requests"]


def test_installing_leaves_a_memo_so_the_first_re_run_is_cheap(run_module, cold, decisions, pki):
    args, directory, requests = cold
    signed = sign(pki, requests)
    installed = run_module(dict(args, signed=signed))
    assert installed["changed"] is True
    assert [(entry["name"], entry["serial"], entry["key_promoted"]) for entry in installed["installed"]] == [
        ("server", signed[0]["serial"], False), ("client", signed[1]["serial"], False)]
    assert sorted(os.listdir(str(directory))) == sorted([
        _memo.MEMO_NAME, "ca-bundle.pem", "server.key", "server.crt", "server.chain.pem", "server.fullchain.pem",
        "server.combined.pem", "client.key", "client.crt", "client.chain.pem", "client.fullchain.pem"])
    assert oct((directory / "server.combined.pem").stat().st_mode & 0o777) == "0o600"
    assert [cert["reasons"] for cert in installed["certificates"]] == [[], []]
    assert installed["requests"] == []

    re_run = run_module(args)
    assert decisions == []  # the first re-run after the installation answered from the memo
    assert re_run["changed"] is False
    assert [cert["serial"] for cert in re_run["certificates"]] == [entry["serial"] for entry in signed]
    assert run_module(dict(args, signed=signed))["changed"] is False  # installing again changes nothing


def test_a_forced_renewal_installs_the_pending_key_and_settles(run_module, cold, decisions, pki):
    args, directory, requests = cold
    run_module(dict(args, signed=sign(pki, requests)))
    old_key = (directory / "server.key").read_bytes()
    forced = run_module(dict(args, force_renewal=True))
    assert [cert["reasons"] for cert in forced["certificates"]] == [["forced"], ["forced"]]
    assert (directory / "server.key.pending").exists()
    signed = sign(pki, forced["requests"])
    installed = run_module(dict(args, force_renewal=True, signed=signed))
    assert [entry["key_promoted"] for entry in installed["installed"]] == [True, True]
    assert (directory / "server.key").read_bytes() != old_key
    assert not (directory / "server.key.pending").exists()
    assert [cert["reasons"] for cert in installed["certificates"]] == [[], []]  # force is not asked again
    calls = len(decisions)
    assert run_module(args)["changed"] is False
    assert len(decisions) == calls


def test_a_certificate_for_another_key_is_refused_and_nothing_is_written(run_module, cold, pki):
    args, directory, requests = cold
    signed = sign(pki, requests)
    signed[0]["certificate"], signed[1]["certificate"] = signed[1]["certificate"], signed[0]["certificate"]
    refused = run_module(dict(args, signed=signed))
    assert refused["failed"] and "does not match key" in refused["msg"]
    assert not (directory / "server.crt").exists() and not (directory / _memo.MEMO_NAME).exists()


@pytest.mark.parametrize("entry, message", [
    (dict(name="web1/server", certificate="x"), "is not one of lb1's certificates"),
    (dict(name="lb1/other", certificate="x"), "is not one of lb1's certificates"),
    (dict(name="lb1/server"), "has no certificate"),
])
def test_a_signed_entry_that_is_not_this_hosts_is_refused(run_module, cold, entry, message):
    args, _directory, _requests = cold
    refused = run_module(dict(args, signed=[entry]))
    assert refused["failed"] and message in refused["msg"]


def test_installing_in_check_mode_writes_nothing(run_module, cold, pki):
    args, directory, requests = cold
    before = sorted(os.listdir(str(directory)))
    result = run_module(dict(args, signed=sign(pki, requests)), check_mode=True)
    assert result["changed"] is True
    assert sorted(os.listdir(str(directory))) == before


@pytest.mark.parametrize("name", ["../outside/pwn", "a/b", "..", ".hidden", "x\n", "", "a" * 65])
@pytest.mark.parametrize("install", [False, True])
def test_a_certificate_name_outside_the_directory_is_refused_and_nothing_is_written(run_module, tmp_path, pki, name,
                                                                                    install):
    """The audit's path traversal: the name ../outside/pwn wrote the key and every certificate outside directory."""
    directory = tmp_path / "certs"
    args = dict(directory=str(directory), requester="web1", ca_bundle_path=str(directory / "ca-bundle.pem"),
                trust_certificates=[pki.bundle_pem().decode("ascii")],
                certificates=[dict(name=name, common_name="web1", subject_alt_names=["DNS:web1"])])
    if install:
        args["signed"] = [dict(name="web1/" + name, certificate="x")]
    refused = run_module(args)
    assert refused.get("failed") and "is not a certificate name" in refused["msg"], refused
    assert sorted(path.name for path in tmp_path.rglob("*")) == []


@pytest.mark.parametrize("days", [0, -5, 36501, 999999999])
@pytest.mark.parametrize("check_mode", [False, True])
def test_a_lifetime_the_ca_cannot_sign_is_refused_and_nothing_is_written(run_module, installed, days, check_mode):
    """validity_days 0 used to be dropped from the request, so the CA's default lifetime applied unasked."""
    args, directory = installed
    before = _digests(directory)
    args = dict(args, force_renewal=True, certificates=[dict(spec, validity_days=days) for spec in args["certificates"]])
    refused = run_module(args, check_mode=check_mode)
    assert refused.get("failed"), refused
    assert "certificates[0].validity_days must be a whole number from 1 to 36500 days, not %d" % days \
        in refused["msg"], refused["msg"]
    assert _digests(directory) == before


def _digests(directory):
    import hashlib
    return dict((path.name, (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mode & 0o7777))
                for path in sorted(pathlib.Path(directory).iterdir()) if not path.is_symlink())


@pytest.fixture
def installed(run_module, cold, pki):
    """The cold host after its certificates were signed and installed: (args, directory)."""
    args, directory, requests = cold
    run_module(dict(args, signed=sign(pki, requests)))
    return args, directory


def _chmod(name, mode):
    def change(directory):
        os.chmod(str(directory / name), mode)
    return change


def _delete(name):
    def change(directory):
        (directory / name).unlink()
    return change


def _corrupt(name):
    def change(directory):
        (directory / name).write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    return change


@pytest.mark.parametrize("change, repaired", [
    (_chmod("server.combined.pem", 0o604), ["server.combined.pem"]),
    (_chmod("server.key", 0o644), ["server.key"]),
    (_chmod("client.crt", 0o600), ["client.crt"]),
    (_delete("client.crt"), ["client.crt"]),
    (_delete("server.chain.pem"), ["server.chain.pem"]),
    (_corrupt("server.chain.pem"), ["server.chain.pem"]),
    (_corrupt("server.crt"), ["server.crt"]),
    (_delete("server.combined.pem"), ["server.combined.pem"]),
    (_corrupt("server.combined.pem"), ["server.combined.pem"]),
], ids=["combined 0604", "key 0644", "certificate 0600", "certificate deleted", "chain deleted", "chain corrupted",
        "certificate corrupted", "combined deleted", "combined corrupted"])
def test_a_re_run_repairs_the_files_of_a_good_certificate_without_a_request(run_module, installed, decisions,
                                                                            change, repaired):
    """The audit: re-runs, with or without the memo, reported ok and left a 0644 combined PEM, a deleted .crt, a
    corrupted .chain.pem as they were."""
    args, directory = installed
    assert run_module(args)["changed"] is False  # the memo the installation left
    good = _digests(directory)
    change(directory)

    checked = run_module(args, check_mode=True)
    assert checked["changed"] is True
    assert [path for cert in checked["certificates"] for path in cert["repaired"]] == \
        [str(directory / name) for name in repaired]
    repaired_run = run_module(args)
    assert repaired_run["changed"] is True and repaired_run["requests"] == []
    assert [cert["reasons"] for cert in repaired_run["certificates"]] == [[], []]
    assert _digests(directory) == good  # every file as the installation wrote it, the memo included
    settled = run_module(args)
    assert settled["changed"] is False
    assert [cert["repaired"] for cert in settled["certificates"]] == [[], []]


@pytest.mark.parametrize("mode, repaired_mode", [(0o640, None), (0o644, 0o640), (0o660, 0o640), (0o604, 0o600)])
def test_a_combined_pem_may_stay_group_readable_never_more(run_module, installed, mode, repaired_mode):
    """Group read given outside the entry (a service's group gets its key through the entry's group and key_mode)
    is kept; any grant beyond it is taken away."""
    args, directory = installed
    combined = directory / "server.combined.pem"
    os.chmod(str(combined), mode)
    result = run_module(args)
    assert result["changed"] is (repaired_mode is not None)
    assert combined.stat().st_mode & 0o777 == (repaired_mode if repaired_mode is not None else mode)
    assert run_module(args)["changed"] is False


def test_check_mode_reports_a_key_group_still_to_be_made_and_writes_nothing(run_module, installed):
    """The certificate role makes a service's group just before this module sets it on the key files; in check
    mode it made none, so the files are reported as changing, not a failure."""
    args, directory = installed
    before = _digests(directory)  # content and mode of every file
    server = dict(args["certificates"][0], group="fleet-mtls-no-such-group", key_mode="0640")
    checked = run_module(dict(args, certificates=[server, args["certificates"][1]]), check_mode=True)
    assert not checked.get("failed") and checked["changed"] is True, checked
    assert checked["requests"] == []
    assert _digests(directory) == before
    refused = run_module(dict(args, certificates=[server, args["certificates"][1]]))
    assert refused.get("failed") and "fleet-mtls-no-such-group" in refused["msg"], refused


def test_a_full_chain_that_cannot_be_read_is_issued_again(run_module, installed):
    args, directory = installed
    _corrupt("server.fullchain.pem")(directory)
    result = run_module(args)
    assert result["changed"] is True
    assert [cert["reasons"] for cert in result["certificates"]] == [["unreadable"], []]
    assert [request["name"] for request in result["requests"]] == ["lb1/server"]


@pytest.mark.parametrize("name", ["server.key", "server.combined.pem"])
def test_a_key_file_that_is_a_symlink_is_refused_and_nothing_is_written(run_module, installed, tmp_path, name):
    """The audit: a key reached through a symlink to a 0644 file kept 0644, and the module reported ok."""
    args, directory = installed
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = elsewhere / name
    target.write_bytes((directory / name).read_bytes())
    os.chmod(str(target), 0o644)
    (directory / name).unlink()
    (directory / name).symlink_to(target)
    before, outside = _digests(directory), _digests(elsewhere)
    for check_mode in (True, False):
        refused = run_module(args, check_mode=check_mode)
        assert refused.get("failed") and "is a symbolic link" in refused["msg"], refused
    assert _digests(directory) == before and _digests(elsewhere) == outside
    assert os.path.islink(str(directory / name))


@pytest.mark.parametrize("option", ["trust", "signed certificate", "signed chain"])
def test_a_private_key_in_a_logged_option_is_refused_and_masked(run_module, cold, pki, option):
    args, directory, requests = cold
    key = (directory / "server.key").read_bytes().decode("ascii")
    signed = sign(pki, requests)
    if option == "trust":
        args = dict(args, trust_certificates=[args["trust_certificates"][0] + key])
    elif option == "signed certificate":
        args = dict(args, signed=[dict(signed[0], certificate=signed[0]["certificate"] + key)])
    else:
        args = dict(args, signed=[dict(signed[0], chain=signed[0]["chain"] + key)])
    before = _digests(directory)
    refused = run_module(args)
    assert refused.get("failed") and "holds a private key" in refused["msg"], refused
    assert "PRIVATE KEY" not in json.dumps(refused)
    assert _digests(directory) == before


def test_a_certificate_of_another_issuing_ca_is_issued_again_once_that_ca_signs(run_module, host, pki):
    """A CA rollover's switch: the old issuing CA still chains to the root, yet its certificates are replaced."""
    args, _directory = host
    old_issuing = _x509.certificate_pem(pki.issuing).decode("ascii")
    next_key = c.generate_private_key("ec")
    next_issuing = _x509.build_ca_certificate(next_key, {"CN": "Test Issuing"}, pki.now - DAY, pki.now + 1825 * DAY,
                                              issuer_cert=pki.root, issuer_key=pki.root_key, path_length=0)
    next_pem = _x509.certificate_pem(next_issuing).decode("ascii")

    kept = run_module(dict(args, issuer_certificates=[old_issuing]))
    assert kept["requests"] == [] and kept["certificates"][0]["reasons"] == []

    # The same subject, another key: the issuer's name alone does not decide.
    switched = run_module(dict(args, issuer_certificates=[next_pem]))
    assert switched["certificates"][0]["reasons"] == ["issuer_changed"]
    assert [request["name"] for request in switched["requests"]] == ["web1/server"]
    assert switched["certificates"][0]["pending_key"] is True

    either = run_module(dict(args, issuer_certificates=[next_pem, old_issuing]))
    assert either["certificates"][0]["reasons"] == []


def test_issuers_that_are_not_certificates_are_refused_and_nothing_is_written(run_module, host):
    args, directory = host
    before = {path.name: path.read_bytes() for path in directory.iterdir()}
    result = run_module(dict(args, issuer_certificates=["not a certificate"]))
    assert result["failed"]
    assert "issuer_certificates[0]" in result["msg"]
    assert {path.name: path.read_bytes() for path in directory.iterdir()} == before
