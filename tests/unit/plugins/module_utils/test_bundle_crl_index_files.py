# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import datetime
import os
import stat

import pytest

from ansible_collections.fleet.mtls.plugins.module_utils import _bundle
from ansible_collections.fleet.mtls.plugins.module_utils import _crl
from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _files
from ansible_collections.fleet.mtls.plugins.module_utils import _index
from ansible_collections.fleet.mtls.plugins.module_utils import _x509
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError

DAY = datetime.timedelta(days=1)


def test_bundle_dedupes_and_does_not_depend_on_input_order(pki, other_pki):
    root, issuing, other = (_x509.certificate_pem(x) for x in (pki.root, pki.issuing, other_pki.root))
    first, kept, _dropped = _bundle.build_bundle([("a", root + issuing), ("b", other), ("c", root)], pki.now)
    second, _kept, _dropped = _bundle.build_bundle([("x", other), ("y", issuing), ("z", root + root)], pki.now)
    assert first == second
    assert len(kept) == 3


def test_bundle_refuses_a_leaf_and_drops_expired_only_when_asked(pki):
    _key, leaf = pki.leaf(["DNS:leaf.lab"])
    with pytest.raises(PkiError, match="not a CA"):
        _bundle.build_bundle([("leaf.pem", _x509.certificate_pem(leaf))], pki.now)
    old_key = c.generate_private_key("ec")
    old = _x509.build_ca_certificate(old_key, {"CN": "Old"}, pki.now - 10 * DAY, pki.now - DAY)
    sources = [("old", _x509.certificate_pem(old)), ("root", _x509.certificate_pem(pki.root))]
    _pem, kept, dropped = _bundle.build_bundle(sources, pki.now, drop_expired=True)
    assert [x.subject for x in kept] == [pki.root.subject] and [x.subject for x in dropped] == [old.subject]
    _pem, kept, _dropped = _bundle.build_bundle(sources, pki.now)
    assert len(kept) == 2
    with pytest.raises(PkiError, match="no certificate"):
        _bundle.build_bundle(sources[:1], pki.now, drop_expired=True)


def test_crl_lists_revocations_with_number_aki_and_reason(pki):
    revocations = [_crl.Revocation("0A1B", pki.now, "key_compromise"), _crl.Revocation(0x2C, pki.now)]
    crl = _crl.build_crl(pki.issuing, pki.issuing_key, revocations, 7, pki.now, 7)
    assert c.crl_signed_by(crl, pki.issuing)
    facts = _crl.describe_crl(crl, pki.now)
    assert facts["crl_number"] == 7 and facts["revoked_serials"] == ["0A1B", "2C"] and not facts["expired"]
    aki = _x509.extension_value(crl, _x509.x509.AuthorityKeyIdentifier)
    assert aki.key_identifier == _x509.extension_value(pki.issuing, _x509.x509.SubjectKeyIdentifier).digest
    reasons = dict((r.serial, r.reason) for r in _crl.revocations_in(crl))
    assert reasons == {"0A1B": "key_compromise", "2C": "unspecified"}
    assert _crl.is_current(crl, pki.issuing, revocations, pki.now, DAY)
    assert not _crl.is_current(crl, pki.issuing, revocations[:1], pki.now, DAY)
    assert not _crl.is_current(crl, pki.issuing, revocations, pki.now + 6.5 * DAY, DAY)
    assert not _crl.is_current(crl, pki.root, revocations, pki.now, DAY)


def test_index_records_finds_and_revokes(tmp_path):
    path = str(tmp_path / "index.json")
    with _index.CertificateIndex(path) as index:
        index.add(dict(serial="0ABC", name="web1", not_after="2030-01-01T00:00:00Z"))
        index.add(dict(serial="1234", name="web2", not_after="2030-01-01T00:00:00Z"))
    with _index.CertificateIndex(path) as index:
        assert [e["name"] for e in index.find(serial="0a:bc")] == ["web1"]
        assert [e["serial"] for e in index.find(name="web2")] == ["1234"]
        entry = index.find(name="web1")[0]
        assert index.revoke(entry, "2026-01-01T00:00:00Z", "superseded")
        assert not index.revoke(entry, "2026-01-02T00:00:00Z", "superseded")
        with pytest.raises(PkiError, match="unknown revocation reason"):
            index.revoke(index.find(name="web2")[0], "2026-01-01T00:00:00Z", "bored")
    assert [e["name"] for e in _index.read_entries(path) if e.get("revoked_at")] == ["web1"]


def test_index_in_check_mode_writes_nothing(tmp_path):
    path = str(tmp_path / "index.json")
    with _index.CertificateIndex(path, save=False) as index:
        index.add(dict(serial="01", name="x", not_after="2030-01-01T00:00:00Z"))
    assert os.listdir(str(tmp_path)) == []


def test_corrupt_index_is_an_error(tmp_path):
    path = tmp_path / "index.json"
    path.write_text("{not json")
    with pytest.raises(PkiError, match="corrupt"):
        with _index.CertificateIndex(str(path)):
            pass


@pytest.mark.parametrize("serial,expected", [("0abc", "0ABC"), ("0A:BC", "0ABC"), ("abc", "0ABC"),
                                             (0xABC, "0ABC"), ("0x00ff", "FF")])
def test_serials_normalize_like_servers_log_them(serial, expected):
    assert _index.normalize_serial(serial) == expected


@pytest.mark.parametrize("serial", ["-1", "+1", "1_0", "1 0", "", "0x", "G1", -1, True])
def test_a_serial_that_is_not_plain_hex_is_refused(serial):
    with pytest.raises(PkiError, match="serial"):
        _index.normalize_serial(serial)


def test_atomic_write_sets_mode_before_content_and_replaces_whole(tmp_path):
    path = str(tmp_path / "secret.key")
    _files.atomic_write(path, b"first", mode=0o600)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    _files.atomic_write(path, b"second", mode=0o600)
    assert _files.read_bytes(path) == b"second"
    assert os.listdir(str(tmp_path)) == ["secret.key"]


def test_failed_write_leaves_the_old_file_untouched(tmp_path):
    path = tmp_path / "cert.pem"
    path.write_bytes(b"old")
    with pytest.raises(PkiError, match="does not exist"):
        _files.atomic_write(str(tmp_path / "missing" / "x.pem"), b"new")
    with pytest.raises(PkiError, match="user"):
        _files.atomic_write(str(path), b"new", owner="no-such-user-here")
    assert path.read_bytes() == b"old"
    assert os.listdir(str(tmp_path)) == ["cert.pem"]
