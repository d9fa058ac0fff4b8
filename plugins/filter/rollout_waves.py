# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Strict mode in waves: the plan (which servers, in which order and batches) and the soak's verdict.

Both are pure functions of what the play gathered (each server's wave and
recorded mode, the access-log counts of M(fleet.mtls.adoption_info)); the
rollout playbook only runs what they decide.
"""

from __future__ import annotations

import math
import re

from ansible.errors import AnsibleFilterError

_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def _mode(seen):
    return ((seen.get("ansible_local") or {}).get("fleet_mtls") or {}).get("mode")


def _wave(host, seen, default_wave):
    value = seen.get("mtls_rollout_wave", default_wave)
    if isinstance(value, bool):
        value = None
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise AnsibleFilterError("rollout_waves: %s has mtls_rollout_wave=%r; a wave is a whole number (0 to 1000)"
                                 % (host, value))
    if not 0 <= number <= 1000:
        raise AnsibleFilterError("rollout_waves: %s has mtls_rollout_wave=%r; a wave is a whole number (0 to 1000)"
                                 % (host, value))
    return number


def _batch_size(serial, pending):
    """How many servers of a wave with `pending` servers to switch go per batch."""
    if isinstance(serial, bool):
        serial = None
    if isinstance(serial, str):
        match = _PERCENT.match(serial)
        if match:
            share = float(match.group(1))
            if not 0 < share <= 100:
                raise AnsibleFilterError("rollout_waves: serial=%r must be above 0%% and at most 100%%" % (serial,))
            return max(1, int(pending * share / 100))
    try:
        size = int(str(serial).strip())
    except (TypeError, ValueError):
        raise AnsibleFilterError("rollout_waves: serial=%r is neither a number of servers nor a percentage" % (serial,))
    if size < 1:
        raise AnsibleFilterError("rollout_waves: serial=%r must be at least 1" % (serial,))
    return size


def rollout_waves(servers, hostvars, serial=1, default_wave=1):
    """The strict phase's plan: the servers' waves, lowest first, and the batches inside each.

    A server's wave is its ``mtls_rollout_wave`` (inventory, per host or
    group), else default_wave. A server already strict (its recorded mode)
    is done and is not switched again; a wave whose servers are all strict is
    done. The servers still to switch go in wave order, in the order given
    inside a wave, and in batches of ``serial`` (a number, or a percentage of
    the wave's servers still to switch) that never span two waves.
    ``order`` and ``serial`` are the host list and the batch sizes of the
    strict play; ``soak_after`` names, for the last server of each wave, the
    wave whose soak follows its batch.
    """
    waves = {}
    for host in servers:
        seen = hostvars[host]
        number = _wave(host, seen, default_wave)
        wave = waves.setdefault(number, dict(wave=number, servers=[], strict=[], pending=[]))
        wave["servers"].append(host)
        wave["strict" if _mode(seen) == "strict" else "pending"].append(host)
    order = []
    sizes = []
    soak_after = {}
    lines = []
    plan = []
    for number in sorted(waves):
        wave = waves[number]
        pending = wave["pending"]
        batches = []
        if pending:
            size = _batch_size(serial, len(pending))
            batches = [pending[start:start + size] for start in range(0, len(pending), size)]
            order.extend(pending)
            sizes.extend(len(batch) for batch in batches)
            soak_after[pending[-1]] = number
        wave.update(batches=batches, done=not pending)
        plan.append(wave)
        if pending:
            already = " (already strict: %s)" % ", ".join(wave["strict"]) if wave["strict"] else ""
            lines.append("wave %d: %s%s" % (number, " then ".join(", ".join(batch) for batch in batches), already))
        else:
            lines.append("wave %d: done, strict: %s" % (number, ", ".join(wave["strict"])))
    pending_waves = [wave["wave"] for wave in plan if not wave["done"]]
    return dict(waves=plan, order=order, serial=sizes or [1], soak_after=soak_after,
                wave_of=dict((host, wave["wave"]) for wave in plan for host in wave["servers"]),
                next_wave=pending_waves[0] if pending_waves else None, lines=lines)


def rollout_strict(servers, hostvars):
    """The servers whose recorded mode is strict, in the order given."""
    return [host for host in servers if _mode(hostvars[host]) == "strict"]


def _count(value, what):
    if isinstance(value, bool):
        raise AnsibleFilterError("rollout_soak: %s=%r is not a count" % (what, value))
    try:
        number = int(value or 0)
    except (TypeError, ValueError):
        raise AnsibleFilterError("rollout_soak: %s=%r is not a count" % (what, value))
    if number < 0:
        raise AnsibleFilterError("rollout_soak: %s=%r must not be negative" % (what, value))
    return number


def _observations(observed):
    """{host: adoption_info result} from a registered loop (``results``, each with its ``item``) or a dict."""
    if isinstance(observed, dict) and "results" in observed:
        pairs = []
        for result in observed["results"]:
            if result.get("skipped"):
                continue
            if result.get("failed") or "totals" not in result:
                raise AnsibleFilterError("rollout_soak: the soak could not read the access logs of %s: %s" % (
                    result.get("item"), result.get("msg", "no counts")))
            pairs.append((result.get("item"), result))
        return dict(pairs)
    if isinstance(observed, dict):
        return observed
    raise AnsibleFilterError("rollout_soak: observed must be a registered loop of adoption_info or a dict by host")


def _baseline(servers, hostvars):
    """Each server's counts, and each client address's on each server, over the windows the observe phase counted."""
    clients = {}
    per_server = {}
    for host in servers:
        adoption = hostvars[host].get("mtls_rollout_adoption") or {}
        totals = adoption.get("totals") or {}
        per_server[host] = dict((key, _count(totals.get(key), "%s's %s" % (host, key)))
                                for key in ("requests", "valid", "none", "failed", "refused"))
        for client in adoption.get("clients") or []:
            entry = clients.setdefault((host, client.get("client_addr", "")), dict(valid=0, other=0, refused=0))
            entry["valid"] += _count(client.get("valid"), "valid")
            entry["other"] += _count(client.get("none"), "none") + _count(client.get("failed"), "failed")
            entry["refused"] += _count(client.get("refused"), "refused")
    return clients, per_server


def _names(names):
    """{address: name} from a dict, or from getent's registered answer (address, then names, per line)."""
    if not names:
        return {}
    if "stdout_lines" in names or "skipped" in names or "rc" in names:
        found = {}
        for line in names.get("stdout_lines") or []:
            fields = str(line).split()
            if fields:
                found[fields[0]] = " ".join(fields[1:])
        return found
    return dict(names)


def rollout_soak(observed, hostvars, servers, wave=None, threshold=0, names=None, since=None, until=None):
    """The soak's verdict: did the strict servers start refusing what they served before the wave?

    ``observed`` holds, per strict server, M(fleet.mtls.adoption_info)'s
    counts of the soak window; the baseline is each server's observation
    (``mtls_rollout_adoption``) from the observe phase, in permissive mode.
    Two measures, both in requests:

    - a regressed client is an address that a server served with a valid
      certificate in its baseline, with nothing refused and nothing without
      a valid certificate, and that the same server refuses now: all those
      refused requests count (an address that also called without a valid
      certificate may have been let through by the gate's threshold: its
      refusals count only through the server's excess);
    - a server's excess is what it refused beyond the share of its baseline
      that strict mode would have refused (requests without a valid
      certificate, or refused already).

    The regression is the larger of the two sums; the soak passes while it is
    at most ``threshold`` (default 0: any regression stops the rollout).
    """
    threshold = _count(threshold, "threshold")
    names = _names(names)
    observations = _observations(observed)
    before, baseline = _baseline(servers, hostvars)
    server_rows = []
    regressed = {}
    reasons = []
    for host in sorted(observations, key=lambda name: list(servers).index(name) if name in servers else len(servers)):
        result = observations[host]
        totals = result.get("totals") or {}
        requests = _count(totals.get("requests"), "%s's requests" % host)
        refused = _count(totals.get("refused"), "%s's refused" % host)
        base = baseline.get(host) or {}
        base_requests = base.get("requests", 0)
        share = (min(base_requests, base.get("none", 0) + base.get("failed", 0) + base.get("refused", 0))
                 / base_requests if base_requests else 0.0)
        expected = int(math.floor(share * requests))
        excess = max(0, refused - expected)
        server_rows.append(dict(host=host, requests=requests, refused=refused, baseline_share=share,
                                expected=expected, excess=excess))
        if excess:
            reasons.append("%s refused %d of %d requests in the soak; its permissive window (%.1f%% without a valid "
                           "certificate) explains %d" % (host, refused, requests, 100 * share, expected))
        for client in result.get("clients") or []:
            count = _count(client.get("refused"), "refused")
            address = client.get("client_addr", "")
            history = before.get((host, address))
            if not count or not history or not history["valid"] or history["other"] or history["refused"]:
                continue
            entry = regressed.setdefault(address, dict(address=address, name=names.get(address, ""), refused=0,
                                                       servers=[], identities=[]))
            entry["refused"] += count
            if host not in entry["servers"]:
                entry["servers"].append(host)
            identity = client.get("identity") or "(no certificate)"
            if identity not in entry["identities"]:
                entry["identities"].append(identity)
    clients = sorted(regressed.values(), key=lambda entry: entry["address"])
    for client in clients:
        reasons.append("client %s%s, served with a valid certificate before the wave, was refused %d time(s) by %s "
                       "(as %s)" % (client["address"], " (%s)" % client["name"] if client["name"] else "",
                                    client["refused"], ", ".join(client["servers"]), ", ".join(client["identities"])))
    regressions = max(sum(row["excess"] for row in server_rows), sum(client["refused"] for client in clients))
    return dict(wave=wave, since=since, until=until, passed=regressions <= threshold, regressions=regressions,
                threshold=threshold, requests=sum(row["requests"] for row in server_rows),
                refused=sum(row["refused"] for row in server_rows), servers=server_rows, clients=clients,
                reasons=reasons)


class FilterModule(object):
    def filters(self):
        return {"rollout_waves": rollout_waves, "rollout_strict": rollout_strict, "rollout_soak": rollout_soak}
