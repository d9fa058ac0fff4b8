# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollout's gate: may the servers go strict, from what each one's access logs showed?"""

from __future__ import annotations

import datetime

from ansible.errors import AnsibleFilterError

_COUNTS = ("requests", "valid", "none", "failed")


def _parse_time(text, what):
    try:
        value = datetime.datetime.strptime(str(text).replace("Z", "+00:00"), "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        try:
            value = datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
        except ValueError:
            raise AnsibleFilterError("rollout_gate: %s=%r is not an ISO 8601 time" % (what, text))
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return value


def _number(value, what, kind=float):
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise AnsibleFilterError("rollout_gate: %s=%r is not a number" % (what, value))
    if number < 0:
        raise AnsibleFilterError("rollout_gate: %s=%r must not be negative" % (what, value))
    return number


def _client_names(seen):
    """getent's answer on the server (address, then names) as {address: names}."""
    names = {}
    for line in (seen.get("mtls_rollout_client_names") or {}).get("stdout_lines") or []:
        fields = str(line).split()
        if fields:
            names[fields[0]] = " ".join(fields[1:])
    return names


def rollout_gate(servers, hostvars, min_adoption=1.0, min_requests=1, min_window=3600, override=False, now=None):
    """The gate's verdict for these servers, from their observations (role rollout, entry observe).

    A server already strict is not judged again. Every other one must have
    been observed (``mtls_rollout_adoption``), for at least min_window
    seconds since its window began, with at least min_requests requests;
    and across them the share of requests with a valid client certificate
    must be at least min_adoption. Each unmet condition is one entry of
    ``reasons``, naming the server or the clients; ``passed`` is true when
    there is none (or with override, which is then reported as such).
    """
    min_adoption = _number(min_adoption, "min_adoption")
    if min_adoption > 1:
        raise AnsibleFilterError("rollout_gate: min_adoption=%r is a share, at most 1.0" % (min_adoption,))
    min_requests = _number(min_requests, "min_requests", int)
    min_window = _number(min_window, "min_window", int)
    now = _parse_time(now, "now") if now is not None else datetime.datetime.now(datetime.timezone.utc)

    totals = dict((key, 0) for key in _COUNTS)
    clients = {}
    observed = []
    unobserved = []
    reasons = []
    for host in servers:
        seen = hostvars[host]
        mode = ((seen.get("ansible_local") or {}).get("fleet_mtls") or {}).get("mode")
        if mode == "strict":
            continue
        adoption = seen.get("mtls_rollout_adoption") or {}
        since = (adoption.get("window") or {}).get("since")
        if "totals" not in adoption or not since:
            unobserved.append(host)
            continue
        window = int((now - _parse_time(since, "%s's window start" % host)).total_seconds())
        counts = dict((key, int(adoption["totals"].get(key, 0))) for key in _COUNTS)
        observed.append(dict(host=host, since=since, window_seconds=window, **counts))
        if window < min_window:
            reasons.append("%s was observed for %d s since %s; the gate needs %d s" % (host, window, since, min_window))
        if counts["requests"] < min_requests:
            reasons.append("%s saw %d request(s) in its window; the gate needs %d" % (
                host, counts["requests"], min_requests))
        for key in _COUNTS:
            totals[key] += counts[key]
        names = _client_names(seen)
        for client in adoption.get("clients") or []:
            if not (client.get("none") or client.get("failed")):
                continue
            address = client.get("client_addr", "")
            entry = clients.setdefault(address, dict(address=address, name=names.get(address, ""), none=0,
                                                     failed=0, servers=[], user_agents=[]))
            entry["name"] = entry["name"] or names.get(address, "")
            entry["none"] += int(client.get("none") or 0)
            entry["failed"] += int(client.get("failed") or 0)
            if host not in entry["servers"]:
                entry["servers"].append(host)
            for agent in client.get("user_agents") or []:
                if agent not in entry["user_agents"]:
                    entry["user_agents"].append(agent)
    if unobserved:
        reasons.append("not observed in permissive mode yet: %s" % ", ".join(unobserved))
    adoption = totals["valid"] / totals["requests"] if totals["requests"] else None
    if adoption is not None and adoption < min_adoption:
        reasons.append("%d of %d requests carried no valid client certificate (%.1f%% adoption, %.1f%% needed)" % (
            totals["none"] + totals["failed"], totals["requests"], 100 * adoption, 100 * min_adoption))
    client_list = sorted(clients.values(), key=lambda entry: entry["address"])
    for client in client_list:
        reasons.append("client %s%s: %d request(s) without a certificate, %d with a failed one, to %s%s" % (
            client["address"], " (%s)" % client["name"] if client["name"] else "", client["none"], client["failed"],
            ", ".join(client["servers"]),
            "; user agent %s" % ", ".join(client["user_agents"]) if client["user_agents"] else ""))
    clear = not reasons
    override = bool(override) and not clear
    return dict(passed=clear or override, overridden=override, reasons=reasons, adoption=adoption,
                min_adoption=min_adoption, min_requests=min_requests, min_window=min_window,
                servers=observed, clients=client_list, unobserved=unobserved, **totals)


def _state(seen):
    return (seen.get("ansible_local") or {}).get("fleet_mtls") or {}


def rollout_next_state(state, mode, now, reason=None):
    """The host's rollout state after applying ``mode`` at ``now`` (role rollout, entry mode).

    Times move only when the mode does, so re-applying a mode changes
    nothing. ``permissive_since`` is when the host last went permissive (a
    rollback from strict starts a new observation window). A new ``reason``
    replaces the old one; re-applying the same mode without one keeps it.
    """
    if mode not in ("strict", "permissive"):
        raise AnsibleFilterError("rollout_next_state: mode must be strict or permissive, not %r" % (mode,))
    state = state or {}
    same = state.get("mode") == mode
    result = dict(mode=mode, since=state.get("since") if same else now,
                  permissive_since=now if mode == "permissive" and not same else state.get("permissive_since"))
    if reason:
        result["reason"] = reason
    elif same and "reason" in state:
        result["reason"] = state["reason"]
    return result


def rollout_failed_hosts(batch, hostvars):
    """The hosts of a strict batch whose outcome (``mtls_rollout_strict_outcome``) did not pass."""
    failed = []
    for host in batch:
        outcome = hostvars[host].get("mtls_rollout_strict_outcome") or {}
        passed = outcome.get("passed", True)
        if isinstance(passed, str):
            passed = passed.strip().lower() in ("true", "yes", "1", "on")
        if not passed:
            failed.append(host)
    return failed


def rollout_report(servers, hostvars, phases=None, now=None):
    """The rollout report: every server's mode, adoption and last verification, the gate, the waves and soaks.

    Read from each server's facts (``ansible_local.fleet_mtls``,
    ``mtls_rollout_adoption``, ``mtls_verify_result``,
    ``mtls_rollout_rolled_back``) and from ``localhost``'s (the gate's
    verdict, the wave plan, the soaks, a regression).
    """
    summary = dict(servers=0, strict=[], permissive=[], not_switched=[], rolled_back=[], verification_failed=[])
    rows = []
    for host in servers:
        seen = hostvars[host]
        state = _state(seen)
        verification = seen.get("mtls_verify_result")
        rollback = seen.get("mtls_rollout_rolled_back")
        adoption = seen.get("mtls_rollout_adoption") or {}
        summary["servers"] += 1
        summary.setdefault(state.get("mode") or "not_switched", []).append(host)
        if rollback:
            summary["rolled_back"].append(host)
        if verification and not verification.get("passed"):
            summary["verification_failed"].append(host)
        rows.append(dict(host=host, services=seen.get("mtls_services") or [], mode=state.get("mode"),
                         since=state.get("since"), permissive_since=state.get("permissive_since"),
                         reason=state.get("reason"), adoption=adoption.get("totals"),
                         clients=adoption.get("clients") or [], verification=verification, rolled_back=rollback))
    controller = hostvars["localhost"] if "localhost" in hostvars else {}
    gate = controller.get("mtls_rollout_gate_verdict")
    plan = controller.get("mtls_rollout_wave_plan")
    soaks = controller.get("mtls_rollout_soaks") or []
    regression = controller.get("mtls_rollout_regression")
    summary.update(gate=gate.get("passed") if gate else None, adoption=gate.get("adoption") if gate else None,
                   waves_soaked=[soak.get("wave") for soak in soaks],
                   regressed_wave=regression.get("wave") if regression else None)
    if now is None:
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return dict(time=now, phases=list(phases or []), summary=summary, gate=gate, servers=rows,
                waves=plan.get("waves", []) if plan else [], soaks=soaks, regression=regression)


class FilterModule(object):
    def filters(self):
        return {"rollout_gate": rollout_gate, "rollout_next_state": rollout_next_state,
                "rollout_failed_hosts": rollout_failed_hosts, "rollout_report": rollout_report}
