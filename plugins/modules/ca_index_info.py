#!/usr/bin/python
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ca_index_info
short_description: List the certificates a CA has issued
version_added: 0.1.0
description:
  - Reads the index that M(fleet.mtls.sign) appends to on the CA host and lists its entries, optionally only those of
    one request name or serial, or in one state.
author:
  - fleet.mtls maintainers (@fleet-mtls)
extends_documentation_fragment:
  - fleet.mtls.attributes.INFO
options:
  index_path:
    description: The CA's index (V(index.json) beside the CA certificate unless M(fleet.mtls.sign) was told otherwise).
    type: path
    required: true
  name:
    description: Only entries issued under this request name.
    type: str
  serial:
    description: Only the entry with this serial (hex, colons allowed).
    type: str
  status:
    description: Only entries in this state. V(valid) means neither expired nor revoked.
    type: str
    choices: [all, valid, expired, revoked]
    default: all
"""

EXAMPLES = r"""
- name: What has the CA issued to web1?
  fleet.mtls.ca_index_info:
    index_path: /etc/fleet-ca/index.json
    name: web1/server
    status: valid
  delegate_to: ca1
  register: issued
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
  description: How many entries the whole index holds in each state.
  returned: always
  type: dict
  sample: {valid: 48, expired: 3, revoked: 1}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _index
from ansible_collections.fleet.mtls.plugins.module_utils import _module
from ansible_collections.fleet.mtls.plugins.module_utils import _params


def entry_status(entry, now):
    if entry.get("revoked_at"):
        return "revoked"
    if c.parse_isoformat(entry["not_after"]) <= now:
        return "expired"
    return "valid"


def list_index(module):
    params = module.params
    now = c.utcnow()
    wanted_serial = _index.normalize_serial(params["serial"]) if params["serial"] else None
    counts = dict(valid=0, expired=0, revoked=0)
    listed = []
    for entry in _index.read_entries(params["index_path"]):
        status = entry_status(entry, now)
        counts[status] += 1
        if params["name"] is not None and entry.get("name") != params["name"]:
            continue
        if wanted_serial is not None and entry.get("serial") != wanted_serial:
            continue
        if params["status"] not in ("all", status):
            continue
        listed.append(dict(entry, status=status))
    return dict(changed=False, certificates=listed, counts=counts)


def main():
    module = AnsibleModule(
        argument_spec=_params.argument_spec(
            [],
            index_path=dict(type="path", required=True),
            name=dict(type="str"),
            serial=dict(type="str"),
            status=dict(type="str", choices=["all", "valid", "expired", "revoked"], default="all"),
        ),
        supports_check_mode=True,
    )
    _module.run(module, list_index)


if __name__ == "__main__":
    main()
