#!/usr/bin/python
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ca_bundle
short_description: Write a trust bundle of CA certificates
version_added: 0.1.0
description:
  - Joins CA certificates from files and PEM contents into one bundle file, as nginx (C(ssl_client_certificate)),
    HAProxy (C(ca-file)) and Python (C(cafile)) read it.
  - Duplicates (same SHA-256 fingerprint) are kept once, and the order is stable whatever the order of the inputs, so
    the same set of CAs always writes the same bytes and re-runs change nothing.
  - Every certificate must be a CA; anything else is an error and nothing is written. During a CA rollover the bundle
    simply holds the old and the new CA.
author:
  - fleet.mtls maintainers (@fleet-mtls)
extends_documentation_fragment:
  - fleet.mtls.file_attributes
  - fleet.mtls.attributes.WRITES
  - fleet.mtls.attributes.CRYPTOGRAPHY
options:
  path:
    description: Where the bundle is written.
    type: path
    required: true
  certificate_paths:
    description: Files with one or more PEM CA certificates, on the managed host.
    type: list
    elements: path
    default: []
  certificates:
    description: PEM contents with one or more CA certificates each. A value that holds a private key is refused,
      masked in the output.
    type: list
    elements: str
    default: []
  drop_expired:
    description: Leave out CA certificates that have expired.
    type: bool
    default: false
seealso:
  - module: fleet.mtls.ca
"""

EXAMPLES = r"""
- name: Trust the current and the next CA during a rollover
  fleet.mtls.ca_bundle:
    path: /etc/ssl/fleet/ca-bundle.pem
    certificates:
      - "{{ current_ca_pem }}"
      - "{{ next_ca_pem }}"
    drop_expired: true
"""

RETURN = r"""
path:
  description: The bundle's path.
  returned: always
  type: str
fingerprints:
  description: SHA-256 fingerprints of the certificates in the bundle, in its order.
  returned: always
  type: list
  elements: str
subjects:
  description: Subjects of the certificates in the bundle, in its order.
  returned: always
  type: list
  elements: str
count:
  description: How many certificates the bundle holds.
  returned: always
  type: int
dropped:
  description: Fingerprints of expired certificates left out.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils import _bundle
from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _files
from ansible_collections.fleet.mtls.plugins.module_utils import _module
from ansible_collections.fleet.mtls.plugins.module_utils import _params
from ansible_collections.fleet.mtls.plugins.module_utils import _x509
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError


def ensure_bundle(module):
    params = module.params
    sources = [(path, _files.read_required(path, "CA certificate file")) for path in params["certificate_paths"]]
    sources += [("certificates[%d]" % i, c.to_bytes(pem)) for i, pem in enumerate(params["certificates"])]
    if not sources:
        raise PkiError("give at least one of certificate_paths and certificates")
    content, kept, dropped = _bundle.build_bundle(sources, c.utcnow(), params["drop_expired"])
    bundle_file = _module.ManagedFile(module, params["path"], mode=_module.parse_mode(params["mode"], 0o644))
    bundle_file.check_writable()
    diffs = []
    changed = bundle_file.replace(content, diffs)
    changed = bundle_file.ensure_attributes(changed)
    return dict(changed=changed, path=params["path"], fingerprints=[c.fingerprint(x) for x in kept],
                subjects=[_x509.name_to_string(x.subject) for x in kept], count=len(kept),
                dropped=[c.fingerprint(x) for x in dropped], diff=diffs)


def main():
    module = AnsibleModule(
        argument_spec=_params.argument_spec(
            ["file_attributes"],
            path=dict(type="path", required=True),
            certificate_paths=dict(type="list", elements="path", default=[]),
            certificates=dict(type="list", elements="str", default=[]),
            drop_expired=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    _module.run(module, ensure_bundle)


if __name__ == "__main__":
    main()
