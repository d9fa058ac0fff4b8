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


class FilterModule(object):
    def filters(self):
        return {"rollout_gate": rollout_gate}
