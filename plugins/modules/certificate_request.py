#!/usr/bin/python
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: certificate_request
short_description: The host's side of issuance, in one run - keys, the renewal decision and CSRs
version_added: 0.1.0
description:
  - For every certificate a host needs, in one module run - makes the key when it is missing (on the host, where it
    stays), decides whether a new certificate is needed and why (the same decision as M(fleet.mtls.certificate_info)),
    and for each that is, makes a CSR - from a new pending key for a renewal, which goes live with its certificate
    through M(fleet.mtls.certificate_files).
  - Also writes the host's trust bundle from O(trust_certificates).
  - Returns the requests ready for one M(fleet.mtls.sign) run on the CA host. When nothing needs issuing it writes
    nothing and reports no change, which is what makes a fleet-wide no-op run cheap.
  - This is the building block of the C(fleet.mtls.certificate) role.
author:
  - fleet.mtls maintainers (@fleet-mtls)
extends_documentation_fragment:
  - fleet.mtls.attributes.FILES
options:
  directory:
    description: The directory of the host's keys and certificates. Made (mode V('0755')) when missing.
    type: path
    required: true
  certificates:
    description:
      - The certificates the host needs. Files are V(<name>.key), V(<name>.fullchain.pem) (what the decision reads),
        and V(<name>.key.pending) while a renewal waits for its certificate.
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
        description: Key algorithm.
        type: str
        choices: [ec, rsa, ed25519]
        default: ec
      key_size:
        description: Key size.
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
  trust_certificates:
    description: PEM CA certificates the host trusts; the chain check and the bundle use them.
    type: list
    elements: str
    required: true
  ca_bundle_path:
    description: Where to write the trust bundle. Not written when unset.
    type: path
  requester:
    description: Who asks (the inventory host name); request names are V(<requester>/<name>).
    type: str
    required: true
  renew_fraction:
    description: Renew after this fraction of the lifetime (default two thirds).
    type: float
  renew_days_before:
    description: Renew this many days before expiry instead.
    type: float
  renew_jitter:
    description: Move the renewal point earlier by up to this fraction of the lifetime, stably per certificate.
    type: float
    default: 0.0
  force_renewal:
    description: Ask for a new certificate for every entry.
    type: bool
    default: false
  new_key_on_renewal:
    description: A renewal makes a new key (pending until its certificate is installed).
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Keys, decision and CSRs for this host's certificates
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
  register: request
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
      description: Why it needs issuing (as C(reissue_reasons) of M(fleet.mtls.certificate_info), plus V(forced)); empty
        when it does not.
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
bundle_changed:
  description: Whether the trust bundle was (or would be) rewritten.
  returned: always
  type: bool
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils import _bundle
from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _files
from ansible_collections.fleet.mtls.plugins.module_utils import _module
from ansible_collections.fleet.mtls.plugins.module_utils import _policy
from ansible_collections.fleet.mtls.plugins.module_utils import _x509
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError


class KeyFile(_module.ManagedFile):
    """A key file of one certificate entry, with that entry's owner and mode."""

    def __init__(self, module, path, spec):
        super().__init__(module, path, _module.parse_mode(spec["key_mode"], 0o600), secret=True)
        self.owner = spec["owner"]
        self.group = spec["group"]


def ensure_key(module, key_file, spec, diffs, reuse=True):
    """The key at key_file: the existing one when it fits, else a new one."""
    wanted = (spec["key_type"], spec["key_size"] or c.DEFAULT_KEY_SIZE[spec["key_type"]])
    if reuse and key_file.exists:
        key = c.load_private_key(key_file.current, source="private key %s" % key_file.path)
        if c.key_type_and_size(key) == wanted:
            return key, key_file.ensure_attributes(False)
    key = c.generate_private_key(*wanted)
    return key, key_file.ensure_attributes(key_file.replace(c.serialize_private_key(key), diffs))


def assess(spec, directory, anchors, now, params):
    """(reasons, facts) for one entry, from its installed full chain and key."""
    chain_data = _files.read_bytes(directory + "/" + spec["name"] + ".fullchain.pem")
    if chain_data is None:
        return ["missing"], {}
    certs = _x509.load_certificates(chain_data, source="certificate %s" % spec["name"])
    key_data = _files.read_bytes(directory + "/" + spec["name"] + ".key")
    key = c.load_private_key(key_data, source="private key of %s" % spec["name"]) if key_data else None
    sans = _x509.build_sans(spec["subject_alt_names"], spec["spiffe_id"])
    reasons, renew_at = _policy.renewal_decision(
        certs[0], now, params, "%s/%s" % (params["requester"], spec["name"]), key=key, anchors=anchors,
        intermediates=certs[1:], wanted_sans=sans, wanted_subject={"CN": spec["common_name"]},
        wanted_key_type=spec["key_type"], wanted_key_size=spec["key_size"])
    return reasons, dict(serial=c.serial_hex(certs[0].serial_number),
                         not_after=c.isoformat(c.not_valid_after(certs[0])), renew_at=c.isoformat(renew_at))


def prepare(module):
    params = module.params
    now = c.utcnow()
    directory = params["directory"].rstrip("/")
    diffs = []
    changed = False
    if not os.path.isdir(directory):
        changed = True
        if not module.check_mode:
            try:
                os.makedirs(directory, 0o755)
            except OSError as exc:
                raise PkiError("cannot make %s: %s" % (directory, exc.strerror))
    anchors = []
    for index, pem in enumerate(params["trust_certificates"]):
        anchors += _x509.load_certificates(pem, source="trust_certificates[%d]" % index)

    bundle_changed = False
    if params["ca_bundle_path"]:
        content, _kept, _dropped = _bundle.build_bundle(
            [("trust_certificates[%d]" % i, c.to_bytes(pem)) for i, pem in enumerate(params["trust_certificates"])],
            now)
        bundle = _module.ManagedFile(module, params["ca_bundle_path"], 0o644)
        bundle.check_writable()
        bundle_changed = bundle.ensure_attributes(bundle.replace(content, diffs))

    names = [spec["name"] for spec in params["certificates"]]
    if len(set(names)) != len(names):
        raise PkiError("certificate names must be unique, got: %s" % ", ".join(names))
    states, requests = [], []
    for spec in params["certificates"]:
        key_file = KeyFile(module, "%s/%s.key" % (directory, spec["name"]), spec)
        key_file.check_writable()
        reasons, facts = assess(spec, directory, anchors, now, params)
        if params["force_renewal"] and not reasons:
            reasons = ["forced"]
        renewal = bool(reasons) and bool(facts) and params["new_key_on_renewal"]
        state = dict(name=spec["name"], reasons=reasons, pending_key=renewal,
                     serial=facts.get("serial"), not_after=facts.get("not_after"), renew_at=facts.get("renew_at"))
        states.append(state)
        if not key_file.exists or reasons:
            changed = True
        if module.check_mode and (reasons or not key_file.exists):
            continue  # nothing to sign with yet: the decision is the report
        if renewal:
            pending = KeyFile(module, "%s/%s.key.pending" % (directory, spec["name"]), spec)
            key, _changed = ensure_key(module, pending, spec, diffs)
        else:
            key, key_changed = ensure_key(module, key_file, spec, diffs, reuse=True)
            changed = changed or key_changed
        if reasons:
            csr = _x509.build_csr(key, {"CN": spec["common_name"]},
                                  _x509.build_sans(spec["subject_alt_names"], spec["spiffe_id"]))
            request = dict(name="%s/%s" % (params["requester"], spec["name"]), csr=_x509.csr_pem(csr).decode("ascii"),
                           profile=spec["profile"], requester=params["requester"])
            if spec["validity_days"]:
                request["validity_days"] = spec["validity_days"]
            requests.append(request)
    return dict(changed=changed or bundle_changed, requests=requests, certificates=states,
                bundle_changed=bundle_changed, diff=diffs)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            directory=dict(type="path", required=True),
            certificates=dict(type="list", elements="dict", required=True, options=dict(
                name=dict(type="str", required=True),
                profile=dict(type="str", choices=["server", "client", "server_client"], default="server_client"),
                common_name=dict(type="str", required=True),
                subject_alt_names=dict(type="list", elements="str", required=True),
                spiffe_id=dict(type="str"),
                key_type=dict(type="str", choices=["ec", "rsa", "ed25519"], default="ec"),
                key_size=dict(type="int"),
                owner=dict(type="str"),
                group=dict(type="str"),
                key_mode=dict(type="raw", default="0600", no_log=False),
                validity_days=dict(type="int"),
            )),
            trust_certificates=dict(type="list", elements="str", required=True),
            ca_bundle_path=dict(type="path"),
            requester=dict(type="str", required=True),
            renew_fraction=dict(type="float"),
            renew_days_before=dict(type="float"),
            renew_jitter=dict(type="float", default=0.0),
            force_renewal=dict(type="bool", default=False),
            new_key_on_renewal=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    _module.run(module, prepare)


if __name__ == "__main__":
    main()
