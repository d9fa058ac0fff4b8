# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Installing a signed certificate on its host, next to its key (certificate_files, certificate_request).

The certificate must match the key (a pending renewal key first), be valid
now and be issued by the first certificate of its chain, all checked before
the first file is written: a service is never reloaded onto a broken pair.
"""

from __future__ import annotations

from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _files
from ansible_collections.fleet.mtls.plugins.module_utils import _module
from ansible_collections.fleet.mtls.plugins.module_utils import _x509
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError


def check_pair(cert, chain, key_data, passphrase, key_source, now):
    """Refuse a certificate that a server could not serve with this key."""
    key = c.load_private_key(key_data, passphrase, source=key_source)
    if not c.same_public_key(cert.public_key(), key):
        return False
    facts = _x509.describe_certificate(cert, now)
    if facts["expired"]:
        raise PkiError("certificate %s expired on %s" % (facts["subject_string"], facts["not_after"]))
    if facts["not_yet_valid"]:
        raise PkiError("certificate %s is not valid before %s" % (facts["subject_string"], facts["not_before"]))
    if chain and not c.cert_signed_by(cert, chain[0]):
        raise PkiError("certificate %s was not issued by the first certificate of its chain (%s)"
                       % (facts["subject_string"], _x509.name_to_string(chain[0].subject)))
    return True


def install_certificate(files, params, now, diffs, label="certificate"):
    """Install one signed certificate next to its key; what changed.

    files: the run's _module.Files (check mode, how files are written).

    params: certificate, chain, privatekey_path, privatekey_passphrase,
    pending_privatekey_path, cert_path, chain_path, fullchain_path,
    combined_path, mode, key_mode, owner, group (as certificate_files takes them).
    Everything is checked before the first file is written.
    """
    cert = _x509.load_certificate(params["certificate"], source=label)
    chain = _x509.load_certificates(params["chain"], source=label + " chain") if params["chain"].strip() else []
    cert_pem = _x509.certificate_pem(cert)
    chain_pem = b"".join(_x509.certificate_pem(x) for x in chain)

    pending = _files.read_bytes(params["pending_privatekey_path"]) if params["pending_privatekey_path"] else None
    promote = False
    if pending is not None and check_pair(cert, chain, pending, params["privatekey_passphrase"],
                                          "pending key %s" % params["pending_privatekey_path"], now):
        key_data, promote = pending, True
    else:
        key_data = _files.read_required(params["privatekey_path"], "private key")
        if not check_pair(cert, chain, key_data, params["privatekey_passphrase"],
                          "private key %s" % params["privatekey_path"], now):
            raise PkiError("certificate %s does not match key %s%s" % (
                _x509.name_to_string(cert.subject), params["privatekey_path"],
                " nor pending key %s" % params["pending_privatekey_path"] if pending is not None else ""))
    if params["combined_path"] and c.is_encrypted_pem(key_data):
        raise PkiError("combined_path needs an unencrypted key: HAProxy cannot be given a passphrase")

    mode = _module.parse_mode(params["mode"], 0o644)
    key_mode = _module.parse_mode(params["key_mode"], 0o600)
    planned = [(params["cert_path"], cert_pem, mode, False)]
    if params["chain_path"]:
        planned.append((params["chain_path"], chain_pem, mode, False))
    if params["fullchain_path"]:
        planned.append((params["fullchain_path"], cert_pem + chain_pem, mode, False))
    if params["combined_path"]:
        planned.append((params["combined_path"], cert_pem + chain_pem + key_data, key_mode, True))
    if promote:
        planned.insert(0, (params["privatekey_path"], key_data, key_mode, True))
    targets = [(files.managed(path, file_mode, secret=secret, owner=params["owner"], group=params["group"]), content)
               for path, content, file_mode, secret in planned]
    for target, _content in targets:
        target.check_writable()

    changed_files = []
    for target, content in targets:
        if target.ensure_attributes(target.replace(content, diffs)):
            changed_files.append(target.path)
    if promote and not files.check_mode:
        _files.remove(params["pending_privatekey_path"])
    return dict(changed=bool(changed_files) or promote, changed_files=changed_files, key_promoted=promote,
                serial=c.serial_hex(cert.serial_number), not_after=c.isoformat(c.not_valid_after(cert)))
