#!/usr/bin/python
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ca
short_description: Make sure a root or intermediate certificate authority exists on the CA host
version_added: 0.1.0
description:
  - Ensures a CA key and certificate on the CA host. Without O(parent_cert_path) the CA is a self-signed root; with it,
    an intermediate signed by the parent CA's key, which is read on this host and never leaves it.
  - The certificate carries basicConstraints CA:TRUE and keyUsage keyCertSign, cRLSign (both critical), SKI, AKI and,
    when asked, a path length and name constraints (critical).
  - An existing key is always kept; one of another type or size than asked is an error (a new CA key is a CA rollover,
    not a side effect). An existing certificate is kept while it matches the key, subject, constraints and parent and
    has not expired; otherwise it is re-issued for the same key, so certificates it signed keep verifying.
  - The key is written with mode V('0600'); O(mode) applies to the certificate (default V('0644')).
  - A run holds a lock on the file O(key_path) with C(.lock) appended from reading the key and certificate to
    writing them, so that two runs at the same time never leave a certificate for the other run's key. Check mode
    takes no lock and writes nothing.
  - Every option is checked before anything is read or written, in check mode too.
author:
  - fleet.mtls maintainers (@fleet-mtls)
extends_documentation_fragment:
  - fleet.mtls.file_attributes
  - fleet.mtls.attributes.FILES
options:
  key_path:
    description: Path of the CA's private key. Made when missing.
    type: path
    required: true
  key_passphrase:
    description: Passphrase that encrypts the CA key. The value is never logged.
    type: str
  key_type:
    description: Algorithm of a new CA key.
    type: str
    choices: [ec, rsa, ed25519]
    default: ec
  key_size:
    description:
      - Size of a new CA key (for V(ec) the curve size, default V(384) for a CA; for V(rsa) default V(4096)).
    type: int
  cert_path:
    description: Path of the CA certificate.
    type: path
    required: true
  subject:
    description: Subject of the CA; it needs a V(CN). Same keys as in M(fleet.mtls.csr).
    type: dict
    required: true
  validity_days:
    description:
      - Lifetime of the CA certificate, in days, from V(1) to V(36500) (a hundred years). Default 3650 days for a
        root, 1825 for an intermediate.
      - An intermediate never outlives its parent; a lifetime beyond the parent's ends with the parent's C(not_after).
    type: int
  path_length:
    description: The basicConstraints pathLenConstraint, from V(0) to V(100); V(0) means it may sign only leaf
      certificates.
    type: int
  name_constraints_permitted:
    description:
      - Name constraints this CA may issue under, as V(DNS:lab.internal), V(IP:10.0.0.0/8), V(email:example.com),
        V(URI:example.com).
    type: list
    elements: str
    default: []
  name_constraints_excluded:
    description: Names this CA may never issue, same form as O(name_constraints_permitted).
    type: list
    elements: str
    default: []
  parent_cert_path:
    description: Certificate of the CA that signs this one. Set it for an intermediate CA.
    type: path
  parent_key_path:
    description: Private key of the parent CA (on this host). Required with O(parent_cert_path).
    type: path
  parent_key_passphrase:
    description: Passphrase of the parent CA key. The value is never logged.
    type: str
  force:
    description: Re-issue the CA certificate (for the same key) even when the existing one fits.
    type: bool
    default: false
seealso:
  - module: fleet.mtls.sign
  - module: fleet.mtls.ca_bundle
"""

EXAMPLES = r"""
- name: Root CA, kept offline from the fleet except for signing intermediates
  fleet.mtls.ca:
    key_path: /etc/fleet-ca/root.key
    cert_path: /etc/fleet-ca/root.crt
    subject:
      CN: Fleet Root CA
      O: Example
    path_length: 1

- name: Issuing intermediate, limited to the lab's names
  fleet.mtls.ca:
    key_path: /etc/fleet-ca/issuing.key
    cert_path: /etc/fleet-ca/issuing.crt
    subject:
      CN: Fleet Issuing CA 1
      O: Example
    path_length: 0
    name_constraints_permitted:
      - DNS:lab.internal
      - IP:10.0.0.0/8
    parent_cert_path: /etc/fleet-ca/root.crt
    parent_key_path: /etc/fleet-ca/root.key
"""

RETURN = r"""
certificate:
  description: The CA certificate in PEM.
  returned: success
  type: str
subject:
  description: The CA's subject as RFC 4514 text.
  returned: success
  type: str
serial:
  description: Serial number in upper-case hex.
  returned: success
  type: str
not_before:
  description: Start of validity (ISO 8601, UTC).
  returned: success
  type: str
not_after:
  description: End of validity (ISO 8601, UTC).
  returned: success
  type: str
fingerprint_sha256:
  description: SHA-256 fingerprint of the certificate.
  returned: success
  type: str
public_key_fingerprint:
  description: SHA-256 of the CA's public key.
  returned: success
  type: str
root:
  description: Whether the CA is a self-signed root.
  returned: success
  type: bool
key_generated:
  description: Whether a new CA key was (or would be) made.
  returned: success
  type: bool
cert_issued:
  description: Whether the certificate was (or would be) issued in this run.
  returned: success
  type: bool
"""

import contextlib

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _files
from ansible_collections.fleet.mtls.plugins.module_utils import _module
from ansible_collections.fleet.mtls.plugins.module_utils import _params
from ansible_collections.fleet.mtls.plugins.module_utils import _policy
from ansible_collections.fleet.mtls.plugins.module_utils import _x509
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError

# A CA outlives its leaves: the stronger curve and RSA size by default.
CA_DEFAULT_KEY_SIZE = {"ec": 384, "rsa": 4096, "ed25519": None}
# No chain is longer: OpenSSL's default verify depth is 100, so a larger path length could never be used.
MAX_PATH_LENGTH = 100
# A new CA certificate starts this long before now, for clocks a little behind.
CA_BACKDATE_SECONDS = 300


def load_parent(params, now):
    if not params["parent_cert_path"]:
        return None, None
    if not params["parent_key_path"]:
        raise PkiError("parent_key_path is required with parent_cert_path")
    parent_cert = _x509.load_certificate(_files.read_required(params["parent_cert_path"], "parent certificate"),
                                         source="parent certificate %s" % params["parent_cert_path"])
    parent_key = c.load_private_key(_files.read_required(params["parent_key_path"], "parent key"),
                                    params["parent_key_passphrase"],
                                    source="parent key %s" % params["parent_key_path"])
    _x509.require_usable_ca(parent_cert, parent_key, source="parent certificate %s" % params["parent_cert_path"],
                            now=now)
    return parent_cert, parent_key


def certificate_fits(cert, key, params, parent_cert, now):
    if not c.same_public_key(cert.public_key(), key) or not _x509.is_ca(cert):
        return False
    if cert.subject != _x509.build_name(params["subject"]):
        return False
    if c.not_valid_after(cert) <= now:
        return False
    if _x509.describe_certificate(cert, now)["path_length"] != params["path_length"]:
        return False
    wanted_constraints = _x509.build_name_constraints(params["name_constraints_permitted"],
                                                      params["name_constraints_excluded"])
    if _x509.name_constraints_of(cert) != wanted_constraints:
        return False
    issuer = parent_cert if parent_cert is not None else cert
    return c.cert_signed_by(cert, issuer)


def check_options(params, parent):
    """The certificate's lifetime in days, with validity_days and path_length checked.

    The same checks in check mode and the real run, before anything is read or written.
    """
    if params["validity_days"] is None:
        validity_days = 1825 if parent else 3650
    else:
        validity_days = _policy.check_whole_number(params["validity_days"], "validity_days", 1,
                                                   _policy.MAX_VALIDITY_DAYS, "days")
    if params["path_length"] is not None:
        _policy.check_whole_number(params["path_length"], "path_length", 0, MAX_PATH_LENGTH, "CA certificates")
    return validity_days


def ensure_ca(module):
    """Check every option, then decide and write holding the key's lock (none in check mode, which writes nothing)."""
    params = module.params
    validity_days = check_options(params, parent=bool(params["parent_cert_path"]))
    now = c.utcnow()
    key_file = _module.ManagedFile(module, params["key_path"], mode=0o600, secret=True)
    cert_file = _module.ManagedFile(module, params["cert_path"], mode=_module.parse_mode(params["mode"], 0o644))
    key_file.check_writable()
    cert_file.check_writable()
    parent_cert, parent_key = load_parent(params, now)
    lock = contextlib.nullcontext() if module.check_mode else _files.exclusive_lock(params["key_path"] + ".lock")
    with lock:
        return ensure_key_and_certificate(module, key_file, cert_file, parent_cert, parent_key, validity_days, now)


def ensure_key_and_certificate(module, key_file, cert_file, parent_cert, parent_key, validity_days, now):
    """Read the key and certificate, keep or make them, and write: the whole sequence under the key's lock."""
    params = module.params
    diffs = []
    wanted_type = params["key_type"]
    wanted_size = params["key_size"] if params["key_size"] is not None else CA_DEFAULT_KEY_SIZE[wanted_type]
    if key_file.exists:
        key = c.load_private_key(key_file.current, params["key_passphrase"], source="CA key %s" % params["key_path"])
        if c.key_type_and_size(key) != (wanted_type, wanted_size):
            found_type, found_size = c.key_type_and_size(key)
            raise PkiError("CA key %s is %s %s, not the %s %s asked for; a new CA key means a CA rollover, "
                           "so it is never replaced here"
                           % (params["key_path"], found_type, found_size, wanted_type, wanted_size))
        key_content = key_file.current
        key_generated = False
    else:
        key = c.generate_private_key(wanted_type, wanted_size)
        key_content = c.serialize_private_key(key, params["key_passphrase"])
        key_generated = True

    cert = None
    if cert_file.exists and not params["force"] and not key_generated:
        try:
            existing = _x509.load_certificate(cert_file.current, source=params["cert_path"])
        except PkiError:
            existing = None
        if existing is not None and certificate_fits(existing, key, params, parent_cert, now):
            cert = existing
    cert_issued = cert is None
    if cert is None:
        not_before, not_after = _policy.validity_window(
            now, validity_days, CA_BACKDATE_SECONDS, c.not_valid_after(parent_cert) if parent_cert is not None else None)
        cert = _x509.build_ca_certificate(
            key, params["subject"], not_before, not_after, issuer_cert=parent_cert, issuer_key=parent_key,
            path_length=params["path_length"], permitted=params["name_constraints_permitted"],
            excluded=params["name_constraints_excluded"])
    cert_content = _x509.certificate_pem(cert) if cert_issued else cert_file.current

    changed = key_file.replace(key_content, diffs)
    changed = key_file.ensure_attributes(changed)
    changed = cert_file.replace(cert_content, diffs) or changed
    changed = cert_file.ensure_attributes(changed)
    facts = _x509.describe_certificate(cert, now)
    return dict(changed=changed, certificate=c.to_bytes(cert_content).decode("ascii"),
                subject=facts["subject_string"], serial=facts["serial"], not_before=facts["not_before"],
                not_after=facts["not_after"], fingerprint_sha256=facts["fingerprint_sha256"],
                public_key_fingerprint=facts["public_key_fingerprint"], root=parent_cert is None,
                key_generated=key_generated, cert_issued=cert_issued, diff=diffs)


def main():
    module = AnsibleModule(
        argument_spec=_params.argument_spec(
            ["file_attributes"],
            key_path=dict(type="path", required=True),
            key_passphrase=dict(type="str", no_log=True),
            key_type=dict(type="str", choices=["ec", "rsa", "ed25519"], default="ec"),
            key_size=dict(type="int"),
            cert_path=dict(type="path", required=True),
            subject=dict(type="dict", required=True),
            validity_days=dict(type="int"),
            path_length=dict(type="int"),
            name_constraints_permitted=dict(type="list", elements="str", default=[]),
            name_constraints_excluded=dict(type="list", elements="str", default=[]),
            parent_cert_path=dict(type="path"),
            parent_key_path=dict(type="path"),
            parent_key_passphrase=dict(type="str", no_log=True),
            force=dict(type="bool", default=False),
        ),
        required_together=[["parent_cert_path", "parent_key_path"]],
        supports_check_mode=True,
    )
    _module.run(module, ensure_ca)


if __name__ == "__main__":
    main()
