# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""probe_token: one secret for the verify and rollout roles, made once, kept private, never overwritten."""

from __future__ import annotations

import os
import pathlib
import stat
import subprocess
import sys

import pytest

from ansible.errors import AnsibleLookupError

from ansible_collections.fleet.mtls.plugins.lookup import probe_token
from ansible_collections.fleet.mtls.plugins.lookup.probe_token import read_or_make


def test_made_once_private_then_read_back(tmp_path):
    path = tmp_path / "fresh" / "probe-token"
    token = read_or_make(str(path))
    assert len(token) == 43 and token.isalnum()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert read_or_make(str(path)) == token
    assert path.read_text() == token + "\n"


def test_two_files_two_tokens(tmp_path):
    assert read_or_make(str(tmp_path / "a")) != read_or_make(str(tmp_path / "b"))


def test_an_existing_token_is_kept_as_written(tmp_path):
    # what ansible.builtin.password wrote before this lookup existed
    path = tmp_path / "probe-token"
    path.write_text("A" * 43 + "\n")
    assert read_or_make(str(path)) == "A" * 43


@pytest.mark.parametrize("content", ["", "short", "x" * 40 + " ;rm", "\x00" * 43, "é" * 40])
def test_a_file_without_a_valid_token_is_an_error_and_left_alone(tmp_path, content):
    path = tmp_path / "probe-token"
    path.write_bytes(content.encode())
    before = path.read_bytes()
    with pytest.raises(AnsibleLookupError, match="holds no valid token") as caught:
        read_or_make(str(path))
    assert content.strip() == "" or content not in str(caught.value)
    assert path.read_bytes() == before


def test_unreadable_path_is_an_error(tmp_path):
    with pytest.raises(AnsibleLookupError, match="cannot read"):
        read_or_make(str(tmp_path))  # a directory


def _ansible(expression, tmp_path):
    """Evaluate a lookup as a play would: the ansible CLI, this collection on its path."""
    # the directory that holds ansible_collections/fleet/mtls, as imported (no symlink resolved)
    collections = pathlib.Path(probe_token.__file__).parents[5]
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="false", ANSIBLE_CALLBACK_RESULT_FORMAT="json",
               ANSIBLE_HOME=str(tmp_path / "home"))
    ansible = pathlib.Path(sys.executable).with_name("ansible")
    return subprocess.run([str(ansible), "localhost", "-c", "local", "-m", "ansible.builtin.debug",
                           "-a", "msg={{ %s }}" % expression], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def test_the_lookup_in_a_play_takes_file_and_no_terms(tmp_path):
    path = tmp_path / "t"
    done = _ansible("lookup('fleet.mtls.probe_token', file=%r) | length" % str(path), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"msg": 43' in done.stdout
    token = path.read_text().strip()
    assert token not in done.stdout + done.stderr
    refused = _ansible("lookup('fleet.mtls.probe_token', 'x', file=%r)" % str(path), tmp_path)
    assert refused.returncode != 0 and "takes no terms" in refused.stdout + refused.stderr
