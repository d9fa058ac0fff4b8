# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""private_key keeps its key a regular file with its mode: no symlink, no drift."""

from __future__ import annotations

import hashlib
import os

import pytest

from ansible_collections.fleet.mtls.plugins.modules import private_key

MODULE = private_key


def state(directory):
    return dict((path.name, (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mode & 0o7777))
                for path in sorted(directory.iterdir()) if not path.is_symlink())


def test_a_key_mode_that_drifted_is_put_right(run_module, tmp_path):
    path = tmp_path / "host.key"
    assert run_module(dict(path=str(path)))["changed"] is True
    content = path.read_bytes()
    assert run_module(dict(path=str(path)))["changed"] is False
    os.chmod(str(path), 0o644)
    assert run_module(dict(path=str(path)), check_mode=True)["changed"] is True
    assert run_module(dict(path=str(path)))["changed"] is True
    assert oct(path.stat().st_mode & 0o777) == "0o600" and path.read_bytes() == content


@pytest.mark.parametrize("check_mode", [True, False])
def test_a_key_reached_through_a_symlink_is_refused_and_nothing_is_written(run_module, tmp_path, check_mode):
    """The audit: a key reached through a symlink to a 0644 file kept 0644, and private_key reported ok."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert run_module(dict(path=str(elsewhere / "real.key")))["changed"] is True
    os.chmod(str(elsewhere / "real.key"), 0o644)
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "host.key").symlink_to(elsewhere / "real.key")
    before = state(elsewhere)
    refused = run_module(dict(path=str(keys / "host.key")), check_mode=check_mode)
    assert refused.get("failed") and "is a symbolic link" in refused["msg"], refused
    assert state(elsewhere) == before and os.path.islink(str(keys / "host.key"))


def test_check_mode_in_a_directory_still_to_be_made_reports_the_key_and_makes_nothing(run_module, tmp_path):
    """A role makes the directory in an earlier task, which check mode does not run."""
    result = run_module(dict(path=str(tmp_path / "ca" / "root.key")), check_mode=True)
    assert result["changed"] is True and not result.get("failed")
    assert list(tmp_path.iterdir()) == []
    refused = run_module(dict(path=str(tmp_path / "ca" / "root.key")))
    assert refused.get("failed") and "does not exist" in refused["msg"]
