# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""rollout_gate: strict mode only on evidence, and every refusal says why."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.mtls.plugins.filter.rollout import rollout_gate

NOW = "2026-12-03T12:00:00Z"
HOUR_AGO = "2026-12-03T11:00:00Z"


def server(mode="permissive", since=HOUR_AGO, valid=10, none=0, failed=0, clients=(), names=()):
    seen = dict(ansible_local=dict(fleet_mtls=dict(mode=mode)))
    if since is not None:
        seen["mtls_rollout_adoption"] = dict(
            totals=dict(requests=valid + none + failed, valid=valid, none=none, failed=failed),
            window=dict(since=since), clients=list(clients))
    if names:
        seen["mtls_rollout_client_names"] = dict(stdout_lines=list(names))
    return seen


def gate(hostvars, **options):
    options.setdefault("now", NOW)
    return rollout_gate(sorted(hostvars), hostvars, **options)


def test_evidence_from_every_server_passes():
    verdict = gate({"web1": server(), "lb1": server(valid=3)})
    assert verdict["passed"] and not verdict["overridden"] and verdict["reasons"] == []
    assert (verdict["requests"], verdict["valid"], verdict["adoption"]) == (13, 13, 1.0)
    assert [(s["host"], s["requests"], s["window_seconds"]) for s in verdict["servers"]] == [
        ("lb1", 3, 3600), ("web1", 10, 3600)]
    assert (verdict["min_requests"], verdict["min_window"]) == (1, 3600)


def test_an_empty_window_is_no_evidence():
    verdict = gate({"web1": server(), "app1": server(valid=0)})
    assert not verdict["passed"]
    assert verdict["reasons"] == ["app1 saw 0 request(s) in its window; the gate needs 1"]


def test_a_short_window_is_no_evidence():
    verdict = gate({"web1": server(since="2026-12-03T11:59:20Z")})
    assert not verdict["passed"]
    assert verdict["reasons"] == ["web1 was observed for 40 s since 2026-12-03T11:59:20Z; the gate needs 3600 s"]
    assert gate({"web1": server(since="2026-12-03T11:59:20Z")}, min_window=30)["passed"]


def test_an_unobserved_server_blocks():
    verdict = gate({"web1": server(), "lb1": server(since=None)})
    assert not verdict["passed"] and verdict["unobserved"] == ["lb1"]
    assert verdict["reasons"] == ["not observed in permissive mode yet: lb1"]


def test_clients_without_a_certificate_are_named():
    legacy = dict(client_addr="10.89.64.15", none=50, failed=0, user_agents=["legacy-report/2.1"])
    verdict = gate({"web1": server(valid=100, none=50, clients=[legacy], names=["10.89.64.15 client1 legacy"]),
                    "lb1": server(valid=5, none=1, clients=[dict(legacy, none=1)])})
    assert not verdict["passed"]
    assert verdict["reasons"] == [
        "51 of 156 requests carried no valid client certificate (67.3% adoption, 100.0% needed)",
        "client 10.89.64.15 (client1 legacy): 51 request(s) without a certificate, 0 with a failed one, to lb1, web1;"
        " user agent legacy-report/2.1"]
    assert verdict["clients"] == [dict(address="10.89.64.15", name="client1 legacy", none=51, failed=0,
                                       servers=["lb1", "web1"], user_agents=["legacy-report/2.1"])]


def test_strict_servers_are_not_judged_again():
    assert gate({"web1": server(mode="strict", since=None), "lb1": server()})["passed"]


def test_an_override_passes_and_says_so_with_the_reasons():
    verdict = gate({"web1": server(valid=0)}, override=True)
    assert verdict["passed"] and verdict["overridden"] and verdict["reasons"]
    assert not gate({"web1": server()}, override=True)["overridden"]


@pytest.mark.parametrize("options,message", [
    (dict(min_adoption=1.5), "a share, at most 1.0"),
    (dict(min_requests=-1), "must not be negative"),
    (dict(min_window="an hour"), "is not a number"),
    (dict(now="noon"), "is not an ISO 8601 time"),
])
def test_bad_thresholds_are_errors(options, message):
    with pytest.raises(AnsibleFilterError, match=message):
        gate({"web1": server()}, **options)
