# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The metrics module and its core (_metrics): the exposition text, the values it publishes, and the file it writes.

The text is checked by two parsers that are not ours: prometheus_client's
(the controller's test venv) and promtool's (Debian's prometheus package);
the timestamps against what openssl prints for the same files.
"""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess

import pytest
import yaml

from ansible_collections.fleet.mtls.plugins.module_utils import _crl
from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _metrics
from ansible_collections.fleet.mtls.plugins.module_utils import _policy
from ansible_collections.fleet.mtls.plugins.module_utils import _x509
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError
from ansible_collections.fleet.mtls.plugins.modules import metrics

MODULE = metrics
DAY = datetime.timedelta(days=1)
# A subject with every character the exposition format escapes, and one more.
AWKWARD = 'Fleet "Quoted" \\ Back\nslash é'


def parse_exposition(content):
    """{name: family} as prometheus_client reads the text."""
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        pytest.fail("prometheus_client is not installed in the test venv: run scripts/bootstrap.sh "
                    "(tests/requirements.txt pins prometheus-client)")
    return dict((family.name, family) for family in text_string_to_metric_families(content.decode("utf-8")))


def samples(content):
    """{(name, frozenset(labels)): value} of every sample of the text."""
    found = {}
    for family in parse_exposition(content).values():
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in found, key
            found[key] = sample.value
    return found


def promtool_check_metrics(content):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed: run scripts/bootstrap.sh (Debian package prometheus)")
    return subprocess.run([promtool, "check", "metrics"], input=content, capture_output=True, timeout=60, check=False)


def openssl_date(command, option, path):
    """The date openssl prints for -startdate, -enddate, -nextupdate or -lastupdate, as Unix seconds."""
    out = subprocess.run(["openssl", command, option, "-noout", "-in", str(path)], capture_output=True, text=True,
                         check=True, env=dict(os.environ, LC_ALL="C")).stdout.strip()
    text = out.split("=", 1)[1]
    when = datetime.datetime.strptime(text, "%b %d %H:%M:%S %Y GMT").replace(tzinfo=datetime.timezone.utc)
    return int(when.timestamp())


@pytest.fixture(scope="module")
def awkward_pki(pki):
    return type(pki)(name=AWKWARD)  # the Pki of tests/unit/plugins/conftest.py, with awkward CA names


@pytest.fixture
def host(tmp_path, pki):
    """A host's files: two certificates (a 90-day full chain, a 7-day one near expiry), the bundle, a CRL."""
    directory = tmp_path / "certs"
    directory.mkdir()
    server_key, server = pki.leaf(["DNS:web1"])
    short_key, short = pki.leaf(["DNS:web1"], not_before=pki.now - 6 * DAY, not_after=pki.now + DAY)
    pki.write(directory, "server", server_key, server)
    pki.write(directory, "short", short_key, short, chain=False)
    (directory / "ca-bundle.pem").write_bytes(pki.bundle_pem())
    (directory / "server.chain.pem").write_bytes(_x509.certificate_pem(pki.issuing))
    crl = _crl.build_crl(pki.issuing, pki.issuing_key, [_crl.Revocation(server.serial_number + 1, pki.now)], 7,
                         pki.now, 7)
    (directory / "issuing.crl").write_bytes(_crl.crl_pem(crl))
    textfiles = tmp_path / "node-exporter"
    textfiles.mkdir()
    args = dict(
        path=str(textfiles / "fleet_mtls.prom"),
        certificates=[dict(name="server", path=str(directory / "server.crt")),
                      dict(name="short", path=str(directory / "short.crt"))],
        ca_bundle_paths=[str(directory / "ca-bundle.pem"), str(directory / "server.chain.pem")],
        crl_paths=[str(directory / "issuing.crl")],
        services=[dict(service="nginx", mode="permissive", since="2026-01-02T03:04:05Z"),
                  dict(service="haproxy", mode="strict")],
        renew_fraction=0.6667, renew_days_before=None, renew_jitter=0.1, requester="web1",
        _ansible_diff=True,
    )
    return dict(args=args, dir=directory, server=server, short=short, crl=crl)


@pytest.fixture
def clock(monkeypatch):
    """Set the module's now: clock(moment)."""
    def set_now(moment):
        monkeypatch.setattr(c, "utcnow", lambda: moment)
    return set_now


def series(content, metric, **labels):
    """The value of the one sample of metric with (at least) these labels."""
    matching = [value for (name, sample_labels), value in samples(content).items()
                if name == metric and all(dict(sample_labels).get(k) == v for k, v in labels.items())]
    assert len(matching) == 1, (metric, labels, matching)
    return matching[0]


# --- the exposition format ----------------------------------------------------


def test_label_values_are_escaped_as_the_text_format_says():
    assert _metrics.escape_label_value('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    assert _metrics.escape_label_value("plain é") == "plain é"
    assert _metrics.escape_help("a\\b\nc \"kept\"") == 'a\\\\b\\nc "kept"'


def test_awkward_label_values_come_back_exactly_from_prometheus_client():
    family = _metrics.Family("fleet_mtls_x", "Help with \\ and \n.", ("subject",))
    family.add(1, dict(subject=AWKWARD))
    family.add(2, dict(subject="\\\""))
    content = _metrics.exposition([family])
    parsed = parse_exposition(content)["fleet_mtls_x"]
    assert parsed.documentation == "Help with \\ and \n."
    assert sorted((s.labels["subject"], s.value) for s in parsed.samples) == [(AWKWARD, 1.0), ("\\\"", 2.0)]
    assert promtool_check_metrics(content).returncode == 0


@pytest.mark.parametrize("value, text", [
    (0, "0"), (1796315648, "1796315648"), (-3600, "-3600"), (2 ** 70, str(2 ** 70)), (3.0, "3"), (0.25, "0.25"),
    (float("nan"), "NaN"), (float("inf"), "+Inf"), (float("-inf"), "-Inf")])
def test_values(value, text):
    assert _metrics.format_value(value) == text


@pytest.mark.parametrize("value", [True, "1", None])
def test_a_value_that_is_not_a_number_is_refused(value):
    with pytest.raises(PkiError, match="must be a number"):
        _metrics.format_value(value)


def test_a_family_refuses_wrong_labels_and_duplicate_series():
    family = _metrics.Family("fleet_mtls_x", "x", ("a", "b"))
    with pytest.raises(PkiError, match="takes the labels a, b"):
        family.add(1, dict(a="1"))
    family.add(1, dict(a="1", b="2"))
    with pytest.raises(PkiError, match="two samples"):
        family.add(2, dict(a="1", b="2"))
    with pytest.raises(PkiError, match="not a Prometheus metric name"):
        _metrics.Family("fleet-mtls", "x", ())
    with pytest.raises(PkiError, match="not a label name"):
        _metrics.Family("fleet_mtls_x", "x", ("__name__",))


def test_the_text_is_sorted_help_and_type_first_and_ends_in_a_newline():
    late = _metrics.Family("fleet_mtls_b", "B.", ("k",))
    early = _metrics.Family("fleet_mtls_a", "A.", ())
    empty = _metrics.Family("fleet_mtls_c", "C.", ())
    late.add(2, dict(k="z"))
    late.add(1, dict(k="y"))
    early.add(5, {})
    assert _metrics.exposition([late, empty, early]) == (
        b"# HELP fleet_mtls_a A.\n# TYPE fleet_mtls_a gauge\nfleet_mtls_a 5\n"
        b"# HELP fleet_mtls_b B.\n# TYPE fleet_mtls_b gauge\nfleet_mtls_b{k=\"y\"} 1\nfleet_mtls_b{k=\"z\"} 2\n")


def test_without_last_run_drops_its_samples_only():
    content = (b"# HELP fleet_mtls_last_run_timestamp_seconds h\n# TYPE fleet_mtls_last_run_timestamp_seconds gauge\n"
               b"fleet_mtls_last_run_timestamp_seconds 1\nfleet_mtls_last_run_timestamp_seconds{host=\"a\"} 2\n"
               b"fleet_mtls_last_run_timestamp_seconds_other 3\n")
    assert _metrics.without_last_run(content) == (
        b"# HELP fleet_mtls_last_run_timestamp_seconds h\n# TYPE fleet_mtls_last_run_timestamp_seconds gauge\n"
        b"fleet_mtls_last_run_timestamp_seconds_other 3\n")
    assert _metrics.without_last_run(None) == b""


# --- what is published ----------------------------------------------------------


def test_every_family_has_help_and_type_gauge_and_promtool_accepts_the_text(host, pki):
    content, _facts = _metrics.collect(host["args"], pki.now)
    families = parse_exposition(content)
    assert set(families) == set(_metrics.FAMILIES)
    for name, family in families.items():
        assert family.type == "gauge", name
        assert family.documentation == _metrics.FAMILIES[name][0]
    text = content.decode("utf-8")
    for name in _metrics.FAMILIES:
        assert "# HELP %s " % name in text and "# TYPE %s gauge\n" % name in text
    checked = promtool_check_metrics(content)
    assert checked.returncode == 0 and not checked.stdout and not checked.stderr, checked


def test_timestamps_are_the_ones_openssl_prints(host, pki):
    content, _facts = _metrics.collect(host["args"], pki.now)
    directory = host["dir"]
    for name in ("server", "short"):
        path = directory / (name + ".crt")
        labels = dict(name=name)
        assert series(content, "fleet_mtls_certificate_not_after_timestamp_seconds", **labels) == \
            openssl_date("x509", "-enddate", path)
        assert series(content, "fleet_mtls_certificate_not_before_timestamp_seconds", **labels) == \
            openssl_date("x509", "-startdate", path)
    for ca_file, ca in (("ca-bundle.pem", pki.root), ("server.chain.pem", pki.issuing)):
        assert series(content, "fleet_mtls_ca_not_after_timestamp_seconds",
                      subject=_x509.name_to_string(ca.subject)) == openssl_date("x509", "-enddate", directory / ca_file)
    crl_path = directory / "issuing.crl"
    assert series(content, "fleet_mtls_crl_next_update_timestamp_seconds") == openssl_date("crl", "-nextupdate", crl_path)
    assert series(content, "fleet_mtls_crl_last_update_timestamp_seconds") == openssl_date("crl", "-lastupdate", crl_path)
    number = subprocess.run(["openssl", "crl", "-crlnumber", "-noout", "-in", str(crl_path)], capture_output=True,
                            text=True, check=True).stdout.strip()
    assert series(content, "fleet_mtls_crl_number", path=str(crl_path)) == int(number.split("=", 1)[1], 16) == 7


@pytest.fixture
def crls_pem(host, pki):
    """A host's crls.pem as the certificate role writes it: the root CA's CRL, then the issuing CA's, one file.

    The root's was issued ten days ago for seven: it has lapsed.
    """
    root_crl = _crl.build_crl(pki.root, pki.root_key, [], 3, pki.now - 10 * DAY, 7)
    path = host["dir"] / "crls.pem"
    path.write_bytes(_crl.crl_pem(root_crl) + _crl.crl_pem(host["crl"]))
    return dict(path=path, root=root_crl, issuing=host["crl"])


def test_every_crl_of_a_file_is_a_series_labelled_by_its_issuer(host, pki, crls_pem):
    # The file each host's servers load holds the root CA's CRL and the issuing CA's: one series each.
    args = dict(host["args"], crl_paths=[str(crls_pem["path"])])
    content, facts = _metrics.collect(args, pki.now)
    path = str(crls_pem["path"])
    root, issuing = (_x509.name_to_string(ca.subject) for ca in (pki.root, pki.issuing))
    for metric in ("fleet_mtls_crl_last_update_timestamp_seconds", "fleet_mtls_crl_next_update_timestamp_seconds",
                   "fleet_mtls_crl_number"):
        assert sorted(dict(labels)["issuer"] for name, labels in samples(content) if name == metric) == \
            sorted([root, issuing]), metric
        assert {dict(labels)["path"] for name, labels in samples(content) if name == metric} == {path}
    for issuer, crl in ((root, crls_pem["root"]), (issuing, crls_pem["issuing"])):
        assert series(content, "fleet_mtls_crl_number", issuer=issuer, path=path) == _crl.crl_number(crl)
        assert series(content, "fleet_mtls_crl_last_update_timestamp_seconds", issuer=issuer, path=path) == \
            int(c.crl_last_update(crl).timestamp())
        assert series(content, "fleet_mtls_crl_next_update_timestamp_seconds", issuer=issuer, path=path) == \
            int(c.crl_next_update(crl).timestamp())
    # openssl crl prints the first CRL of a file: the root's, as published.
    assert series(content, "fleet_mtls_crl_next_update_timestamp_seconds", issuer=root) == \
        openssl_date("crl", "-nextupdate", crls_pem["path"])
    assert [(f["path"], f["issuer"], f["crl_number"]) for f in facts["crls"]] == sorted(
        [(path, root, 3), (path, issuing, 7)])
    checked = promtool_check_metrics(content)
    assert checked.returncode == 0 and not checked.stdout and not checked.stderr, checked


def test_crls_are_sorted_by_path_then_issuer_whatever_the_order_of_the_file(host, pki, crls_pem, tmp_path):
    args = dict(host["args"], crl_paths=[str(crls_pem["path"]), host["args"]["crl_paths"][0]])
    content, facts = _metrics.collect(args, pki.now)
    reordered = tmp_path / "crls.pem"
    reordered.write_bytes(_crl.crl_pem(crls_pem["issuing"]) + _crl.crl_pem(crls_pem["root"]))
    crls_pem["path"].write_bytes(reordered.read_bytes())
    again, facts_again = _metrics.collect(dict(args, crl_paths=args["crl_paths"][::-1]), pki.now)
    assert again == content and facts_again["crls"] == facts["crls"]
    keys = [(f["path"], f["issuer"]) for f in facts["crls"]]
    assert keys == sorted(keys) and len(keys) == 3


def test_the_crls_of_two_issuing_cas_of_one_name_are_two_series(host, pki, crls_pem):
    # During an issuing-CA rollover the old and the next issuing CA share a name, not a key.
    next_key = c.generate_private_key("ec")
    next_issuing = _x509.build_ca_certificate(next_key, {"CN": "Test Issuing"}, pki.now - DAY, pki.now + 1000 * DAY,
                                              issuer_cert=pki.root, issuer_key=pki.root_key, path_length=0)
    next_crl = _crl.build_crl(next_issuing, next_key, [], 1, pki.now, 7)
    crls_pem["path"].write_bytes(crls_pem["path"].read_bytes() + _crl.crl_pem(next_crl))
    content, facts = _metrics.collect(dict(host["args"], crl_paths=[str(crls_pem["path"])]), pki.now)
    issuing = [fact for fact in facts["crls"] if fact["issuer"] == "CN=Test Issuing"]
    assert len(issuing) == 2 and len({fact["key_id"] for fact in issuing}) == 2
    assert all(fact["key_id"] for fact in facts["crls"])
    numbers = [line for line in content.decode().splitlines()
               if line.startswith("fleet_mtls_crl_number{") and "CN=Test Issuing" in line]
    assert len(numbers) == 2


def test_two_crls_of_one_issuer_in_a_file_are_refused(host, pki, crls_pem):
    # Two series with the same labels would make node_exporter drop the whole file.
    newer = _crl.build_crl(pki.issuing, pki.issuing_key, [], 8, pki.now, 7)
    crls_pem["path"].write_bytes(crls_pem["path"].read_bytes() + _crl.crl_pem(newer))
    with pytest.raises(PkiError, match="holds two CRLs of CN=Test Issuing"):
        _metrics.collect(dict(host["args"], crl_paths=[str(crls_pem["path"])]), pki.now)


def test_an_expired_crl_of_the_file_is_a_critical_finding_of_the_health_report(run_module, host, pki, crls_pem, clock):
    # What role report does: the module's result (write=false), judged by the health_report filter.
    from ansible_collections.fleet.mtls.plugins.filter.health_report import health_report, health_report_hosts

    clock(pki.now)
    result = run_module(dict(host["args"], crl_paths=[str(crls_pem["path"])], write=False))
    assert not result.get("failed") and result["missing_crl_paths"] == []
    assert [crl["issuer"] for crl in result["crls"]] == ["CN=Test Issuing", "CN=Test Root"]
    inputs = health_report_hosts(["web1"], {"web1": dict(group_names=["web"], mtls_certificate_metrics=result)})
    document = health_report(inputs, now=c.isoformat(pki.now))
    path = str(crls_pem["path"])
    assert [(f["severity"], f["kind"], f["subject"], f["issuer"]) for f in document["attention"]
            if f["kind"].startswith("crl")] == [("critical", "crl_expired", path, "CN=Test Root")]
    assert [(crl["issuer"], crl["state"]) for crl in document["hosts"][0]["crls"]] == [
        ("CN=Test Issuing", "ok"), ("CN=Test Root", "expired")]


def test_a_missing_crl_file_fails_unless_reading_for_a_report(run_module, host, pki, clock):
    args = dict(host["args"], crl_paths=host["args"]["crl_paths"] + [str(host["dir"] / "crls.pem")])
    clock(pki.now)
    for write in (True, False):
        result = run_module(dict(args, write=write))
        assert result["failed"] and "CRL file %s does not exist" % (host["dir"] / "crls.pem") in result["msg"]
    assert not os.path.exists(args["path"])
    result = run_module(dict(args, write=False, crl_missing="report"))
    assert not result.get("failed") and result["changed"] is False and result["written"] is False
    assert result["missing_crl_paths"] == [str(host["dir"] / "crls.pem")]
    assert [crl["path"] for crl in result["crls"]] == [host["args"]["crl_paths"][0]]
    assert [cert["name"] for cert in result["certificates"]] == ["server", "short"]   # the rest still read
    # Publishing without a CRL its servers load would let no alert fire: refused, before anything is read.
    result = run_module(dict(args, crl_missing="report"))
    assert result["failed"] and "crl_missing=report needs write=false" in result["msg"]
    assert not os.path.exists(args["path"])
    # A file that is there but is no CRL is no "missing" file.
    result = run_module(dict(args, write=False, crl_missing="report",
                             crl_paths=[str(host["dir"] / "ca-bundle.pem")]))
    assert result["failed"] and "holds no PEM CRL" in result["msg"]


def test_labels_say_which_certificate_ca_and_crl(host, pki):
    content, facts = _metrics.collect(host["args"], pki.now)
    issuer = _x509.name_to_string(pki.issuing.subject)
    for name in ("server", "short"):
        cert = host[name]
        series(content, "fleet_mtls_certificate_not_after_timestamp_seconds", name=name,
               serial=c.serial_hex(cert.serial_number), issuer=issuer)
    series(content, "fleet_mtls_ca_not_after_timestamp_seconds", subject=_x509.name_to_string(pki.root.subject),
           serial=c.serial_hex(pki.root.serial_number))
    series(content, "fleet_mtls_crl_number", issuer=issuer, path=host["args"]["crl_paths"][0])
    assert [f["name"] for f in facts["certificates"]] == ["server", "short"]
    assert len(facts["cas"]) == 2


def test_the_renewal_time_is_the_one_certificate_request_renews_at(host, pki):
    args = host["args"]
    content, _facts = _metrics.collect(args, pki.now)
    for name in ("server", "short"):
        cert = host[name]
        # certificate_request's own call (_request.assess): seed <requester>/<name>.
        _reasons, renew_at = _policy.renewal_decision(cert, pki.now, args, "web1/" + name)
        published = series(content, "fleet_mtls_certificate_renewal_timestamp_seconds", name=name)
        assert published == int(renew_at.timestamp())
        assert published < c.not_valid_before(cert).timestamp() + 0.6667 * (
            c.not_valid_after(cert) - c.not_valid_before(cert)).total_seconds()  # the jitter moved it earlier

    days_before = dict(args, renew_days_before=30.0, renew_jitter=0.0)
    content, _facts = _metrics.collect(days_before, pki.now)
    assert series(content, "fleet_mtls_certificate_renewal_timestamp_seconds", name="server") == \
        int((c.not_valid_after(host["server"]) - 30 * DAY).timestamp())


def test_an_entry_jitter_seed_replaces_the_requester(host, pki):
    args = host["args"]
    seeded = dict(args, certificates=[dict(args["certificates"][0], jitter_seed="other")])
    content, _facts = _metrics.collect(seeded, pki.now)
    cert = host["server"]
    expected = _policy.renewal_time(c.not_valid_before(cert), c.not_valid_after(cert), 0.6667, None, 0.1, "other")
    assert series(content, "fleet_mtls_certificate_renewal_timestamp_seconds", name="server") == \
        int(expected.timestamp())


def test_jitter_without_a_seed_is_refused(host, pki):
    with pytest.raises(PkiError, match="renew_jitter needs requester"):
        _metrics.collect(dict(host["args"], requester=None), pki.now)


def test_service_modes_are_one_hot_with_since(host, pki):
    content, _facts = _metrics.collect(host["args"], pki.now)
    modes = dict((dict(labels)["mode"], value) for (name, labels), value in samples(content).items()
                 if name == "fleet_mtls_service_mode" and dict(labels)["service"] == "nginx")
    assert modes == {"off": 0, "permissive": 1, "strict": 0}
    assert series(content, "fleet_mtls_service_mode", service="haproxy", mode="strict") == 1
    assert series(content, "fleet_mtls_service_mode_since_timestamp_seconds", service="nginx") == \
        int(datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc).timestamp())
    assert not [1 for (name, labels) in samples(content)
                if name == "fleet_mtls_service_mode_since_timestamp_seconds" and ("service", "haproxy") in labels]


def test_the_host_label_is_on_every_sample(host, pki):
    content, _facts = _metrics.collect(dict(host["args"], host="web1.example"), pki.now)
    assert samples(content)
    assert all(dict(labels).get("host") == "web1.example" for _name, labels in samples(content))


def test_the_same_files_in_another_order_give_the_same_bytes(host, pki):
    args = host["args"]
    content, _facts = _metrics.collect(args, pki.now)
    shuffled = dict(args, certificates=args["certificates"][::-1], ca_bundle_paths=args["ca_bundle_paths"][::-1],
                    crl_paths=args["crl_paths"] * 2, services=args["services"][::-1])
    assert _metrics.collect(shuffled, pki.now)[0] == content
    later = _metrics.collect(args, pki.now + DAY)[0]
    assert later != content
    assert _metrics.without_last_run(later) == _metrics.without_last_run(content)


def test_a_ca_in_several_bundles_is_published_once(host, pki, tmp_path):
    both = tmp_path / "both.pem"
    both.write_bytes(_x509.certificate_pem(pki.issuing) + pki.bundle_pem())
    args = dict(host["args"], ca_bundle_paths=host["args"]["ca_bundle_paths"] + [str(both)])
    content, facts = _metrics.collect(args, pki.now)
    assert sorted(f["subject"] for f in facts["cas"]) == sorted(
        _x509.name_to_string(ca.subject) for ca in (pki.root, pki.issuing))
    assert content == _metrics.collect(host["args"], pki.now)[0]


def test_two_cas_with_one_subject_and_serial_are_refused(monkeypatch, pki, tmp_path):
    # Two series with the same labels: a duplicate series is an error to node_exporter.
    monkeypatch.setattr(_x509, "random_serial", lambda: 0x1234)
    twins = [_x509.build_ca_certificate(c.generate_private_key("ec"), {"CN": "Twin Root"}, pki.now - DAY,
                                        pki.now + DAY) for _twin in range(2)]
    assert c.fingerprint(twins[0]) != c.fingerprint(twins[1])
    bundle = tmp_path / "twins.pem"
    bundle.write_bytes(b"".join(_x509.certificate_pem(cert) for cert in twins))
    with pytest.raises(PkiError, match="two different certificates with subject CN=Twin Root and serial 1234"):
        _metrics.collect(dict(ca_bundle_paths=[str(bundle)]), pki.now)


def test_an_awkward_subject_is_escaped_and_parsed_back(awkward_pki, tmp_path):
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(awkward_pki.bundle_pem() + _x509.certificate_pem(awkward_pki.issuing))
    key, cert = awkward_pki.leaf(["DNS:web1"])
    _key_path, cert_path = awkward_pki.write(tmp_path, "server", key, cert)
    content, _facts = _metrics.collect(dict(certificates=[dict(name="server", path=cert_path)],
                                            ca_bundle_paths=[str(bundle)]), awkward_pki.now)
    subjects = sorted(dict(labels)["subject"] for name, labels in samples(content)
                      if name == "fleet_mtls_ca_not_after_timestamp_seconds")
    assert subjects == sorted([_x509.name_to_string(awkward_pki.root.subject),
                               _x509.name_to_string(awkward_pki.issuing.subject)])
    assert all('"' in s and "\\" in s for s in subjects)
    series(content, "fleet_mtls_certificate_not_after_timestamp_seconds",
           issuer=_x509.name_to_string(awkward_pki.issuing.subject))
    assert promtool_check_metrics(content).returncode == 0


@pytest.mark.parametrize("change, message", [
    (lambda a, d: a.update(certificates=a["certificates"] + [dict(name="server", path=a["certificates"][1]["path"])]),
     "given twice"),
    (lambda a, d: a.update(certificates=[dict(name="gone", path=str(d / "gone.crt"))]), "does not exist"),
    (lambda a, d: (d / "server.crt").write_bytes(b"not a certificate"), "not a PEM certificate|holds no PEM"),
    (lambda a, d: a.update(ca_bundle_paths=[a["certificates"][0]["path"]]), "not a CA"),
    (lambda a, d: a.update(crl_paths=[str(d / "ca-bundle.pem")]), "holds no PEM CRL"),
    (lambda a, d: (d / "issuing.crl").write_bytes(open(a["certificates"][0]["path"], "rb").read().replace(
        b"CERTIFICATE", b"X509 CRL")), "CRL file .*issuing.crl.* is corrupt"),
    (lambda a, d: a.update(crl_missing="ignore"), "crl_missing must be one of fail, report"),
    (lambda a, d: a.update(services=[dict(service="nginx", mode="strict")] * 2), "given twice"),
    (lambda a, d: a.update(services=[dict(service="nginx", mode="on")]), "mode must be one of"),
    (lambda a, d: a.update(services=[dict(service="nginx", mode="strict", since="yesterday")]), "ISO 8601"),
    (lambda a, d: a.update(renew_fraction=1.5), "renew_fraction"),
])
def test_bad_inputs_are_refused(host, pki, change, message):
    args = dict(host["args"])
    change(args, host["dir"])
    with pytest.raises(PkiError, match=message):
        _metrics.collect(args, pki.now)


# --- the module ---------------------------------------------------------------------


def test_writes_once_then_only_the_last_run_moves(run_module, host, pki, clock):
    args = host["args"]
    path = args["path"]
    clock(pki.now)
    first = run_module(args)
    assert first["changed"] is True and not first.get("failed")
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"
    written = open(path, "rb").read()
    assert first["diff"][0]["before"] == "" and first["diff"][0]["after"] == written.decode("utf-8")
    assert series(written, _metrics.LAST_RUN) == int(pki.now.timestamp())
    checked = promtool_check_metrics(written)
    assert checked.returncode == 0 and not checked.stdout and not checked.stderr, checked

    clock(pki.now + datetime.timedelta(hours=1))
    again = run_module(args)
    assert again["changed"] is False and again["diff"] == []
    rewritten = open(path, "rb").read()
    assert series(rewritten, _metrics.LAST_RUN) == int(pki.now.timestamp()) + 3600
    assert _metrics.without_last_run(rewritten) == _metrics.without_last_run(written)
    assert again["last_run"] == c.isoformat(pki.now + datetime.timedelta(hours=1))
    assert [s["name"] for s in again["certificates"]] == ["server", "short"]
    assert again["certificates"][0]["subject_alt_names"] == ["DNS:web1"]
    assert (again["certificates"][0]["key_type"], again["certificates"][0]["key_size"]) == ("ec", 256)
    assert again["certificates"][0]["renew_at"] == c.isoformat(
        _policy.renewal_decision(host["server"], pki.now, args, "web1/server")[1])


def test_check_mode_writes_nothing_and_tells_what_would_change(run_module, host, pki, clock):
    args = host["args"]
    clock(pki.now)
    result = run_module(args, check_mode=True)
    assert result["changed"] is True and result["diff"][0]["after"]
    assert not os.path.exists(args["path"])

    run_module(args)
    before = open(args["path"], "rb").read()
    clock(pki.now + DAY)
    assert run_module(args, check_mode=True)["changed"] is False
    assert open(args["path"], "rb").read() == before  # not even the last run

    renewed = dict(args, services=[dict(service="nginx", mode="strict")])
    result = run_module(renewed, check_mode=True)
    assert result["changed"] is True
    assert 'fleet_mtls_service_mode{service="nginx",mode="strict"} 1' in result["diff"][0]["after"]
    assert open(args["path"], "rb").read() == before


def test_a_new_certificate_is_a_change(run_module, host, pki, clock):
    args = host["args"]
    clock(pki.now)
    run_module(args)
    key, renewed = pki.leaf(["DNS:web1"])
    pki.write(host["dir"], "server", key, renewed)
    result = run_module(args)
    assert result["changed"] is True
    assert c.serial_hex(renewed.serial_number) in result["diff"][0]["after"]
    assert c.serial_hex(host["server"].serial_number) not in result["diff"][0]["after"]
    assert result["certificates"][0]["serial"] == c.serial_hex(renewed.serial_number)


def test_a_wrong_mode_is_a_change_and_is_put_right(run_module, host, pki, clock):
    args = host["args"]
    clock(pki.now)
    run_module(args)
    os.chmod(args["path"], 0o600)
    assert run_module(args)["changed"] is True
    assert oct(os.stat(args["path"]).st_mode & 0o777) == "0o644"
    assert run_module(dict(args, mode="0640"))["changed"] is True
    assert oct(os.stat(args["path"]).st_mode & 0o777) == "0o640"


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_a_rewrite_keeps_the_owner_it_was_not_told(run_module, host, pki, clock):
    args = host["args"]
    clock(pki.now)
    run_module(args)
    os.chown(args["path"], 65534, 65534)
    clock(pki.now + DAY)
    assert run_module(args)["changed"] is False
    st = os.stat(args["path"])
    assert (st.st_uid, st.st_gid) == (65534, 65534)
    assert series(open(args["path"], "rb").read(), _metrics.LAST_RUN) == int((pki.now + DAY).timestamp())


def test_a_failure_leaves_the_file_byte_identical(run_module, host, pki, clock):
    args = host["args"]
    clock(pki.now)
    run_module(args)
    before = open(args["path"], "rb").read()
    os.unlink(args["crl_paths"][0])
    clock(pki.now + DAY)
    result = run_module(args)
    assert result["failed"] and "CRL" in result["msg"] and "does not exist" in result["msg"]
    assert open(args["path"], "rb").read() == before


def test_the_path_must_be_a_textfile_in_a_directory_that_exists(run_module, host):
    args = host["args"]
    result = run_module(dict(args, path=args["path"][:-len(".prom")] + ".txt"))
    assert result["failed"] and "must be a file name ending in .prom" in result["msg"]
    missing = os.path.join(os.path.dirname(args["path"]), "absent", "fleet_mtls.prom")
    result = run_module(dict(args, path=missing))
    assert result["failed"] and "does not exist" in result["msg"]
    assert run_module(dict(args, path=missing), check_mode=True)["changed"] is True


def test_write_false_reads_and_checks_all_and_writes_nothing(run_module, host, pki, clock):
    # What playbooks/report.yml gathers: the same facts, on a host without a metrics directory.
    args = host["args"]
    clock(pki.now)
    written = run_module(args)
    os.unlink(args["path"])
    missing = os.path.join(os.path.dirname(args["path"]), "absent", "fleet_mtls.prom")
    result = run_module(dict(args, path=missing, write=False))
    assert result["changed"] is False and not result.get("failed")
    assert result["last_run"] is None and result["now"] == c.isoformat(pki.now)
    for key in ("certificates", "cas", "crls", "services"):
        assert result[key] == written[key], key
    assert not os.path.exists(args["path"]) and not os.path.exists(os.path.dirname(missing))
    os.unlink(args["crl_paths"][0])
    result = run_module(dict(args, write=False))
    assert result["failed"] and "does not exist" in result["msg"]


def test_an_unquoted_off_is_off(run_module, host):
    # YAML reads an unquoted off as false; Ansible maps it to the one false-like choice.
    result = run_module(dict(host["args"], services=[dict(service="nginx", mode=False)]))
    assert result["services"] == [dict(service="nginx", mode="off", since=None)]
    assert 'fleet_mtls_service_mode{service="nginx",mode="off"} 1' in open(host["args"]["path"]).read()
    choices = yaml.safe_load(metrics.DOCUMENTATION)["options"]["services"]["suboptions"]["mode"]["choices"]
    assert choices == list(_metrics.SERVICE_MODES)


def test_every_documented_return_key_is_returned(run_module, host, pki, clock):
    clock(pki.now)
    documented = yaml.safe_load(metrics.RETURN)
    result = run_module(host["args"])
    assert set(documented) <= set(result)
    # AnsibleModule adds the file's attributes to a result with a path that exists.
    file_info = {"uid", "gid", "owner", "group", "mode", "state", "size"}
    assert set(result) - set(documented) <= {"changed", "diff", "invocation"} | file_info
    for key in ("certificates", "cas", "crls", "services"):
        assert result[key], key
        assert set(documented[key]["contains"]) == set(result[key][0]), key


def test_directory_missing_skip_reads_all_and_writes_nothing(run_module, host, pki, clock):
    # mtls_metrics auto: one task on every host, written only where node_exporter's directory is.
    args = host["args"]
    clock(pki.now)
    missing = os.path.join(os.path.dirname(args["path"]), "absent", "fleet_mtls.prom")
    result = run_module(dict(args, path=missing, directory_missing="skip"))
    assert result["changed"] is False and result["written"] is False and result["last_run"] is None
    assert [cert["name"] for cert in result["certificates"]] == ["server", "short"]
    assert not os.path.exists(os.path.dirname(missing))
    result = run_module(dict(args, directory_missing="skip"))
    assert result["changed"] is True and result["written"] is True and os.path.exists(args["path"])
    # skip is about the directory only: a file that cannot be read still fails the task.
    os.unlink(args["crl_paths"][0])
    result = run_module(dict(args, path=missing, directory_missing="skip"))
    assert result["failed"] and "does not exist" in result["msg"]


def _recorded(tmp_path, content):
    record = tmp_path / "fleet_mtls.fact"
    record.write_text(content)
    return str(record)


def test_services_without_a_mode_take_the_one_role_rollout_recorded(run_module, host, pki, clock, tmp_path):
    clock(pki.now)
    record = _recorded(tmp_path, '{"mode": "strict", "since": "2026-03-04T05:06:07Z", '
                                 '"permissive_since": "2026-02-01T00:00:00Z"}\n')
    args = dict(host["args"], services=[dict(service="nginx"), dict(service="haproxy", mode="permissive")],
                mode_state_path=record)
    result = run_module(args)
    assert result["services"] == [dict(service="nginx", mode="strict", since="2026-03-04T05:06:07Z"),
                                  dict(service="haproxy", mode="permissive", since=None)]
    content = open(args["path"], "rb").read()
    assert series(content, "fleet_mtls_service_mode", service="nginx", mode="strict") == 1
    os.unlink(record)  # no record yet: no rollout, so off
    assert run_module(args)["services"][0] == dict(service="nginx", mode="off", since=None)


@pytest.mark.parametrize("content, message", [
    ("not json", "is not JSON"),
    ('{"mode": "sometimes"}', "names no mode"),
    ('["strict"]', "names no mode"),
    ('{"mode": "strict", "since": 5}', "since must be ISO 8601 text"),
])
def test_a_broken_mode_record_fails_and_leaves_the_file_byte_identical(run_module, host, pki, clock, tmp_path,
                                                                       content, message):
    args = dict(host["args"], services=[dict(service="nginx")], mode_state_path=_recorded(tmp_path, content))
    clock(pki.now)
    run_module(dict(args, services=[]))
    before = open(args["path"], "rb").read()
    clock(pki.now + DAY)
    result = run_module(args)
    assert result["failed"] and message in result["msg"]
    assert open(args["path"], "rb").read() == before


def test_a_service_without_a_mode_needs_a_record(run_module, host):
    result = run_module(dict(host["args"], services=[dict(service="nginx")]))
    assert result["failed"] and "no mode_state_path" in result["msg"]
