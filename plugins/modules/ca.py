#!/usr/bin/python
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ca
short_description: Make sure a root or intermediate certificate authority exists on the CA host
version_added: 0.1.0
description:
  - Ensures a CA key and certificate on the CA host. Without O(parent_cert_path) the CA is a self-signed root; with it
    and O(parent_key_path), an intermediate signed by the parent CA's key, which is read on this host and never leaves it.
  - "With O(parent_cert_path) alone, an intermediate whose parent's key is on another host (an offline root, or the
    controller): the parent's key is never on this host and this CA's key never leaves it. A run without
    O(certificate) keeps a certificate that fits; otherwise it returns RV(needs_certificate) and RV(csr), a CSR for
    this CA's key with the subject asked for, and writes nothing but the key. M(fleet.mtls.ca_certificate) signs that
    CSR on the parent's host, and a run with O(certificate) writes what it returns, once it fits exactly: this key,
    the subject, path length and name constraints asked for, a CA allowed to sign certificates and CRLs, issued by
    O(parent_cert_path) with a valid signature, valid now (and for O(renew_days_before) more days). A certificate that
    does not fit is refused with every reason, and every file is left byte-identical."
  - The certificate carries basicConstraints CA:TRUE and keyUsage keyCertSign, cRLSign (both critical), SKI, AKI and,
    when asked, a path length and name constraints (critical).
  - An existing key is always kept; one of another type than asked, or of another size than O(key_size) when set, is
    an error (a new CA key is a CA rollover, not a side effect). An existing certificate is kept while it matches the
    key, subject, constraints and parent and has not expired (nor, with O(renew_days_before), expires within that many
    days); otherwise it is re-issued for the same key, so certificates it signed keep verifying. RV(misfit_reasons)
    says why a certificate did not fit.
  - The key is written with mode V('0600'); O(mode) applies to the certificate (default V('0644')).
  - A run holds a lock on the file O(key_path) with C(.lock) appended from reading the key and certificate to
    writing them, so that two runs at the same time never leave a certificate for the other run's key. Check mode
    takes no lock and writes nothing.
  - Every option is checked before anything is read or written, in check mode too.
author:
  - fleet.mtls maintainers (@fleet-mtls)
extends_documentation_fragment:
  - fleet.mtls.key_spec
  - fleet.mtls.file_attributes
  - fleet.mtls.attributes.WRITES
  - fleet.mtls.attributes.CRYPTOGRAPHY
options:
  key_path:
    description: Path of the CA's private key. Made when missing.
    type: path
    required: true
  key_passphrase:
    description: Passphrase that encrypts the CA key. The value is never logged.
    type: str
  # key_type is the key_spec fragment's; key_size too, with a CA's own default sizes.
  key_size:
    description:
      - Size of the CA key in bits (for V(ec) the curve's), one that O(key_type) takes; any other is refused before
        anything is read or written. A new key gets this size, by default V(256) (P-256) for V(ec) and V(4096) for
        V(rsa). Leave it unset for V(ed25519).
      - Unset, an existing key of O(key_type) is kept whatever its size (a CA made with P-384 stays P-384). Set, an
        existing key of another size is an error.
      - P-256 (128-bit security) is the default because every full mutual-TLS handshake verifies the CA's signatures
        on the client's chain and on each CRL of the chain, and a P-384 verification costs about ten times a P-256
        one (with OpenSSL 3.0 on Debian 12, 0.78 ms against 0.07 ms, so 3.2 ms of a server's CPU per handshake
        against 0.3 ms).
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
      - Refused for an intermediate signed elsewhere (O(parent_cert_path) without O(parent_key_path)); the parent's
        host decides its lifetime (M(fleet.mtls.ca_certificate)).
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
    description:
      - Certificate of the CA that signs this one. Set it for an intermediate CA.
      - It must be a CA allowed to sign certificates, valid now; for an intermediate signed elsewhere, its path length
        must allow a CA below it.
    type: path
  parent_key_path:
    description:
      - Private key of the parent CA, on this host, which then signs this CA's certificate here.
      - Without it the intermediate is signed elsewhere; see O(certificate).
    type: path
  parent_key_passphrase:
    description: Passphrase of the parent CA key. The value is never logged.
    type: str
  certificate:
    description:
      - For an intermediate signed elsewhere (O(parent_cert_path) without O(parent_key_path)), the CA certificate in
        PEM that the parent's host signed from RV(csr), such as RV(fleet.mtls.ca_certificate#module:certificate).
      - It is written to O(cert_path) only when it fits (see the description); otherwise the run fails naming every
        reason, and no file changes. An empty value is the same as none.
      - It must hold the one certificate alone, no chain and no key.
    type: str
  renew_days_before:
    description:
      - A certificate that expires within this many days no longer fits, unless it lasts as long as its parent
        does; from V(0) to V(36500), and below O(validity_days). Unset, a certificate fits until it expires.
      - Give M(fleet.mtls.ca_certificate) the same value, so that the certificate it signs is one this module keeps.
    type: int
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

# An offline root: the root's key is on the host "root1" only; the issuing CA's key never leaves "ca1".
- name: Issuing CA key, and a CSR when no fitting certificate is there
  fleet.mtls.ca:
    key_path: /etc/fleet-ca/issuing.key
    cert_path: /etc/fleet-ca/issuing.crt
    subject: {CN: Fleet Issuing CA 1, O: Example}
    path_length: 0
    parent_cert_path: /etc/fleet-ca/root.crt
  delegate_to: ca1
  register: issuing

- name: The root signs it, deciding subject, constraints and lifetime itself
  fleet.mtls.ca_certificate:
    csr: "{{ issuing.csr }}"
    ca_cert_path: /etc/fleet-root/root.crt
    ca_key_path: /etc/fleet-root/root.key
    subject: {CN: Fleet Issuing CA 1, O: Example}
    path_length: 0
    validity_days: 1825
    index_path: /etc/fleet-root/index.db
    name: issuing
  delegate_to: root1
  when: issuing.needs_certificate
  register: issuing_signed

- name: The issuing CA installs it, once it fits
  fleet.mtls.ca:
    key_path: /etc/fleet-ca/issuing.key
    cert_path: /etc/fleet-ca/issuing.crt
    subject: {CN: Fleet Issuing CA 1, O: Example}
    path_length: 0
    parent_cert_path: /etc/fleet-ca/root.crt
    certificate: "{{ issuing_signed.certificate }}"
  delegate_to: ca1
  when: issuing.needs_certificate
"""

RETURN = r"""
certificate:
  description: The CA certificate in PEM; null while RV(needs_certificate).
  returned: success
  type: str
subject:
  description: The CA's subject as RFC 4514 text.
  returned: success
  type: str
serial:
  description: Serial number in upper-case hex; null while RV(needs_certificate).
  returned: success
  type: str
not_before:
  description: Start of validity (ISO 8601, UTC); null while RV(needs_certificate).
  returned: success
  type: str
not_after:
  description: End of validity (ISO 8601, UTC); null while RV(needs_certificate).
  returned: success
  type: str
fingerprint_sha256:
  description: SHA-256 fingerprint of the certificate; null while RV(needs_certificate).
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
  description:
    - Whether a new certificate was (or would be) written to O(cert_path) in this run, issued here or, with
      O(certificate), the one given.
  returned: success
  type: bool
needs_certificate:
  description:
    - For an intermediate signed elsewhere without O(certificate), whether no fitting certificate is there, so that
      RV(csr) is to be signed on the parent's host (M(fleet.mtls.ca_certificate)). Always false otherwise.
  returned: success
  type: bool
csr:
  description:
    - When RV(needs_certificate), the CSR in PEM for this CA's key, with the subject asked for and basicConstraints
      CA:TRUE; null otherwise. It is written nowhere.
    - In check mode, when the key would be made, it is the CSR of a key that is not kept.
  returned: success
  type: str
misfit_reasons:
  description: Why the certificate found at O(cert_path) did not fit (it was replaced, or is asked for); empty when it fit.
  returned: success
  type: list
  elements: str
"""

import contextlib

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils import _ca
from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _files
from ansible_collections.fleet.mtls.plugins.module_utils import _module
from ansible_collections.fleet.mtls.plugins.module_utils import _params
from ansible_collections.fleet.mtls.plugins.module_utils import _x509
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError

# A CA outlives its leaves: a stronger RSA key than key_spec's default (EC stays P-256: see key_size's doc).
CA_DEFAULT_KEY_SIZE = {"ec": 256, "rsa": 4096, "ed25519": None}


def signed_elsewhere(params):
    """An intermediate whose parent's key is on another host: it asks with a CSR and is handed its certificate."""
    return bool(params["parent_cert_path"]) and not params["parent_key_path"]


def check_options(params):
    """(wanted, validity_days, renew_days_before, the given certificate or None), every option checked.

    The same checks in check mode and the real run, before anything is read or written.
    """
    elsewhere = signed_elsewhere(params)
    if not elsewhere:
        validity_days = _ca.check_validity_days(params["validity_days"], intermediate=bool(params["parent_cert_path"]))
    elif params["validity_days"] is not None:
        raise PkiError("validity_days is decided where the parent's key is: give it to fleet.mtls.ca_certificate, "
                       "not to an intermediate signed elsewhere")
    else:
        validity_days = None
    new_key_size(params)
    wanted = _ca.Wanted(params["subject"], params["path_length"], params["name_constraints_permitted"],
                        params["name_constraints_excluded"])
    renew_days_before = _ca.check_renew_days_before(params["renew_days_before"], validity_days)
    given = None
    if params["certificate"] is not None and params["certificate"].strip():
        certificates = _x509.load_certificates(params["certificate"], source="certificate")
        if len(certificates) != 1:
            raise PkiError("certificate holds %d certificates; give the CA certificate alone" % len(certificates))
        given = certificates[0]
    return wanted, validity_days, renew_days_before, given


def load_parent(params, now):
    """The parent's certificate, checked usable, and its key when it is on this host."""
    if not params["parent_cert_path"]:
        return None, None
    source = "parent certificate %s" % params["parent_cert_path"]
    parent_cert = _x509.load_certificate(_files.read_required(params["parent_cert_path"], "parent certificate"),
                                         source=source)
    parent_key = None
    if params["parent_key_path"]:
        parent_key = c.load_private_key(_files.read_required(params["parent_key_path"], "parent key"),
                                        params["parent_key_passphrase"],
                                        source="parent key %s" % params["parent_key_path"])
    _x509.require_usable_ca(parent_cert, parent_key, source=source, now=now)
    if parent_key is None:
        _ca.require_may_certify_ca(parent_cert, source)
    return parent_cert, parent_key


def ensure_ca(module):
    """Check every option, then decide and write holding the key's lock (none in check mode, which writes nothing)."""
    params = module.params
    wanted, validity_days, renew_days_before, given = check_options(params)
    now = c.utcnow()
    key_file = _module.ManagedFile(module, params["key_path"], mode=0o600, secret=True)
    cert_file = _module.ManagedFile(module, params["cert_path"], mode=_module.parse_mode(params["mode"], 0o644))
    key_file.check_writable()
    cert_file.check_writable()
    parent_cert, parent_key = load_parent(params, now)
    if given is not None and not key_file.exists:
        raise PkiError("CA key %s does not exist: a certificate signed elsewhere is installed only next to the key its "
                       "CSR came from" % params["key_path"])
    lock = contextlib.nullcontext() if module.check_mode else _files.exclusive_lock(params["key_path"] + ".lock")
    with lock:
        return ensure_key_and_certificate(module, key_file, cert_file, wanted, parent_cert, parent_key,
                                          validity_days, renew_days_before, given, now)


def new_key_size(params):
    """The size of a new CA key: key_size, checked by the key_spec group, unset the CA's default for the type."""
    return _params.new_key_size(params["key_type"], params["key_size"], CA_DEFAULT_KEY_SIZE)


def ensure_key(params, key_file):
    """(key, its PEM, whether it is new): the existing key, of the type (and the size, when asked) asked, or a new one.

    A new key is not yet written. Without key_size, an existing key of the type is kept at whatever size it has.
    """
    wanted_type = params["key_type"]
    wanted_size = new_key_size(params)
    if not key_file.exists:
        key = c.generate_private_key(wanted_type, wanted_size)
        return key, c.serialize_private_key(key, params["key_passphrase"]), True
    key = c.load_private_key(key_file.current, params["key_passphrase"], source="CA key %s" % params["key_path"])
    if not c.key_fits(key, wanted_type, wanted_size if params["key_size"] is not None else None):
        found_type, found_size = c.key_type_and_size(key)
        raise PkiError("CA key %s is %s %s, not the %s %s asked for; a new CA key means a CA rollover, "
                       "so it is never replaced here"
                       % (params["key_path"], found_type, found_size, wanted_type, wanted_size))
    return key, key_file.current, False


def ensure_key_and_certificate(module, key_file, cert_file, wanted, parent_cert, parent_key, validity_days,
                               renew_days_before, given, now):
    """Read the key and certificate, keep or make them, and write: the whole sequence under the key's lock.

    A root or an intermediate with its parent's key here: a certificate that
    does not fit is issued anew for the same key. An intermediate signed
    elsewhere: without a certificate given, one that does not fit is asked
    for with a CSR and only the key is written; a certificate given is
    written only when it fits, else refused with every file as it was.
    """
    params = module.params
    diffs = []
    key, key_content, key_generated = ensure_key(params, key_file)
    existing, reasons = _ca.current_misfits(cert_file.current, key, wanted, parent_cert, now, renew_days_before,
                                            source=params["cert_path"])
    needed = bool(reasons) or params["force"]
    csr = None
    if given is not None:
        refused = _ca.misfits(given, key, wanted, parent_cert, now, renew_days_before)
        if refused:
            raise PkiError("certificate does not fit the CA %s: %s; nothing was written"
                           % (params["cert_path"], "; ".join(refused)))
        cert, cert_content = given, _x509.certificate_pem(given)
    elif not needed:
        cert, cert_content = existing, cert_file.current
    elif parent_cert is not None and parent_key is None:
        cert, cert_content = None, None
        csr = _x509.csr_pem(_ca.build_csr(key, wanted)).decode("ascii")
    else:
        cert = _ca.issue(key, wanted, parent_cert, parent_key, validity_days, now)
        cert_content = _x509.certificate_pem(cert)

    changed = key_file.replace(key_content, diffs)
    changed = key_file.ensure_attributes(changed)
    cert_issued = False
    if cert is not None:
        cert_issued = cert_file.replace(cert_content, diffs)
        changed = cert_file.ensure_attributes(cert_issued or changed)
    facts = _x509.describe_certificate(cert, now) if cert is not None else {}
    return dict(changed=changed, certificate=c.to_bytes(cert_content).decode("ascii") if cert is not None else None,
                subject=facts.get("subject_string", _x509.name_to_string(wanted.name)), serial=facts.get("serial"),
                not_before=facts.get("not_before"), not_after=facts.get("not_after"),
                fingerprint_sha256=facts.get("fingerprint_sha256"), public_key_fingerprint=c.public_key_fingerprint(key),
                root=parent_cert is None, key_generated=key_generated, cert_issued=cert_issued,
                needs_certificate=csr is not None, csr=csr, misfit_reasons=reasons, diff=diffs)


def main():
    module = AnsibleModule(
        argument_spec=_params.argument_spec(
            ["file_attributes", "key_spec"],
            key_path=dict(type="path", required=True),
            key_passphrase=dict(type="str", no_log=True),
            cert_path=dict(type="path", required=True),
            subject=dict(type="dict", required=True),
            validity_days=dict(type="int"),
            path_length=dict(type="int"),
            name_constraints_permitted=dict(type="list", elements="str", default=[]),
            name_constraints_excluded=dict(type="list", elements="str", default=[]),
            parent_cert_path=dict(type="path"),
            parent_key_path=dict(type="path"),
            parent_key_passphrase=dict(type="str", no_log=True),
            certificate=dict(type="str"),
            renew_days_before=dict(type="int"),
            force=dict(type="bool", default=False),
        ),
        required_by=dict(parent_key_path="parent_cert_path", certificate="parent_cert_path"),
        mutually_exclusive=[["certificate", "parent_key_path"]],
        supports_check_mode=True,
    )
    _module.run(module, ensure_ca)


if __name__ == "__main__":
    main()
