#!/usr/bin/python
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ca_certificate
short_description: Sign a subordinate CA's certificate from its CSR, on the host that holds the parent CA's key
version_added: 0.1.0
description:
  - The root's side of an offline root. M(fleet.mtls.ca) on the issuing CA's host returns a CSR for the issuing CA's key
    (the key never leaves that host); this module, run where the root's key is (a separate host or the controller),
    signs it, and M(fleet.mtls.ca) on the issuing CA's host installs the certificate once it fits.
  - Only the CSR's public key is used, after its signature (the proof that the requester holds the key) and the key
    are checked; the subject, path length, name constraints and lifetime are this module's options, decided by the
    controller, never the CSR's. RSA keys of 2048 bits or more, EC keys on P-256 or P-384 and Ed25519 keys are
    certified, in CSRs signed with SHA-256 or stronger; a CSR for the signing CA's own key is refused.
  - "The certificate is built as M(fleet.mtls.ca) builds an intermediate with its parent's key at hand:
    basicConstraints CA:TRUE with the path length, keyUsage digitalSignature, keyCertSign, cRLSign (both critical),
    SKI, AKI, name constraints (critical) when asked; a random serial; C(not_before) five minutes in the past and
    C(not_after) never past the signing CA's own."
  - The signing CA must be valid now, match its key, and allow a CA below it (its path length is not 0).
  - With O(current_certificate), the certificate the subordinate holds now, a run that finds it fits (for the CSR's
    key, the subject and constraints asked for, issued by this CA, valid now and for O(renew_days_before) more days)
    returns it unchanged, with C(changed=false), and signs nothing.
  - With O(index_path), the new certificate is recorded in this CA's record under O(name), in one transaction under
    the CA's lock, as M(fleet.mtls.sign) records leaves, so that M(fleet.mtls.crl) can revoke it from this CA's CRL.
  - Every option and the CSR are checked before anything is signed or written, in check mode too.
author:
  - fleet.mtls maintainers (@fleet-mtls)
extends_documentation_fragment:
  - fleet.mtls.ca_signer
attributes:
  check_mode:
    support: full
    description: Everything is checked and C(changed) says whether a certificate would be signed; nothing is signed
      and the record is not touched.
  diff_mode:
    support: none
    description: The certificate is returned, not written; the record is an append-only record.
  platform:
    support: full
    platforms: posix
    description: Runs on the host of the signing CA's key, with Python and the C(cryptography) library (38.0 or newer).
options:
  csr:
    description:
      - The subordinate CA's CSR in PEM, RV(fleet.mtls.ca#module:csr).
    type: str
    required: true
  subject:
    description: Subject of the subordinate CA; it needs a V(CN). Same keys as in M(fleet.mtls.csr).
    type: dict
    required: true
  path_length:
    description: The basicConstraints pathLenConstraint, from V(0) to V(100); V(0) means it may sign only leaf
      certificates. Unset, the path length is not limited.
    type: int
  name_constraints_permitted:
    description:
      - Name constraints the subordinate CA may issue under, as V(DNS:lab.internal), V(IP:10.0.0.0/8),
        V(email:example.com), V(URI:example.com).
    type: list
    elements: str
    default: []
  name_constraints_excluded:
    description: Names the subordinate CA may never issue, same form as O(name_constraints_permitted).
    type: list
    elements: str
    default: []
  validity_days:
    description:
      - Lifetime of the certificate, in days, from V(1) to V(36500). It never outlives the signing CA; a lifetime
        beyond the signing CA's ends with its C(not_after).
    type: int
    default: 1825
  renew_days_before:
    description:
      - O(current_certificate) no longer fits when it expires within this many days, unless it lasts as long as the
        signing CA does; from V(0) to V(36500), below O(validity_days). Unset, it fits until it expires.
      - Give M(fleet.mtls.ca) the same value.
    type: int
  current_certificate:
    description:
      - The certificate the subordinate CA holds now (its O(fleet.mtls.ca#module:cert_path) read on its host), or the
        last one this CA signed for it and the subordinate has not installed yet, in PEM. When it fits, it is returned
        as it is and nothing is signed, so that a run repeated after a failed installation signs no second
        certificate.
      - Empty or unreadable, a new certificate is signed.
    type: str
  index_path:
    description:
      - This CA's record of issued certificates, the SQLite file of M(fleet.mtls.sign) (V(.json) names the JSON index of
        earlier releases, imported into the V(.db) beside it). Unset, nothing is recorded.
      - The record is written under the CA's lock (this path with C(.lock) appended), in one transaction that holds the
        signing; a run that cannot record the certificate returns none.
    type: path
  name:
    description:
      - The name the certificate is recorded under (also its requester), such as V(issuing); M(fleet.mtls.crl) revokes
        by it. Required with O(index_path).
      - It also names the CSR in error messages.
    type: str
seealso:
  - module: fleet.mtls.ca
  - module: fleet.mtls.crl
"""

EXAMPLES = r"""
# On the issuing CA's host, fleet.mtls.ca with parent_cert_path alone returned `issuing` (needs_certificate, csr).
- name: The root, on the controller, signs the issuing CA's CSR
  fleet.mtls.ca_certificate:
    csr: "{{ issuing.csr }}"
    ca_cert_path: "{{ playbook_dir }}/root-ca/root.crt"
    ca_key_path: "{{ playbook_dir }}/root-ca/root.key"
    ca_key_passphrase: "{{ vault_root_ca_passphrase }}"
    subject: {CN: Fleet Issuing CA 1, O: Example}
    path_length: 0
    name_constraints_permitted: [DNS:lab.internal, IP:10.0.0.0/8]
    validity_days: 1825
    index_path: "{{ playbook_dir }}/root-ca/index.db"
    name: issuing
  delegate_to: localhost
  when: issuing.needs_certificate
  register: issuing_signed
"""

RETURN = r"""
certificate:
  description: The subordinate CA's certificate in PEM, new or O(current_certificate) kept; null in check mode when a
    new one would be signed.
  returned: success
  type: str
subject:
  description: Its subject as RFC 4514 text.
  returned: success
  type: str
serial:
  description: Its serial number in upper-case hex; null with no RV(certificate).
  returned: success
  type: str
not_before:
  description: Start of validity (ISO 8601, UTC); null with no RV(certificate).
  returned: success
  type: str
not_after:
  description: End of validity (ISO 8601, UTC); null with no RV(certificate).
  returned: success
  type: str
fingerprint_sha256:
  description: SHA-256 fingerprint of the certificate; null with no RV(certificate).
  returned: success
  type: str
misfit_reasons:
  description: Why O(current_certificate) does not fit, so that a new certificate is (or would be) signed; empty when it
    fits.
  returned: success
  type: list
  elements: str
index_path:
  description: The record the certificate was (or would be) entered in (the V(.db) file); null without O(index_path).
  returned: success
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils import _ca
from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _index
from ansible_collections.fleet.mtls.plugins.module_utils import _module
from ansible_collections.fleet.mtls.plugins.module_utils import _params
from ansible_collections.fleet.mtls.plugins.module_utils import _signing
from ansible_collections.fleet.mtls.plugins.module_utils import _x509

# The profile a subordinate CA is recorded with in the CA's record (leaves have server, client, server_client).
RECORD_PROFILE = "ca"


def described(result, cert, content, now):
    facts = _x509.describe_certificate(cert, now)
    result.update(certificate=c.to_bytes(content).decode("ascii"), subject=facts["subject_string"],
                  serial=facts["serial"], not_before=facts["not_before"], not_after=facts["not_after"],
                  fingerprint_sha256=facts["fingerprint_sha256"])
    return result


def sign_subordinate(module):
    """Check every option and the CSR, keep a fitting current certificate, else sign (and record) a new one."""
    params = module.params
    wanted = _ca.Wanted(params["subject"], params["path_length"], params["name_constraints_permitted"],
                        params["name_constraints_excluded"])
    validity_days = _ca.check_validity_days(params["validity_days"], intermediate=True)
    renew_days_before = _ca.check_renew_days_before(params["renew_days_before"], validity_days)
    index_path = _index.record_paths(params["index_path"])[0] if params["index_path"] else None
    label = params["name"] or _x509.common_name(wanted.name)
    now = c.utcnow()
    ca_cert, ca_key = _module.load_ca_signer(params, now)
    _ca.require_may_certify_ca(ca_cert, "CA certificate %s" % params["ca_cert_path"])
    public_key = _ca.check_csr(params["csr"], wanted, ca_cert, label)

    current, reasons = _ca.current_misfits(params["current_certificate"], public_key, wanted, ca_cert, now,
                                           renew_days_before, source="current_certificate")
    result = dict(changed=bool(reasons), certificate=None, subject=_x509.name_to_string(wanted.name), serial=None,
                  not_before=None, not_after=None, fingerprint_sha256=None, misfit_reasons=reasons,
                  index_path=index_path)
    if not reasons:
        return described(result, current, _x509.certificate_pem(current), now)
    if module.check_mode:
        return result
    if index_path is None:
        cert = _ca.issue(public_key, wanted, ca_cert, ca_key, validity_days, now)
    else:
        # The record's transaction holds the signing: a certificate the record cannot take is never returned.
        with _index.CertificateIndex(index_path) as index:
            cert = _ca.issue(public_key, wanted, ca_cert, ca_key, validity_days, now)
            index.add(_signing.record_entry(params["name"], params["name"], RECORD_PROFILE, cert, ca_cert, now))
    return described(result, cert, _x509.certificate_pem(cert), now)


def main():
    module = AnsibleModule(
        argument_spec=_params.argument_spec(
            ["ca_signer"],
            csr=dict(type="str", required=True),
            subject=dict(type="dict", required=True),
            path_length=dict(type="int"),
            name_constraints_permitted=dict(type="list", elements="str", default=[]),
            name_constraints_excluded=dict(type="list", elements="str", default=[]),
            validity_days=dict(type="int", default=1825),
            renew_days_before=dict(type="int"),
            current_certificate=dict(type="str"),
            index_path=dict(type="path"),
            name=dict(type="str"),
        ),
        required_by=dict(index_path="name"),
        supports_check_mode=True,
    )
    _module.run(module, sign_subordinate)


if __name__ == "__main__":
    main()
