# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError


@pytest.mark.parametrize("key_type,size", [("ec", 256), ("ec", 384), ("rsa", 2048), ("ed25519", None)])
def test_generated_keys_have_the_asked_type_and_size(key_type, size):
    key = c.generate_private_key(key_type, size)
    assert c.key_type_and_size(key) == (key_type, size)


def test_default_sizes():
    assert c.key_type_and_size(c.generate_private_key("ec")) == ("ec", 256)
    assert c.DEFAULT_KEY_SIZE["rsa"] == 3072


@pytest.mark.parametrize("key_type,size", [("ec", 521), ("rsa", 1024), ("ed25519", 256), ("dsa", None)])
def test_unsupported_types_and_sizes_are_refused(key_type, size):
    with pytest.raises(PkiError):
        c.generate_private_key(key_type, size)


def test_round_trip_plain_and_encrypted():
    key = c.generate_private_key("ec")
    plain = c.serialize_private_key(key)
    encrypted = c.serialize_private_key(key, "s3cret-pass")
    assert not c.is_encrypted_pem(plain)
    assert c.is_encrypted_pem(encrypted)
    assert c.same_public_key(c.load_private_key(plain), key)
    assert c.same_public_key(c.load_private_key(encrypted, "s3cret-pass"), key)


def test_wrong_passphrase_is_told_apart_from_corruption():
    encrypted = c.serialize_private_key(c.generate_private_key("ec"), "right")
    with pytest.raises(PkiError, match="wrong passphrase"):
        c.load_private_key(encrypted, "wrong")
    with pytest.raises(PkiError, match="no passphrase"):
        c.load_private_key(encrypted)
    plain = c.serialize_private_key(c.generate_private_key("ec"))
    with pytest.raises(PkiError, match="not encrypted"):
        c.load_private_key(plain, "unneeded")
    corrupt = plain.replace(plain[40:60], b"A" * 20)
    with pytest.raises(PkiError, match="corrupt"):
        c.load_private_key(corrupt)
    with pytest.raises(PkiError, match="not a PEM private key"):
        c.load_private_key(b"hello")


def test_fingerprint_is_the_same_for_key_and_its_public_part():
    key = c.generate_private_key("ed25519")
    assert c.public_key_fingerprint(key) == c.public_key_fingerprint(key.public_key())
    assert len(c.public_key_fingerprint(key).split(":")) == 32


def test_serial_hex_is_even_length_upper_case():
    assert c.serial_hex(0xABC) == "0ABC"
    assert c.serial_hex(0x1234) == "1234"


def test_pem_blocks_finds_each_block_in_order():
    key = c.serialize_private_key(c.generate_private_key("ec"))
    text = b"junk\n" + key + b"between\n" + key
    assert c.pem_blocks(text, "PRIVATE KEY") == [key, key]
    assert c.pem_blocks(text, "CERTIFICATE") == []


def test_a_key_that_fits_is_kept_and_any_other_replaced():
    ec256 = c.generate_private_key("ec", 256)
    pem = c.serialize_private_key(ec256)
    kept, new = c.kept_or_new_key(pem, "ec", 256)
    assert not new and c.same_public_key(kept.public_key(), ec256)
    assert c.key_fits(ec256, "ec") and c.key_fits(ec256, "ec", 256) and not c.key_fits(ec256, "ec", 384)
    other, new = c.kept_or_new_key(pem, "ec", 384)
    assert new and c.key_type_and_size(other) == ("ec", 384)
    fresh, new = c.kept_or_new_key(None, "ed25519", None)
    assert new and c.key_type_and_size(fresh) == ("ed25519", None)


def test_a_key_that_cannot_be_read_is_never_replaced():
    with pytest.raises(PkiError, match="private key /x"):
        c.kept_or_new_key(b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n", "ec", 256,
                          source="private key /x")
