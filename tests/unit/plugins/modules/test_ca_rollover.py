# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ca_rollover: the phases in order, the switch and the retirement as moves that a stopped run finishes."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _x509
from ansible_collections.fleet.mtls.plugins.modules import ca_rollover

MODULE = ca_rollover


def ca_files(directory, cert, key, tag):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "issuing.crt").write_bytes(_x509.certificate_pem(cert))
    (directory / "issuing.key").write_bytes(c.serialize_private_key(key))
    (directory / "issuing.crl").write_bytes(b"crl of " + tag)
    (directory / "index.db").write_bytes(b"record of " + tag)


@pytest.fixture
def ca(tmp_path, pki):
    """A CA directory with the current issuing CA and, in next/, the one that replaces it."""
    directory = tmp_path / "ca"
    ca_files(directory, pki.issuing, pki.issuing_key, b"old")
    next_key = c.generate_private_key("ec")
    # The same subject as the old one, another key: as role ca makes the next issuing CA.
    next_cert = _x509.build_ca_certificate(next_key, {"CN": "Test Issuing"}, pki.now, c.not_valid_after(pki.root),
                                           issuer_cert=pki.root, issuer_key=pki.root_key, path_length=0)
    ca_files(directory / "next", next_cert, next_key, b"new")
    for lock in ("index.db.lock", "issuing.key.lock"):  # every CA run makes them
        (directory / lock).write_bytes(b"")
    return directory, c.serial_hex(pki.issuing.serial_number), c.serial_hex(next_cert.serial_number)


def tree(directory):
    return {str(path.relative_to(directory)): path.read_bytes() for path in sorted(directory.rglob("*")) if path.is_file()}


def test_no_rollover_reads_as_none(run_module, tmp_path):
    result = run_module(dict(dir=str(tmp_path)))
    assert (result["changed"], result["phase"], result["next_phase"]) == (False, None, "prepared")


def test_a_whole_rollover_moves_the_files_at_the_switch_and_the_retirement(run_module, ca):
    directory, old, new = ca
    old_crt, new_crt = (directory / "issuing.crt").read_bytes(), (directory / "next" / "issuing.crt").read_bytes()

    prepared = run_module(dict(dir=str(directory), phase="prepared"))
    assert (prepared["changed"], prepared["phase"], prepared["next_phase"]) == (True, "prepared", "trusted")
    assert (prepared["old_serial"], prepared["new_serial"]) == (old, new)
    assert prepared["moved"] == []
    assert oct((directory / "rollover.json").stat().st_mode & 0o777) == "0o600"

    assert run_module(dict(dir=str(directory), phase="trusted"))["phase"] == "trusted"
    switched = run_module(dict(dir=str(directory), phase="switched"))
    assert switched["changed"] and switched["phase"] == "switched"
    assert (directory / "issuing.crt").read_bytes() == new_crt
    assert (directory / "previous" / "issuing.crt").read_bytes() == old_crt
    assert (directory / "index.db").read_bytes() == b"record of new"
    assert (directory / "previous" / "index.db").read_bytes() == b"record of old"
    assert not (directory / "next").exists()

    again = run_module(dict(dir=str(directory), phase="switched"))
    assert not again["changed"] and again["moved"] == []

    run_module(dict(dir=str(directory), phase="reissued"))
    retired = run_module(dict(dir=str(directory), phase="retired"))
    assert retired["changed"]
    assert not (directory / "previous").exists()
    kept = directory / "retired" / old
    assert sorted(os.listdir(kept)) == ["index.db", "issuing.crl", "issuing.crt"]  # the old key is gone

    done = run_module(dict(dir=str(directory), phase="done"))
    assert (done["phase"], done["next_phase"]) == ("done", None)
    assert not (directory / "rollover.json").exists()
    record = json.loads((kept / "rollover.json").read_text())
    assert sorted(record["phases"], key=ca_rollover.PHASES.index) == list(ca_rollover.PHASES)
    assert record["phase"] == "done"

    after = run_module(dict(dir=str(directory)))
    assert (after["phase"], after["next_phase"]) == (None, "prepared")


def test_a_switch_stopped_half_way_is_finished_by_the_next_run(run_module, ca):
    directory, _old, _new = ca
    run_module(dict(dir=str(directory), phase="prepared"))
    run_module(dict(dir=str(directory), phase="trusted"))
    new_crt = (directory / "next" / "issuing.crt").read_bytes()
    # Stopped after two renames: the old certificate moved aside, the new one moved up; the rest still to do.
    (directory / "previous").mkdir()
    os.rename(directory / "issuing.crt", directory / "previous" / "issuing.crt")
    os.rename(directory / "next" / "issuing.crt", directory / "issuing.crt")
    finished = run_module(dict(dir=str(directory), phase="switched"))
    assert finished["changed"]
    assert (directory / "issuing.crt").read_bytes() == new_crt
    assert (directory / "issuing.key").read_bytes() != (directory / "previous" / "issuing.key").read_bytes()
    assert sorted(os.listdir(directory / "previous")) == ["index.db", "issuing.crl", "issuing.crt", "issuing.key"]
    assert (directory / "index.db").read_bytes() == b"record of new"


@pytest.mark.parametrize("phase", ["trusted", "switched", "retired", "done"])
def test_a_phase_out_of_order_is_refused_and_nothing_is_written(run_module, ca, phase):
    directory, _old, _new = ca
    before = tree(directory)
    result = run_module(dict(dir=str(directory), phase=phase))
    assert result["failed"] and "prepared comes next" in result["msg"]
    assert tree(directory) == before


def test_a_rollover_needs_the_next_ca_and_a_new_one(run_module, ca, pki):
    directory, _old, _new = ca
    (directory / "next" / "issuing.key").unlink()
    before = tree(directory)
    missing = run_module(dict(dir=str(directory), phase="prepared"))
    assert missing["failed"] and "next/issuing.key is missing" in missing["msg"]
    assert tree(directory) == before

    ca_files(directory / "next", pki.issuing, pki.issuing_key, b"old")
    same = run_module(dict(dir=str(directory), phase="prepared"))
    assert same["failed"] and "is the current issuing CA" in same["msg"]
    assert not (directory / "rollover.json").exists()


def test_check_mode_reports_the_moves_and_writes_nothing(run_module, ca):
    directory, _old, _new = ca
    run_module(dict(dir=str(directory), phase="prepared"))
    run_module(dict(dir=str(directory), phase="trusted"))
    before = tree(directory)
    result = run_module(dict(dir=str(directory), phase="switched"), check_mode=True)
    assert result["changed"] and result["phase"] == "switched"
    assert "%s -> %s" % (directory / "issuing.key", directory / "previous" / "issuing.key") in result["moved"]
    assert result["diff"] == {"before": {"phase": "trusted"}, "after": {"phase": "switched"}}
    assert tree(directory) == before


def test_a_state_that_is_not_a_rollover_is_refused(run_module, ca):
    directory, _old, _new = ca
    (directory / "rollover.json").write_text('{"phase": "sideways"}')
    result = run_module(dict(dir=str(directory), phase="prepared"))
    assert result["failed"] and "is not a rollover state" in result["msg"]
