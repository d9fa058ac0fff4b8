#!/usr/bin/python
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: crl_info
short_description: Read the CRLs of a PEM file
version_added: 0.1.0
description:
  - Reads a PEM file holding one certificate revocation list or more, such as the CRL file M(fleet.mtls.crl) writes
    on the CA host or the one M(fleet.mtls.certificate_request) writes on a host (the root CA's and the issuing CA's
    CRLs), and returns the facts of each, in the order of the file. It writes nothing.
  - Only the C(X509 CRL) blocks of the file are read. A file without any, with a block that does not load or lacks
    its END line, or holding a private key, fails the task; a private key is never shown.
  - With O(ca_certificates_path), each CRL also tells whether a CA certificate of that bundle bears its issuer's name
    and whether one of those verified its signature.
author:
  - fleet.mtls maintainers (@fleet-mtls)
extends_documentation_fragment:
  - fleet.mtls.attributes.READS
  - fleet.mtls.attributes.CRYPTOGRAPHY
options:
  path:
    description: The PEM file holding the CRLs.
    type: path
    required: true
  ca_certificates_path:
    description:
      - A PEM bundle of CA certificates to verify each CRL's signature against (for example the root and the issuing
        CA certificates). Adds RV(crls[].issuer_known) and RV(crls[].verified) to each CRL.
      - A bundle that holds a private key is refused.
    type: path
  require_current:
    description:
      - Fail, refusing the file for deployment, when a CRL of it is past its next update, since a server that loads
        the file (nginx C(ssl_crl), HAProxy C(crl-file), Python's C(VERIFY_CRL_CHECK_CHAIN)) then refuses every
        client certificate. The message names each lapsed CRL's issuer and next update. Nothing else is returned.
      - The service roles read their CRL files this way before they change anything.
    type: bool
    default: false
seealso:
  - module: fleet.mtls.crl
  - module: fleet.mtls.certificate_request
"""

EXAMPLES = r"""
- name: Read the CRLs a host's servers load (the root CA's and the issuing CA's)
  fleet.mtls.crl_info:
    path: /etc/fleet-mtls/certs/crls.pem
  register: crls

- name: Refuse to deploy a file with a CRL past its next update (the task fails, naming it)
  fleet.mtls.crl_info:
    path: /etc/fleet-mtls/certs/crls.pem
    require_current: true

- name: Warn a day before the first CRL lapses
  ansible.builtin.debug:
    msg: "the CRL of {{ item.issuer }} lapses at {{ item.next_update }}"
  loop: "{{ crls.crls }}"
  when: item.seconds_left is not none and item.seconds_left < 86400

- name: On the CA host, read the issuing CA's CRL and check its signature
  fleet.mtls.crl_info:
    path: /etc/fleet-mtls/ca/issuing.crl
    ca_certificates_path: /etc/fleet-mtls/ca/issuing.crt
  register: issuing_crl

- name: The issuing CA's CRL must be signed by it and current
  ansible.builtin.assert:
    that:
      - issuing_crl.crls[0].verified
      - not issuing_crl.expired
"""

RETURN = r"""
crls:
  description: Each CRL of the file, in the order of the file.
  returned: success
  type: list
  elements: dict
  contains:
    issuer:
      description: The issuer's name, RFC 4514 text.
      type: str
      returned: success
      sample: CN=Fleet Issuing CA
    crl_number:
      description: The CRL Number extension, or null when the CRL has none.
      type: int
      returned: success
      sample: 12
    last_update:
      description: When it was signed (ISO 8601, UTC).
      type: str
      returned: success
      sample: "2026-06-01T00:00:00Z"
    next_update:
      description: When it lapses (ISO 8601, UTC), or null when the CRL has no next update.
      type: str
      returned: success
      sample: "2026-06-08T00:00:00Z"
    expired:
      description: Whether its next update is now or past. Servers loading an expired CRL refuse every client.
      type: bool
      returned: success
    seconds_left:
      description: Seconds from now to its next update, negative once it has passed, or null without a next update.
      type: int
      returned: success
      sample: 518400
    revoked_serials:
      description: The serials it lists as revoked, upper-case hex, sorted.
      type: list
      elements: str
      returned: success
      sample: ["0A1B", "0C0D"]
    authority_key_identifier:
      description: The key identifier of its Authority Key Identifier extension, colon-separated upper-case hex, or
        null when it has none.
      type: str
      returned: success
      sample: "3F:A2:9C:01:5D:6E:77:B8:C9:D0:E1:F2:03:14:25:36:47:58:69:7A"
    issuer_known:
      description: Whether a certificate of O(ca_certificates_path) bears the CRL's issuer name.
      type: bool
      returned: when O(ca_certificates_path) is given
    verified:
      description: Whether the CRL's signature verifies with the key of a certificate of O(ca_certificates_path)
        that bears its issuer name.
      type: bool
      returned: when O(ca_certificates_path) is given
count:
  description: How many CRLs the file holds.
  returned: success
  type: int
  sample: 2
expired:
  description: Whether any CRL of the file is expired.
  returned: success
  type: bool
next_update:
  description: The earliest next update of all the CRLs (ISO 8601, UTC), or null when none has one.
  returned: success
  type: str
  sample: "2026-06-08T00:00:00Z"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils import _crl
from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _files
from ansible_collections.fleet.mtls.plugins.module_utils import _module
from ansible_collections.fleet.mtls.plugins.module_utils import _params
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError


def read_crls(module):
    params = module.params
    now = c.utcnow()
    source = "CRL file %s" % params["path"]
    data = _files.read_required(params["path"], "CRL file")
    _crl.refuse_private_key(data, source)  # before anything else is read or said about the file
    anchors = None
    if params["ca_certificates_path"] is not None:
        anchors = _crl.load_ca_certificates(_files.read_required(params["ca_certificates_path"], "CA certificates"),
                                            source="CA certificates %s" % params["ca_certificates_path"])
    facts = _crl.describe_crl_file(data, anchors, now, source=source)
    if params["require_current"] and facts["expired"]:
        lapsed = ["%s lapsed at %s" % (crl["issuer"], crl["next_update"]) for crl in facts["crls"] if crl["expired"]]
        raise PkiError("Refusing to deploy %s: a CRL in it is past its next update (%s): a server that loads it"
                       " refuses every client certificate. Publish current CRLs first (fleet.mtls.rotate)."
                       % (params["path"], "; ".join(lapsed)))
    return dict(changed=False, **facts)


def main():
    module = AnsibleModule(
        argument_spec=_params.argument_spec(
            [],
            path=dict(type="path", required=True),
            ca_certificates_path=dict(type="path"),
            require_current=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    _module.run(module, read_crls)


if __name__ == "__main__":
    main()
