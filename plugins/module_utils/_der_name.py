# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Distinguished names in DER, as a CertificateRequest lists them, to RFC 4514 text.

cryptography builds a Name only when every attribute is one it accepts; a
server may list names it refuses (an over-long CN, a three-letter country, a
non-string value). This decoder reads any well-formed Name and writes the
same text describe_certificate() gives, so the names a probe reports compare
equal to the subjects of the certificates they stand for.
"""

from __future__ import annotations

import binascii

from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _x509

if c.HAS_CRYPTOGRAPHY:
    from cryptography import x509
    from cryptography.x509.oid import ObjectIdentifier

_SEQUENCE = 0x30
_SET = 0x31
_OID = 0x06
# ASN.1 string types an attribute value may have, and how their octets decode.
_STRING_TAGS = {
    0x0C: "utf-8",       # UTF8String
    0x12: "ascii",       # NumericString
    0x13: "ascii",       # PrintableString
    0x14: "latin-1",     # TeletexString (T.61; Latin-1 is what everyone means by it)
    0x16: "ascii",       # IA5String
    0x1A: "ascii",       # VisibleString
    0x1C: "utf-32-be",   # UniversalString
    0x1E: "utf-16-be",   # BMPString
}
# The short names RFC 4514 (and cryptography's rfc4514_string) use.
_RFC4514_NAMES = {
    "2.5.4.3": "CN", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O", "2.5.4.11": "OU", "2.5.4.6": "C",
    "2.5.4.9": "STREET", "0.9.2342.19200300.100.1.25": "DC", "0.9.2342.19200300.100.1.1": "UID",
}


def _der_element(data, pos, end):
    """(tag, value_start, value_end) of the DER element at pos; ValueError when malformed."""
    if pos + 2 > end:
        raise ValueError("truncated DER element")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise ValueError("DER tag 0x%02X is not used in names" % tag)
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 3:
            raise ValueError("unsupported DER length")
        if pos + count > end:
            raise ValueError("truncated DER length")
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    if pos + length > end:
        raise ValueError("truncated DER element")
    return tag, pos, pos + length


def _der_children(data, start, end):
    """[(tag, value_start, value_end, element_start)] of the elements in data[start:end]."""
    children = []
    pos = start
    while pos < end:
        tag, value_start, value_end = _der_element(data, pos, end)
        children.append((tag, value_start, value_end, pos))
        pos = value_end
    return children


def decode_oid(value):
    """Dotted text of a DER OBJECT IDENTIFIER's content octets."""
    if not value or value[-1] & 0x80:
        raise ValueError("malformed OBJECT IDENTIFIER")
    arcs = []
    current = 0
    for octet in bytearray(value):
        current = (current << 7) | (octet & 0x7F)
        if not octet & 0x80:
            arcs.append(current)
            current = 0
    first = arcs[0]
    if first < 80:
        head = [first // 40, first % 40]
    else:
        head = [2, first - 80]
    return ".".join(str(arc) for arc in head + arcs[1:])


def parse_der_name(der):
    """A DER Name as [[(oid, tag, value octets, whole element)]], one list per RDN, in DER order."""
    der = bytes(der)
    tag, start, end = _der_element(der, 0, len(der))
    if tag != _SEQUENCE or end != len(der):
        raise ValueError("a Name is one DER SEQUENCE")
    rdns = []
    for rdn_tag, rdn_start, rdn_end, _pos in _der_children(der, start, end):
        if rdn_tag != _SET:
            raise ValueError("a relative distinguished name is a SET")
        attributes = []
        for atv_tag, atv_start, atv_end, _pos in _der_children(der, rdn_start, rdn_end):
            parts = _der_children(der, atv_start, atv_end) if atv_tag == _SEQUENCE else []
            if len(parts) != 2 or parts[0][0] != _OID:
                raise ValueError("an attribute is a SEQUENCE of an OID and a value")
            (_t, oid_start, oid_end, _p), (value_tag, value_start, value_end, element_start) = parts
            attributes.append((decode_oid(der[oid_start:oid_end]), value_tag, der[value_start:value_end],
                               der[element_start:value_end]))
        if not attributes:
            raise ValueError("empty relative distinguished name")
        rdns.append(attributes)
    return rdns


def _attribute_text(tag, value):
    if tag not in _STRING_TAGS:
        raise ValueError("not a string")
    return value.decode(_STRING_TAGS[tag])


def _escape_rfc4514(value):
    """RFC 4514 section 2.4 escaping, as cryptography does it."""
    if not value:
        return ""
    for char in ("\\", '"', "+", ",", ";", "<", ">"):
        value = value.replace(char, "\\" + char)
    value = value.replace("\0", "\\00")
    if value[0] in ("#", " "):
        value = "\\" + value
    if value[-1] == " ":
        value = value[:-1] + "\\ "
    return value


def format_rfc4514(rdns):
    """RFC 4514 text of parse_der_name() output, for names cryptography will not build.

    Non-string values (and strings that do not decode) are written as
    '#' and the hex of their DER element, as RFC 4514 section 2.4 says.
    """
    parts = []
    for rdn in reversed(rdns):
        items = []
        for oid, tag, value, element in rdn:
            try:
                text = _escape_rfc4514(_attribute_text(tag, value))
            except (ValueError, UnicodeDecodeError):
                text = "#" + binascii.hexlify(element).decode("ascii")
            items.append("%s=%s" % (_RFC4514_NAMES.get(oid, oid), text))
        parts.append("+".join(items))
    return ",".join(parts)


def der_name_to_string(der):
    """RFC 4514 text of a DER Name, the same text describe_certificate() gives.

    cryptography formats it when it can build the Name; names it refuses
    (an over-long CN, a three-letter country, a non-string value) are
    formatted here the same way. Malformed DER comes back as '#' and its hex.
    """
    try:
        rdns = parse_der_name(der)
    except ValueError:
        return "#" + binascii.hexlify(bytes(der)).decode("ascii")
    try:
        name = x509.Name([x509.RelativeDistinguishedName(
            [x509.NameAttribute(ObjectIdentifier(oid), _attribute_text(tag, value)) for oid, tag, value, _e in rdn])
            for rdn in rdns])
        return _x509.name_to_string(name)
    except (ValueError, TypeError, UnicodeDecodeError):
        return format_rfc4514(rdns)


# --- watching the handshake -------------------------------------------------------
