# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""TLS on the wire: alert numbers, handshake message numbers, and the parsers of
the three handshake messages a probe reads (RFC 8446 and RFC 5246).

Plain functions over bytes, with no socket and no ssl module: the handshake
recorder of _probe feeds them what SSLContext._msg_callback saw, and unit
tests feed them captured and hand-made messages.
"""

from __future__ import annotations

# TLS alert descriptions by the name OpenSSL gives them as an error reason;
# the lower-cased name is OpenSSL's text ("tlsv1 alert unknown ca").
ALERTS = {
    10: "SSLV3_ALERT_UNEXPECTED_MESSAGE", 20: "SSLV3_ALERT_BAD_RECORD_MAC", 21: "TLSV1_ALERT_DECRYPTION_FAILED",
    22: "TLSV1_ALERT_RECORD_OVERFLOW", 30: "SSLV3_ALERT_DECOMPRESSION_FAILURE", 40: "SSLV3_ALERT_HANDSHAKE_FAILURE",
    41: "SSLV3_ALERT_NO_CERTIFICATE", 42: "SSLV3_ALERT_BAD_CERTIFICATE", 43: "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
    44: "SSLV3_ALERT_CERTIFICATE_REVOKED", 45: "SSLV3_ALERT_CERTIFICATE_EXPIRED",
    46: "SSLV3_ALERT_CERTIFICATE_UNKNOWN", 47: "SSLV3_ALERT_ILLEGAL_PARAMETER", 48: "TLSV1_ALERT_UNKNOWN_CA",
    49: "TLSV1_ALERT_ACCESS_DENIED", 50: "TLSV1_ALERT_DECODE_ERROR", 51: "TLSV1_ALERT_DECRYPT_ERROR",
    60: "TLSV1_ALERT_EXPORT_RESTRICTION", 70: "TLSV1_ALERT_PROTOCOL_VERSION",
    71: "TLSV1_ALERT_INSUFFICIENT_SECURITY", 80: "TLSV1_ALERT_INTERNAL_ERROR",
    86: "TLSV1_ALERT_INAPPROPRIATE_FALLBACK", 90: "TLSV1_ALERT_USER_CANCELLED", 100: "TLSV1_ALERT_NO_RENEGOTIATION",
    109: "TLSV13_ALERT_MISSING_EXTENSION", 110: "TLSV1_UNSUPPORTED_EXTENSION", 111: "TLSV1_CERTIFICATE_UNOBTAINABLE",
    112: "TLSV1_UNRECOGNIZED_NAME", 113: "TLSV1_BAD_CERTIFICATE_STATUS_RESPONSE",
    114: "TLSV1_BAD_CERTIFICATE_HASH_VALUE", 115: "TLSV1_ALERT_UNKNOWN_PSK_IDENTITY",
    116: "TLSV13_ALERT_CERTIFICATE_REQUIRED", 120: "TLSV1_ALERT_NO_APPLICATION_PROTOCOL",
}
ALERT_BY_REASON = dict((name, code) for code, name in ALERTS.items())
# Alerts by which a server refuses the certificate we sent (bad, unsupported
# e.g. wrong extendedKeyUsage, revoked, expired, unknown, unknown CA, access denied).
CLIENT_CERT_REJECTIONS = frozenset((42, 43, 44, 45, 46, 48, 49))
# Alerts by which a server says a certificate was missing.
NO_CLIENT_CERT = frozenset((41, 116))
HANDSHAKE_FAILURE = 40
CLOSE_NOTIFY = 0

PROTOCOL_NAMES = {0x0301: "TLSv1", 0x0302: "TLSv1.1", 0x0303: "TLSv1.2", 0x0304: "TLSv1.3"}
TLS13 = 0x0304

# Handshake message and extension numbers (RFC 8446 section 4 and 4.2).
SERVER_HELLO = 2
CERTIFICATE = 11
SERVER_HELLO_DONE = 14
CERTIFICATE_REQUEST = 13
FINISHED = 20
_EXT_SUPPORTED_VERSIONS = 43
_EXT_CERTIFICATE_AUTHORITIES = 47
CONTENT_ALERT = 21
CONTENT_HANDSHAKE = 22


# --- reading TLS structures ---------------------------------------------------


class _Reader(object):
    """Bounds-checked reading of TLS's length-prefixed vectors; ValueError when short."""

    def __init__(self, data):
        self.data = bytes(data)
        self.pos = 0

    def take(self, count):
        if count < 0 or self.pos + count > len(self.data):
            raise ValueError("truncated TLS message")
        chunk = self.data[self.pos:self.pos + count]
        self.pos += count
        return chunk

    def uint(self, size):
        return int.from_bytes(self.take(size), "big")

    def vector(self, length_size):
        return self.take(self.uint(length_size))

    def reader(self, length_size):
        return _Reader(self.vector(length_size))

    def done(self):
        return self.pos >= len(self.data)


def _vectors(data, length_size):
    """The items of a list of vectors (each with a length_size prefix)."""
    reader = _Reader(data)
    items = []
    while not reader.done():
        items.append(reader.vector(length_size))
    return items


def parse_server_hello(body):
    """(protocol version, cipher suite number) of a ServerHello body."""
    reader = _Reader(body)
    version = reader.uint(2)
    reader.take(32)  # random
    reader.vector(1)  # legacy_session_id_echo
    cipher_suite = reader.uint(2)
    reader.take(1)  # legacy_compression_method
    if not reader.done():
        extensions = reader.reader(2)
        while not extensions.done():
            ext_type = extensions.uint(2)
            ext_data = extensions.vector(2)
            if ext_type == _EXT_SUPPORTED_VERSIONS and len(ext_data) == 2:
                version = int.from_bytes(ext_data, "big")
    return version, cipher_suite


def parse_certificate_request(body, version):
    """The DER distinguished names a CertificateRequest body lists (maybe none).

    TLS 1.3 (RFC 8446 4.3.2) carries them in the certificate_authorities
    extension; TLS 1.2 (RFC 5246 7.4.4) in a list after the certificate types
    and signature algorithms; TLS 1.0/1.1 have no signature algorithms.
    """
    reader = _Reader(body)
    if version == TLS13:
        reader.vector(1)  # certificate_request_context
        extensions = reader.reader(2)
        while not extensions.done():
            ext_type = extensions.uint(2)
            ext_data = extensions.vector(2)
            if ext_type == _EXT_CERTIFICATE_AUTHORITIES:
                return _vectors(_Reader(ext_data).vector(2), 2)
        return []
    reader.vector(1)  # certificate_types
    if version >= 0x0303:
        reader.vector(2)  # supported_signature_algorithms
    return _vectors(reader.vector(2), 2)


def parse_certificate_message(body, version):
    """The DER certificates of a Certificate message body, leaf first."""
    reader = _Reader(body)
    if version == TLS13:
        reader.vector(1)  # certificate_request_context
        entries = reader.reader(3)
        certs = []
        while not entries.done():
            certs.append(entries.vector(3))
            entries.vector(2)  # per-certificate extensions
        return certs
    return _vectors(reader.vector(3), 3)


# --- distinguished names in DER -------------------------------------------------
