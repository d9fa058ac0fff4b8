# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The batch the CA signs: identities from the controller, CSRs from the hosts."""

from __future__ import annotations

import ipaddress

from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.mtls.plugins.module_utils import _x509


def _host_vars(hostvars, host):
    try:
        return hostvars[host]
    except KeyError:
        raise AnsibleFilterError("issuance_requests: %s is not in the inventory" % host)


def issuance_requests(hosts, hostvars, requests_var="mtls_certificate_request",
                      authorized_var="mtls_certificate_authorized"):
    """sign's csrs for these hosts: each host's CSRs, each paired with what its inventory authorizes.

    From a host's own module result only the CSR (its public key and proof of
    possession) and the certificate's name within the host are taken; the
    request's full name, requester, common name, SANs, profile and validity
    come from authorized_var, which the controller set for that host from
    its inventory. A request for a certificate the inventory does not give
    the host, or from a host that returned facts named like the collection's
    variables (which would outrank its inventory), fails the whole batch.
    """
    items = []
    for host in hosts:
        host_vars = _host_vars(hostvars, host)
        injected = sorted(name for name in (host_vars.get("ansible_facts") or {}) if str(name).startswith("mtls_"))
        if injected:
            raise AnsibleFilterError("%s returned facts named %s, which would outrank its inventory: none of its "
                                     "requests is signed" % (host, ", ".join(injected)))
        result = host_vars.get(requests_var)
        if not isinstance(result, dict):
            continue
        requests = result.get("requests") or []
        specs = dict((spec["name"], spec) for spec in host_vars.get(authorized_var) or [])
        for request in requests:
            asked = str(request.get("name", "")) if isinstance(request, dict) else ""
            requester, _slash, name = asked.partition("/")
            if requester != host or name not in specs:
                raise AnsibleFilterError("%s asked for a certificate %r that its inventory does not give it (it may "
                                         "ask for: %s); nothing is signed" % (host, asked, ", ".join(
                                             "%s/%s" % (host, spec) for spec in sorted(specs)) or "nothing"))
            spec = specs[name]
            sans = list(spec.get("subject_alt_names") or [])
            if spec.get("spiffe_id"):
                sans.append("URI:" + spec["spiffe_id"])
            item = dict(name="%s/%s" % (host, name), csr=request.get("csr"), requester=host,
                        profile=spec.get("profile"), common_name=spec.get("common_name"), subject_alt_names=sans)
            if spec.get("validity_days") is not None:
                item["validity_days"] = spec["validity_days"]
            items.append(item)
    return items


def issuance_policy(items, allowed_domains=None, allowed_ip_ranges=None, trust_domain=None):
    """sign's policy options for a batch: the operator's where set, else what the inventory gives the batch.

    items are issuance_requests' output (names from the inventory). Unset
    allowed domains become exactly the DNS names the batch's inventory
    entries list, unset IP ranges exactly their addresses (/32, /128), an
    unset trust domain that of their SPIFFE IDs (one only). The policy is
    never open: what nobody listed, sign refuses.
    """
    names = [str(name) for item in items or [] for name in (item.get("subject_alt_names") or [])]

    def of_kind(kind):
        return sorted(set(name.split(":", 1)[1] for name in names if name.split(":", 1)[0].upper() == kind))

    policy = dict(allowed_domains=list(allowed_domains or []) or of_kind("DNS"))
    if allowed_ip_ranges:
        policy["allowed_ip_ranges"] = list(allowed_ip_ranges)
    else:
        try:
            policy["allowed_ip_ranges"] = sorted(
                set(str(ipaddress.ip_network(address)) for address in of_kind("IP")))
        except ValueError as error:
            raise AnsibleFilterError("issuance_policy: %s" % error)
    domains = sorted(set(filter(None, (_x509.spiffe_trust_domain(uri) for uri in of_kind("URI")
                                       if uri.startswith("spiffe://")))))
    if trust_domain:
        policy["spiffe_trust_domain"] = trust_domain
    elif len(domains) > 1:
        raise AnsibleFilterError("issuance_policy: the inventory gives SPIFFE IDs of several trust domains (%s); "
                                 "set mtls_trust_domain to the one this CA issues for" % ", ".join(domains))
    elif domains:
        policy["spiffe_trust_domain"] = domains[0]
    return policy


class FilterModule(object):
    def filters(self):
        return {"issuance_requests": issuance_requests, "issuance_policy": issuance_policy}
