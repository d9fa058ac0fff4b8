# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a rotation renewed, what each service must now serve, and the run's summary (playbooks/rotate.yml)."""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError


def _entries(value, what):
    if value is None:
        return []
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, Mapping) for item in value):
        raise AnsibleFilterError("%s must be a list of dicts, not %r" % (what, value))
    return list(value)


def rotation_renewed(requested, installed=None):
    """The certificates a host renewed: name, reasons, the serial before and the one installed.

    requested: ``certificates`` of the certificate_request module's first
    run (each with ``name``, ``reasons``, ``serial``); installed:
    ``installed`` of its installing run (each with ``name`` and ``serial``),
    absent when nothing was signed (or in check mode, where ``serial`` is
    then None). A certificate with no reason to renew is not listed.
    """
    serials = {}
    for entry in _entries(installed, "installed"):
        serials.setdefault(entry.get("name"), entry.get("serial"))
    return [{"name": cert.get("name"), "reasons": cert.get("reasons"), "previous_serial": cert.get("serial"),
             "serial": serials.get(cert.get("name"))}
            for cert in _entries(requested, "requested") if cert.get("reasons")]


def rotation_expected_serials(installed, certificates=None):
    """The serial each consumer (service) must now serve: that of the certificate it consumes, when it changed.

    installed: ``installed`` of the certificate_request module's installing
    run (each with ``name``, ``serial``, ``changed``); certificates: the
    host's certificate entries (``mtls_certificate_certificates``: each with
    ``name`` and ``consumers``).
    """
    consumers = {}
    for spec in _entries(certificates, "certificates"):
        consumers.setdefault(spec.get("name"), []).extend(spec.get("consumers") or [])
    serials = {}
    for entry in _entries(installed, "installed"):
        if entry.get("changed"):
            for consumer in consumers.get(entry.get("name"), []):
                serials[consumer] = entry.get("serial")
    return serials


def rotation_summary(hosts, hostvars):
    """The run's summary over its hosts: how many, the renewed certificates by host, the hosts not reached.

    hosts: the rotated hosts' names; hostvars: Ansible's hostvars, where the
    play left ``mtls_rotate_reached`` (the ping of a host it tried to reach)
    and ``mtls_rotate_renewed`` (rotation_renewed). A host the play never
    tried (a batch before it stopped the run) is counted, neither renewed
    nor unreachable.
    """
    if isinstance(hosts, str) or not isinstance(hosts, (list, tuple)):
        raise AnsibleFilterError("rotation_summary: hosts must be a list of host names, not %r" % (hosts,))
    summary = {"renewed": {}, "unreachable": [], "hosts": 0}
    for host in hosts:
        seen = hostvars[host]
        summary["hosts"] += 1
        reached, renewed = seen.get("mtls_rotate_reached"), seen.get("mtls_rotate_renewed")
        if reached is not None and (reached.get("ping") if isinstance(reached, Mapping) else None) != "pong":
            summary["unreachable"].append(host)
        elif renewed:
            summary["renewed"][host] = renewed
    return summary


class FilterModule(object):
    def filters(self):
        return {
            "rotation_renewed": rotation_renewed,
            "rotation_expected_serials": rotation_expected_serials,
            "rotation_summary": rotation_summary,
        }
