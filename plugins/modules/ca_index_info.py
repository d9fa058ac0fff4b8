#!/usr/bin/python
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ca_index_info
short_description: List the certificates a CA has issued
version_added: 0.1.0
description:
  - Reads the record that M(fleet.mtls.sign) writes on the CA host and lists its entries, optionally only those of
    one request name, host, serial or SPIFFE ID, in one state, or expiring within some days. Every criterion given
    must match.
  - The record is queried through its indexes, so a narrow query costs the same in a record of any size.
  - It reads without the CA's lock and writes nothing. A JSON index of earlier releases not yet imported is read as
    it is.
author:
  - fleet.mtls maintainers (@fleet-mtls)
extends_documentation_fragment:
  - fleet.mtls.attributes.READS
  - fleet.mtls.attributes.CRYPTOGRAPHY
options:
  index_path:
    description:
      - The CA's record (V(index.db) beside the CA certificate unless M(fleet.mtls.sign) was told otherwise).
      - A path ending in V(.json) names the JSON index of earlier releases; the V(.db) file beside it is read once it
        exists.
    type: path
    required: true
  name:
    description: Only entries issued under this request name.
    type: str
  host:
    description:
      - Only entries issued to this host, that is whose request name is V(<host>/<certificate name>).
      - The host alone, without C(/). V(web1) matches V(web1/server) and V(web1/client), never V(web10/server) or
        V(web1x/server).
    type: str
  serial:
    description: Only the entry with this serial (hex, colons allowed).
    type: str
  serials:
    description:
      - Only the entries with one of these serials (hex, colons allowed), found in one lookup however many there
        are; an empty list finds none. The C(fleet.mtls.revoke) playbook names the holders of the
        certificates it revoked this way.
    type: list
    elements: str
  spiffe_id:
    description: Only entries issued with this SPIFFE ID (their C(spiffe://) URI SAN).
    type: str
  expires_within_days:
    description:
      - Only entries whose C(not_after) is at most this many days from now (V(0) for those already past it). Combine
        with O(status=valid) for what is about to expire.
    type: float
  status:
    description: Only entries in this state. V(valid) means neither expired nor revoked.
    type: str
    choices: [all, valid, expired, revoked]
    default: all
"""

EXAMPLES = r"""
- name: What has the CA issued to web1?
  fleet.mtls.ca_index_info:
    index_path: /etc/fleet-ca/index.db
    name: web1/server
    status: valid
  delegate_to: ca1
  register: issued

- name: Every certificate the CA has issued to web1, whatever its name
  fleet.mtls.ca_index_info:
    index_path: /etc/fleet-ca/index.db
    host: web1
  delegate_to: ca1
  register: web1_certificates

- name: Valid certificates that expire within 14 days
  fleet.mtls.ca_index_info:
    index_path: /etc/fleet-ca/index.db
    status: valid
    expires_within_days: 14
  delegate_to: ca1
  register: expiring
"""

RETURN = r"""
certificates:
  description: The matching entries, oldest first.
  returned: always
  type: list
  elements: dict
  contains:
    serial:
      description: Serial in upper-case hex.
      type: str
    name:
      description: The request name it was signed under.
      type: str
    requester:
      description: Who asked for it.
      type: str
    profile:
      description: The signing profile.
      type: str
    subject:
      description: Subject as RFC 4514 text.
      type: str
    subject_alt_names:
      description: SANs.
      type: list
      elements: str
    not_before:
      description: Start of validity.
      type: str
    not_after:
      description: End of validity.
      type: str
    fingerprint_sha256:
      description: SHA-256 fingerprint.
      type: str
    issued_at:
      description: When it was signed.
      type: str
    revoked_at:
      description: When it was revoked, or null.
      type: str
    revocation_reason:
      description: Why it was revoked, or null.
      type: str
    status:
      description: V(valid), V(expired) or V(revoked).
      type: str
counts:
  description: How many entries the whole record holds in each state, whatever the criteria.
  returned: always
  type: dict
  sample: {valid: 48, expired: 3, revoked: 1}
"""

import datetime

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _index
from ansible_collections.fleet.mtls.plugins.module_utils import _module
from ansible_collections.fleet.mtls.plugins.module_utils import _params
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError


def list_index(module):
    params = module.params
    now = c.utcnow()
    days = params["expires_within_days"]
    if days is not None and not 0 <= days <= 36500:
        raise PkiError("expires_within_days must be from 0 to 36500, not %r" % days)
    if params["spiffe_id"] is not None and not params["spiffe_id"].startswith("spiffe://"):
        raise PkiError("spiffe_id %r is not a spiffe:// URI" % params["spiffe_id"])
    if params["host"] is not None:
        _index.check_host(params["host"])
    with _index.CertificateIndex(params["index_path"], save=False) as index:
        listed = index.query(now, name=params["name"], serial=params["serial"], spiffe_id=params["spiffe_id"],
                             host=params["host"], status=params["status"], serials=params["serials"],
                             expires_before=None if days is None else now + datetime.timedelta(days=days))
        counts = index.counts(now)
    return dict(changed=False, certificates=listed, counts=counts)


def main():
    module = AnsibleModule(
        argument_spec=_params.argument_spec(
            [],
            index_path=dict(type="path", required=True),
            name=dict(type="str"),
            host=dict(type="str"),
            serial=dict(type="str"),
            serials=dict(type="list", elements="str"),
            spiffe_id=dict(type="str"),
            expires_within_days=dict(type="float"),
            status=dict(type="str", choices=["all", "valid", "expired", "revoked"], default="all"),
        ),
        supports_check_mode=True,
    )
    _module.run(module, list_index)


if __name__ == "__main__":
    main()
