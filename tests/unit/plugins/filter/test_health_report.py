# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""health_report: the fleet judged as the alert rules judge it, and rendered as JSON, Markdown and one HTML page."""

from __future__ import annotations

import contextlib
import copy
import datetime
import json
import os
import pathlib
import random
import re
import signal
import struct

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.mtls.plugins.filter.health_report import FilterModule
from ansible_collections.fleet.mtls.plugins.filter.health_report import health_report
from ansible_collections.fleet.mtls.plugins.filter.health_report import health_report_hosts
from ansible_collections.fleet.mtls.plugins.filter.health_report import health_report_html
from ansible_collections.fleet.mtls.plugins.filter.health_report import health_report_markdown

NOW = "2026-12-03T12:00:00Z"
_NOW = datetime.datetime(2026, 12, 3, 12, tzinfo=datetime.timezone.utc)
ISSUER = "CN=Fleet Issuing CA,O=Fleet"


def at(days):
    """NOW moved by a number of days, as the metrics module writes times."""
    return (_NOW + datetime.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def cert(name="server", left=60.0, lifetime=90.0, renew=None, serial="0A1B2C3D", subject=None):
    """A certificate with ``left`` days to go of ``lifetime``, renewed at two thirds of it unless ``renew`` says."""
    not_before = left - lifetime
    return dict(name=name, path=f"/etc/fleet-mtls/certs/{name}.fullchain.pem", serial=serial,
                subject=subject or f"CN={name}.fleet.test", issuer=ISSUER, not_before=at(not_before),
                not_after=at(left), renew_at=at(not_before + lifetime * 2 / 3 if renew is None else renew))


def ca(subject="CN=Fleet Root CA,O=Fleet", left=3000.0, serial="01", fingerprint=None):
    return dict(subject=subject, serial=serial, fingerprint=fingerprint or ("AB:" * 31 + serial[-2:]),
                not_after=at(left))


def crl(path="/etc/fleet-mtls/certs/issuing.crl", age=1.0, validity=7.0, number=12, issuer=ISSUER):
    """A CRL issued ``age`` days ago, valid ``validity`` days (None: no nextUpdate)."""
    return dict(path=path, issuer=issuer, crl_number=number, last_update=at(-age),
                next_update=None if validity is None else at(validity - age))


def service(name="nginx", mode="strict", since_days=20.0):
    return dict(service=name, mode=mode, since=None if since_days is None else at(-since_days))


def host(name="web1", groups=("web",), certificates=(), cas=(), crls=(), services=(), adoption=None):
    return dict(host=name, groups=list(groups), reachable=True, certificates=list(certificates), cas=list(cas),
                crls=list(crls), services=list(services), adoption=adoption)


def unreachable(name):
    return dict(host=name, groups=["clients"], reachable=False)


def report(*hosts, **options):
    options.setdefault("now", NOW)
    return health_report(list(hosts), **options)


def one_cert(**kwargs):
    return report(host(certificates=[cert(**kwargs)]))["hosts"][0]["certificates"][0]


def kinds(document):
    return [(f["severity"], f["kind"], f["host"], f["subject"]) for f in document["attention"]]


def sample_fleet():
    """Five hosts as the lab has them: one certificate expired, one near expiry, a server left permissive."""
    root = ca("CN=Fleet Root CA,O=Fleet", left=3285.0, serial="01")
    issuing = ca("CN=Fleet Issuing CA,O=Fleet", left=1460.0, serial="02")
    trust = [root, issuing]
    fresh = crl(age=1.2, number=41)
    return [
        host("web1", ["web", "servers"], [cert("server", left=-2.25, renew=-32.3, serial="5F3A9C01")], trust, [fresh],
             [service("nginx", "strict", 21.0)], dict(requests=1840, valid=1840, none=0, failed=0)),
        host("lb1", ["lb", "servers"], [cert("server", left=9.5, renew=-20.5, serial="5F3A9C02")], trust,
             [crl(age=4.8, number=40)], [service("haproxy", "permissive", 16.5)],
             dict(requests=952, valid=921, none=28, failed=3)),
        host("app1", ["app", "servers"], [cert("server", left=61.3, serial="5F3A9C03")], trust, [fresh],
             [service("gunicorn", "permissive", 2.1)], dict(requests=310, valid=302, none=8, failed=0)),
        host("client1", ["clients"], [cert("client", left=74.0, serial="5F3A9C04"),
                                      cert("client-short", left=4.6, lifetime=7.0, serial="5F3A9C05")], trust),
        host("ca1", ["ca"], [], trust, [fresh]),
    ]


# --- certificates ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("left,state", [(13.9, "expiring"), (14.1, "ok")])
def test_a_90_day_certificate_is_expiring_under_14_days(left, state):
    record = one_cert(left=left, renew=1.0)
    assert (record["state"], record["days_left"], record["renewal_overdue"]) == (state, left, False)


@pytest.mark.parametrize("left,state", [(1.0, "expiring"), (5.0, "ok")])
def test_a_7_day_certificate_is_expiring_in_its_last_quarter(left, state):
    # 14 days would make it "expiring" from issuance; a quarter of 7 days is 1.75.
    assert one_cert(left=left, lifetime=7.0)["state"] == state


@pytest.mark.parametrize("left", [-0.5, 0.0])
def test_a_certificate_at_or_past_not_after_is_expired_and_critical(left):
    document = report(host(certificates=[cert(left=left)]))
    assert document["hosts"][0]["certificates"][0]["state"] == "expired"
    assert kinds(document) == [("critical", "certificate_expired", "web1", "server")]
    assert document["attention"][0]["deadline"] == at(left)
    assert document["hosts"][0]["status"] == "critical"


@pytest.mark.parametrize("renew,slack,state", [
    (-1.1, 1, "renewal_overdue"), (-0.9, 1, "ok"), (-1.1, 2, "ok"), (-2.1, 2, "renewal_overdue")])
def test_renewal_is_overdue_a_day_past_renew_at(renew, slack, state):
    document = report(host(certificates=[cert(left=40.0, renew=renew)]), renewal_slack_days=slack)
    record = document["hosts"][0]["certificates"][0]
    assert record["state"] == state and record["renewal_overdue"] == (state == "renewal_overdue")
    if state == "renewal_overdue":
        assert kinds(document) == [("warning", "certificate_renewal_overdue", "web1", "server")]
        assert "entered its renewal window" in document["attention"][0]["message"]


@pytest.mark.parametrize("renew,state", [(-0.6, "renewal_overdue"), (-0.4, "ok")])
def test_the_renewal_slack_of_a_short_certificate_is_a_tenth_of_its_lifetime(renew, state):
    assert one_cert(left=3.0, lifetime=5.0, renew=renew)["state"] == state


def test_an_expiring_certificate_past_renewal_is_one_finding_that_says_both():
    document = report(host(certificates=[cert(left=5.0)]))
    record = document["hosts"][0]["certificates"][0]
    assert (record["state"], record["renewal_overdue"]) == ("expiring", True)
    assert kinds(document) == [("warning", "certificate_expiring", "web1", "server")]
    assert "has not been renewed" in document["attention"][0]["message"]


def test_a_certificate_record_keeps_what_the_module_returned():
    given = cert(left=30.0, renew=5.0)
    record = report(host(certificates=[dict(given, not_after=given["not_after"].replace("Z", "+00:00"))]))
    record = record["hosts"][0]["certificates"][0]
    assert {k: record[k] for k in given} == given  # times normalised to Z
    assert (record["lifetime_days"], record["days_left"]) == (90.0, 30.0)


# --- CAs, CRLs, services --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("left,state,severity", [(89.0, "expiring", "warning"), (91.0, "ok", None),
                                                 (-1.0, "expired", "critical")])
def test_a_ca_is_expiring_within_90_days(left, state, severity):
    document = report(host(cas=[ca(left=left)]))
    assert document["hosts"][0]["cas"][0]["state"] == state
    assert [f["severity"] for f in document["attention"]] == ([severity] if severity else [])


@pytest.mark.parametrize("age,validity,state,finding", [
    (4.4, 7.0, "ok", None),                               # 2.6 days left of 7: not yet 2.5
    (4.6, 7.0, "refresh_overdue", ("warning", "crl_refresh_overdue")),
    (7.1, 7.0, "expired", ("critical", "crl_expired")),
    (7.0, 7.0, "expired", ("critical", "crl_expired")),   # at next_update exactly
    (30.0, None, "no_next_update", None),
])
def test_crl_freshness(age, validity, state, finding):
    document = report(host(crls=[crl(age=age, validity=validity)]))
    record = document["hosts"][0]["crls"][0]
    assert record["state"] == state
    assert [(f["severity"], f["kind"]) for f in document["attention"]] == ([finding] if finding else [])
    if validity is None:
        assert (record["next_update"], record["days_left"], record["validity_days"]) == (None, None, None)
    else:
        assert record["validity_days"] == validity


CRLS_PEM = "/etc/fleet-mtls/certs/crls.pem"
ROOT = "CN=Fleet Root CA,O=Fleet"


def crls_pem(root_age=1.0, issuing_age=1.0):
    """The two CRLs of the crls.pem the certificate role writes: the root CA's (30-day) and the issuing CA's."""
    return [crl(CRLS_PEM, age=root_age, validity=30.0, number=2, issuer=ROOT),
            crl(CRLS_PEM, age=issuing_age, number=41)]


def test_the_crls_of_one_file_are_each_judged_and_named_by_issuer():
    document = report(host(crls=crls_pem(root_age=31.0)))   # the root CA's lapsed a day ago
    records = document["hosts"][0]["crls"]
    assert [(r["path"], r["issuer"], r["crl_number"], r["state"]) for r in records] == [
        (CRLS_PEM, ISSUER, 41, "ok"), (CRLS_PEM, ROOT, 2, "expired")]
    assert [(f["severity"], f["kind"], f["subject"], f["issuer"]) for f in document["attention"]] == [
        ("critical", "crl_expired", CRLS_PEM, ROOT)]
    finding = document["attention"][0]
    assert finding["message"].startswith(f"CRL of {ROOT} in {CRLS_PEM} on web1 lapsed 1 day ago")
    assert document["summary"]["crls"] == dict(total=2, expired=1, refresh_overdue=0, no_next_update=0, ok=1)
    # Every other finding has an issuer key too, null.
    assert report(host(certificates=[cert(left=-1.0)]))["attention"][0]["issuer"] is None

    text = health_report_markdown(document)
    assert f"| web1 | `{CRLS_PEM}` | `{ROOT}` | 2 | " in text and f"| web1 | `{CRLS_PEM}` | `{ISSUER}` | 41 | " in text
    assert f"CRL of {ROOT} in {CRLS_PEM} on web1 lapsed" in text.split("## Hosts", 1)[0]
    page = health_report_html(document)
    attention = page.split('<section id="attention">', 1)[1].split("</section>", 1)[0]
    assert f'<code>{CRLS_PEM}</code> <span class="kind">of</span> <code>{ROOT}</code>' in attention
    table = page.split('<section id="crls">', 1)[1].split("</section>", 1)[0]
    assert table.count(f'<div class="mono">{CRLS_PEM}</div>') == 2
    assert f'<div class="muted">{ROOT}</div>' in table and f'<div class="muted">{ISSUER}</div>' in table


def test_crls_of_one_file_in_any_order_give_the_same_report():
    both = crls_pem(root_age=25.0, issuing_age=25.0)   # past their refresh points, 5 and -18 days left
    first = report(host(crls=both), host("web2", crls=both))
    second = report(host("web2", crls=both[::-1]), host(crls=both[::-1]))
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert [(f["host"], f["issuer"]) for f in first["attention"] if f["kind"] == "crl_expired"] == [
        ("web1", ISSUER), ("web2", ISSUER)]


def test_a_crl_file_that_does_not_exist_is_a_critical_finding_and_the_rest_is_still_judged():
    document = report(dict(host(certificates=[cert()], crls=[crl()]), missing_crl_paths=[CRLS_PEM, CRLS_PEM]))
    record = document["hosts"][0]
    assert (record["status"], record["missing_crl_paths"], len(record["certificates"]), len(record["crls"])) == (
        "critical", [CRLS_PEM], 1, 1)
    assert kinds(document) == [("critical", "crl_missing", "web1", CRLS_PEM)]
    finding = document["attention"][0]
    assert (finding["deadline"], finding["issuer"]) == (None, None)
    assert finding["message"].startswith(f"CRL file {CRLS_PEM} on web1 does not exist")
    assert "run the certificate role on this host" in finding["message"]
    assert report(host())["hosts"][0]["missing_crl_paths"] == []
    assert report(unreachable("db1"))["hosts"][0]["missing_crl_paths"] == []

    text = health_report_markdown(document)
    assert f"| web1 | `{CRLS_PEM}` | — | — | — | — | — | file missing |" in text
    assert "**CRITICAL** web1, CRL file missing: CRL file" in text
    page = health_report_html(document)
    table = page.split('<section id="crls">', 1)[1].split("</section>", 1)[0]
    assert f'<div class="mono">{CRLS_PEM}</div><div class="muted">no such file</div>' in table
    assert '<span class="pill critical">file missing</span>' in table
    assert '<b class="critical">1 file missing</b>' in page and "(1 file missing)" in page
    # Only missing files: the section still lists them.
    alone = health_report_html(report(dict(host(), missing_crl_paths=[CRLS_PEM])))
    assert "No CRL reported." not in alone and "no such file" in alone


def test_the_input_from_hostvars_carries_the_missing_crl_files():
    read = dict(certificates=[cert()], cas=[], crls=[], services=[], missing_crl_paths=[CRLS_PEM])
    inputs = health_report_hosts(["web1"], {"web1": dict(group_names=["web"], mtls_certificate_metrics=read)})
    assert inputs[0]["missing_crl_paths"] == [CRLS_PEM]
    assert kinds(health_report(inputs, now=NOW)) == [("critical", "crl_missing", "web1", CRLS_PEM)]


@pytest.mark.parametrize("mode,since,state", [
    ("permissive", 15.0, "permissive_too_long"), ("permissive", 13.0, "ok"), ("permissive", None, "ok"),
    ("strict", 40.0, "ok"), ("off", 40.0, "ok")])
def test_a_service_permissive_for_more_than_14_days_is_a_stalled_rollout(mode, since, state):
    document = report(host(services=[service(mode=mode, since_days=since)]))
    record = document["hosts"][0]["services"][0]
    assert (record["mode"], record["state"]) == (mode, state)
    assert record["days_in_mode"] == since
    expected = [("warning", "service_permissive", "web1", "nginx")] if state != "ok" else []
    assert kinds(document) == expected
    if expected:
        assert document["attention"][0]["deadline"] is None


def test_permissive_days_is_a_threshold():
    assert not report(host(services=[service(mode="permissive", since_days=15.0)]), permissive_days=30)["attention"]


def test_an_unquoted_yaml_off_is_off():
    assert report(host(services=[dict(service="nginx", mode=False)]))["hosts"][0]["services"][0]["mode"] == "off"


def test_adoption_gets_its_share():
    adoption = report(host(adoption=dict(requests=200, valid=150, none=40, failed=10)))["hosts"][0]["adoption"]
    assert adoption == dict(requests=200, valid=150, none=40, failed=10, valid_share=0.75)
    assert report(host(adoption=dict(requests=0, valid=0, none=0, failed=0)))["hosts"][0]["adoption"][
        "valid_share"] is None


# --- hosts, attention, summary --------------------------------------------------------------------------------------

def test_an_unreachable_host_is_critical_and_reports_nothing_as_current():
    stale = dict(host("client1", certificates=[cert(left=-10.0)]), reachable=False)
    document = report(stale, host())
    assert kinds(document) == [("critical", "host_unreachable", "client1", None)]
    record = document["hosts"][0]
    assert (record["host"], record["reachable"], record["status"], record["certificates"]) == (
        "client1", False, "critical", [])
    assert document["attention"][0]["deadline"] is None
    assert "client1 was not reached" in document["attention"][0]["message"]
    assert (document["summary"]["unreachable"], document["summary"]["reachable"]) == (1, 1)


def test_attention_is_most_urgent_first():
    document = health_report(sample_fleet() + [unreachable("db1")], now=NOW)
    assert kinds(document) == [
        ("critical", "certificate_expired", "web1", "server"),
        ("critical", "host_unreachable", "db1", None),          # critical, but no deadline: after the dated ones
        ("warning", "crl_refresh_overdue", "lb1", "/etc/fleet-mtls/certs/issuing.crl"),   # 2.2 days left
        ("warning", "certificate_expiring", "lb1", "server"),    # 9.5 days left
        ("warning", "service_permissive", "lb1", "haproxy"),     # no deadline
    ]
    first = document["attention"][0]
    assert first["deadline"] == at(-2.25)
    assert first["message"] == ("Certificate server (serial 5F3A9C01) on web1 expired 2 days 6 hours ago, at "
                                "2026-12-01 06:00 UTC: its peers refuse it; renew it now with the rotate playbook.")


def test_findings_with_the_same_deadline_go_by_host_then_name():
    same = [host(name, certificates=[cert("b", left=-1.0), cert("a", left=-1.0)]) for name in ("web2", "web1")]
    assert [(f["host"], f["subject"]) for f in report(*same)["attention"]] == [
        ("web1", "a"), ("web1", "b"), ("web2", "a"), ("web2", "b")]


def test_summary_and_thresholds():
    document = health_report(sample_fleet() + [unreachable("db1")], now=NOW)
    assert document["schema_version"] == 1 and document["generated_at"] == NOW
    assert document["thresholds"] == dict(
        ca_warning_days=90, crl_refresh_fraction=0.5, crl_refresh_slack_days=1, expiry_lifetime_fraction=0.25,
        expiry_warning_days=14, permissive_days=14, renewal_slack_days=1, renewal_slack_lifetime_fraction=0.1)
    assert document["summary"] == {
        "status": "critical", "hosts": 6, "reachable": 5, "unreachable": 1,
        "certificates": dict(total=5, expired=1, expiring=1, renewal_overdue=0, ok=3),
        "cas": dict(total=2, expired=0, expiring=0, ok=2),   # the same two CAs on five hosts
        "crls": dict(total=4, expired=0, refresh_overdue=1, no_next_update=0, ok=3),
        "services": dict(total=3, off=0, permissive=2, strict=1, permissive_too_long=1),
        "attention": dict(critical=2, warning=3),
    }
    assert [h["host"] for h in document["hosts"]] == ["app1", "ca1", "client1", "db1", "lb1", "web1"]
    assert [h["status"] for h in document["hosts"]] == ["ok", "ok", "ok", "critical", "warning", "critical"]
    assert health_report([], now=NOW)["summary"]["status"] == "ok"


def test_the_thresholds_are_the_options():
    document = report(host(certificates=[cert(left=20.0, renew=1.0)], cas=[ca(left=100.0)]), expiry_warning_days=21,
                      ca_warning_days=120.5)
    assert [f["kind"] for f in document["attention"]] == ["certificate_expiring", "ca_expiring"]
    assert (document["thresholds"]["expiry_warning_days"], document["thresholds"]["ca_warning_days"]) == (21, 120.5)


def test_the_default_now_is_the_current_time():
    document = health_report([host(certificates=[cert()])])
    generated = datetime.datetime.fromisoformat(document["generated_at"])
    assert abs((datetime.datetime.now(datetime.timezone.utc) - generated).total_seconds()) < 60


def test_the_same_input_and_now_give_the_same_output_in_any_order():
    fleet = sample_fleet() + [unreachable("db1")]
    before = copy.deepcopy(fleet)
    first = health_report(fleet, now=NOW)
    assert fleet == before  # the input is not changed
    shuffled = copy.deepcopy(fleet)
    random.Random(7).shuffle(shuffled)
    for entry in shuffled:
        for key in ("certificates", "cas", "crls", "services"):
            entry.get(key, []).reverse()
    second = health_report(shuffled, now="2026-12-03T13:00:00+01:00")   # the same moment
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert list(first) == list(second)  # and the same key order, for to_json without sort_keys
    assert health_report_markdown(first) == health_report_markdown(second)
    assert health_report_html(first) == health_report_html(second)
    assert health_report_html(json.loads(json.dumps(first))) == health_report_html(first)


# --- bad input ------------------------------------------------------------------------------------------------------

def _without(mapping, key):
    return {k: v for k, v in mapping.items() if k != key}


@pytest.mark.parametrize("hosts,message", [
    ([_without(host(), "certificates")], "host 'web1': 'certificates' is missing"),
    ([_without(host(), "reachable")], "host 'web1': 'reachable' is missing"),
    ([dict(host(), reachable="yes")], "host 'web1': reachable='yes' is not true or false"),
    ([_without(host(), "host")], "'host' (its name) is missing"),
    ([host(certificates=[_without(cert(), "not_after")])], "host 'web1', certificates[0]: 'not_after' is missing"),
    ([host(certificates=[dict(cert(), not_after="next tuesday")])],
     "host 'web1', certificates[0]: not_after='next tuesday' is not an ISO 8601 time"),
    ([host(certificates=[dict(cert(), renew_at="2026-12-04T02:00:00")])],
     "host 'web1', certificates[0]: renew_at='2026-12-04T02:00:00' has no UTC offset"),
    ([host(certificates=[dict(cert(), not_before=at(100))])], "is not after not_before=2027-03-13T12:00:00Z"),
    ([host(certificates=[cert(), cert()])], "host 'web1': certificate 'server' is listed twice"),
    ([host(cas=[_without(ca(), "fingerprint")])], "host 'web1', cas[0]: 'fingerprint' is missing"),
    ([host(crls=[dict(crl(), crl_number="12")])], "host 'web1', crls[0]: crl_number='12' is not a count"),
    ([host(crls=[dict(crl(), last_update=12)])], "host 'web1', crls[0]: last_update=12 is not an ISO 8601 time"),
    ([host(crls=[crl(), crl(number=13)])],
     "host 'web1': CRL ('/etc/fleet-mtls/certs/issuing.crl', 'CN=Fleet Issuing CA,O=Fleet', '') is listed twice"),
    ([dict(host(), missing_crl_paths="/etc/fleet-mtls/certs/crls.pem")],
     "host 'web1': missing_crl_paths is not a list"),
    ([dict(host(), missing_crl_paths=[""])], "host 'web1': missing_crl_paths is not a list of paths"),
    ([host(services=[service(mode="audit")])], "host 'web1', services[0]: mode='audit' is not one of off"),
    ([host(services=[dict(service(), since="yesterday")])], "services[0]: since='yesterday' is not an ISO"),
    ([host(adoption=dict(requests=1, valid=1, none=0))], "host 'web1', adoption: 'failed' is missing"),
    ([dict(host(), certificates="server")], "host 'web1': certificates is not a list"),
    ([host(), host()], "hosts: host 'web1' is listed twice"),
    ([dict(host(), groups="web")], "host 'web1': groups is not a list"),
    (["web1"], "every host must be a dict"),
    ("web1", "expects a list of hosts"),
])
def test_bad_input_is_an_error_naming_the_host_and_field(hosts, message):
    with pytest.raises(AnsibleFilterError, match=re.escape(message)):
        health_report(hosts, now=NOW)


@pytest.mark.parametrize("options,message", [
    (dict(now="noon"), "now='noon' is not an ISO 8601 time"),
    (dict(now="2026-12-03T12:00:00"), "has no UTC offset"),
    (dict(expiry_warning_days=-1), "expiry_warning_days=-1 must be a finite number, 0 or more"),
    (dict(ca_warning_days="a quarter"), "ca_warning_days='a quarter' is not a number"),
    (dict(permissive_days=True), "permissive_days=True is not a number"),
])
def test_bad_options_are_errors(options, message):
    options.setdefault("now", NOW)
    with pytest.raises(AnsibleFilterError, match=re.escape(message)):
        health_report([host()], **options)


@pytest.mark.parametrize("render", [health_report_markdown, health_report_html])
def test_the_renderers_want_a_report(render):
    with pytest.raises(AnsibleFilterError, match="expects the document health_report returns"):
        render({"hosts": []})
    with pytest.raises(AnsibleFilterError, match="not a complete health_report document"):
        render({"schema_version": 1})


def test_the_names_and_key_come_through_and_are_shown():
    described = dict(cert(), subject_alt_names=["DNS:web1", "URI:spiffe://fleet.test/web/web1"], key_type="ec",
                     key_size=256)
    document = report(host(certificates=[described]))
    record = document["hosts"][0]["certificates"][0]
    assert (record["subject_alt_names"], record["key_type"], record["key_size"]) == (
        ["DNS:web1", "URI:spiffe://fleet.test/web/web1"], "ec", 256)
    assert "| DNS:web1, URI:spiffe://fleet.test/web/web1 | ec 256 |" in health_report_markdown(document)
    assert "DNS:web1, URI:spiffe://fleet.test/web/web1, ec 256," in health_report_html(document)
    with pytest.raises(AnsibleFilterError, match="subject_alt_names is not a list"):
        report(host(certificates=[dict(described, subject_alt_names="DNS:web1")]))
    with pytest.raises(AnsibleFilterError, match="key_size"):
        report(host(certificates=[dict(described, key_size="256")]))


def test_the_filter_names():
    assert sorted(FilterModule().filters()) == ["health_report", "health_report_hosts", "health_report_html",
                                                "health_report_markdown"]


# --- the input, from a play -----------------------------------------------------------------------------------------

def test_the_input_from_hostvars_read_unreadable_and_unreached():
    read = dict(changed=False, certificates=[cert()], cas=[ca()], crls=[crl()], services=[service()], now=NOW)
    hostvars = {
        "web1": dict(group_names=["web"], mtls_certificate_metrics=read,
                     mtls_rollout_adoption=dict(totals=dict(requests=10, valid=9, none=1, failed=0))),
        # reached, but its bundle is gone: the rescue in role report's gather kept the reason
        "lb1": dict(group_names=["lb"], mtls_report_error="CA bundle /etc/fleet-mtls/certs/ca-bundle.pem does not exist",
                    mtls_certificate_metrics=dict(failed=True, msg="CA bundle ... does not exist")),
        "app1": dict(group_names=["app"]),  # never reached: nothing registered
    }
    inputs = health_report_hosts(["web1", "lb1", "app1"], hostvars)
    assert inputs[0] == dict(host="web1", groups=["web"], reachable=True, certificates=read["certificates"],
                             cas=read["cas"], crls=read["crls"], missing_crl_paths=[], services=read["services"],
                             adoption=dict(requests=10, valid=9, none=1, failed=0))
    assert inputs[1] == dict(host="lb1", groups=["lb"], reachable=False,
                             error="CA bundle /etc/fleet-mtls/certs/ca-bundle.pem does not exist")
    assert inputs[2] == dict(host="app1", groups=["app"], reachable=False, error=None)
    document = health_report(inputs, now=NOW)
    assert kinds(document)[:2] == [("critical", "host_unreachable", "app1", None),
                                   ("critical", "host_unreadable", "lb1", None)]
    assert "lb1 could not be checked: CA bundle /etc/fleet-mtls/certs/ca-bundle.pem does not exist" in [
        f["message"] for f in document["attention"]]
    assert document["hosts"][2]["adoption"]["valid_share"] == 0.9


def test_an_error_is_only_for_a_host_not_read():
    with pytest.raises(AnsibleFilterError, match="error is a message"):
        report(dict(host(), error="boom"))
    with pytest.raises(AnsibleFilterError, match="error is a message"):
        report(dict(unreachable("app1"), error=["not", "text"]))


# --- Markdown -------------------------------------------------------------------------------------------------------

def test_markdown_puts_attention_first_then_the_tables():
    text = health_report_markdown(health_report(sample_fleet(), now=NOW))
    assert text.startswith(f"# Fleet mTLS health report — {NOW}\n")
    sections = [line for line in text.splitlines() if line.startswith("## ")]
    assert sections == ["## Needs attention", "## Hosts", "## Certificates", "## Servers by mode", "## CRLs", "## CAs"]
    attention = text.split("## Needs attention\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert attention[0].startswith("1. **CRITICAL** web1, certificate expired (deadline 2026-12-01T06:00:00Z): "
                                   "Certificate server (serial 5F3A9C01) on web1 expired")
    assert attention[1].startswith("2. **WARNING** lb1, CRL refresh overdue")
    assert len(attention) == 4
    assert ("| web1 | `server` | `5F3A9C01` | — | — | 2026-12-01T06:00:00Z | -2.2 | 2026-11-01T04:48:00Z | expired |"
            in text)
    assert "| lb1 | `server` | `5F3A9C02` | — | — | 2026-12-13T00:00:00Z | 9.5 |" in text
    assert "| ca1 | — | — | — | — | — | — | — | no certificate |" in text
    assert "| permissive | lb1 | `haproxy` | 2026-11-17T00:00:00Z | 16.5 | 96.7% valid (921/952; 28 without, " \
           "3 failed) | permissive too long |" in text
    assert "0 off, 2 permissive (1 too long), 1 strict." in text
    assert "| `CN=Fleet Root CA,O=Fleet` | `01` | " in text and "| app1, ca1, client1, lb1, web1 |" in text


def test_markdown_when_all_is_well():
    text = health_report_markdown(report(host()))
    assert "## Needs attention\n\nNothing needs attention.\n" in text
    assert "No service reported a mode." in text and "No CRL reported." in text and "No CA reported." in text


def test_markdown_escapes_what_would_be_markup():
    nasty = "CN=<b>x</b> | y_`z`"
    text = health_report_markdown(report(host("web|1", cas=[ca(subject=nasty, left=10.0)])))
    assert "| `` CN=<b>x</b> \\| y_`z` `` |" in text   # a code span: shown as it is, the pipe kept in its cell
    assert "web\\|1" in text and "CN=\\<b\\>x\\</b\\> \\| y\\_\\`z\\`" in text   # free text


# --- HTML -----------------------------------------------------------------------------------------------------------

def _page(document=None):
    return health_report_html(document or health_report(sample_fleet() + [unreachable("db1")], now=NOW))


def test_the_page_is_self_contained():
    page = _page()
    assert page.startswith("<!DOCTYPE html>\n<html lang=\"en\">")
    assert page.rstrip().endswith("</html>")
    for forbidden in ("http://", "https://", "<script", "<link", "@import", "url(", "<img", "<iframe", "src="):
        assert forbidden not in page.lower(), forbidden
    assert "@media print" in page and '<meta charset="utf-8">' in page
    assert page.count("<svg") >= 1 and "<style>" in page


def test_the_page_shows_every_host_and_its_sections_in_order():
    page = _page()
    for name in ("ca1", "web1", "lb1", "app1", "client1", "db1"):
        assert f">{name}<" in page, name
    positions = [page.index(f'<section id="{section}">') for section in
                 ("attention", "timeline", "servers", "crls", "cas", "hosts")]
    assert positions == sorted(positions)
    first = re.search(r'<li class="finding (\w+)" data-kind="([\w]+)" data-host="([\w]+)">', page)
    assert first.groups() == ("critical", "certificate_expired", "web1")
    assert "not reached: nothing checked" in page and "no certificate" in page


def test_the_timeline_has_a_bar_and_a_renewal_marker_per_certificate():
    page = _page()
    timeline = page.split('<section id="timeline">', 1)[1].split("</section>", 1)[0]
    assert timeline.count('<g class="cert">') == 5
    assert timeline.count('<line class="renew"') == 5 + 1   # and one in the legend
    assert '<g class="now">' in timeline and "now, 2026-12-03 12:00 UTC" in timeline
    assert ">1 Dec<" not in timeline and ">Jan 2027<" in timeline   # month ticks for a 90-day span


def test_the_page_escapes_every_value():
    subject = 'CN=<script>alert("x")</script> & Co'
    document = report(host("web<1>", certificates=[cert(name="a&b", subject=subject, left=-1.0)],
                           cas=[ca(subject=subject, left=10.0)], services=[service(name='"quoted"')]))
    page = health_report_html(document)
    assert "<script" not in page and "alert(&quot;x&quot;)" in page
    assert "CN=&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co" in page
    assert "web&lt;1&gt;" in page and "web<1>" not in page and "a&amp;b" in page and "&quot;quoted&quot;" in page


def test_the_page_when_all_is_well():
    page = health_report_html(report(host(certificates=[cert()])))
    assert '<p class="nothing">Nothing needs attention.</p>' in page and "all fine" in page
    assert "No CRL reported." in page
    assert "Nothing needs attention." in health_report_html(report())  # an empty fleet renders too


# --- the page in a browser -------------------------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@contextlib.contextmanager
def _deadline(seconds):
    """Fail instead of hanging: SIGALRM interrupts whatever the browser or its driver is stuck in."""
    def expire(signum, frame):
        raise TimeoutError(f"the browser test took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _png_size(path):
    data = pathlib.Path(path).read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_the_page_in_headless_chromium(tmp_path, monkeypatch):
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        pytest.fail(f"{' and '.join(missing)} not found: run scripts/bootstrap.sh (Debian chromium, chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By
    except ImportError:
        pytest.fail("selenium is not installed: run scripts/bootstrap.sh (tests/requirements.txt)")
    # Nothing of Selenium Manager: the driver's path is given, and it must not phone home either way.
    monkeypatch.setenv("SE_AVOID_STATS", "true")
    monkeypatch.setenv("SE_OFFLINE", "true")

    fleet = sample_fleet()
    page = tmp_path / "health-report.html"
    page.write_text(health_report_html(health_report(fleet, now=NOW)), encoding="utf-8")
    screenshot = pathlib.Path(os.environ.get("MTLS_REPORT_SCREENSHOT") or tmp_path / "health-report.png")
    screenshot.parent.mkdir(parents=True, exist_ok=True)

    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", "--force-device-scale-factor=1", "--hide-scrollbars",
                     "--window-size=1280,800", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver_service = Service(executable_path=CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"))

    with _deadline(120):
        driver = webdriver.Chrome(service=driver_service, options=options)
        try:
            driver.set_page_load_timeout(30)
            driver.set_script_timeout(10)
            driver.get(page.as_uri())
            # --window-size is the window's; the screenshot is of the viewport, which is what must be 1280x800.
            width, height = driver.execute_script("return [window.innerWidth, window.innerHeight]")
            if (width, height) != (1280, 800):
                size = driver.get_window_size()
                driver.set_window_size(size["width"] + 1280 - width, size["height"] + 800 - height)
                assert driver.execute_script("return [window.innerWidth, window.innerHeight]") == [1280, 800]
            errors = [entry for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]
            assert not errors, errors
            text = driver.find_element(By.TAG_NAME, "body").text
            for entry in fleet:
                assert entry["host"] in text, entry["host"]
            first = driver.find_element(By.CSS_SELECTOR, "#attention li.finding")
            assert (first.get_attribute("data-kind"), first.get_attribute("data-host")) == (
                "certificate_expired", "web1")
            assert "web1" in first.text and "expired" in first.text.lower() and first.is_displayed()
            assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0
            assert driver.execute_script("return document.documentElement.scrollWidth") <= 1280  # no sideways scroll
            assert driver.save_screenshot(str(screenshot))
        finally:
            driver.quit()
    assert _png_size(screenshot) == (1280, 800)
    print(f"health report screenshot: {screenshot}")


def test_the_crls_of_two_issuing_cas_of_one_name_are_two_crls():
    # During an issuing-CA rollover the old and the next issuing CA share a name, not a key.
    report = health_report([host(crls=[dict(crl(), key_id="AA:01"), dict(crl(number=3), key_id="BB:02")])], now=NOW)
    assert [(c["key_id"], c["crl_number"]) for c in report["hosts"][0]["crls"]] == [("AA:01", 12), ("BB:02", 3)]
