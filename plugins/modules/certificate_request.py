#!/usr/bin/python
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: certificate_request
short_description: The host's side of issuance - keys, the renewal decision and CSRs; then installing what was signed
version_added: 0.1.0
description:
  - For every certificate a host needs, in one module run - makes the key when it is missing (on the host, where it
    stays), decides whether a new certificate is needed and why (the same decision as M(fleet.mtls.certificate_info)),
    and for each that is, makes a CSR - from a new pending key for a renewal, which goes live with its certificate
    when it is installed.
  - Also writes the host's trust bundle from O(trust_certificates), and with O(crl_path) the CRLs its servers check
    clients against, from O(trust_crls), each CRL verified first (signed by a CA the host trusts, not past its next
    update), written as one file, the same bytes for the same CRLs.
  - With O(signed), the second run of an issuance - installs the certificates the CA signed for this host, each
    checked against its key before the first file is written (as M(fleet.mtls.certificate_files) does), then decides
    again on what is now on disk, writing nothing more, and remembers that nothing is left to do (below), so that the
    next run is cheap from the start.
  - Returns the requests ready for one M(fleet.mtls.sign) run on the CA host. When nothing needs issuing it
    touches none of the host's keys, certificates or bundle and reports no change, which is what makes a
    fleet-wide no-op run cheap.
  - A re-run converges. When the full chain and key are good, each file derived from them (V(<name>.crt),
    V(<name>.chain.pem), V(<name>.combined.pem)) that is missing or says something else is written again from them,
    without a new request, and the mode and owner of every file are put right - above all of the key and the
    combined PEM, which hold the private key (C(repaired) lists them). The combined PEM keeps group read when it
    has it, never more; a service's group reads its key through O(certificates[].group) and
    O(certificates[].key_mode), which P(fleet.mtls.certificate#role) sets from what P(fleet.mtls.python_service#role)
    asks. A full chain that cannot be read is issued again, like a missing one.
  - A key or combined PEM that is a symbolic link is refused, nothing written; these files must be regular files
    in O(directory), whose mode and owner this module keeps.
  - A private key in an option other than the key's own is refused before anything else, and masked in the
    task's output.
  - A decision that finds nothing to do (without O(signed), or after installing with it) is remembered in C(.fleet-mtls-decision.json) in O(directory) (mode
    V('0600'), no key material - digests only), with when it stops holding - the first renewal time, or the first
    moment a certificate involved starts or stops being valid. A later run with the same options, the same files
    (content, mode, owner and group of every file of each certificate, and of the trust bundle), the same ids behind the owner
    and group names and the same deciding code (its source is part of the key) answers from it between the
    decision and that moment, without loading C(cryptography); anything else is decided in
    full. O(force_renewal=true) never uses it. Removing the file is always safe.
  - This is the building block of the C(fleet.mtls.certificate) role.
author:
  - fleet.mtls maintainers (@fleet-mtls)
extends_documentation_fragment:
  - fleet.mtls.renewal
  - fleet.mtls.attributes.WRITES
  - fleet.mtls.attributes.CRYPTOGRAPHY
options:
  directory:
    description: The directory of the host's keys and certificates. Made (mode V('0755')) when missing.
    type: path
    required: true
  certificates:
    description:
      - The certificates the host needs. Files are V(<name>.key), V(<name>.fullchain.pem) (what the decision reads),
        V(<name>.crt), V(<name>.chain.pem), V(<name>.combined.pem) with O(certificates[].combined), and
        V(<name>.key.pending) while a renewal waits for its certificate.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Name of the certificate.
        type: str
        required: true
      profile:
        description: Signing profile, passed on to the request.
        type: str
        choices: [server, client, server_client]
        default: server_client
      common_name:
        description: Subject CN.
        type: str
        required: true
      subject_alt_names:
        description: SANs, as in M(fleet.mtls.csr).
        type: list
        elements: str
        required: true
      spiffe_id:
        description: SPIFFE ID.
        type: str
      key_type:
        description:
          - Key algorithm; the sizes each takes are those of O(fleet.mtls.private_key#module:key_type).
        type: str
        choices: [ec, rsa, ed25519]
        default: ec
      key_size:
        description:
          - Key size in bits, one that O(certificates[].key_type) takes; unset, that type's default (as for
            O(fleet.mtls.private_key#module:key_size)). Any other is refused before anything is written.
        type: int
      owner:
        description: Owner of the key.
        type: str
      group:
        description: Group of the key.
        type: str
      key_mode:
        description: Mode of the key.
        type: raw
        default: '0600'
      validity_days:
        description: Lifetime to ask for, passed on to the request.
        type: int
      combined:
        description: Also write V(<name>.combined.pem) (full chain then key, mode O(certificates[].key_mode)) for
          HAProxy when installing.
        type: bool
        default: false
  trust_certificates:
    description: PEM CA certificates the host trusts; the chain check and the bundle use them.
    type: list
    elements: str
    required: true
  ca_bundle_path:
    description: Where to write the trust bundle. Not written when unset.
    type: path
  crl_path:
    description:
      - Where to write the CRLs of O(trust_crls) (PEM, mode V('0644')), the file a server checks every CA of a client's
        chain against (nginx C(ssl_crl), HAProxy C(crl-file), Python's C(VERIFY_CRL_CHECK_CHAIN)). Not written when
        unset.
      - The run fails, writing nothing, when a CRL is not signed by a trust anchor or by one of
        O(crl_issuer_certificates), or is past its next update. Of several CRLs of one CA the highest number is kept.
      - A decision that finds nothing to do holds only until the first next update, so a lapsed CRL is never
        answered from the memo.
    type: path
  trust_crls:
    description: PEM CRLs for O(crl_path), typically the root's and the issuing CA's, read on the CA host. Each item
      may hold several CRLs.
    type: list
    elements: str
    default: []
  crl_issuer_certificates:
    description: PEM certificates of the CAs below the trust anchors that sign CRLs (the issuing CAs). Each must be a
      valid CA certificate issued by a trust anchor or by another of these.
    type: list
    elements: str
    default: []
  issuer_certificates:
    description:
      - PEM certificates of the CAs that sign the host's certificates now (the issuing CA). A certificate signed by
        none of them is issued again, with the reason C(issuer_changed), even when it still chains to a trust anchor -
        after a CA rollover's switch, every certificate of the old issuing CA.
      - Empty, any issuer that chains to O(trust_certificates) is kept.
    type: list
    elements: str
    default: []
  requester:
    description: Who asks (the inventory host name); request names are V(<requester>/<name>).
    type: str
    required: true
  force_renewal:
    description: Ask for a new certificate for every entry.
    type: bool
    default: false
  new_key_on_renewal:
    description: A renewal makes a new key (pending until its certificate is installed).
    type: bool
    default: true
  signed:
    description:
      - Certificates signed for this host's requests (the entries of C(certificates) of M(fleet.mtls.sign) named
        V(<requester>/<name>)), to install as V(<name>.crt), V(<name>.chain.pem), V(<name>.fullchain.pem) and, with
        O(certificates[].combined), V(<name>.combined.pem). A certificate for the pending key of a renewal moves that
        key over V(<name>.key). Each entry needs C(name) and C(certificate), and may have C(chain); other keys are
        ignored.
      - O(force_renewal) does not apply to the decision that follows an installation.
    type: list
    elements: dict
"""

EXAMPLES = r"""
# Both runs get the same options (the second remembers its decision under them).
- name: Request, sign and install this host's certificates
  module_defaults:
    fleet.mtls.certificate_request:
      directory: /etc/fleet-mtls/certs
      requester: "{{ inventory_hostname }}"
      trust_certificates: ["{{ lookup('ansible.builtin.file', 'root.crt') }}"]
      ca_bundle_path: /etc/fleet-mtls/certs/ca-bundle.pem
      renew_jitter: 0.1
      certificates:
        - name: server
          common_name: "{{ inventory_hostname }}"
          subject_alt_names: ["DNS:{{ inventory_hostname }}"]
  block:
    - name: Keys, decision and CSRs for this host's certificates
      fleet.mtls.certificate_request:
      register: request

    - name: Sign every request of the play in one run on the CA host
      fleet.mtls.sign:
        ca_cert_path: /etc/fleet-mtls/ca/issuing.crt
        ca_key_path: /etc/fleet-mtls/ca/issuing.key
        csrs: "{{ ansible_play_hosts | map('extract', hostvars, ['request', 'requests']) | flatten }}"
      run_once: true
      delegate_to: ca1
      register: signed

    - name: Install what the CA signed for this host
      fleet.mtls.certificate_request:
        signed: "{{ signed.certificates | selectattr('name', 'in', request.requests | map(attribute='name') | list) }}"
      when: request.requests | length > 0
"""

RETURN = r"""
requests:
  description: One entry per certificate to sign, ready for O(fleet.mtls.sign#module:csrs). Empty in check mode.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: V(<requester>/<name>).
      type: str
    csr:
      description: The CSR in PEM.
      type: str
    profile:
      description: The signing profile.
      type: str
    validity_days:
      description: Lifetime asked for, when set.
      type: int
    requester:
      description: The requester.
      type: str
certificates:
  description: The state of each certificate.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name of the certificate.
      type: str
    reasons:
      description: Why it needs issuing (as C(reissue_reasons) of M(fleet.mtls.certificate_info), plus V(forced),
        V(issuer_changed) for one signed by none of O(issuer_certificates), and V(unreadable) for a full chain that
        cannot be read); empty when it does not.
      type: list
      elements: str
    serial:
      description: Serial of the current certificate, if any.
      type: str
    not_after:
      description: Expiry of the current certificate, if any.
      type: str
    renew_at:
      description: When the current certificate enters its renewal window, if any.
      type: str
    pending_key:
      description: Whether the request is for a new pending key.
      type: bool
    repaired:
      description: The files of a good certificate that were (or would be) written again from its full chain and key,
        or whose mode or owner was put right.
      type: list
      elements: str
    files:
      description: Where the certificate's files are, the paths service configurations name.
      type: dict
      contains:
        key:
          description: The private key, V(<name>.key).
          type: str
        pending_key:
          description: Where a renewal's new key waits for its certificate, V(<name>.key.pending).
          type: str
        cert:
          description: The certificate alone, V(<name>.crt).
          type: str
        chain:
          description: Its issuing chain, V(<name>.chain.pem).
          type: str
        fullchain:
          description: Certificate and chain, V(<name>.fullchain.pem).
          type: str
        combined:
          description: Certificate, chain and key, V(<name>.combined.pem), with O(certificates[].combined); else null.
          type: str
bundle_changed:
  description: Whether the trust bundle was (or would be) rewritten.
  returned: always
  type: bool
crl_changed:
  description: Whether the CRL file of O(crl_path) was (or would be) rewritten. The servers that load it need a reload.
  returned: always
  type: bool
installed:
  description: With O(signed), one entry per certificate installed.
  returned: when O(signed) is given
  type: list
  elements: dict
  contains:
    name:
      description: Name of the certificate.
      type: str
    serial:
      description: Serial of the installed certificate.
      type: str
    not_after:
      description: Expiry of the installed certificate.
      type: str
    changed:
      description: Whether any of its files was (or would be) written.
      type: bool
    changed_files:
      description: The files that were (or would be) written.
      type: list
      elements: str
    key_promoted:
      description: Whether the pending key was moved into place.
      type: bool
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils import _layout
from ansible_collections.fleet.mtls.plugins.module_utils import _memo
from ansible_collections.fleet.mtls.plugins.module_utils import _params

# The code whose decision the memo stands for (the imports of _request, all the way down).
DECIDING_CODE = ("_bundle", "_crl", "_crypto", "_errors", "_files", "_index", "_install", "_layout", "_memo",
                 "_module", "_params", "_policy", "_request", "_time", "_x509")


def decision_paths(params):
    """The files the decision reads or puts right: each certificate's files and key, the trust bundle, the CRLs."""
    directory = params["directory"].rstrip("/")
    paths = [path for path in (params["ca_bundle_path"], params["crl_path"]) if path]
    for spec in params["certificates"]:
        paths += _layout.decision_files(_layout.certificate_files(directory, spec["name"], spec["combined"]))
    return paths


def memo_for(params):
    """The memo of a decision on params, keyed on the files as they are now."""
    params = dict(params, force_renewal=None, signed=None)
    return _memo.Memo(params["directory"], _memo.decision_key(
        params, decision_paths(params), _memo.code_digest("certificate_request", DECIDING_CODE),
        accounts=[(spec["owner"], spec["group"]) for spec in params["certificates"]]))


def main():
    module = AnsibleModule(
        argument_spec=_params.argument_spec(
            ["renewal"],
            directory=dict(type="path", required=True),
            # An entry's key_type and key_size are the key_spec group's (documented above: a doc fragment
            # cannot add suboptions), checked by _request.check_certificate_entries().
            certificates=dict(type="list", elements="dict", required=True, options=_params.suboptions(
                ["key_spec"],
                name=dict(type="str", required=True),
                profile=dict(type="str", choices=list(_params.PROFILES), default="server_client"),
                common_name=dict(type="str", required=True),
                subject_alt_names=dict(type="list", elements="str", required=True),
                spiffe_id=dict(type="str"),
                owner=dict(type="str"),
                group=dict(type="str"),
                key_mode=dict(type="raw", default="0600", no_log=False),
                validity_days=dict(type="int"),
                combined=dict(type="bool", default=False),
            )),
            trust_certificates=dict(type="list", elements="str", required=True),
            ca_bundle_path=dict(type="path"),
            crl_path=dict(type="path"),
            trust_crls=dict(type="list", elements="str", default=[]),
            crl_issuer_certificates=dict(type="list", elements="str", default=[]),
            issuer_certificates=dict(type="list", elements="str", default=[]),
            requester=dict(type="str", required=True),
            force_renewal=dict(type="bool", default=False),
            new_key_on_renewal=dict(type="bool", default=True),
            signed=dict(type="list", elements="dict"),
        ),
        supports_check_mode=True,
    )
    _params.refuse_private_keys(module)  # before the memo, whose answer would echo the options too
    installing = module.params["signed"] is not None
    memo = None
    if not installing and not module.params["force_renewal"]:
        memo = memo_for(module.params)
        remembered = memo.recall(time.time())
        if remembered is not None:
            module.exit_json(**remembered)
    # Only now the PKI core and cryptography: a re-run that finds its memo never loads them.
    from ansible_collections.fleet.mtls.plugins.module_utils import _module, _request
    if installing:
        _module.run(module, lambda module: _request.install_and_settle(module.params, _module.Files(module), memo_for))
    else:
        _module.run(module, lambda module: _request.decide(module.params, _module.Files(module), memo))


if __name__ == "__main__":
    main()
