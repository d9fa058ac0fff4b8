# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An issuing-CA rollover's judgement: which phases a run goes through, and whether the old CA may be retired.

Pure functions of what the playbook gathered: the phase M(fleet.mtls.ca_rollover)
recorded on the CA host, both CAs' records (M(fleet.mtls.ca_index_info)) and
the hosts' own decisions (the certificate role's); the playbook only runs
what they decide.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

PHASES = ("prepared", "trusted", "switched", "reissued", "retired", "done")
_WHAT = {
    "prepared": "make the next issuing CA beside the current one, signed by the root",
    "trusted": "every host's CRL file covers both CAs, every service reloads; probes with a certificate of each CA",
    "switched": "the new CA signs from now on (the old one's files move to previous/)",
    "reissued": "every certificate of the old CA issued again, batch by batch (rotate.yml), each batch probed",
    "retired": "checked from both records and the hosts: no certificate of the old CA in use; the root revokes it",
    "done": "every host's CRL file without the old CA's; probes: the old CA's certificate refused, the new one's "
            "accepted",
}


def ca_rollover_plan(state, until="done", check_mode=False):
    """The phases this run goes through, from the recorded state up to ``until``, and a plan to show.

    state: the result of M(fleet.mtls.ca_rollover) without a phase (``phase``
    null when no rollover runs). A run starts after the last phase reached;
    with ``check_mode`` it runs none and only shows them.
    """
    if until not in PHASES:
        raise AnsibleFilterError("ca_rollover_plan: until must be one of %s, not %r" % (", ".join(PHASES), until))
    if not isinstance(state, dict):
        raise AnsibleFilterError("ca_rollover_plan: the state must be the result of fleet.mtls.ca_rollover")
    reached = state.get("phase")
    if reached not in PHASES + (None,):
        raise AnsibleFilterError("ca_rollover_plan: %r is not a rollover phase" % (reached,))
    start = PHASES.index(reached) + 1 if reached else 0
    if reached == "done":
        start = 0  # a finished rollover was read just before its record moved: the next one starts afresh
    stop = PHASES.index(until) + 1
    todo = list(PHASES[start:stop])
    phases = state.get("phases") or {}
    lines = []
    for phase in PHASES:
        if reached and reached != "done" and PHASES.index(phase) < start:
            lines.append("%s: done %s" % (phase, phases.get(phase, "")))
        elif phase in todo:
            lines.append("%s: %s%s" % (phase, "would run - " if check_mode else "to do - ", _WHAT[phase]))
        else:
            lines.append("%s: not in this run" % phase)
    if reached and reached != "done":
        lines.insert(0, "issuing CA %s -> %s, phase %s reached"
                     % (state.get("old_serial"), state.get("new_serial"), reached))
    else:
        lines.insert(0, "no rollover runs: a new one starts")
    return dict(run=[] if check_mode else todo, phases=todo, lines=lines)


def _valid_names(entries, what):
    if not isinstance(entries, list):
        raise AnsibleFilterError("ca_rollover_leftovers: %s must be the certificates of fleet.mtls.ca_index_info" % what)
    names = {}
    for entry in entries:
        if not isinstance(entry, dict) or "name" not in entry or "status" not in entry:
            raise AnsibleFilterError("ca_rollover_leftovers: %s holds an entry without name and status" % what)
        if entry["status"] == "valid":
            names.setdefault(entry["name"], []).append(entry)
    return names


def ca_rollover_leftovers(old_entries, new_entries, decisions=None):
    """What still ties the fleet to the old issuing CA; empty when it may be retired.

    old_entries and new_entries: the old and the new CA's records (the
    ``certificates`` of M(fleet.mtls.ca_index_info)). A certificate of the old
    CA that is still valid counts unless the new CA issued a valid one under
    the same name, issued after it. decisions: {host: the certificate role's
    ``mtls_certificate_request``}, each host's own view: a certificate it
    holds that the new CA did not sign (reason ``issuer_changed``) counts too.
    """
    old = _valid_names(old_entries, "old_entries")
    new = _valid_names(new_entries, "new_entries")
    leftovers = []
    for name in sorted(old):
        newest_old = max(entry.get("issued_at") or "" for entry in old[name])
        replaced = [entry for entry in new.get(name, []) if (entry.get("issued_at") or "") >= newest_old]
        if not replaced:
            serials = ", ".join(sorted(entry.get("serial") or "?" for entry in old[name]))
            leftovers.append("%s: valid certificate %s of the old CA, none of the new (revoke it with revoke.yml if "
                             "its host is gone)" % (name, serials))
    for host in sorted(decisions or {}):
        decision = (decisions or {})[host]
        if not isinstance(decision, dict):
            continue
        for certificate in decision.get("certificates") or []:
            if "issuer_changed" in (certificate.get("reasons") or []):
                leftovers.append("%s/%s: the host holds a certificate the new CA did not sign (serial %s)"
                                 % (host, certificate.get("name"), certificate.get("serial")))
    return leftovers


class FilterModule(object):
    def filters(self):
        return {"ca_rollover_plan": ca_rollover_plan, "ca_rollover_leftovers": ca_rollover_leftovers}
