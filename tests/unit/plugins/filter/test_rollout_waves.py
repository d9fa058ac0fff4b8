# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""rollout_waves and rollout_soak: strict mode wave by wave, and a stop on regressions."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.mtls.plugins.filter.rollout_waves import rollout_soak, rollout_strict, rollout_waves

CLIENT = "10.89.0.6"
OTHER = "10.89.0.9"


def host(wave=None, mode="permissive", clients=(), **totals):
    seen = dict(ansible_local=dict(fleet_mtls=dict(mode=mode)))
    if wave is not None:
        seen["mtls_rollout_wave"] = wave
    counts = dict(requests=0, valid=0, none=0, failed=0, refused=0)
    counts.update(totals)
    seen["mtls_rollout_adoption"] = dict(totals=counts, clients=list(clients))
    return seen


def client(address=CLIENT, identity="CN=client1", valid=0, none=0, failed=0, refused=0):
    return dict(client_addr=address, identity=identity, requests=valid + none + failed, valid=valid, none=none,
                failed=failed, refused=refused)


def soak_counts(requests=0, refused=0, clients=()):
    return dict(totals=dict(requests=requests, refused=refused), clients=list(clients))


# ---- the plan ----

def test_waves_lowest_first_inventory_order_inside():
    hostvars = {"web1": host(1), "web2": host(1), "lb1": host(2), "app1": host(2), "db1": host(3)}
    plan = rollout_waves(["web1", "lb1", "app1", "web2", "db1"], hostvars)
    assert plan["order"] == ["web1", "web2", "lb1", "app1", "db1"]
    assert plan["serial"] == [1, 1, 1, 1, 1]
    assert [(w["wave"], w["servers"], w["batches"]) for w in plan["waves"]] == [
        (1, ["web1", "web2"], [["web1"], ["web2"]]),
        (2, ["lb1", "app1"], [["lb1"], ["app1"]]),
        (3, ["db1"], [["db1"]])]
    assert plan["soak_after"] == {"web2": 1, "app1": 2, "db1": 3}
    assert plan["next_wave"] == 1
    assert plan["lines"] == ["wave 1: web1 then web2", "wave 2: lb1 then app1", "wave 3: db1"]


def test_batches_never_span_two_waves():
    hostvars = dict(("h%d" % n, host(1 if n < 3 else 2)) for n in range(7))
    plan = rollout_waves(sorted(hostvars), hostvars, serial=2)
    # wave 1: h0 h1 h2 (2 + 1), wave 2: h3..h6 (2 + 2), never h2 with h3
    assert plan["serial"] == [2, 1, 2, 2]
    assert [w["batches"] for w in plan["waves"]] == [[["h0", "h1"], ["h2"]], [["h3", "h4"], ["h5", "h6"]]]


@pytest.mark.parametrize("serial, sizes", [("50%", [2, 2]), ("30%", [1, 1, 1, 1]), ("100%", [4]), ("5", [4])])
def test_serial_as_a_share_of_each_wave(serial, sizes):
    hostvars = dict(("h%d" % n, host(1)) for n in range(4))
    assert rollout_waves(sorted(hostvars), hostvars, serial=serial)["serial"] == sizes


def test_default_wave_and_waves_given_as_text():
    hostvars = {"a": host(), "b": host("0"), "c": host(" 2 ")}
    plan = rollout_waves(["a", "b", "c"], hostvars, default_wave=1)
    assert plan["order"] == ["b", "a", "c"]
    assert plan["wave_of"] == {"a": 1, "b": 0, "c": 2}


def test_a_rerun_continues_at_the_first_wave_not_strict():
    # wave 1 done; wave 2 rolled back (permissive again), one of its servers strict from an earlier batch
    hostvars = {"web1": host(1, "strict"), "lb1": host(2, "permissive"), "app1": host(2, "strict")}
    plan = rollout_waves(["web1", "lb1", "app1"], hostvars)
    assert plan["order"] == ["lb1"]
    assert plan["next_wave"] == 2
    assert [(w["wave"], w["done"], w["strict"], w["pending"]) for w in plan["waves"]] == [
        (1, True, ["web1"], []), (2, False, ["app1"], ["lb1"])]
    assert plan["lines"] == ["wave 1: done, strict: web1", "wave 2: lb1 (already strict: app1)"]
    assert plan["soak_after"] == {"lb1": 2}


def test_everything_strict_is_an_empty_plan():
    hostvars = {"web1": host(1, "strict"), "lb1": host(2, "strict")}
    plan = rollout_waves(["web1", "lb1"], hostvars)
    assert (plan["order"], plan["serial"], plan["next_wave"], plan["soak_after"]) == ([], [1], None, {})
    assert rollout_strict(["lb1", "web1"], hostvars) == ["lb1", "web1"]


@pytest.mark.parametrize("wave", ["first", True, -1, 1001, [1], 1.5])
def test_a_wave_that_is_not_a_whole_number_is_refused(wave):
    with pytest.raises(AnsibleFilterError, match="web1 has mtls_rollout_wave="):
        rollout_waves(["web1"], {"web1": host(wave)})


@pytest.mark.parametrize("serial", [0, "0%", "150%", "all", None, True])
def test_a_bad_serial_is_refused(serial):
    with pytest.raises(AnsibleFilterError, match="serial"):
        rollout_waves(["web1"], {"web1": host(1)}, serial=serial)


# ---- the soak ----

def baseline_fleet():
    # the permissive window: client1 served with its certificate by every server, nothing else
    return {"web1": host(1, "strict", requests=40, valid=40, clients=[client(valid=40)]),
            "lb1": host(2, "strict", requests=38, valid=38, clients=[client(valid=38)]),
            "app1": host(2, "strict", requests=41, valid=41, clients=[client(valid=41)])}


def test_a_clean_soak_passes_with_its_counts():
    hostvars = baseline_fleet()
    observed = dict(results=[
        dict(item="web1", **soak_counts(10, 0, [client(valid=10)])),
        dict(item="lb1", **soak_counts(9, 0, [client(valid=9)])),
        dict(item="app1", skipped=True)])
    verdict = rollout_soak(observed, hostvars, ["web1", "lb1", "app1"], wave=2, since="S", until="U")
    assert verdict["passed"] and verdict["regressions"] == 0 and verdict["reasons"] == []
    assert (verdict["wave"], verdict["since"], verdict["until"], verdict["requests"], verdict["refused"]) == (
        2, "S", "U", 19, 0)
    assert [row["host"] for row in verdict["servers"]] == ["web1", "lb1"]


def test_a_client_served_before_and_refused_now_is_a_regression_named():
    hostvars = baseline_fleet()
    observed = {"web1": soak_counts(10, 0, [client(valid=10)]),
                "lb1": soak_counts(14, 5, [client(valid=9), client(identity="", none=5, refused=5)])}
    getent = dict(rc=0, stdout_lines=["%s      client1.fleet client1" % CLIENT])
    verdict = rollout_soak(observed, hostvars, ["web1", "lb1", "app1"], names=getent)
    assert not verdict["passed"]
    assert verdict["regressions"] == 5
    assert verdict["clients"] == [dict(address=CLIENT, name="client1.fleet client1", refused=5, servers=["lb1"],
                                       identities=["(no certificate)"])]
    assert [row["excess"] for row in verdict["servers"]] == [0, 5]
    assert verdict["reasons"] == [
        "lb1 refused 5 of 14 requests in the soak; its permissive window (0.0% without a valid certificate) "
        "explains 0",
        "client 10.89.0.6 (client1.fleet client1), served with a valid certificate before the wave, was refused 5 time(s) "
        "by lb1 (as (no certificate))"]


def test_the_threshold_tolerates_that_many_regressed_requests():
    hostvars = baseline_fleet()
    observed = {"lb1": soak_counts(12, 2, [client(valid=10), client(identity="", none=2, refused=2)])}
    assert rollout_soak(observed, hostvars, ["lb1"], threshold=2, names=dict(skipped=True))["passed"]
    assert rollout_soak(observed, hostvars, ["lb1"], names={CLIENT: "c1"})["clients"][0]["name"] == "c1"
    assert not rollout_soak(observed, hostvars, ["lb1"], threshold=1)["passed"]


def test_refusals_the_permissive_window_foretold_are_no_regression():
    # 10% of lb1's permissive traffic had no certificate (the gate was set to 90%): strict refuses about as much
    hostvars = baseline_fleet()
    hostvars["lb1"] = host(2, "strict", requests=100, valid=90, none=10,
                           clients=[client(valid=90), client(OTHER, "", none=10)])
    observed = {"lb1": soak_counts(50, 5, [client(valid=45), client(OTHER, "", none=5, refused=5)])}
    verdict = rollout_soak(observed, hostvars, ["lb1"])
    assert verdict["passed"], verdict["reasons"]
    assert verdict["servers"][0]["expected"] == 5 and verdict["clients"] == []
    # twice as many refusals as foretold: the server's excess is a regression, though no known client regressed
    observed = {"lb1": soak_counts(50, 10, [client(valid=40), client(OTHER, "", none=10, refused=10)])}
    verdict = rollout_soak(observed, hostvars, ["lb1"])
    assert not verdict["passed"] and verdict["regressions"] == 5 and verdict["clients"] == []


def test_a_client_is_judged_against_what_the_same_server_saw():
    # client1 also called web1 without a certificate (another program on it), but lb1 only ever saw it with one
    hostvars = baseline_fleet()
    hostvars["web1"] = host(1, "strict", requests=50, valid=40, none=10,
                            clients=[client(valid=40), client(identity="", none=10)])
    observed = {"lb1": soak_counts(14, 5, [client(valid=9), client(identity="", none=5, refused=5)]),
                "web1": soak_counts(12, 2, [client(valid=10), client(identity="", none=2, refused=2)])}
    verdict = rollout_soak(observed, hostvars, ["web1", "lb1"])
    assert [(c["address"], c["servers"], c["refused"]) for c in verdict["clients"]] == [(CLIENT, ["lb1"], 5)]
    # web1 refused what its window foretold (20% of 12 is 2): no excess there
    assert [(row["host"], row["expected"], row["excess"]) for row in verdict["servers"]] == [
        ("web1", 2, 0), ("lb1", 0, 5)]
    assert verdict["regressions"] == 5


def test_a_client_refused_before_the_wave_is_not_a_regression_of_it():
    hostvars = baseline_fleet()
    hostvars["app1"] = host(2, "strict", requests=41, valid=41, refused=3,
                            clients=[client(valid=38), client(OTHER, "CN=old", valid=3, refused=3)])
    observed = {"app1": soak_counts(20, 1, [client(valid=19), client(OTHER, "CN=old", valid=1, refused=1)])}
    verdict = rollout_soak(observed, hostvars, ["app1"])
    assert verdict["passed"] and verdict["clients"] == []


def test_an_unreadable_soak_is_no_verdict():
    observed = dict(results=[dict(item="lb1", failed=True, msg="access log /var/log/haproxy/access.log: missing")])
    with pytest.raises(AnsibleFilterError, match="could not read the access logs of lb1: access log"):
        rollout_soak(observed, baseline_fleet(), ["lb1"])
    with pytest.raises(AnsibleFilterError, match="threshold"):
        rollout_soak({}, baseline_fleet(), ["lb1"], threshold=-1)
    with pytest.raises(AnsibleFilterError, match="registered loop"):
        rollout_soak(["lb1"], baseline_fleet(), ["lb1"])
