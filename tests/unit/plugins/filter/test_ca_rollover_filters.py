# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollover's plan and its retirement check."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.mtls.plugins.filter.ca_rollover import ca_rollover_leftovers, ca_rollover_plan

ALL = ["prepared", "trusted", "switched", "reissued", "retired", "done"]


def state(phase=None):
    phases = {} if phase is None else {p: "2026-12-07T16:00:00Z" for p in ALL[:ALL.index(phase) + 1]}
    return dict(phase=phase, phases=phases, old_serial="0A" if phase else None, new_serial="0B" if phase else None)


def test_a_new_rollover_goes_through_every_phase():
    plan = ca_rollover_plan(state())
    assert plan["run"] == ALL and plan["phases"] == ALL
    assert plan["lines"][0] == "no rollover runs: a new one starts"


def test_a_stopped_rollover_continues_after_the_last_phase_reached():
    plan = ca_rollover_plan(state("switched"))
    assert plan["run"] == ["reissued", "retired", "done"]
    assert plan["lines"][0] == "issuing CA 0A -> 0B, phase switched reached"
    assert plan["lines"][1].startswith("prepared: done 2026-12-07T16:00:00Z")


def test_until_stops_the_run_after_that_phase():
    assert ca_rollover_plan(state(), until="trusted")["run"] == ["prepared", "trusted"]
    assert ca_rollover_plan(state("trusted"), until="trusted")["run"] == []


def test_check_mode_runs_nothing_and_shows_what_would_run():
    plan = ca_rollover_plan(state("prepared"), check_mode=True)
    assert plan["run"] == [] and plan["phases"] == ALL[1:]
    assert plan["lines"][2].startswith("trusted: would run - ")


def test_a_rollover_read_as_done_starts_afresh():
    assert ca_rollover_plan(state("done"))["run"] == ALL


@pytest.mark.parametrize("bad, message", [
    (dict(state=state(), until="later"), "until must be one of"),
    (dict(state="prepared"), "must be the result"),
    (dict(state=dict(phase="sideways")), "is not a rollover phase"),
])
def test_bad_input_is_refused(bad, message):
    with pytest.raises(AnsibleFilterError, match=message):
        ca_rollover_plan(bad["state"], until=bad.get("until", "done"))


def entry(name, serial, issued_at, status="valid"):
    return dict(name=name, serial=serial, issued_at=issued_at, status=status)


def test_nothing_is_left_when_every_name_was_issued_again_by_the_new_ca():
    old = [entry("web1/server", "01", "2026-12-01T00:00:00Z"), entry("app1/server", "02", "2026-12-01T00:00:00Z"),
           entry("gone/server", "03", "2026-11-01T00:00:00Z", status="revoked"),
           entry("old/server", "04", "2026-01-01T00:00:00Z", status="expired")]
    new = [entry("web1/server", "11", "2026-12-07T00:00:00Z"), entry("app1/server", "12", "2026-12-07T00:00:00Z")]
    assert ca_rollover_leftovers(old, new, {"web1": {"certificates": [{"name": "server", "reasons": []}]}}) == []


def test_a_valid_certificate_of_the_old_ca_alone_is_left_and_named():
    old = [entry("web1/server", "01", "2026-12-01T00:00:00Z"), entry("lb1/server", "02", "2026-12-08T00:00:00Z")]
    # lb1's old certificate was issued after its new one: a run signed with the old CA after the switch.
    new = [entry("lb1/server", "12", "2026-12-07T00:00:00Z")]
    left = ca_rollover_leftovers(old, new)
    assert len(left) == 2
    assert left[0].startswith("lb1/server: valid certificate 02 of the old CA")
    assert left[1].startswith("web1/server: valid certificate 01 of the old CA")


def test_a_host_that_still_holds_a_certificate_of_the_old_ca_is_named():
    decisions = {"app1": {"certificates": [{"name": "server", "serial": "0F", "reasons": ["issuer_changed"]}]},
                 "web1": {"certificates": [{"name": "server", "serial": "11", "reasons": []}]}}
    assert ca_rollover_leftovers([], [], decisions) == [
        "app1/server: the host holds a certificate the new CA did not sign (serial 0F)"]


@pytest.mark.parametrize("old, new", [("x", []), ([{"serial": "01"}], []), ([], None)])
def test_records_that_are_not_records_are_refused(old, new):
    with pytest.raises(AnsibleFilterError, match="ca_rollover_leftovers"):
        ca_rollover_leftovers(old, new)
