# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""rollout_next_state, rollout_failed_hosts and rollout_report: the rollout's records, in Python."""

from __future__ import annotations

import json

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.mtls.plugins.filter.rollout import (
    rollout_failed_hosts, rollout_next_state, rollout_report)

T0 = "2026-12-07T10:00:00Z"
T1 = "2026-12-07T11:00:00Z"


def test_the_first_switch_starts_both_times():
    assert rollout_next_state({}, "permissive", T0) == dict(mode="permissive", since=T0, permissive_since=T0)
    assert rollout_next_state(None, "strict", T0) == dict(mode="strict", since=T0, permissive_since=None)


def test_reapplying_a_mode_changes_nothing_and_keeps_the_reason():
    state = dict(mode="permissive", since=T0, permissive_since=T0, reason="rolled back from strict: x")
    assert rollout_next_state(state, "permissive", T1) == state
    assert rollout_next_state(state, "permissive", T1, reason="again") == dict(state, reason="again")


def test_strict_keeps_the_window_a_rollback_starts_a_new_one():
    permissive = dict(mode="permissive", since=T0, permissive_since=T0)
    strict = rollout_next_state(permissive, "strict", T1)
    assert strict == dict(mode="strict", since=T1, permissive_since=T0)
    back = rollout_next_state(strict, "permissive", "2026-12-07T12:00:00Z", reason="wave 2 regressed")
    assert back == dict(mode="permissive", since="2026-12-07T12:00:00Z", permissive_since="2026-12-07T12:00:00Z",
                        reason="wave 2 regressed")
    # the old reason does not follow a change of mode
    assert "reason" not in rollout_next_state(back, "strict", "2026-12-07T13:00:00Z")


def test_a_mode_the_services_do_not_have():
    with pytest.raises(AnsibleFilterError, match="strict or permissive, not 'off'"):
        rollout_next_state({}, "off", T0)


def test_the_failed_hosts_of_a_batch():
    hostvars = {"a": dict(mtls_rollout_strict_outcome=dict(passed=True)),
                "b": dict(mtls_rollout_strict_outcome=dict(passed="False")),
                "c": dict(),  # not reached: not failed
                "d": dict(mtls_rollout_strict_outcome=dict(passed=False, problems=["x"]))}
    assert rollout_failed_hosts(["a", "b", "c", "d"], hostvars) == ["b", "d"]
    assert rollout_failed_hosts([], hostvars) == []


def server(mode, services, **facts):
    seen = dict(ansible_local=dict(fleet_mtls=dict(mode=mode, since=T1, permissive_since=T0)) if mode else {},
                mtls_services=services)
    seen.update(facts)
    return seen


def test_the_report():
    verification = dict(passed=True, problems=[], probes=[])
    hostvars = {
        "web1": server("strict", ["nginx"], mtls_verify_result=verification,
                       mtls_rollout_adoption=dict(totals=dict(requests=5, valid=5), clients=[dict(client_addr="c")])),
        "lb1": server("permissive", ["haproxy"], mtls_verify_result=dict(passed=False, problems=["p"]),
                      mtls_rollout_rolled_back=dict(reason="wave 2 regressed in its soak", problems=["r"])),
        "app1": server(None, ["python_service"]),
        "localhost": dict(mtls_rollout_gate_verdict=dict(passed=True, adoption=1.0),
                          mtls_rollout_wave_plan=dict(waves=[dict(wave=1, servers=["web1"])]),
                          mtls_rollout_soaks=[dict(wave=1, passed=True), dict(wave=2, passed=False)],
                          mtls_rollout_regression=dict(wave=2, servers=["lb1"], reasons=["r"])),
    }
    report = rollout_report(["web1", "lb1", "app1"], hostvars, phases=["strict", "verify"], now=T1)
    assert report["summary"] == dict(servers=3, strict=["web1"], permissive=["lb1"], not_switched=["app1"],
                                     rolled_back=["lb1"], verification_failed=["lb1"], gate=True, adoption=1.0,
                                     waves_soaked=[1, 2], regressed_wave=2)
    assert (report["time"], report["phases"]) == (T1, ["strict", "verify"])
    assert report["waves"] == [dict(wave=1, servers=["web1"])]
    assert report["regression"]["servers"] == ["lb1"]
    web1 = report["servers"][0]
    assert web1 == dict(host="web1", services=["nginx"], mode="strict", since=T1, permissive_since=T0, reason=None,
                        adoption=dict(requests=5, valid=5), clients=[dict(client_addr="c")],
                        verification=verification, rolled_back=None)
    assert report["servers"][2]["mode"] is None and report["servers"][2]["adoption"] is None
    json.dumps(report)


def test_a_report_before_any_gate():
    report = rollout_report(["web1"], {"web1": server(None, [])}, now=T0)
    assert report["summary"]["gate"] is None and report["summary"]["regressed_wave"] is None
    assert (report["gate"], report["waves"], report["soaks"], report["regression"]) == (None, [], [], None)
    assert rollout_report([], {})["time"].endswith("Z")
