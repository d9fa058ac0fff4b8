# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""issuance_requests: what a host's own result may and may not decide."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.mtls.plugins.filter.issuance import issuance_policy, issuance_requests


def host(name, requests, specs=None, facts=None):
    specs = specs if specs is not None else [
        dict(name="server", common_name=name, subject_alt_names=["DNS:" + name],
             spiffe_id="spiffe://fleet.test/web/" + name, profile="server_client", validity_days=None)]
    return dict(mtls_certificate_request=dict(requests=requests), mtls_certificate_authorized=specs,
                ansible_facts=facts or {})


def test_identity_comes_from_the_inventory_and_only_the_csr_from_the_host():
    forged = dict(name="web1/server", csr="CSR-1", requester="client1", profile="client", common_name="admin",
                  subject_alt_names=["DNS:web2"], validity_days=100000)
    hostvars = {"web1": host("web1", [forged]), "web2": host("web2", [])}
    assert issuance_requests(["web1", "web2"], hostvars) == [dict(
        name="web1/server", csr="CSR-1", requester="web1", profile="server_client", common_name="web1",
        subject_alt_names=["DNS:web1", "URI:spiffe://fleet.test/web/web1"])]


@pytest.mark.parametrize("asked", ["web2/server", "web1/admin", "web1/../server", "server", ""])
def test_a_request_the_inventory_does_not_give_the_host_fails_the_batch(asked):
    hostvars = {"web1": host("web1", [dict(name=asked, csr="CSR")]),
                "web2": host("web2", [dict(name="web2/server", csr="CSR-2")])}
    with pytest.raises(AnsibleFilterError, match="web1 asked for a certificate .* that its inventory does not give"):
        issuance_requests(["web2", "web1"], hostvars)


def test_a_host_that_returned_collection_facts_gets_nothing_signed():
    hostvars = {"web1": host("web1", [dict(name="web1/server", csr="CSR")],
                             facts={"mtls_certificate_certificates": [{"name": "server", "common_name": "admin"}]})}
    with pytest.raises(AnsibleFilterError, match="web1 returned facts named mtls_certificate_certificates"):
        issuance_requests(["web1"], hostvars)


def test_validity_is_the_inventory_s_and_hosts_without_results_are_skipped():
    specs = [dict(name="client", common_name="client1", subject_alt_names=["DNS:client1"], profile="client",
                  validity_days=30)]
    hostvars = {"client1": host("client1", [dict(name="client1/client", csr="CSR")], specs=specs),
                "down1": {"mtls_certificate_authorized": specs}}
    items = issuance_requests(["client1", "down1"], hostvars)
    assert [(item["name"], item["validity_days"], item["subject_alt_names"]) for item in items] == [
        ("client1/client", 30, ["DNS:client1"])]


def _batch(*names):
    return [dict(name=n + "/server", subject_alt_names=["DNS:" + n, "IP:10.1.0.%d" % i, "URI:spiffe://fleet.test/web/" + n])
            for i, n in enumerate(names, 1)]


def test_an_unset_policy_is_exactly_what_the_inventory_gives():
    assert issuance_policy(_batch("web1", "web2")) == dict(
        allowed_domains=["web1", "web2"], allowed_ip_ranges=["10.1.0.1/32", "10.1.0.2/32"],
        spiffe_trust_domain="fleet.test")


def test_an_empty_batch_allows_nothing():
    assert issuance_policy([]) == dict(allowed_domains=[], allowed_ip_ranges=[])


def test_the_operators_policy_is_taken_as_it_is():
    assert issuance_policy(_batch("web1"), ["prod.example.com"], ["10.0.0.0/8"], "prod.example.com") == dict(
        allowed_domains=["prod.example.com"], allowed_ip_ranges=["10.0.0.0/8"],
        spiffe_trust_domain="prod.example.com")


def test_several_trust_domains_need_the_operators_choice():
    batch = _batch("web1") + [dict(name="x/server", subject_alt_names=["URI:spiffe://other.test/x"])]
    with pytest.raises(AnsibleFilterError, match="several trust domains .*fleet.test, other.test.*mtls_trust_domain"):
        issuance_policy(batch)
    assert issuance_policy(batch, trust_domain="fleet.test")["spiffe_trust_domain"] == "fleet.test"
