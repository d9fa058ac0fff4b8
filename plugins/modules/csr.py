#!/usr/bin/python
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: csr
short_description: Make a certificate signing request from a key on the host
version_added: 0.1.0
description:
  - Builds a PKCS#10 CSR from the host's private key, with a subject, subject alternative names (DNS, IP, URI, email),
    an optional SPIFFE ID, key usage and extended key usage.
  - Returns the CSR in PEM; with O(path) it is also written there. An existing CSR at O(path) that already asks for
    exactly this (same key, subject, names and usages) is kept, so re-runs change nothing.
  - The signer decides the usages it grants (see M(fleet.mtls.sign) profiles); what the CSR asks for is checked against
    them, never silently widened.
author:
  - fleet.mtls maintainers (@fleet-mtls)
extends_documentation_fragment:
  - fleet.mtls.private_key_source
  - fleet.mtls.file_attributes
  - fleet.mtls.attributes.WRITES
  - fleet.mtls.attributes.CRYPTOGRAPHY
options:
  path:
    description:
      - Where to write the CSR. Without it the CSR is only returned.
    type: path
  subject:
    description:
      - Subject attributes, by short or long name (V(CN), V(O), V(OU), V(C), V(ST), V(L), V(DC), V(emailAddress),
        V(serialNumber)). Written most general first (DC, C, ST, L, O, OU, CN).
      - May be empty when the names are all in O(subject_alt_names); the SAN extension is then marked critical.
    type: dict
    default: {}
  subject_alt_names:
    description:
      - Names as V(DNS:web1.example.com), V(IP:10.0.0.5), V(URI:https://...), V(email:ops@example.com).
      - TLS clients check names only here, so a CSR that a server or client certificate comes from needs at least one.
    type: list
    elements: str
    default: []
  spiffe_id:
    description:
      - A SPIFFE ID (V(spiffe://trust-domain/path)) added as the certificate's only URI SAN, as X.509-SVIDs require.
      - It is validated (lower-case trust domain, a non-empty path, no query or fragment) and no other URI SAN may be given.
    type: str
  key_usage:
    description:
      - keyUsage to request, marked critical (V(digitalSignature), V(keyEncipherment), V(keyAgreement), ...).
    type: list
    elements: str
    default: []
  extended_key_usage:
    description:
      - extendedKeyUsage to request. V(serverAuth) and V(clientAuth) are what TLS needs.
    type: list
    elements: str
    default: []
seealso:
  - module: fleet.mtls.private_key
  - module: fleet.mtls.sign
"""

EXAMPLES = r"""
- name: CSR for a server and client certificate with a SPIFFE ID
  fleet.mtls.csr:
    privatekey_path: /etc/ssl/fleet/web.key
    path: /etc/ssl/fleet/web.csr
    subject:
      CN: web1.lab.internal
    subject_alt_names:
      - DNS:web1.lab.internal
      - IP:10.0.0.11
    spiffe_id: spiffe://lab.internal/web/web1
    extended_key_usage: [serverAuth, clientAuth]
  register: web_csr

- name: Only return the CSR (to hand to the CA host)
  fleet.mtls.csr:
    privatekey_path: /etc/ssl/fleet/client.key
    subject_alt_names: ["DNS:client1.lab.internal"]
    extended_key_usage: [clientAuth]
  register: client_csr
"""

RETURN = r"""
csr:
  description: The CSR in PEM.
  returned: success
  type: str
path:
  description: Where the CSR was written.
  returned: when O(path) is set
  type: str
subject:
  description: The requested subject as RFC 4514 text.
  returned: success
  type: str
  sample: CN=web1.lab.internal
subject_alt_names:
  description: The requested SANs.
  returned: success
  type: list
  elements: str
  sample: ["DNS:web1.lab.internal", "URI:spiffe://lab.internal/web/web1"]
public_key_fingerprint:
  description: SHA-256 of the key's public part.
  returned: success
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _module
from ansible_collections.fleet.mtls.plugins.module_utils import _params
from ansible_collections.fleet.mtls.plugins.module_utils import _x509
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError


def ensure_csr(module):
    params = module.params
    key = _module.load_private_key_from_params(module)
    sans = _x509.build_sans(params["subject_alt_names"], params["spiffe_id"])
    subject = params["subject"]
    if not subject and not sans:
        raise PkiError("a CSR needs a subject or at least one subject alternative name")
    wanted = dict(subject=subject, sans=sans, key_usage=params["key_usage"],
                  extended_key_usage=params["extended_key_usage"])
    # Validate the usages before anything is compared or written.
    if wanted["key_usage"]:
        _x509.build_key_usage(wanted["key_usage"])
    if wanted["extended_key_usage"]:
        _x509.build_extended_key_usage(wanted["extended_key_usage"])

    diffs = []
    changed = False
    csr = None
    csr_file = None
    if params["path"]:
        csr_file = _module.ManagedFile(module, params["path"], mode=_module.parse_mode(params["mode"], 0o644))
        csr_file.check_writable()
        if csr_file.exists:
            try:
                existing = _x509.load_csr(csr_file.current, source=params["path"])
            except PkiError:
                existing = None  # an unreadable CSR is regenerated: it holds no secret
            if existing is not None and _x509.csr_matches(existing, key, **wanted):
                csr = existing
    if csr is None:
        csr = _x509.build_csr(key, subject, sans, wanted["key_usage"], wanted["extended_key_usage"])
    pem = _x509.csr_pem(csr)
    if csr_file is not None:
        changed = csr_file.replace(pem, diffs)
        changed = csr_file.ensure_attributes(changed)
    result = dict(changed=changed, csr=pem.decode("ascii"), subject=_x509.name_to_string(csr.subject),
                  subject_alt_names=[_x509.san_to_string(n) for n in _x509.sans_of(csr)],
                  public_key_fingerprint=c.public_key_fingerprint(key), diff=diffs)
    if params["path"]:
        result["path"] = params["path"]
    return result


def main():
    module = AnsibleModule(
        argument_spec=_params.argument_spec(
            ["private_key_source", "file_attributes"],
            path=dict(type="path"),
            subject=dict(type="dict", default={}),
            subject_alt_names=dict(type="list", elements="str", default=[]),
            spiffe_id=dict(type="str"),
            key_usage=dict(type="list", elements="str", default=[]),
            extended_key_usage=dict(type="list", elements="str", default=[]),
        ),
        required_one_of=[["privatekey_path", "privatekey_content"]],
        mutually_exclusive=[["privatekey_path", "privatekey_content"]],
        supports_check_mode=True,
    )
    _module.run(module, ensure_csr)


if __name__ == "__main__":
    main()
