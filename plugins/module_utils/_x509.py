# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Names, CSRs and certificates: how the collection builds and reads them.

Every certificate made here is RFC 5280-clean and passes OpenSSL's X509_STRICT
checks (the default of Python 3.13's ssl module): v3, SKI everywhere, AKI on
everything not self-signed, keyUsage critical, basicConstraints critical on
CAs, serials positive and at most 20 octets.
"""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError

if c.HAS_CRYPTOGRAPHY:
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Subject attribute names accepted in a ``subject`` dict (short and long).
_SUBJECT_ATTRIBUTES = {
    "CN": "COMMON_NAME", "commonName": "COMMON_NAME",
    "O": "ORGANIZATION_NAME", "organizationName": "ORGANIZATION_NAME",
    "OU": "ORGANIZATIONAL_UNIT_NAME", "organizationalUnitName": "ORGANIZATIONAL_UNIT_NAME",
    "C": "COUNTRY_NAME", "countryName": "COUNTRY_NAME",
    "ST": "STATE_OR_PROVINCE_NAME", "stateOrProvinceName": "STATE_OR_PROVINCE_NAME",
    "L": "LOCALITY_NAME", "localityName": "LOCALITY_NAME",
    "DC": "DOMAIN_COMPONENT", "domainComponent": "DOMAIN_COMPONENT",
    "emailAddress": "EMAIL_ADDRESS",
    "serialNumber": "SERIAL_NUMBER",
}
# Order in which a subject dict becomes a Name: most general first.
_SUBJECT_ORDER = ("DOMAIN_COMPONENT", "COUNTRY_NAME", "STATE_OR_PROVINCE_NAME", "LOCALITY_NAME",
                  "ORGANIZATION_NAME", "ORGANIZATIONAL_UNIT_NAME", "COMMON_NAME", "SERIAL_NUMBER",
                  "EMAIL_ADDRESS")

EXTENDED_KEY_USAGES = {
    "serverAuth": "SERVER_AUTH",
    "clientAuth": "CLIENT_AUTH",
    "codeSigning": "CODE_SIGNING",
    "emailProtection": "EMAIL_PROTECTION",
    "timeStamping": "TIME_STAMPING",
    "OCSPSigning": "OCSP_SIGNING",
}
KEY_USAGES = ("digitalSignature", "contentCommitment", "keyEncipherment", "dataEncipherment",
              "keyAgreement", "keyCertSign", "cRLSign", "encipherOnly", "decipherOnly")
_KEY_USAGE_ARGS = {
    "digitalSignature": "digital_signature", "contentCommitment": "content_commitment",
    "keyEncipherment": "key_encipherment", "dataEncipherment": "data_encipherment",
    "keyAgreement": "key_agreement", "keyCertSign": "key_cert_sign", "cRLSign": "crl_sign",
    "encipherOnly": "encipher_only", "decipherOnly": "decipher_only",
}

_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")
_SPIFFE_TRUST_DOMAIN = re.compile(r"^[a-z0-9._-]+$")
_SPIFFE_PATH_SEGMENT = re.compile(r"^[A-Za-z0-9._-]+$")


# --- names ----------------------------------------------------------------


def build_name(subject):
    """A subject dict ({CN: web1, O: Example}) as an x509.Name, in a fixed order."""
    subject = subject or {}
    values = {}
    for key, value in subject.items():
        if key not in _SUBJECT_ATTRIBUTES:
            raise PkiError("unknown subject attribute %r; use one of: %s"
                           % (key, ", ".join(sorted(_SUBJECT_ATTRIBUTES))))
        oid_name = _SUBJECT_ATTRIBUTES[key]
        if oid_name in values:
            raise PkiError("subject attribute %r is given twice" % key)
        if value is None or str(value) == "":
            raise PkiError("subject attribute %r is empty" % key)
        values[oid_name] = str(value)
    if "COUNTRY_NAME" in values and len(values["COUNTRY_NAME"]) != 2:
        raise PkiError("subject C must be a two-letter country code, not %r" % values["COUNTRY_NAME"])
    return x509.Name([x509.NameAttribute(getattr(NameOID, oid_name), values[oid_name])
                      for oid_name in _SUBJECT_ORDER if oid_name in values])


def common_name(name):
    attributes = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return attributes[0].value if attributes else None


def name_to_string(name):
    return name.rfc4514_string()


# --- subject alternative names ---------------------------------------------


def validate_dns_name(value, allow_wildcard=True):
    name = value[:-1] if value.endswith(".") else value
    labels = name.split(".")
    if allow_wildcard and labels and labels[0] == "*":
        labels = labels[1:]
    if not labels or len(name) > 253 or not all(_DNS_LABEL.match(label) for label in labels):
        raise PkiError("%r is not a valid DNS name" % value)
    return name.lower()


def validate_spiffe_id(value):
    """spiffe://trust-domain/path, as the SPIFFE X.509-SVID standard defines it."""
    prefix = "spiffe://"
    if not value.startswith(prefix):
        raise PkiError("SPIFFE ID %r must start with spiffe://" % value)
    rest = value[len(prefix):]
    trust_domain, sep, path = rest.partition("/")
    if not trust_domain or not _SPIFFE_TRUST_DOMAIN.match(trust_domain):
        raise PkiError("SPIFFE ID %r has an invalid trust domain (lower-case letters, digits, '.', '-', '_')"
                       % value)
    if not sep or not path:
        raise PkiError("SPIFFE ID %r has no path: a workload ID is spiffe://trust-domain/path" % value)
    if any(ch in value for ch in "?#"):
        raise PkiError("SPIFFE ID %r must not have a query or fragment" % value)
    for segment in path.split("/"):
        if segment in ("", ".", "..") or not _SPIFFE_PATH_SEGMENT.match(segment):
            raise PkiError("SPIFFE ID %r has an invalid path segment %r" % (value, segment))
    return value


def spiffe_trust_domain(spiffe_id):
    return spiffe_id[len("spiffe://"):].split("/", 1)[0]


def parse_san(text):
    """'DNS:web1.example', 'IP:10.0.0.1', 'URI:spiffe://td/x', 'email:a@b' -> GeneralName."""
    kind, sep, value = str(text).partition(":")
    if not sep or not value:
        raise PkiError("SAN %r must look like DNS:name, IP:address, URI:uri or email:address" % text)
    kind_upper = kind.upper()
    if kind_upper == "DNS":
        return x509.DNSName(validate_dns_name(value))
    if kind_upper in ("IP", "IP ADDRESS"):
        try:
            return x509.IPAddress(ipaddress.ip_address(value))
        except ValueError:
            raise PkiError("SAN %r: %r is not an IP address" % (text, value))
    if kind_upper == "URI":
        if value.startswith("spiffe:"):
            validate_spiffe_id(value)
        elif "://" not in value:
            raise PkiError("SAN %r: a URI needs a scheme" % text)
        return x509.UniformResourceIdentifier(value)
    if kind_upper in ("EMAIL", "RFC822"):
        if "@" not in value:
            raise PkiError("SAN %r: %r is not an email address" % (text, value))
        return x509.RFC822Name(value)
    raise PkiError("SAN %r: unknown kind %r (use DNS, IP, URI or email)" % (text, kind))


def san_to_string(general_name):
    if isinstance(general_name, x509.DNSName):
        return "DNS:" + general_name.value
    if isinstance(general_name, x509.IPAddress):
        return "IP:" + str(general_name.value)
    if isinstance(general_name, x509.UniformResourceIdentifier):
        return "URI:" + general_name.value
    if isinstance(general_name, x509.RFC822Name):
        return "email:" + general_name.value
    return "other:" + repr(general_name.value)


def build_sans(subject_alt_names, spiffe_id=None):
    """Parse SAN strings (plus an optional SPIFFE ID), rejecting duplicates and a second URI."""
    names = [parse_san(text) for text in subject_alt_names or []]
    if spiffe_id:
        names.append(x509.UniformResourceIdentifier(validate_spiffe_id(spiffe_id)))
    seen = set()
    for name in names:
        key = san_to_string(name)
        if key in seen:
            raise PkiError("SAN %s is given twice" % key)
        seen.add(key)
    validate_spiffe_sans(names)
    return names


def validate_spiffe_sans(names):
    """An X.509-SVID carries exactly one URI SAN: a SPIFFE ID must stand alone."""
    uris = [n.value for n in names if isinstance(n, x509.UniformResourceIdentifier)]
    spiffe = [u for u in uris if u.startswith("spiffe:")]
    if spiffe and len(uris) != 1:
        raise PkiError("a SPIFFE ID must be the only URI SAN, found: %s" % ", ".join(uris))


def extension_value(obj, extension_class):
    try:
        return obj.extensions.get_extension_for_class(extension_class).value
    except x509.ExtensionNotFound:
        return None


def sans_of(obj):
    value = extension_value(obj, x509.SubjectAlternativeName)
    return list(value) if value is not None else []


def spiffe_id_of(obj):
    for name in sans_of(obj):
        if isinstance(name, x509.UniformResourceIdentifier) and name.value.startswith("spiffe://"):
            return name.value
    return None


def sorted_san_strings(names):
    return sorted(san_to_string(n) for n in names)


# --- usages -----------------------------------------------------------------


def build_key_usage(usages):
    unknown = [u for u in usages if u not in _KEY_USAGE_ARGS]
    if unknown:
        raise PkiError("unknown key usage %s; use: %s" % (", ".join(unknown), ", ".join(KEY_USAGES)))
    args = dict((arg, name in usages) for name, arg in _KEY_USAGE_ARGS.items())
    return x509.KeyUsage(**args)


def key_usage_names(key_usage):
    if key_usage is None:
        return []
    names = []
    for name, arg in _KEY_USAGE_ARGS.items():
        if arg in ("encipher_only", "decipher_only") and not key_usage.key_agreement:
            continue  # only defined with keyAgreement; reading them otherwise raises
        if getattr(key_usage, arg):
            names.append(name)
    return names


def build_extended_key_usage(usages):
    oids = []
    for usage in usages:
        if usage not in EXTENDED_KEY_USAGES:
            raise PkiError("unknown extended key usage %r; use: %s" % (usage, ", ".join(EXTENDED_KEY_USAGES)))
        oids.append(getattr(ExtendedKeyUsageOID, EXTENDED_KEY_USAGES[usage]))
    return x509.ExtendedKeyUsage(oids)


def extended_key_usage_names(eku):
    if eku is None:
        return []
    by_oid = dict((getattr(ExtendedKeyUsageOID, attr), name) for name, attr in EXTENDED_KEY_USAGES.items())
    return [by_oid.get(oid, oid.dotted_string) for oid in eku]


# --- loading ----------------------------------------------------------------


def load_certificate(data, source="certificate"):
    blocks = c.pem_blocks(data, "CERTIFICATE")
    if not blocks:
        raise PkiError("%s is not a PEM certificate" % source)
    try:
        return x509.load_pem_x509_certificate(blocks[0])
    except ValueError as exc:
        raise PkiError("%s is corrupt: %s" % (source, exc))


def load_certificates(data, source="certificate bundle"):
    """All certificates of a PEM bundle, in order (cryptography 38 has no bulk loader)."""
    blocks = c.pem_blocks(data, "CERTIFICATE")
    if not blocks:
        raise PkiError("%s holds no PEM certificate" % source)
    certs = []
    for index, block in enumerate(blocks):
        try:
            certs.append(x509.load_pem_x509_certificate(block))
        except ValueError as exc:
            raise PkiError("%s: certificate #%d is corrupt: %s" % (source, index + 1, exc))
    return certs


def load_csr(data, source="CSR", verify=True):
    """The CSR in data; with verify, its signature checked (see require_valid_signature)."""
    blocks = c.pem_blocks(data, "CERTIFICATE REQUEST") or c.pem_blocks(data, "NEW CERTIFICATE REQUEST")
    if not blocks:
        raise PkiError("%s is not a PEM certificate request" % source)
    try:
        csr = x509.load_pem_x509_csr(blocks[0])
    except ValueError as exc:
        raise PkiError("%s is corrupt: %s" % (source, exc))
    if verify:
        require_valid_signature(csr, source)
    return csr


def require_valid_signature(csr, source="CSR"):
    """Refuse a CSR whose signature does not verify: its key never signed it (tampered or corrupt)."""
    try:
        valid = csr.is_signature_valid
    except (UnsupportedAlgorithm, ValueError) as exc:  # an algorithm this cryptography cannot verify
        raise PkiError("%s: its signature cannot be verified: %s" % (source, exc))
    if not valid:
        raise PkiError("%s: its signature does not verify (tampered or corrupt)" % source)


def certificate_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def csr_pem(csr):
    return csr.public_bytes(serialization.Encoding.PEM)


# --- CSRs -------------------------------------------------------------------


def build_csr(key, subject, sans, key_usage=None, extended_key_usage=None):
    builder = x509.CertificateSigningRequestBuilder().subject_name(build_name(subject))
    if sans:
        # An empty subject makes the SAN the only identity: then it must be critical.
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=not subject)
    if key_usage:
        builder = builder.add_extension(build_key_usage(key_usage), critical=True)
    if extended_key_usage:
        builder = builder.add_extension(build_extended_key_usage(extended_key_usage), critical=False)
    return builder.sign(key, c.signature_hash(key))


def csr_matches(csr, key, subject, sans, key_usage=None, extended_key_usage=None):
    """True when an existing CSR asks for exactly what would be asked now."""
    if not csr.is_signature_valid or not c.same_public_key(csr.public_key(), key):
        return False
    if csr.subject != build_name(subject):
        return False
    if sorted_san_strings(sans_of(csr)) != sorted_san_strings(sans):
        return False
    if sorted(key_usage_names(extension_value(csr, x509.KeyUsage))) != sorted(key_usage or []):
        return False
    return sorted(extended_key_usage_names(extension_value(csr, x509.ExtendedKeyUsage))) == \
        sorted(extended_key_usage or [])


# --- certificates ---------------------------------------------------------


def random_serial():
    """Positive, at most 20 octets, 159 bits of randomness (RFC 5280 4.1.2.2)."""
    serial = 0
    while serial == 0:
        serial = x509.random_serial_number()
    return serial


def _base_builder(subject_name, issuer_name, public_key, not_before, not_after, serial=None):
    return (x509.CertificateBuilder()
            .subject_name(subject_name)
            .issuer_name(issuer_name)
            .public_key(public_key)
            .serial_number(serial or random_serial())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))


def authority_key_identifier(issuer_cert):
    ski = extension_value(issuer_cert, x509.SubjectKeyIdentifier)
    if ski is None:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key())
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def build_name_constraints(permitted, excluded):
    if not permitted and not excluded:
        return None

    def subtree(text):
        kind, sep, value = str(text).partition(":")
        kind = kind.upper()
        if not sep or not value:
            raise PkiError("name constraint %r must look like DNS:example.com or IP:10.0.0.0/8" % text)
        if kind == "DNS":
            return x509.DNSName(validate_dns_name(value.lstrip("."), allow_wildcard=False))
        if kind == "IP":
            try:
                return x509.IPAddress(ipaddress.ip_network(value, strict=True))
            except ValueError:
                raise PkiError("name constraint %r: %r is not a network in CIDR form" % (text, value))
        if kind in ("EMAIL", "RFC822"):
            return x509.RFC822Name(value)
        if kind == "URI":
            return x509.UniformResourceIdentifier(value)
        raise PkiError("name constraint %r: unknown kind %r (use DNS, IP, email or URI)" % (text, kind))

    return x509.NameConstraints(
        permitted_subtrees=[subtree(t) for t in permitted] or None,
        excluded_subtrees=[subtree(t) for t in excluded] or None,
    )


def build_ca_certificate(key, subject, not_before, not_after, issuer_cert=None, issuer_key=None,
                         path_length=None, permitted=None, excluded=None):
    """A root CA (self-signed when issuer_cert is None) or an intermediate CA.

    key: the CA's own key; for an intermediate its public key is enough (a
    subordinate CA signed from its CSR, on the parent's host).
    """
    subject_name = build_name(subject)
    if common_name(subject_name) is None:
        raise PkiError("a CA subject needs a CN")
    if issuer_key is None and not c.is_private_key(key):
        raise PkiError("a self-signed CA certificate needs the CA's private key")
    public_key = c.public_key_of(key)
    builder = _base_builder(subject_name, issuer_cert.subject if issuer_cert else subject_name,
                            public_key, not_before, not_after)
    builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
    builder = builder.add_extension(build_key_usage(["digitalSignature", "keyCertSign", "cRLSign"]), critical=True)
    if issuer_cert is not None:
        builder = builder.add_extension(authority_key_identifier(issuer_cert), critical=False)
    else:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False)
    constraints = build_name_constraints(permitted or [], excluded or [])
    if constraints is not None:
        builder = builder.add_extension(constraints, critical=True)
    signer = issuer_key if issuer_key is not None else key
    return builder.sign(signer, c.signature_hash(signer))


def name_constraints_of(cert):
    return extension_value(cert, x509.NameConstraints)


def leaf_key_usage(public_key):
    """digitalSignature always; keyEncipherment too for RSA (TLS 1.2 RSA key exchange)."""
    usages = ["digitalSignature"]
    if c.key_type_and_size(public_key)[0] == "rsa":
        usages.append("keyEncipherment")
    return usages


def build_leaf_certificate(csr, common_name, ca_cert, ca_key, sans, extended_key_usages, not_before, not_after,
                           serial):
    """A leaf for the CSR's key: the subject is built here (one CN), never copied from the CSR."""
    subject_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    public_key = csr.public_key()
    builder = _base_builder(subject_name, ca_cert.subject, public_key, not_before, not_after, serial)
    builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    builder = builder.add_extension(build_key_usage(leaf_key_usage(public_key)), critical=True)
    builder = builder.add_extension(build_extended_key_usage(extended_key_usages), critical=False)
    builder = builder.add_extension(authority_key_identifier(ca_cert), critical=False)
    builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=len(subject_name) == 0)
    return builder.sign(ca_key, c.signature_hash(ca_key))


def is_ca(cert):
    constraints = extension_value(cert, x509.BasicConstraints)
    return bool(constraints and constraints.ca)


def is_self_signed(cert):
    return cert.issuer == cert.subject and c.cert_signed_by(cert, cert)


def require_usable_ca(ca_cert, ca_key, source="CA certificate", now=None):
    """Refuse a signer that is not a CA, has expired, or does not match its key."""
    now = now or c.utcnow()
    if not is_ca(ca_cert):
        raise PkiError("%s (%s) is not a CA: basicConstraints CA:TRUE is missing"
                       % (source, name_to_string(ca_cert.subject)))
    usage = extension_value(ca_cert, x509.KeyUsage)
    if usage is not None and not usage.key_cert_sign:
        raise PkiError("%s (%s) may not sign certificates: keyUsage lacks keyCertSign"
                       % (source, name_to_string(ca_cert.subject)))
    if c.not_valid_after(ca_cert) <= now:
        raise PkiError("%s (%s) expired on %s" % (source, name_to_string(ca_cert.subject),
                                                  c.isoformat(c.not_valid_after(ca_cert))))
    if c.not_valid_before(ca_cert) > now:
        raise PkiError("%s (%s) is not valid before %s" % (source, name_to_string(ca_cert.subject),
                                                           c.isoformat(c.not_valid_before(ca_cert))))
    if ca_key is not None and not c.same_public_key(ca_cert.public_key(), ca_key):
        raise PkiError("%s and its private key do not match" % source)


# --- describing -----------------------------------------------------------


def name_to_dict(name):
    result = {}
    short = {}
    for key, oid_name in _SUBJECT_ATTRIBUTES.items():
        if len(key) <= 2 or key in ("emailAddress", "serialNumber"):
            short[getattr(NameOID, oid_name)] = key
    for attribute in name:
        key = short.get(attribute.oid, attribute.oid.dotted_string)
        result[key] = attribute.value
    return result


def describe_certificate(cert, now=None):
    """The facts every module reports about a certificate: no key material."""
    now = now or c.utcnow()
    not_before = c.not_valid_before(cert)
    not_after = c.not_valid_after(cert)
    lifetime = (not_after - not_before).total_seconds()
    elapsed = (now - not_before).total_seconds()
    constraints = extension_value(cert, x509.BasicConstraints)
    return {
        "subject": name_to_dict(cert.subject),
        "subject_string": name_to_string(cert.subject),
        "issuer": name_to_dict(cert.issuer),
        "issuer_string": name_to_string(cert.issuer),
        "common_name": common_name(cert.subject),
        "subject_alt_names": [san_to_string(n) for n in sans_of(cert)],
        "spiffe_id": spiffe_id_of(cert),
        "serial": c.serial_hex(cert.serial_number),
        "not_before": c.isoformat(not_before),
        "not_after": c.isoformat(not_after),
        "days_remaining": round((not_after - now).total_seconds() / 86400.0, 2),
        "lifetime_elapsed": round(min(max(elapsed / lifetime, 0.0), 1.0), 4) if lifetime > 0 else 1.0,
        "expired": not_after <= now,
        "not_yet_valid": not_before > now,
        "is_ca": bool(constraints and constraints.ca),
        "path_length": constraints.path_length if constraints and constraints.ca else None,
        "key_usage": key_usage_names(extension_value(cert, x509.KeyUsage)),
        "extended_key_usage": extended_key_usage_names(extension_value(cert, x509.ExtendedKeyUsage)),
        "public_key_type": c.key_type_and_size(cert.public_key())[0],
        "public_key_size": c.key_type_and_size(cert.public_key())[1],
        "public_key_fingerprint": c.public_key_fingerprint(cert.public_key()),
        "fingerprint_sha256": c.fingerprint(cert, "sha256"),
        "fingerprint_sha1": c.fingerprint(cert, "sha1"),
        "self_signed": is_self_signed(cert),
    }


# --- chains -----------------------------------------------------------------


def verify_chain(leaf, intermediates, anchors, now=None, max_depth=8):
    """Build a path from leaf to one of the anchors; return (ok, error, path).

    It checks names, signatures, validity periods and that every issuer is a
    CA allowed to sign (basicConstraints, keyUsage, pathLen). It is a local
    check of the files; ``tls_probe`` proves what a server really accepts.
    """
    now = now or c.utcnow()
    anchor_fingerprints = set(c.fingerprint(a) for a in anchors)
    path = [leaf]
    current = leaf
    pool = list(intermediates) + list(anchors)
    for depth in range(max_depth + 1):
        if c.not_valid_after(current) <= now:
            return False, "%s expired on %s" % (name_to_string(current.subject),
                                                c.isoformat(c.not_valid_after(current))), path
        if c.not_valid_before(current) > now:
            return False, "%s is not valid before %s" % (name_to_string(current.subject),
                                                         c.isoformat(c.not_valid_before(current))), path
        if c.fingerprint(current) in anchor_fingerprints:
            return True, None, path
        issuer = next((cand for cand in pool if c.cert_signed_by(current, cand)), None)
        if issuer is None:
            return False, "no certificate in the bundle issued %s (issuer %s)" % (
                name_to_string(current.subject), name_to_string(current.issuer)), path
        if not is_ca(issuer):
            return False, "%s signed %s but is not a CA" % (name_to_string(issuer.subject),
                                                            name_to_string(current.subject)), path
        usage = extension_value(issuer, x509.KeyUsage)
        if usage is not None and not usage.key_cert_sign:
            return False, "%s may not sign certificates (no keyCertSign)" % name_to_string(issuer.subject), path
        constraints = extension_value(issuer, x509.BasicConstraints)
        intermediates_below = sum(1 for p in path[1:] if not is_self_signed(p))
        if constraints.path_length is not None and intermediates_below > constraints.path_length:
            return False, "%s allows a path length of %d" % (name_to_string(issuer.subject),
                                                             constraints.path_length), path
        if issuer is current:
            return False, "%s is self-signed and not in the bundle" % name_to_string(current.subject), path
        path.append(issuer)
        current = issuer
    return False, "no path to the bundle within %d certificates" % max_depth, path
