# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ca: numbers checked alike in check mode, paths that are not files refused, one key and certificate under a lock.

Each refusal is a clean failure with a message, and leaves every file of
the directory as it was: no key is made.
"""

from __future__ import annotations

import os

import pytest

from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _x509
from ansible_collections.fleet.mtls.plugins.modules import ca
from ansible_collections.fleet.mtls.tests.unit.plugins.modules import ca_host

MODULE = ca

INTEGERS = [0, -1, 2 ** 31, 2 ** 63, 10 ** 20]


@pytest.fixture
def root(tmp_path):
    """The args of a new root CA in tmp_path/ca, which holds nothing yet."""
    directory = tmp_path / "ca"
    directory.mkdir()
    return directory, dict(key_path=str(directory / "root.key"), cert_path=str(directory / "root.crt"),
                           subject=dict(CN="Test Root"))


@pytest.mark.parametrize("check_mode", [False, True])
@pytest.mark.parametrize("days", INTEGERS + [36501])
def test_validity_days_out_of_range_is_refused(root, run_module, check_mode, days):
    directory, args = root
    ca_host.refused(run_module, directory, dict(args, validity_days=days),
                    "validity_days must be a whole number from 1 to 36500 days, not %d" % days, check_mode=check_mode)


@pytest.mark.parametrize("check_mode", [False, True])
@pytest.mark.parametrize("length", [-1, 101, 2 ** 63, 2 ** 64, 10 ** 20])
def test_path_length_out_of_range_is_refused(root, run_module, check_mode, length):
    directory, args = root
    ca_host.refused(run_module, directory, dict(args, path_length=length),
                    "path_length must be a whole number from 0 to 100 CA certificates, not %d" % length, check_mode=check_mode)


def test_an_existing_ca_is_not_a_reason_to_skip_the_checks(root, run_module):
    directory, args = root
    made = run_module(args)
    assert not made.get("failed") and made["key_generated"], made
    ca_host.refused(run_module, directory, dict(args, validity_days=-5), "validity_days", "not -5", check_mode=True)
    ca_host.refused(run_module, directory, dict(args, validity_days=-5), "validity_days", "not -5")


def test_the_longest_lifetime_is_accepted_and_an_intermediate_ends_with_its_parent(root, run_module, pki, tmp_path):
    directory, args = root
    result = run_module(dict(args, validity_days=36500, path_length=100))
    assert not result.get("failed"), result
    cert = _x509.load_certificate(result["certificate"])
    assert (c.not_valid_after(cert) - c.not_valid_before(cert)).days == 36500
    assert _x509.describe_certificate(cert)["path_length"] == 100
    parent = ca_host.ca_directory(tmp_path / "parent", pki)
    intermediate = run_module(dict(key_path=str(directory / "sub.key"), cert_path=str(directory / "sub.crt"),
                                   subject=dict(CN="Test Sub"), validity_days=36500, path_length=0,
                                   parent_cert_path=parent["ca_cert_path"], parent_key_path=parent["ca_key_path"]))
    assert not intermediate.get("failed"), intermediate
    assert c.parse_isoformat(intermediate["not_after"]) == c.not_valid_after(pki.issuing)


@pytest.mark.parametrize("option", ["key_path", "cert_path", "parent_cert_path", "parent_key_path"])
def test_a_path_that_is_a_directory_is_refused(root, run_module, pki, tmp_path, option):
    directory, args = root
    parent = ca_host.ca_directory(tmp_path / "parent", pki)
    args = dict(args, parent_cert_path=parent["ca_cert_path"], parent_key_path=parent["ca_key_path"])
    (directory / "taken").mkdir()
    args[option] = str(directory / "taken")
    ca_host.refused(run_module, directory, args, str(directory / "taken"), "directory")


@pytest.mark.parametrize("make,why", [
    (lambda path: os.symlink(str(path.parent / "elsewhere"), str(path)), "is a symbolic link"),
    (lambda path: path.mkdir(), "is a directory"),
])
def test_a_lock_path_that_is_not_a_regular_file_is_refused(root, run_module, make, why):
    directory, args = root
    lock = directory / "root.key.lock"
    make(lock)
    ca_host.refused(run_module, directory, args, "lock file %s %s" % (lock, why))
    assert not os.path.lexists(str(directory / "elsewhere"))


def test_check_mode_takes_no_lock(root, run_module):
    directory, args = root
    result = run_module(args, check_mode=True)
    assert not result.get("failed") and result["changed"] and result["key_generated"], result
    assert os.listdir(str(directory)) == []


def test_runs_at_once_make_one_key_and_its_certificate(root, tmp_path):
    """Eight runs creating the same CA at once: one makes it, the others find it and keep it."""
    directory, args = root
    results = ca_host.run_at_once(ca.main, [args] * 8, tmp_path / "results")
    assert not [r["msg"] for r in results if r.get("failed")]
    assert sum(r["key_generated"] for r in results) == 1, [r["key_generated"] for r in results]
    assert len(set(r["certificate"] for r in results)) == 1
    key = c.load_private_key((directory / "root.key").read_bytes())
    cert = _x509.load_certificate((directory / "root.crt").read_bytes())
    assert c.same_public_key(cert.public_key(), key)
    assert sorted(os.listdir(str(directory))) == ["root.crt", "root.key", "root.key.lock"]


def test_a_new_ca_key_is_p256_and_an_existing_p384_key_is_kept(root, run_module):
    # P-256 by default: every full mTLS handshake verifies the CA's signatures.
    directory, args = root
    made = run_module(args)
    assert not made.get("failed") and made["key_generated"], made
    assert c.key_type_and_size(c.load_private_key((directory / "root.key").read_bytes())) == ("ec", 256)

    # A CA made with P-384 keeps its key, and the run changes nothing, when no size is asked for.
    older = directory / "older"
    older.mkdir()
    older_args = dict(args, key_path=str(older / "root.key"), cert_path=str(older / "root.crt"))
    first = run_module(dict(older_args, key_size=384))
    assert not first.get("failed") and first["key_generated"], first
    before = {p.name: p.read_bytes() for p in older.iterdir()}
    again = run_module(older_args)
    assert not again.get("failed") and not again["changed"] and not again["key_generated"], again
    assert {p.name: p.read_bytes() for p in older.iterdir()} == before


@pytest.mark.parametrize("check_mode", [False, True])
def test_an_existing_key_of_another_size_than_asked_is_refused(root, run_module, check_mode):
    directory, args = root
    made = run_module(dict(args, key_size=384))
    assert not made.get("failed"), made
    ca_host.refused(run_module, directory, dict(args, key_size=256), "is ec 384, not the ec 256 asked for",
                    "never replaced here", check_mode=check_mode)
