#!/usr/bin/python
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: sign
short_description: Sign a whole batch of CSRs in one run on the CA host
version_added: 0.1.0
description:
  - Signs one or many CSRs with the CA's key, which is read once per run and never leaves the CA host. Run it once per play
    (C(run_once) and C(delegate_to) the CA host) with every pending CSR of the fleet.
  - "The batch is all or nothing: every CSR's signature, names and requested usages are checked against the policy before
    the first certificate is signed. A name outside the policy is refused with the CSR's name and the offending SAN."
  - "The CA decides the identity: with O(csrs[].common_name) and O(csrs[].subject_alt_names) from the caller's records,
    a CSR asking for any other name is refused, and the subject is always one CN built by the CA, never the CSR's."
  - "Whatever a request says, the CA certifies only RSA keys of 2048 bits or more, EC keys on P-256 or P-384 and
    Ed25519 keys, in CSRs signed with SHA-256 or stronger; at most 32 SANs, each a lower-case DNS name (LDH labels, no
    trailing dot, no wildcard), an IP address, a SPIFFE ID, or an email address where O(allow_email_sans) allows it."
  - "The policy is closed: a kind of name with nothing allowed (no O(allowed_domains), no O(allowed_ip_ranges), no
    O(spiffe_trust_domain)) is not certified at all. A name outside the signing CA's own name constraints is refused
    too, before signing, since every verifier would reject that certificate."
  - "Profiles decide the extended key usage: V(server) (serverAuth), V(client) (clientAuth), V(server_client) (both).
    keyUsage is digitalSignature (plus keyEncipherment for RSA keys), critical; basicConstraints CA:FALSE, critical;
    SKI and AKI are always present."
  - Serials are random, positive, at most 20 octets with 159 bits of randomness. C(not_before) is backdated a little for
    clock skew; C(not_after) never passes the CA's own.
  - Every issued certificate is recorded in the CA's index (O(index_path)), which M(fleet.mtls.ca_index_info) lists and
    M(fleet.mtls.crl) revokes from.
  - Signing always makes new certificates, so it reports C(changed) whenever the batch is not empty; callers send only
    what needs signing (M(fleet.mtls.certificate_info) decides that). In check mode the batch is checked but not signed.
author:
  - fleet.mtls maintainers (@fleet-mtls)
extends_documentation_fragment:
  - fleet.mtls.ca_signer
attributes:
  check_mode:
    support: full
    description: Every CSR is checked against the policy; nothing is signed and the index is not touched.
  diff_mode:
    support: none
    description: Certificates are returned, not written; the index is an append-only record.
  platform:
    support: full
    platforms: posix
    description: Runs on the CA host, with Python and the C(cryptography) library (38.0 or newer).
options:
  csrs:
    description:
      - The batch. Each item has a unique O(csrs[].name) and the CSR's PEM in O(csrs[].csr).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: A name for the request, unique in the batch (e.g. V(web1/server)); results and the index use it.
        type: str
        required: true
      csr:
        description: The CSR in PEM.
        type: str
        required: true
      profile:
        description: Profile for this CSR; overrides O(profile).
        type: str
        choices: [server, client, server_client]
      validity_days:
        description: Lifetime for this CSR's certificate, a positive number of days, at most O(validity_days); a
          request that asks for more is refused.
        type: int
      requester:
        description: Who asked (host name, ticket...), recorded in the index. Default the item's name.
        type: str
      common_name:
        description:
          - The common name the requester is authorized to carry, from the caller's own records (the controller's
            inventory), never from the requesting host. The certificate's subject is this single CN.
          - Without it, the CSR's subject must be a single CN, which is used; any other subject is refused. The CSR's
            subject is never copied.
        type: str
      subject_alt_names:
        description:
          - The names the requester is authorized to be issued (V(DNS:web1), V(IP:10.0.0.5), V(URI:spiffe://td/x)),
            from the caller's own records. The CSR must ask for exactly these names, or the batch is refused naming
            the request, what it asked for and what it may be issued.
          - Without it only the policy options limit the names.
        type: list
        elements: str
  profile:
    description:
      - Profile for CSRs that name none. Without it, a CSR's own extendedKeyUsage picks the profile, and a CSR that states
        none is refused.
    type: str
    choices: [server, client, server_client]
  validity_days:
    description:
      - Lifetime of the certificates, in days. Short lives and automated rotation are the point of this collection.
      - From V(1) to V(36500) (a hundred years); any other value is refused, in check mode too. A certificate never
        outlives the signing CA, so a lifetime beyond the CA's own ends with the CA's C(not_after).
    type: int
    default: 90
  backdate_seconds:
    description:
      - How far C(not_before) lies in the past, so hosts with a slightly slow clock accept the certificate at once.
      - From V(0) to V(86400) (a day); any other value is refused, in check mode too.
    type: int
    default: 300
  allowed_domains:
    description:
      - DNS names the CA may certify. An entry allows itself and every name under it (V(lab.internal) allows
        V(web1.lab.internal)), as an X.509 name constraint does.
      - Empty means no DNS name may be certified. The policy is closed; the P(fleet.mtls.certificate#role) role
        fills it from the inventory when the operator sets nothing.
    type: list
    elements: str
    default: []
  allowed_ip_ranges:
    description: Networks (CIDR) that IP SANs must lie in. Empty means no IP address may be certified.
    type: list
    elements: str
    default: []
  spiffe_trust_domain:
    description:
      - Every URI SAN must be a SPIFFE ID of this trust domain; other URIs are refused.
      - Unset, no URI SAN may be certified.
    type: str
  allow_email_sans:
    description: Whether email SANs may be certified at all.
    type: bool
    default: false
  index_path:
    description:
      - The CA's record of issued certificates, an SQLite file. Default V(index.db) beside O(ca_cert_path).
      - A batch is recorded in one transaction, under the CA's lock (this path with C(.lock) appended); a failed run
        records nothing. The cost of recording does not grow with the record's size.
      - A path ending in V(.json) names the JSON index of earlier releases; the record is then the V(.db) file beside
        it, into which this run imports the JSON (renamed C(*.json.imported) afterwards).
    type: path
  chain_path:
    description:
      - PEM file with the certificates between the signing CA and the root (the CA's own issuers), returned after the CA
        certificate in each result's C(chain). Not needed when the CA is directly under the root.
    type: path
"""

EXAMPLES = r"""
- name: Each host hands in its CSR (made on the host with fleet.mtls.csr)
  ansible.builtin.set_fact:
    pending_csr:
      name: "{{ inventory_hostname }}"
      csr: "{{ server_csr.csr }}"
  when: server_csr is changed

- name: Sign every pending CSR of the play in one run on the CA host
  fleet.mtls.sign:
    ca_cert_path: /etc/fleet-ca/issuing.crt
    ca_key_path: /etc/fleet-ca/issuing.key
    allowed_domains: [lab.internal]
    allowed_ip_ranges: [10.0.0.0/8]
    spiffe_trust_domain: lab.internal
    csrs: "{{ ansible_play_hosts | map('extract', hostvars, 'pending_csr') | select('defined') | list }}"
  run_once: true
  delegate_to: ca1
  register: signed

- name: One CSR, client profile
  fleet.mtls.sign:
    ca_cert_path: /etc/fleet-ca/issuing.crt
    ca_key_path: /etc/fleet-ca/issuing.key
    profile: client
    validity_days: 30
    csrs:
      - name: client1
        csr: "{{ client_csr.csr }}"
"""

RETURN = r"""
certificates:
  description: One entry per signed CSR, in the order given. Empty in check mode.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The request's name.
      type: str
    certificate:
      description: The certificate in PEM.
      type: str
    chain:
      description: The issuing CA certificate (when it is not a self-signed root) and the certificates of O(chain_path),
        in PEM, in the order a server sends them.
      type: str
    serial:
      description: Serial number in upper-case hex, as nginx and HAProxy log it.
      type: str
    not_before:
      description: Start of validity (ISO 8601, UTC).
      type: str
    not_after:
      description: End of validity (ISO 8601, UTC).
      type: str
    fingerprint_sha256:
      description: SHA-256 fingerprint of the certificate.
      type: str
    profile:
      description: The profile it was signed with.
      type: str
    subject_alt_names:
      description: The certificate's SANs.
      type: list
      elements: str
would_sign:
  description: Names of the CSRs that were (or in check mode would be) signed.
  returned: always
  type: list
  elements: str
index_path:
  description: The record the certificates were entered in (the V(.db) file, also when O(index_path) names a V(.json) one).
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _files
from ansible_collections.fleet.mtls.plugins.module_utils import _index
from ansible_collections.fleet.mtls.plugins.module_utils import _module
from ansible_collections.fleet.mtls.plugins.module_utils import _params
from ansible_collections.fleet.mtls.plugins.module_utils import _policy
from ansible_collections.fleet.mtls.plugins.module_utils import _signing
from ansible_collections.fleet.mtls.plugins.module_utils import _x509


def chain_pem(params, ca_cert):
    parts = []
    if not _x509.is_self_signed(ca_cert):
        parts.append(_x509.certificate_pem(ca_cert))
    if params["chain_path"]:
        for cert in _x509.load_certificates(_files.read_required(params["chain_path"], "chain"),
                                            source="chain %s" % params["chain_path"]):
            parts.append(_x509.certificate_pem(cert))
    return b"".join(parts).decode("ascii")


def sign_batch(module):
    params = module.params
    now = c.utcnow()
    index_path = _index.record_paths(params["index_path"] or _index.default_path(params["ca_cert_path"]))[0]
    result = dict(changed=False, certificates=[], would_sign=[], index_path=index_path)
    ca_cert, ca_key = _module.load_ca_signer(params, now)
    policy = _policy.SigningPolicy(params["allowed_domains"], params["allowed_ip_ranges"],
                                   params["spiffe_trust_domain"], params["allow_email_sans"],
                                   ca_constraints=_x509.name_constraints_of(ca_cert))
    requests = _signing.check_requests(params["csrs"], policy, params["profile"], params["validity_days"],
                                       params["backdate_seconds"])
    result["would_sign"] = [r.name for r in requests]
    result["changed"] = bool(requests)
    if module.check_mode or not requests:
        return result

    chain = chain_pem(params, ca_cert)
    with _index.CertificateIndex(index_path) as index:
        for request, cert in _signing.sign_requests(requests, ca_cert, ca_key, now, params["backdate_seconds"]):
            entry = _signing.index_entry(request, cert, ca_cert, now)
            index.add(entry)
            result["certificates"].append(dict(
                name=request.name, certificate=_x509.certificate_pem(cert).decode("ascii"), chain=chain,
                serial=entry["serial"], not_before=entry["not_before"], not_after=entry["not_after"],
                fingerprint_sha256=entry["fingerprint_sha256"], profile=request.profile,
                subject_alt_names=entry["subject_alt_names"]))
    return result


def main():
    profiles = list(_params.PROFILES)
    module = AnsibleModule(
        argument_spec=_params.argument_spec(
            ["ca_signer"],
            csrs=dict(type="list", elements="dict", required=True, options=dict(
                name=dict(type="str", required=True),
                csr=dict(type="str", required=True),
                profile=dict(type="str", choices=profiles),
                validity_days=dict(type="int"),
                requester=dict(type="str"),
                common_name=dict(type="str"),
                subject_alt_names=dict(type="list", elements="str"),
            )),
            profile=dict(type="str", choices=profiles),
            validity_days=dict(type="int", default=90),
            backdate_seconds=dict(type="int", default=300),
            allowed_domains=dict(type="list", elements="str", default=[]),
            allowed_ip_ranges=dict(type="list", elements="str", default=[]),
            spiffe_trust_domain=dict(type="str"),
            allow_email_sans=dict(type="bool", default=False),
            index_path=dict(type="path"),
            chain_path=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    _module.run(module, sign_batch)


if __name__ == "__main__":
    main()
