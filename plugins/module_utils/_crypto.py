# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keys, PEM handling and the differences between cryptography releases.

Managed hosts run the distribution's ``cryptography``: 38.0 on Debian 12 and
43.0 on Debian 13. Everything that differs between releases is bridged here,
once, so the rest of the core reads the same on both.
"""

from __future__ import annotations

import hashlib
import re
import traceback

try:
    import cryptography
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
except ImportError:
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()
    CRYPTOGRAPHY_VERSION = None
else:
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None
    CRYPTOGRAPHY_VERSION = cryptography.__version__

from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError
# The keys the collection makes are decided in _params (the key_spec option group); here for the core that reads
# them from _crypto.
from ansible_collections.fleet.mtls.plugins.module_utils._params import (  # noqa: F401 pylint: disable=unused-import
    DEFAULT_KEY_SIZE, KEY_SIZES, new_key_size)
# The time helpers live in _time (standard library only); here for the modules that read them from _crypto.
from ansible_collections.fleet.mtls.plugins.module_utils._time import (  # noqa: F401 pylint: disable=unused-import
    UTC, as_utc, isoformat, parse_isoformat, utcnow)

# The oldest release the core is written and tested against (Debian 12).
MINIMUM_CRYPTOGRAPHY_VERSION = "38.0"

_EC_CURVES = {256: "SECP256R1", 384: "SECP384R1"}

_PEM_BLOCK = re.compile(
    rb"-----BEGIN (?P<label>[A-Z0-9 ]+)-----\r?\n.*?-----END (?P=label)-----", re.S
)


def _utc_attribute(obj, name):
    # cryptography 42 added the *_utc properties and deprecated the naive ones.
    if hasattr(obj, name + "_utc"):
        return getattr(obj, name + "_utc")
    return as_utc(getattr(obj, name))


def not_valid_before(cert):
    return _utc_attribute(cert, "not_valid_before")


def not_valid_after(cert):
    return _utc_attribute(cert, "not_valid_after")


def crl_last_update(crl):
    return _utc_attribute(crl, "last_update")


def crl_next_update(crl):
    return _utc_attribute(crl, "next_update")


def revocation_date(revoked):
    return _utc_attribute(revoked, "revocation_date")


def to_bytes(data):
    if isinstance(data, bytes):
        return data
    return data.encode("utf-8")


def pem_blocks(data, label):
    """Every PEM block with the given label in data, as bytes, in order."""
    found = []
    for match in _PEM_BLOCK.finditer(to_bytes(data)):
        if match.group("label") == label.encode("ascii"):
            found.append(match.group(0) + b"\n")
    return found


def colon_hex(data):
    return ":".join("%02X" % b for b in bytearray(data))


def serial_hex(serial):
    """Serials as nginx ($ssl_client_serial) and HAProxy log them: upper hex."""
    text = "%X" % serial
    return text if len(text) % 2 == 0 else "0" + text


# --- private keys ---------------------------------------------------------


def generate_private_key(key_type, size=None):
    """A new key_type key of size, unset the type's default (_params.new_key_size() refuses any other)."""
    size = new_key_size(key_type, size)
    if key_type == "ec":
        return ec.generate_private_key(getattr(ec, _EC_CURVES[size])())
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=size)
    return ed25519.Ed25519PrivateKey.generate()


def key_type_and_size(key):
    """('ec', 256), ('rsa', 3072), ('ed25519', None) for a private or public key."""
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return "ec", key.curve.key_size
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "rsa", key.key_size
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return "ed25519", None
    raise PkiError("unsupported key algorithm %s" % type(key).__name__)


def key_fits(key, key_type, size=None):
    """Whether key is of key_type and, unless size is None (any size), of that size."""
    found_type, found_size = key_type_and_size(key)
    return found_type == key_type and (size is None or found_size == size)


def kept_or_new_key(pem, key_type, size, passphrase=None, source="private key"):
    """(key, new): the key in pem when it is a key_type key of size, else a new one.

    The one answer to "keep this key or make one" of private_key and
    certificate_request; pem None (no key, or one not to keep) makes a new one.
    A pem that cannot be read is an error, never replaced: whoever holds a
    certificate for it would silently lose it. (A CA's key is never replaced:
    ca only asks key_fits.)
    """
    if pem is not None:
        key = load_private_key(pem, passphrase, source=source)
        if key_fits(key, key_type, size):
            return key, False
    return generate_private_key(key_type, size), True


def is_encrypted_pem(data):
    data = to_bytes(data)
    return b"ENCRYPTED PRIVATE KEY" in data or b"Proc-Type: 4,ENCRYPTED" in data


PRIVATE_KEY_LABELS = ("PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY")


def has_private_key(data):
    """Whether data holds a PEM private key block of any of the usual kinds."""
    return any(pem_blocks(data, label) for label in PRIVATE_KEY_LABELS)


def load_private_key(data, passphrase=None, source="private key"):
    """Load a PEM private key; every failure is a PkiError naming the cause.

    A wrong passphrase is told apart from a corrupt file, so that neither is
    ever mistaken for "no usable key, make a new one".
    """
    data = to_bytes(data)
    if not has_private_key(data):
        raise PkiError("%s is not a PEM private key" % source)
    encrypted = is_encrypted_pem(data)
    if encrypted and not passphrase:
        raise PkiError("%s is encrypted and no passphrase was given" % source)
    if not encrypted and passphrase:
        raise PkiError("%s is not encrypted, but a passphrase was given" % source)
    try:
        key = serialization.load_pem_private_key(data, password=to_bytes(passphrase) if passphrase else None)
    except ValueError:
        if encrypted:
            raise PkiError("%s could not be decrypted: wrong passphrase or corrupt data" % source)
        raise PkiError("%s is corrupt or not a supported key" % source)
    except (TypeError, UnsupportedAlgorithm) as exc:
        raise PkiError("%s could not be loaded: %s" % (source, exc))
    key_type_and_size(key)
    return key


def serialize_private_key(key, passphrase=None):
    if passphrase:
        encryption = serialization.BestAvailableEncryption(to_bytes(passphrase))
    else:
        encryption = serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def is_private_key(key):
    return hasattr(key, "private_bytes")


def public_key_of(key):
    """The public key of a private key; a public key itself."""
    return key.public_key() if is_private_key(key) else key


def public_key_pem(key):
    return public_key_of(key).public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def public_key_der(key):
    return public_key_of(key).public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def public_key_fingerprint(key):
    """SHA-256 over the SubjectPublicKeyInfo: the same for key, CSR and cert."""
    return colon_hex(hashlib.sha256(public_key_der(key)).digest())


def same_public_key(a, b):
    return public_key_der(a) == public_key_der(b)


def signature_hash(key):
    """The digest to sign with: none for Ed25519, SHA-384 with P-384."""
    key_type, size = key_type_and_size(key)
    if key_type == "ed25519":
        return None
    if key_type == "ec" and size == 384:
        return hashes.SHA384()
    return hashes.SHA256()


def verify_signature(public_key, signature, data, hash_algorithm):
    """True when signature over data verifies under public_key."""
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, padding.PKCS1v15(), hash_algorithm)
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(hash_algorithm))
        elif isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def cert_signed_by(cert, issuer):
    """True when issuer's key made cert's signature and the names chain."""
    if cert.issuer != issuer.subject:
        return False
    try:
        hash_algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return False
    return verify_signature(issuer.public_key(), cert.signature, cert.tbs_certificate_bytes, hash_algorithm)


def crl_signed_by(crl, issuer):
    if crl.issuer != issuer.subject:
        return False
    return crl.is_signature_valid(issuer.public_key())


def fingerprint(cert, algorithm="sha256"):
    return colon_hex(cert.fingerprint(getattr(hashes, algorithm.upper())()))
