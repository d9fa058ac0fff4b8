# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decisions about certificates: what a CA may sign, and when to renew.

These are the rules an operator reasons about, so they live here, in one
place, as plain functions that the modules and the unit tests call.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import re

from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _x509
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError

if c.HAS_CRYPTOGRAPHY:
    from cryptography import x509

# What each signing profile puts in extendedKeyUsage.
PROFILES = {
    "server": ["serverAuth"],
    "client": ["clientAuth"],
    "server_client": ["serverAuth", "clientAuth"],
}

# Renew once two thirds of the lifetime have passed, unless told otherwise.
DEFAULT_RENEW_FRACTION = 2.0 / 3.0

# What the CA certifies, whatever a request says. Keys: RSA of at least 2048
# bits, EC on P-256 or P-384, Ed25519. CSR signatures: SHA-256 or stronger
# (Ed25519 signs without a separate hash). At most MAX_SANS names.
MIN_RSA_BITS = 2048
ALLOWED_CURVES = ("secp256r1", "secp384r1")
ALLOWED_CSR_HASHES = ("sha256", "sha384", "sha512")
MAX_SANS = 32
# A leaf's common name: one word of letters, digits, '.', '_' and '-'.
# Public: the service roles check allow-list entries against it (filter
# fleet.mtls.identity_refusals), so that an entry is always a name the CA
# could issue. Used with fullmatch: "$" would let a trailing newline in.
COMMON_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# A DNS SAN as the CA issues it: lower-case LDH labels, no trailing dot, no
# wildcard.
_LDH_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")

# Bounds of the numbers the CA modules take, checked before anything is
# written (check mode too). Within them every date stays far inside what
# datetime and X.509 represent; beyond them a value is a typo.
MAX_VALIDITY_DAYS = 36500  # a CA's or a leaf's lifetime: a hundred years
MAX_BACKDATE_SECONDS = 86400  # a leaf's not_before in the past, for clock skew: a day


def profile_for(csr, requested_profile, item_name):
    """The profile to sign with: the one asked for, else what the CSR requests.

    A CSR may only ask for usages its profile grants: a client CSR asking for
    serverAuth is refused rather than quietly narrowed.
    """
    requested = _x509.extended_key_usage_names(_x509.extension_value(csr, x509.ExtendedKeyUsage))
    if requested_profile is None:
        for name in PROFILES:
            if requested and sorted(requested) == sorted(PROFILES[name]):
                return name
        if requested:
            raise PkiError("CSR %s asks for extended key usages %s, which no profile grants"
                           % (item_name, ", ".join(requested)))
        raise PkiError("CSR %s states no extended key usage: give it a profile (server, client or server_client)"
                       % item_name)
    if requested_profile not in PROFILES:
        raise PkiError("CSR %s: unknown profile %r (use %s)" % (item_name, requested_profile, ", ".join(PROFILES)))
    refused = [u for u in requested if u not in PROFILES[requested_profile]]
    if refused:
        raise PkiError("CSR %s asks for %s, which profile %s does not grant"
                       % (item_name, ", ".join(refused), requested_profile))
    return requested_profile


class SigningPolicy(object):
    """The names a CA may put in the certificates it signs. Closed by default.

    allowed_domains: a DNS SAN must equal one of these or lie under it
    (``example.com`` allows ``example.com`` and ``a.b.example.com``, as an
    X.509 name constraint does). allowed_ip_ranges: CIDR networks for IP SANs.
    spiffe_trust_domain: the only trust domain a URI SAN may name (the only
    URIs issued are SPIFFE IDs). allow_email: email SANs at all. A kind of
    name with nothing allowed is refused: an empty policy signs nothing.

    ca_constraints: the signing CA's own NameConstraints, if it has any. A
    name outside them is refused before signing, since every verifier would
    reject the certificate anyway.
    """

    def __init__(self, allowed_domains=None, allowed_ip_ranges=None, spiffe_trust_domain=None,
                 allow_email=False, ca_constraints=None):
        self.allowed_domains = [_x509.validate_dns_name(d.lstrip("."), allow_wildcard=False)
                                for d in (allowed_domains or [])]
        try:
            self.allowed_ip_ranges = [ipaddress.ip_network(r, strict=False) for r in (allowed_ip_ranges or [])]
        except ValueError as exc:
            raise PkiError("allowed IP range: %s" % exc)
        self.spiffe_trust_domain = spiffe_trust_domain or None
        self.allow_email = allow_email
        self.ca_constraints = ca_constraints

    def _dns_allowed(self, name):
        return any(_dns_under(name, d) for d in self.allowed_domains)

    def _ip_allowed(self, address):
        return any(address in network for network in self.allowed_ip_ranges if network.version == address.version)

    def refusals(self, sans, common_name=None):
        """Every SAN outside the policy or the CA's constraints, as 'DNS:name (why)' strings."""
        refused = []
        for name in sans:
            text = _x509.san_to_string(name)
            if isinstance(name, x509.DNSName) and not self._dns_allowed(name.value):
                refused.append("%s (allowed domains: %s)" % (text, ", ".join(self.allowed_domains) or "none"))
            elif isinstance(name, x509.IPAddress) and not self._ip_allowed(name.value):
                refused.append("%s (allowed IP ranges: %s)"
                               % (text, ", ".join(str(r) for r in self.allowed_ip_ranges) or "none"))
            elif isinstance(name, x509.UniformResourceIdentifier):
                if not self.spiffe_trust_domain:
                    refused.append("%s (no SPIFFE trust domain is allowed)" % text)
                elif not name.value.startswith("spiffe://"):
                    refused.append("%s (only SPIFFE IDs of %s)" % (text, self.spiffe_trust_domain))
                elif _x509.spiffe_trust_domain(name.value) != self.spiffe_trust_domain:
                    refused.append("%s (trust domain is %s)" % (text, self.spiffe_trust_domain))
            elif isinstance(name, x509.RFC822Name) and not self.allow_email:
                refused.append("%s (email SANs are not allowed)" % text)
        refused.extend(constraint_refusals(sans, self.ca_constraints, common_name))
        return refused


def _dns_under(name, constraint):
    """RFC 5280 DNS matching: equal, or under it; a leading '.' means strictly under."""
    name = name.lower().rstrip(".")
    constraint = constraint.lower().rstrip(".")
    if constraint.startswith("."):
        return name.endswith(constraint)
    return name == constraint or name.endswith("." + constraint)


def _uri_host(uri):
    rest = uri.partition("://")[2]
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    return host.split(":", 1)[0].lower()


def _email_matches(address, constraint):
    constraint = constraint.lower()
    address = address.lower()
    if "@" in constraint:
        return address == constraint
    return _dns_under(address.rpartition("@")[2], constraint)


def _subtree_matches(name, subtree):
    if isinstance(subtree, x509.DNSName) and isinstance(name, x509.DNSName):
        return _dns_under(name.value, subtree.value)
    if isinstance(subtree, x509.IPAddress) and isinstance(name, x509.IPAddress):
        network = subtree.value
        return network.version == name.value.version and name.value in network
    if isinstance(subtree, x509.UniformResourceIdentifier) and isinstance(name, x509.UniformResourceIdentifier):
        host = _uri_host(name.value)
        return bool(host) and _dns_under(host, subtree.value)
    if isinstance(subtree, x509.RFC822Name) and isinstance(name, x509.RFC822Name):
        return _email_matches(name.value, subtree.value)
    return False


def constraint_refusals(sans, constraints, common_name=None):
    """The names a CA with these NameConstraints cannot certify (RFC 5280, 4.2.1.10).

    For each kind of name the CA has permitted subtrees of, a name must lie
    in one; no name may lie in an excluded subtree. A leaf with no DNS SAN
    has its common name checked as a DNS name, as OpenSSL does.
    """
    if constraints is None:
        return []
    names = list(sans)
    if common_name and not any(isinstance(n, x509.DNSName) for n in names):
        names.append(x509.DNSName(common_name))
    permitted = list(constraints.permitted_subtrees or [])
    excluded = list(constraints.excluded_subtrees or [])
    refused = []
    for name in names:
        text = _x509.san_to_string(name)
        same_kind = [t for t in permitted if type(t) is type(name)]
        if same_kind and not any(_subtree_matches(name, t) for t in same_kind):
            refused.append("%s (outside the CA's name constraints: %s)"
                           % (text, ", ".join(_x509.san_to_string(t) for t in same_kind)))
        hit = [t for t in excluded if _subtree_matches(name, t)]
        if hit:
            refused.append("%s (excluded by the CA's name constraints: %s)"
                           % (text, ", ".join(_x509.san_to_string(t) for t in hit)))
    return refused


def check_public_key(key, item_name):
    """Refuse a key the CA does not certify (too short, or an unusual curve)."""
    key_type, size = c.key_type_and_size(key)
    if key_type == "rsa" and size < MIN_RSA_BITS:
        raise PkiError("CSR %s has an RSA key of %d bits; the CA certifies RSA keys of at least %d bits, "
                       "EC P-256 or P-384 keys and Ed25519 keys" % (item_name, size, MIN_RSA_BITS))
    if key_type == "ec" and key.curve.name not in ALLOWED_CURVES:
        raise PkiError("CSR %s has an EC key on curve %s; the CA certifies EC keys on P-256 or P-384 only"
                       % (item_name, key.curve.name))


def check_csr_signature_hash(csr, item_name):
    """Refuse a CSR signed with a weak hash (SHA-1, MD5...)."""
    algorithm = csr.signature_hash_algorithm
    if algorithm is not None and algorithm.name not in ALLOWED_CSR_HASHES:
        raise PkiError("CSR %s is signed with %s; the CA accepts CSR signatures with %s"
                       % (item_name, algorithm.name.upper(), ", ".join(h.upper() for h in ALLOWED_CSR_HASHES)))


def san_syntax_refusals(sans, allow_email=False):
    """Every SAN of a kind or form the CA never issues, with the reason."""
    refused = []
    for name in sans:
        text = _x509.san_to_string(name)
        if isinstance(name, x509.DNSName):
            labels = name.value.split(".")
            if name.value.startswith("*"):
                refused.append("%r (no wildcard names)" % text)
            elif len(name.value) > 253 or not all(_LDH_LABEL.fullmatch(label) for label in labels):
                refused.append("%r (a DNS name is lower-case letters, digits and '-' in dot-separated labels, "
                               "with no trailing dot)" % text)
        elif isinstance(name, x509.IPAddress):
            continue
        elif isinstance(name, x509.UniformResourceIdentifier):
            if not name.value.startswith("spiffe://"):
                refused.append("%r (the only URIs issued are SPIFFE IDs)" % text)
        elif isinstance(name, x509.RFC822Name):
            if not allow_email:
                refused.append("%r (email SANs are not allowed)" % text)
        else:
            refused.append("%s %s (only DNS, IP, URI (SPIFFE ID) and email SANs are issued)"
                           % (type(name).__name__, text))
    return refused


def leaf_common_name(csr, item_name, authorized_common_name=None):
    """The one CN the CA puts in a leaf's subject; never the CSR's subject copied.

    The caller's authorized name when given (the controller's inventory);
    else the CSR's, which must then be a subject of exactly one CN.
    """
    if authorized_common_name is not None:
        name = authorized_common_name
    else:
        attributes = [attribute for rdn in csr.subject.rdns for attribute in rdn]
        if len(attributes) != 1 or attributes[0].oid != x509.NameOID.COMMON_NAME:
            raise PkiError("CSR %s has the subject %r; without a common name from the caller the CA issues "
                           "only subjects of a single CN" % (item_name, _x509.name_to_string(csr.subject)))
        name = attributes[0].value
    if not isinstance(name, str) or not COMMON_NAME.fullmatch(name):
        raise PkiError("CSR %s: common name %r is not one word of letters, digits, '.', '_' and '-' "
                       "(at most 64 characters)" % (item_name, name))
    return name


def check_identity(sans, item_name, authorized_sans):
    """Refuse a CSR whose names are not exactly those the caller authorized."""
    if authorized_sans is None:
        return
    asked = _x509.sorted_san_strings(sans)
    allowed = _x509.sorted_san_strings(_x509.build_sans(authorized_sans))
    if asked != allowed:
        raise PkiError("CSR %s asks for the names %s; this requester may be issued exactly %s"
                       % (item_name, ", ".join(asked) or "none", ", ".join(allowed) or "none"))


def check_whole_number(value, option, minimum, maximum, unit):
    """value, an int from minimum to maximum; else a refusal naming the option, the range and the value."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise PkiError("%s must be a whole number from %d to %d %s, not %r" % (option, minimum, maximum, unit, value))
    return value


def check_leaf_lifetime(validity_days, backdate_seconds):
    """The signer's own lifetime options: validity_days and backdate_seconds within their bounds."""
    check_whole_number(validity_days, "validity_days", 1, MAX_VALIDITY_DAYS, "days")
    check_whole_number(backdate_seconds, "backdate_seconds", 0, MAX_BACKDATE_SECONDS, "seconds")


def check_validity_days(validity_days, item_name, max_days):
    """A request may shorten the policy's lifetime, never extend it."""
    if validity_days is None:
        return max_days
    if isinstance(validity_days, bool) or not isinstance(validity_days, int) or validity_days <= 0:
        raise PkiError("CSR %s: validity_days must be a positive number of days, not %r" % (item_name, validity_days))
    if validity_days > max_days:
        raise PkiError("CSR %s asks for %d days of validity; the policy allows at most %d"
                       % (item_name, validity_days, max_days))
    return validity_days


def check_csr(csr, item_name, policy, common_name=None):
    """The SANs to sign, after refusing what the policy or X.509 rules forbid.

    common_name: the CN the leaf will carry, checked against the CA's DNS
    name constraints when the leaf has no DNS SAN.
    """
    if _x509.extension_value(csr, x509.BasicConstraints) is not None and \
            _x509.extension_value(csr, x509.BasicConstraints).ca:
        raise PkiError("CSR %s asks to be a CA; this signer issues leaf certificates only" % item_name)
    check_public_key(csr.public_key(), item_name)
    check_csr_signature_hash(csr, item_name)
    sans = _x509.sans_of(csr)
    if not sans:
        raise PkiError("CSR %s has no subjectAltName: TLS clients match names only there" % item_name)
    if len(sans) > MAX_SANS:
        raise PkiError("CSR %s asks for %d names; the CA issues at most %d" % (item_name, len(sans), MAX_SANS))
    refused = san_syntax_refusals(sans, policy.allow_email)
    if refused:
        raise PkiError("CSR %s asks for names the CA never issues: %s" % (item_name, "; ".join(refused)))
    for name in sans:
        if isinstance(name, x509.UniformResourceIdentifier) and name.value.startswith("spiffe:"):
            _x509.validate_spiffe_id(name.value)
    _x509.validate_spiffe_sans(sans)
    refused = policy.refusals(sans, common_name)
    if refused:
        raise PkiError("CSR %s asks for names outside the signing policy: %s" % (item_name, "; ".join(refused)))
    return sans


def validity_window(now, validity_days, backdate_seconds, ca_not_after=None):
    """(not_before, not_after) for a new certificate, never outliving the CA that signs it (none for a root)."""
    check_leaf_lifetime(validity_days, backdate_seconds)
    not_before = now - datetime.timedelta(seconds=backdate_seconds)
    not_after = now + datetime.timedelta(days=validity_days)
    if ca_not_after is not None:
        not_after = min(not_after, ca_not_after)
    if not_after <= now:
        raise PkiError("the CA expires on %s: it cannot issue a valid certificate" % c.isoformat(ca_not_after))
    return not_before.replace(microsecond=0), not_after.replace(microsecond=0)


def jitter_offset(seed, jitter):
    """A stable fraction in [0, jitter) drawn from seed (e.g. the host name).

    Hosts issued together then renew spread over a window instead of at once,
    and the same host always lands on the same point, so re-runs agree.
    """
    if not jitter or not seed:
        return 0.0
    digest = hashlib.sha256(str(seed).encode("utf-8")).digest()
    return jitter * (int.from_bytes(digest[:8], "big") / float(1 << 64))


def renewal_time(not_before, not_after, renew_fraction=None, renew_days_before=None, jitter=0.0, seed=None):
    """When a certificate enters its renewal window.

    By default after renew_fraction (2/3) of its lifetime; with
    renew_days_before, that many days before it expires. The jitter moves the
    point earlier by up to jitter x lifetime, stable per seed.
    """
    lifetime = not_after - not_before
    if renew_days_before is not None:
        if renew_days_before < 0:
            raise PkiError("renew_days_before must not be negative")
        point = not_after - datetime.timedelta(days=renew_days_before)
    else:
        fraction = DEFAULT_RENEW_FRACTION if renew_fraction is None else renew_fraction
        if not 0 < fraction <= 1:
            raise PkiError("renew_fraction must be in (0, 1], not %s" % fraction)
        point = not_before + lifetime * fraction
    if jitter:
        if not 0 <= jitter < 1:
            raise PkiError("renew_jitter must be in [0, 1), not %s" % jitter)
        point -= lifetime * jitter_offset(seed, jitter)
    return max(point, not_before)


def reissue_reasons(cert, now, key=None, anchors=None, intermediates=None, wanted_sans=None,
                    wanted_subject=None, wanted_key_type=None, wanted_key_size=None, renew_fraction=None,
                    renew_days_before=None, jitter=0.0, seed=None, issuers=None):
    """Why a host's certificate must be replaced; an empty list means it is fine.

    The one place that decides re-issuance: a missing match with the key, a
    changed identity or key algorithm, a CA no longer trusted, a certificate
    signed by none of issuers (the CAs that sign now: after a CA rollover's
    switch, every certificate of the old CA), or the renewal window.
    """
    reasons = []
    if key is not None and not c.same_public_key(cert.public_key(), key):
        reasons.append("key_mismatch")
    if wanted_key_type is not None:
        key_type, key_size = c.key_type_and_size(cert.public_key())
        wanted_size = wanted_key_size if wanted_key_size is not None else c.DEFAULT_KEY_SIZE.get(wanted_key_type)
        if (key_type, key_size) != (wanted_key_type, wanted_size):
            reasons.append("key_type_changed")
    if wanted_sans is not None and \
            _x509.sorted_san_strings(_x509.sans_of(cert)) != _x509.sorted_san_strings(wanted_sans):
        reasons.append("identity_changed")
    if wanted_subject is not None and cert.subject != _x509.build_name(wanted_subject):
        reasons.append("identity_changed")
    if anchors is not None:
        ok, _error, _path = _x509.verify_chain(cert, intermediates or [], anchors, now=now)
        if not ok and c.not_valid_after(cert) > now:
            reasons.append("untrusted_issuer")
    if issuers and not any(cert.issuer == issuer.subject and c.cert_signed_by(cert, issuer) for issuer in issuers):
        reasons.append("issuer_changed")
    if c.not_valid_after(cert) <= now:
        reasons.append("expired")
    elif now >= renewal_time(c.not_valid_before(cert), c.not_valid_after(cert), renew_fraction,
                             renew_days_before, jitter, seed):
        reasons.append("renewal_window")
    return sorted(set(reasons))


def decision_horizon(now, certificates, renew_times):
    """When a decision made now about these certificates may stop holding, or None.

    The first renewal time, or the first moment still ahead at which one of
    the certificates (leaf, chain or trust anchor) starts or stops being
    valid: until then the same files and wishes give the same decision.
    """
    moments = list(renew_times)
    for cert in certificates:
        moments += [moment for moment in (c.not_valid_before(cert), c.not_valid_after(cert)) if moment > now]
    return min(moments) if moments else None


def renewal_time_of(cert, options, seed):
    """When cert enters its renewal window under a module's renewal options (the fleet.mtls.renewal group)."""
    return renewal_time(c.not_valid_before(cert), c.not_valid_after(cert), options.get("renew_fraction"),
                        options.get("renew_days_before"), options.get("renew_jitter") or 0.0, seed)


def renewal_decision(cert, now, options, seed, **wanted):
    """(reissue_reasons, renew_at) of cert under a module's renewal options.

    options: the module parameters renew_fraction, renew_days_before and
    renew_jitter, which certificate_info and certificate_request share;
    seed: the jitter's seed. wanted: the other reissue_reasons() arguments.
    """
    wanted.update(renew_fraction=options["renew_fraction"], renew_days_before=options["renew_days_before"],
                  jitter=options["renew_jitter"], seed=seed)
    return reissue_reasons(cert, now, **wanted), renewal_time_of(cert, options, seed)
