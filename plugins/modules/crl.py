#!/usr/bin/python
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: crl
short_description: Revoke certificates and keep the CA's CRL current
version_added: 0.1.0
description:
  - Generates the CA's certificate revocation list from the revoked entries of its index (see M(fleet.mtls.sign)) and
    from an explicit list of serials, with the CRL Number and Authority Key Identifier extensions.
  - O(revoke) marks certificates revoked in the index first, by serial, by the name they were signed under, by their
    SPIFFE ID or by the host they were issued to. An item that matches no certificate fails the run before anything is
    written.
  - The CRL is re-signed only when its content would change or it comes close to its C(next_update) (O(refresh_days));
    otherwise nothing changes. Each new CRL's number is above every number this CA published before, as the index
    records it and as the current CRL carries it.
  - The revocations and the new CRL number are written to the index in one transaction, before the CRL file; a CRL
    that could not be written leaves a revocation recorded, which the next run publishes, never a published revocation
    the index forgot.
  - A run holds the CA's lock, the index's path with C(.lock) appended (also with O(use_index=false)), from
    reading the current CRL and the index to writing both, so that runs at the same time publish one CRL after the
    other, with distinct, increasing numbers. Check mode takes no lock and writes nothing.
  - Every option is checked before the lock is taken or anything is read, in check mode too.
  - Servers reject every client once a CRL they load has expired, so keep the schedule that re-runs this module well
    inside O(next_update_days), and deploy CRLs with the service roles, which refuse an expired one.
author:
  - fleet.mtls maintainers (@fleet-mtls)
extends_documentation_fragment:
  - fleet.mtls.ca_signer
  - fleet.mtls.file_attributes
  - fleet.mtls.attributes.WRITES
  - fleet.mtls.attributes.CRYPTOGRAPHY
options:
  path:
    description: Where the PEM CRL is written on the CA host.
    type: path
    required: true
  index_path:
    description:
      - The CA's index, the SQLite record M(fleet.mtls.sign) writes. Default V(index.db) beside O(ca_cert_path).
      - A path ending in V(.json) names the JSON index of earlier releases; the record is then the V(.db) file beside
        it, into which the first run that writes imports the JSON.
    type: path
  use_index:
    description: Put the index's revoked entries in the CRL. Set V(false) to publish only O(serials).
    type: bool
    default: true
  revoke:
    description: Certificates to mark revoked in the index before the CRL is made.
    type: list
    elements: dict
    default: []
    suboptions:
      serial:
        description: Serial in hex (colons allowed). Exactly one of O(revoke[].serial), O(revoke[].name),
          O(revoke[].spiffe_id) and O(revoke[].host).
        type: str
      name:
        description: Revoke every certificate issued under this request name (for example a decommissioned host).
        type: str
      spiffe_id:
        description: Revoke every certificate issued with this SPIFFE ID (its C(spiffe://) URI SAN).
        type: str
      host:
        description:
          - Revoke every certificate issued to this host, that is every one whose request name is
            V(<host>/<certificate name>) (for example a decommissioned host with several certificates).
          - The host alone, without C(/). V(web1) matches V(web1/server) and V(web1/client), never V(web10/server) or
            V(web1x/server).
        type: str
      reason:
        description: The CRL reason.
        type: str
        default: unspecified
        choices: [unspecified, key_compromise, ca_compromise, affiliation_changed, superseded,
                  cessation_of_operation, certificate_hold, privilege_withdrawn, aa_compromise]
  serials:
    description: Serials to list as revoked that the index does not know (for example issued by an older tool).
    type: list
    elements: dict
    default: []
    suboptions:
      serial:
        description: Serial in hex.
        type: str
        required: true
      reason:
        description: The CRL reason.
        type: str
        default: unspecified
        choices: [unspecified, key_compromise, ca_compromise, affiliation_changed, superseded,
                  cessation_of_operation, certificate_hold, privilege_withdrawn, aa_compromise]
      revocation_date:
        description: When it was revoked (ISO 8601), not before 1950. Default the CRL's first listing of it, or now.
        type: str
  next_update_days:
    description: How long the CRL stays valid, in days, from V(1) to V(3650) (ten years).
    type: int
    default: 7
  refresh_days:
    description:
      - Re-sign an unchanged CRL once less than this is left before its C(next_update). Default half of
        O(next_update_days).
      - From V(0) (only once it has expired) to O(next_update_days) (on every run).
    type: float
seealso:
  - module: fleet.mtls.sign
  - module: fleet.mtls.ca_index_info
"""

EXAMPLES = r"""
- name: Revoke a decommissioned host's certificates and publish the CRL
  fleet.mtls.crl:
    ca_cert_path: /etc/fleet-ca/issuing.crt
    ca_key_path: /etc/fleet-ca/issuing.key
    path: /etc/fleet-ca/issuing.crl
    revoke:
      - name: old-web7
        reason: cessation_of_operation

- name: Revoke every certificate of a decommissioned host, whatever its certificates are called
  fleet.mtls.crl:
    ca_cert_path: /etc/fleet-ca/issuing.crt
    ca_key_path: /etc/fleet-ca/issuing.key
    path: /etc/fleet-ca/issuing.crl
    revoke:
      - host: web7
        reason: cessation_of_operation

- name: Keep the CRL fresh (scheduled)
  fleet.mtls.crl:
    ca_cert_path: /etc/fleet-ca/issuing.crt
    ca_key_path: /etc/fleet-ca/issuing.key
    path: /etc/fleet-ca/issuing.crl
"""

RETURN = r"""
crl:
  description: The CRL in PEM.
  returned: success
  type: str
crl_number:
  description: The CRL Number.
  returned: success
  type: int
last_update:
  description: When it was signed (ISO 8601, UTC).
  returned: success
  type: str
next_update:
  description: When it expires (ISO 8601, UTC).
  returned: success
  type: str
revoked_serials:
  description: Serials the CRL lists, upper-case hex.
  returned: success
  type: list
  elements: str
newly_revoked:
  description: Serials that O(revoke) marked revoked in this run.
  returned: success
  type: list
  elements: str
"""

import contextlib
import datetime

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils import _crl
from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _index
from ansible_collections.fleet.mtls.plugins.module_utils import _module
from ansible_collections.fleet.mtls.plugins.module_utils import _params
from ansible_collections.fleet.mtls.plugins.module_utils import _x509
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError

REASONS = list(_index.REVOCATION_REASONS)
# What a revoke item names its certificates by: exactly one of these.
SELECTORS = ("serial", "name", "spiffe_id", "host")


def check_revoke_items(items):
    """The revoke items, checked before anything is locked or read: each names exactly one of SELECTORS."""
    checked = []
    for item in items:
        if item.get("host") is not None:
            _index.check_host(item["host"])
        given = [key for key in SELECTORS if item.get(key)]
        if len(given) != 1:
            raise PkiError("each revoke item needs exactly one of serial, name, spiffe_id and host")
        if item.get("spiffe_id") and not item["spiffe_id"].startswith("spiffe://"):
            raise PkiError("revoke spiffe_id %r is not a spiffe:// URI" % item["spiffe_id"])
        checked.append(dict(serial=_index.normalize_serial(item["serial"]) if item.get("serial") else None,
                            name=item.get("name") or None, spiffe_id=item.get("spiffe_id") or None,
                            host=item.get("host") or None, reason=item["reason"]))
    return checked


def check_listed_serials(items):
    """(serial, revocation date or None, reason) of each serials item, checked."""
    listed = []
    for item in items:
        serial = _index.normalize_serial(item["serial"])
        when = _crl.parse_revocation_date(item["revocation_date"], serial) if item.get("revocation_date") else None
        listed.append((serial, when, item.get("reason") or "unspecified"))
    return listed


def mark_revoked(index, requests, now):
    """Mark every item's certificates revoked; an item that matches none fails the whole transaction."""
    newly = []
    for item in requests:
        entries = index.find(serial=item["serial"], name=item["name"], spiffe_id=item["spiffe_id"], host=item["host"])
        if not entries and item["host"]:
            raise PkiError("the index has no certificate of host %s (no request name starting with %s/)"
                           % (item["host"], item["host"]))
        if not entries:
            key = [k for k in SELECTORS if item[k]][0]
            raise PkiError("the index has no certificate with %s %s" % (key.replace("_", " "), item[key]))
        for entry in entries:
            if index.revoke(entry, c.isoformat(now), item["reason"]):
                newly.append(entry["serial"])
    return newly


def index_revocations(index, now):
    # Entries of certificates that have expired anyway may leave the CRL (RFC 5280 3.3).
    return [_crl.Revocation(e["serial"], c.parse_isoformat(e["revoked_at"]), e["revocation_reason"])
            for e in index.revoked(not_after_after=c.isoformat(now))]


def crl_scope(ca_cert):
    """What the index keys a CA's CRL numbers on: its key, which a renewed CA certificate keeps."""
    return "sha256:" + c.public_key_fingerprint(ca_cert.public_key())


def ensure_crl(module):
    """Check every option, then publish holding the CA's lock (none in check mode, which writes nothing)."""
    params = module.params
    next_update_days, refresh_days = _crl.check_schedule(params["next_update_days"], params["refresh_days"])
    if params["revoke"] and not params["use_index"]:
        raise PkiError("revoke marks entries in the index; it cannot be used with use_index=false")
    revoke = check_revoke_items(params["revoke"])
    listed = check_listed_serials(params["serials"])
    ca_cert, ca_key = _module.load_ca_signer(params, c.utcnow())
    usage = _x509.extension_value(ca_cert, _x509.x509.KeyUsage)
    if usage is not None and not usage.crl_sign:
        raise PkiError("CA certificate %s may not sign CRLs: keyUsage lacks cRLSign" % params["ca_cert_path"])
    crl_file = _module.ManagedFile(module, params["path"], mode=_module.parse_mode(params["mode"], 0o644))
    crl_file.check_writable()
    index_path = params["index_path"] or _index.default_path(params["ca_cert_path"])

    lock = contextlib.nullcontext() if module.check_mode else _index.ca_lock(index_path)
    with lock:
        # The clock is read once the lock is held: CRLs written one after another have rising
        # lastUpdate times as well as rising numbers.
        return publish(module, ca_cert, ca_key, crl_file, index_path, revoke, listed,
                       next_update_days, refresh_days, c.utcnow())


def publish(module, ca_cert, ca_key, crl_file, index_path, revoke, listed, next_update_days, refresh_days, now):
    """Read the current CRL and the index, decide, and write: the whole sequence under the CA's lock."""
    existing = None
    if crl_file.exists:
        try:
            existing = _crl.load_crl(crl_file.current, source=crl_file.path)
        except PkiError:
            existing = None  # an unreadable CRL is replaced; it holds nothing secret
    if not module.params["use_index"]:
        crl, content = decide(ca_cert, ca_key, existing, crl_file, [], listed, next_update_days, refresh_days, now,
                              None)
        return written(crl_file, crl, content, [], now)
    # One transaction: the revocations and the number of the CRL that lists them. It is committed before the
    # CRL is written, so that a failed write leaves the revocation to the next run rather than forgotten.
    with _index.CertificateIndex(index_path, save=not module.check_mode, locked=True) as index:
        newly = mark_revoked(index, revoke, now)
        crl, content = decide(ca_cert, ca_key, existing, crl_file, index_revocations(index, now), listed,
                              next_update_days, refresh_days, now, index)
    return written(crl_file, crl, content, newly, now)


def decide(ca_cert, ca_key, existing, crl_file, revocations, listed, next_update_days, refresh_days, now, index):
    """The CRL to publish: the current one while it is up to date, else a new one with the next number."""
    first_listed = dict((r.serial, r.revoked_at) for r in (_crl.revocations_in(existing) if existing else []))
    for serial, when, reason in listed:
        revocations.append(_crl.Revocation(serial, when or first_listed.get(serial, now), reason))
    by_serial = {}
    for revocation in revocations:
        by_serial.setdefault(revocation.serial, revocation)
    revocations = list(by_serial.values())

    if existing is not None and _crl.is_current(existing, ca_cert, revocations, now,
                                                datetime.timedelta(days=refresh_days)):
        return existing, crl_file.current
    last = _crl.crl_number(existing) if existing is not None and c.crl_signed_by(existing, ca_cert) else 0
    number = index.next_crl_number(crl_scope(ca_cert), last) if index is not None else last + 1
    crl = _crl.build_crl(ca_cert, ca_key, revocations, number, now, next_update_days)
    return crl, _crl.crl_pem(crl)


def written(crl_file, crl, content, newly, now):
    diffs = []
    changed = crl_file.replace(content, diffs) or bool(newly)
    changed = crl_file.ensure_attributes(changed)
    facts = _crl.describe_crl(crl, now)
    return dict(changed=changed, crl=c.to_bytes(content).decode("ascii"), crl_number=facts["crl_number"],
                last_update=facts["last_update"], next_update=facts["next_update"],
                revoked_serials=facts["revoked_serials"], newly_revoked=newly, diff=diffs)


def main():
    module = AnsibleModule(
        argument_spec=_params.argument_spec(
            ["ca_signer", "file_attributes"],
            path=dict(type="path", required=True),
            index_path=dict(type="path"),
            use_index=dict(type="bool", default=True),
            revoke=dict(type="list", elements="dict", default=[], options=dict(
                serial=dict(type="str"),
                name=dict(type="str"),
                spiffe_id=dict(type="str"),
                host=dict(type="str"),
                reason=dict(type="str", default="unspecified", choices=REASONS),
            )),
            serials=dict(type="list", elements="dict", default=[], options=dict(
                serial=dict(type="str", required=True),
                reason=dict(type="str", default="unspecified", choices=REASONS),
                revocation_date=dict(type="str"),
            )),
            next_update_days=dict(type="int", default=7),
            refresh_days=dict(type="float"),
        ),
        supports_check_mode=True,
    )
    _module.run(module, ensure_crl)


if __name__ == "__main__":
    main()
