# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Batch signing on the CA host: check every request, then sign them all.

A batch is all or nothing: every CSR is parsed, its signature verified and
its names checked against the policy before the first certificate is
signed, so one bad request never leaves half a fleet re-issued.
"""

from __future__ import annotations

from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _policy
from ansible_collections.fleet.mtls.plugins.module_utils import _x509
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError


class Request(object):
    """One checked CSR, ready to sign."""

    def __init__(self, name, csr, common_name, sans, profile, validity_days, requester):
        self.name = name
        self.csr = csr
        self.common_name = common_name
        self.sans = sans
        self.profile = profile
        self.validity_days = validity_days
        self.requester = requester


def check_requests(items, policy, default_profile=None, default_validity_days=90, backdate_seconds=300):
    """Parse and check every item, and the batch's own lifetime options.

    The one validation of a batch: check mode and the real run both call it
    before anything is signed or written, so they refuse the same input.

    An item is {name, csr, profile?, validity_days?, requester?, common_name?,
    subject_alt_names?}. common_name and subject_alt_names are what the
    caller (the controller, from its inventory) authorizes for the requester:
    the CSR must ask for exactly those names, and the subject is built from
    common_name. A request may shorten default_validity_days, never extend it.
    """
    _policy.check_leaf_lifetime(default_validity_days, backdate_seconds)
    requests = []
    seen = set()
    for position, item in enumerate(items):
        name = item.get("name")
        if not name:
            raise PkiError("CSR #%d has no name" % (position + 1))
        if name in seen:
            raise PkiError("CSR name %s appears twice in the batch" % name)
        seen.add(name)
        if not item.get("csr"):
            raise PkiError("CSR %s has no csr content" % name)
        # The hash first: a weak one is refused as such, whether or not this
        # cryptography can still verify it.
        csr = _x509.load_csr(item["csr"], source="CSR %s" % name, verify=False)
        _policy.check_csr_signature_hash(csr, name)
        _x509.require_valid_signature(csr, source="CSR %s" % name)
        common_name = _policy.leaf_common_name(csr, name, item.get("common_name"))
        sans = _policy.check_csr(csr, name, policy, common_name)
        _policy.check_identity(sans, name, item.get("subject_alt_names"))
        profile = _policy.profile_for(csr, item.get("profile") or default_profile, name)
        validity_days = _policy.check_validity_days(item.get("validity_days"), name, default_validity_days)
        requests.append(Request(name, csr, common_name, sans, profile, validity_days, item.get("requester") or name))
    return requests


def sign_requests(requests, ca_cert, ca_key, now, backdate_seconds=300):
    """Sign checked requests; returns [(request, certificate)] in input order."""
    issued = []
    serials = set()
    for request in requests:
        not_before, not_after = _policy.validity_window(now, request.validity_days, backdate_seconds,
                                                        c.not_valid_after(ca_cert))
        serial = _x509.random_serial()
        while serial in serials:
            serial = _x509.random_serial()
        serials.add(serial)
        cert = _x509.build_leaf_certificate(request.csr, request.common_name, ca_cert, ca_key, request.sans,
                                            _policy.PROFILES[request.profile], not_before, not_after, serial)
        issued.append((request, cert))
    return issued


def index_entry(request, cert, ca_cert, now):
    return record_entry(request.name, request.requester, request.profile, cert, ca_cert, now)


def record_entry(name, requester, profile, cert, ca_cert, now):
    """The CA record's entry for a certificate it issued (a leaf here, a subordinate CA in ca_certificate)."""
    facts = _x509.describe_certificate(cert, now)
    return {
        "serial": facts["serial"],
        "name": name,
        "requester": requester,
        "profile": profile,
        "subject": facts["subject_string"],
        "subject_alt_names": facts["subject_alt_names"],
        "not_before": facts["not_before"],
        "not_after": facts["not_after"],
        "fingerprint_sha256": facts["fingerprint_sha256"],
        "issuer": _x509.name_to_string(ca_cert.subject),
        "issued_at": c.isoformat(now),
        "revoked_at": None,
        "revocation_reason": None,
    }
