# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A CA's own certificate: what it must say, whether one fits, and how it is asked for and issued.

``ca`` keeps a root or an intermediate CA. When the parent's key is on
another host (an offline root), ``ca`` asks for its certificate with a CSR
(build_csr) and installs what comes back only once it fits;
``ca_certificate``, on the parent's host, signs that CSR (check_csr, then
issue). Both decide "does this certificate fit" with misfits(), and every
CA certificate is built by issue() with ``_x509.build_ca_certificate()``:
the certificate the root signs is the one the issuing host accepts, and
the next run on the issuing host keeps it.

No Ansible here: the modules turn a PkiError into a failure.
"""

from __future__ import annotations

import datetime

from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _policy
from ansible_collections.fleet.mtls.plugins.module_utils import _x509
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError

if c.HAS_CRYPTOGRAPHY:
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm

# No chain is longer: OpenSSL's default verify depth is 100, so a larger path length could never be used.
MAX_PATH_LENGTH = 100
# A new CA certificate starts this long before now, for clocks a little behind.
BACKDATE_SECONDS = 300
# Lifetimes when none is asked for, in days.
ROOT_VALIDITY_DAYS = 3650
INTERMEDIATE_VALIDITY_DAYS = 1825


class Wanted(object):
    """What a CA certificate must say: a subject with a CN, a path length, name constraints. Checked when made."""

    def __init__(self, subject, path_length=None, permitted=None, excluded=None):
        if path_length is not None:
            _policy.check_whole_number(path_length, "path_length", 0, MAX_PATH_LENGTH, "CA certificates")
        self.subject = subject
        self.name = _x509.build_name(subject)
        if _x509.common_name(self.name) is None:
            raise PkiError("a CA subject needs a CN")
        self.path_length = path_length
        self.permitted = list(permitted or [])
        self.excluded = list(excluded or [])
        self.name_constraints = _x509.build_name_constraints(self.permitted, self.excluded)


def check_validity_days(validity_days, intermediate):
    """The lifetime in days: the one asked for, within its bounds, or the default of a root or an intermediate."""
    if validity_days is None:
        return INTERMEDIATE_VALIDITY_DAYS if intermediate else ROOT_VALIDITY_DAYS
    return _policy.check_whole_number(validity_days, "validity_days", 1, _policy.MAX_VALIDITY_DAYS, "days")


def check_renew_days_before(renew_days_before, validity_days=None):
    """renew_days_before within its bounds and, when the lifetime is known, below it (else every run renews)."""
    if renew_days_before is None:
        return None
    _policy.check_whole_number(renew_days_before, "renew_days_before", 0, _policy.MAX_VALIDITY_DAYS, "days")
    if validity_days is not None and renew_days_before >= validity_days:
        raise PkiError("renew_days_before (%d) must be less than validity_days (%d): a new certificate would be "
                       "due for renewal at once" % (renew_days_before, validity_days))
    return renew_days_before


def _extension(cert, extension_class):
    try:
        return cert.extensions.get_extension_for_class(extension_class)
    except x509.ExtensionNotFound:
        return None


def _path_length_text(path_length):
    return "unlimited" if path_length is None else str(path_length)


def _constraints_text(constraints):
    if constraints is None:
        return "none"
    parts = []
    for label, subtrees in (("permitted", constraints.permitted_subtrees),
                            ("excluded", constraints.excluded_subtrees)):
        if subtrees:
            parts.append("%s %s" % (label, ", ".join(_x509.san_to_string(s) for s in subtrees)))
    return "; ".join(parts) or "none"


def misfits(cert, public_key, wanted, issuer_cert, now, renew_days_before=None):
    """Why cert is not the CA certificate wanted, as sentences; an empty list when it fits.

    The one test of a CA certificate, for the one ``ca`` keeps, the one it is
    given to install and the one ``ca_certificate`` may hand back: made for
    public_key, the wanted subject, path length and name constraints, a CA
    that may sign certificates and CRLs, with the extensions OpenSSL's strict
    verification needs, issued by issuer_cert (self-signed when it is None)
    with a valid signature, valid now, and, with renew_days_before, valid for
    that many more days or as long as its issuer is.
    """
    reasons = []
    if not c.same_public_key(cert.public_key(), public_key):
        reasons.append("it is for another key")
    if cert.subject != wanted.name:
        reasons.append("its subject is %s, not %s" % (_x509.name_to_string(cert.subject),
                                                      _x509.name_to_string(wanted.name)))
    basic = _extension(cert, x509.BasicConstraints)
    if basic is None or not basic.value.ca:
        reasons.append("it is not a CA (no basicConstraints CA:TRUE)")
    else:
        if not basic.critical:
            reasons.append("its basicConstraints is not critical")
        if basic.value.path_length != wanted.path_length:
            reasons.append("its path length is %s, not %s" % (_path_length_text(basic.value.path_length),
                                                              _path_length_text(wanted.path_length)))
    usage = _x509.extension_value(cert, x509.KeyUsage)
    lacking = [name for name, granted in (("keyCertSign", usage is not None and usage.key_cert_sign),
                                          ("cRLSign", usage is not None and usage.crl_sign)) if not granted]
    if lacking:
        reasons.append("its keyUsage lacks %s" % ", ".join(lacking))
    constraints = _extension(cert, x509.NameConstraints)
    if (constraints.value if constraints is not None else None) != wanted.name_constraints:
        reasons.append("its name constraints are %s, not %s"
                       % (_constraints_text(constraints.value if constraints is not None else None),
                          _constraints_text(wanted.name_constraints)))
    elif constraints is not None and not constraints.critical:
        reasons.append("its name constraints are not critical")
    if _x509.extension_value(cert, x509.SubjectKeyIdentifier) is None:
        reasons.append("it has no subjectKeyIdentifier")
    reasons.extend(_issuer_misfits(cert, issuer_cert))
    reasons.extend(_validity_misfits(cert, issuer_cert, now, renew_days_before))
    return reasons


def _issuer_misfits(cert, issuer_cert):
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return ["it is signed with an algorithm this host cannot verify"]
    if algorithm is not None and algorithm.name not in _policy.ALLOWED_CSR_HASHES:
        return ["it is signed with %s" % algorithm.name.upper()]
    if issuer_cert is None:
        return [] if _x509.is_self_signed(cert) else ["it is not self-signed"]
    if not c.cert_signed_by(cert, issuer_cert):
        return ["it was not issued by %s (issuer name or signature)" % _x509.name_to_string(issuer_cert.subject)]
    authority = _x509.extension_value(cert, x509.AuthorityKeyIdentifier)
    issuer_ski = _x509.extension_value(issuer_cert, x509.SubjectKeyIdentifier)
    if authority is None:
        return ["it has no authorityKeyIdentifier"]
    if authority.key_identifier is not None and issuer_ski is not None and \
            authority.key_identifier != issuer_ski.digest:
        return ["its authorityKeyIdentifier does not name the key of %s" % _x509.name_to_string(issuer_cert.subject)]
    return []


def _validity_misfits(cert, issuer_cert, now, renew_days_before):
    not_before, not_after = c.not_valid_before(cert), c.not_valid_after(cert)
    if not_before > now:
        return ["it is not valid before %s" % c.isoformat(not_before)]
    if not_after <= now:
        return ["it expired on %s" % c.isoformat(not_after)]
    if renew_days_before is None:
        return []
    # A certificate that lasts as long as its issuer does is as long as any new one could be.
    due = now + datetime.timedelta(days=renew_days_before)
    if issuer_cert is not None:
        due = min(due, c.not_valid_after(issuer_cert))
    if not_after < due:
        return ["it expires on %s, within renew_days_before (%d days)" % (c.isoformat(not_after), renew_days_before)]
    return []


def current_misfits(content, public_key, wanted, issuer_cert, now, renew_days_before=None, source="certificate"):
    """(certificate or None, misfits) of a certificate's PEM that may be missing or unreadable.

    A missing or unreadable certificate is a reason, never an error: it
    holds nothing secret and a new one replaces it.
    """
    if content is None or not c.to_bytes(content).strip():
        return None, ["there is no certificate"]
    try:
        cert = _x509.load_certificate(content, source=source)
    except PkiError as exc:
        return None, [str(exc)]
    return cert, misfits(cert, public_key, wanted, issuer_cert, now, renew_days_before)


def require_may_certify_ca(issuer_cert, source):
    """Refuse an issuer whose path length forbids any CA below it."""
    basic = _x509.extension_value(issuer_cert, x509.BasicConstraints)
    if basic is not None and basic.path_length == 0:
        raise PkiError("%s (%s) has path length 0: no CA certificate it issues would verify"
                       % (source, _x509.name_to_string(issuer_cert.subject)))


def build_csr(key, wanted):
    """The CSR of a CA whose certificate is signed elsewhere: its subject, basicConstraints CA:TRUE, its key's proof."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(wanted.name)
    builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=wanted.path_length), critical=True)
    return builder.sign(key, c.signature_hash(key))


def check_csr(csr_pem, wanted, issuer_cert, label):
    """The public key to certify as a subordinate CA; the CSR's subject and extensions are never used.

    Refused: a CSR that is not one or whose signature (its proof of
    possession) does not verify, a weak hash or key, the issuer's own key,
    and a subject that is the issuer's own.
    """
    source = "CSR %s" % label
    csr = _x509.load_csr(csr_pem, source=source, verify=False)
    _policy.check_csr_signature_hash(csr, label)
    _x509.require_valid_signature(csr, source=source)
    try:
        public_key = csr.public_key()
    except (UnsupportedAlgorithm, ValueError) as exc:
        raise PkiError("%s: its key cannot be read: %s" % (source, exc))
    _policy.check_public_key(public_key, label)
    if c.same_public_key(public_key, issuer_cert.public_key()):
        raise PkiError("%s is for the key of the signing CA itself (%s): a CA never certifies its own key as a "
                       "subordinate" % (source, _x509.name_to_string(issuer_cert.subject)))
    if wanted.name == issuer_cert.subject:
        raise PkiError("subject %s is the signing CA's own: a subordinate CA needs a subject of its own"
                       % _x509.name_to_string(wanted.name))
    return public_key


def issue(key, wanted, issuer_cert, issuer_key, validity_days, now):
    """A CA certificate for key (public is enough under an issuer); self-signed when issuer_cert is None.

    It starts BACKDATE_SECONDS before now and never outlives its issuer.
    """
    not_before, not_after = _policy.validity_window(
        now, validity_days, BACKDATE_SECONDS, c.not_valid_after(issuer_cert) if issuer_cert is not None else None)
    return _x509.build_ca_certificate(key, wanted.subject, not_before, not_after, issuer_cert=issuer_cert,
                                      issuer_key=issuer_key, path_length=wanted.path_length,
                                      permitted=wanted.permitted, excluded=wanted.excluded)
