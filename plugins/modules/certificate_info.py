#!/usr/bin/python
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: certificate_info
short_description: Facts about a certificate, and whether it must be re-issued
version_added: 0.1.0
description:
  - Reads a PEM certificate (from a file on the host or given as content) and returns its subject, SANs, issuer, serial,
    validity, fingerprints and usages.
  - Given a key, tells whether the certificate matches it; given a CA bundle, whether it chains to it (names, signatures,
    validity, CA flags and path lengths along the way).
  - Decides renewal under a policy (default after two thirds of the lifetime; or N days before expiry; with an optional
    stable per-host jitter) and, with the wanted identity, whether the certificate must be re-issued and why.
  - A missing certificate is not an error. C(exists) is then false and C(needs_reissue) true, so one task serves the
    first issuance and every renewal.
author:
  - fleet.mtls maintainers (@fleet-mtls)
extends_documentation_fragment:
  - fleet.mtls.private_key_source
  - fleet.mtls.renewal
  - fleet.mtls.attributes.READS
  - fleet.mtls.attributes.CRYPTOGRAPHY
options:
  path:
    description: Path of the certificate. The first certificate in the file is the one described; the others are
      taken as its chain.
    type: path
  content:
    description: The certificate in PEM, instead of O(path).
    type: str
  ca_bundle_path:
    description: Trust anchors to check the chain against.
    type: path
  ca_bundle_content:
    description: Trust anchors in PEM, instead of O(ca_bundle_path).
    type: str
  chain_path:
    description: Intermediate certificates to build the chain with, besides those following the certificate itself.
    type: path
  jitter_seed:
    description: Seed of the jitter, usually the host name. The same seed always gives the same point.
    type: str
  expected_subject_alt_names:
    description:
      - The SANs the certificate should have (same form as M(fleet.mtls.csr)). A difference adds V(identity_changed) to
        C(reissue_reasons).
    type: list
    elements: str
  expected_spiffe_id:
    description: The SPIFFE ID the certificate should carry, added to O(expected_subject_alt_names).
    type: str
  expected_subject:
    description: The subject the certificate should have. A difference adds V(identity_changed).
    type: dict
  expected_key_type:
    description: The key algorithm the certificate should carry. A difference adds V(key_type_changed).
    type: str
    choices: [ec, rsa, ed25519]
  expected_key_size:
    description: The key size that goes with O(expected_key_type); default that type's default size.
    type: int
  valid_at:
    description: Judge validity and renewal at this time (ISO 8601) instead of now.
    type: str
notes:
  - The chain check reads files; M(fleet.mtls.tls_probe) proves what a running server accepts.
seealso:
  - module: fleet.mtls.sign
"""

EXAMPLES = r"""
- name: Is the web server's certificate still good?
  fleet.mtls.certificate_info:
    path: /etc/ssl/fleet/web.crt
    privatekey_path: /etc/ssl/fleet/web.key
    ca_bundle_path: /etc/ssl/fleet/ca-bundle.pem
    expected_subject_alt_names: ["DNS:{{ inventory_hostname }}"]
    renew_jitter: 0.1
    jitter_seed: "{{ inventory_hostname }}"
  register: web_cert

- name: Make a CSR only when a new certificate is needed
  fleet.mtls.csr:
    privatekey_path: /etc/ssl/fleet/web.key
    subject_alt_names: ["DNS:{{ inventory_hostname }}"]
    extended_key_usage: [serverAuth]
  when: web_cert.needs_reissue
"""

RETURN = r"""
exists:
  description: Whether there is a certificate to describe.
  returned: always
  type: bool
subject:
  description: Subject attributes.
  returned: when C(exists)
  type: dict
  sample: {CN: web1.lab.internal}
subject_string:
  description: Subject as RFC 4514 text.
  returned: when C(exists)
  type: str
issuer:
  description: Issuer attributes.
  returned: when C(exists)
  type: dict
issuer_string:
  description: Issuer as RFC 4514 text.
  returned: when C(exists)
  type: str
common_name:
  description: The subject's CN, if any.
  returned: when C(exists)
  type: str
subject_alt_names:
  description: SANs as V(DNS:...), V(IP:...), V(URI:...), V(email:...).
  returned: when C(exists)
  type: list
  elements: str
spiffe_id:
  description: The SPIFFE ID among the SANs, if any.
  returned: when C(exists)
  type: str
serial:
  description: Serial number in upper-case hex.
  returned: when C(exists)
  type: str
not_before:
  description: Start of validity (ISO 8601, UTC).
  returned: when C(exists)
  type: str
not_after:
  description: End of validity (ISO 8601, UTC).
  returned: when C(exists)
  type: str
days_remaining:
  description: Days until expiry (negative once expired).
  returned: when C(exists)
  type: float
lifetime_elapsed:
  description: Fraction of the lifetime that has passed, from 0 to 1.
  returned: when C(exists)
  type: float
expired:
  description: Whether it has expired.
  returned: when C(exists)
  type: bool
not_yet_valid:
  description: Whether its validity has not begun.
  returned: when C(exists)
  type: bool
is_ca:
  description: Whether it is a CA certificate.
  returned: when C(exists)
  type: bool
path_length:
  description: The CA's path length constraint, if any.
  returned: when C(exists)
  type: int
key_usage:
  description: keyUsage names.
  returned: when C(exists)
  type: list
  elements: str
extended_key_usage:
  description: extendedKeyUsage names.
  returned: when C(exists)
  type: list
  elements: str
public_key_type:
  description: V(ec), V(rsa) or V(ed25519).
  returned: when C(exists)
  type: str
public_key_size:
  description: Key size in bits (curve size for EC).
  returned: when C(exists)
  type: int
public_key_fingerprint:
  description: SHA-256 of the public key.
  returned: when C(exists)
  type: str
fingerprint_sha256:
  description: SHA-256 fingerprint.
  returned: when C(exists)
  type: str
fingerprint_sha1:
  description: SHA-1 fingerprint (for tools that still show it).
  returned: when C(exists)
  type: str
self_signed:
  description: Whether it is self-signed.
  returned: when C(exists)
  type: bool
matches_key:
  description: Whether it carries the public part of the given key.
  returned: when a key is given and C(exists)
  type: bool
chains_to_bundle:
  description: Whether a valid path leads from it to the given bundle.
  returned: when a bundle is given and C(exists)
  type: bool
chain_error:
  description: Why it does not chain to the bundle.
  returned: when C(chains_to_bundle) is false
  type: str
renew_at:
  description: When it enters its renewal window (ISO 8601, UTC).
  returned: when C(exists)
  type: str
needs_renewal:
  description: Whether it is inside its renewal window or expired.
  returned: when C(exists)
  type: bool
needs_reissue:
  description: Whether a new certificate is needed for any reason in C(reissue_reasons).
  returned: always
  type: bool
reissue_reasons:
  description:
    - Why, among V(missing), V(key_mismatch), V(key_type_changed), V(identity_changed), V(untrusted_issuer),
      V(expired), V(renewal_window).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _files
from ansible_collections.fleet.mtls.plugins.module_utils import _module
from ansible_collections.fleet.mtls.plugins.module_utils import _params
from ansible_collections.fleet.mtls.plugins.module_utils import _policy
from ansible_collections.fleet.mtls.plugins.module_utils import _x509


def read_source(params, path_option, content_option, what):
    if params[content_option] is not None:
        return c.to_bytes(params[content_option])
    if params[path_option]:
        return _files.read_required(params[path_option], what)
    return None


def describe(module):
    params = module.params
    now = c.parse_isoformat(params["valid_at"]) if params["valid_at"] else c.utcnow()
    data = params["content"] if params["content"] is not None else _files.read_bytes(params["path"])
    if data is None:
        return dict(changed=False, exists=False, needs_reissue=True, reissue_reasons=["missing"])
    source = params["path"] or "content"
    certs = _x509.load_certificates(data, source="certificate %s" % source)
    cert, intermediates = certs[0], certs[1:]
    if params["chain_path"]:
        intermediates += _x509.load_certificates(_files.read_required(params["chain_path"], "chain"),
                                                 source="chain %s" % params["chain_path"])

    result = _x509.describe_certificate(cert, now)
    result.update(changed=False, exists=True)

    key = None
    if params["privatekey_path"] or params["privatekey_content"] is not None:
        key = _module.load_private_key_from_params(module)
        result["matches_key"] = c.same_public_key(cert.public_key(), key)

    anchors = None
    bundle = read_source(params, "ca_bundle_path", "ca_bundle_content", "CA bundle")
    if bundle is not None:
        anchors = _x509.load_certificates(bundle, source="CA bundle")
        ok, error, _path = _x509.verify_chain(cert, intermediates, anchors, now=now)
        result["chains_to_bundle"] = ok
        if not ok:
            result["chain_error"] = error

    wanted_sans = None
    if params["expected_subject_alt_names"] is not None or params["expected_spiffe_id"]:
        wanted_sans = _x509.build_sans(params["expected_subject_alt_names"] or [], params["expected_spiffe_id"])
    reasons, renew_at = _policy.renewal_decision(
        cert, now, params, params["jitter_seed"], key=key, anchors=anchors, intermediates=intermediates,
        wanted_sans=wanted_sans, wanted_subject=params["expected_subject"],
        wanted_key_type=params["expected_key_type"], wanted_key_size=params["expected_key_size"])
    result.update(renew_at=c.isoformat(renew_at), needs_renewal=bool({"expired", "renewal_window"} & set(reasons)),
                  needs_reissue=bool(reasons), reissue_reasons=reasons)
    return result


def main():
    module = AnsibleModule(
        argument_spec=_params.argument_spec(
            ["private_key_source", "renewal"],
            path=dict(type="path"),
            content=dict(type="str"),
            ca_bundle_path=dict(type="path"),
            ca_bundle_content=dict(type="str"),
            chain_path=dict(type="path"),
            jitter_seed=dict(type="str"),
            expected_subject_alt_names=dict(type="list", elements="str"),
            expected_spiffe_id=dict(type="str"),
            expected_subject=dict(type="dict"),
            expected_key_type=dict(type="str", choices=list(_params.KEY_TYPES)),
            expected_key_size=dict(type="int"),
            valid_at=dict(type="str"),
        ),
        required_one_of=[["path", "content"]],
        mutually_exclusive=[["path", "content"], ["ca_bundle_path", "ca_bundle_content"],
                            ["privatekey_path", "privatekey_content"]],
        supports_check_mode=True,
    )
    _module.run(module, describe)


if __name__ == "__main__":
    main()
