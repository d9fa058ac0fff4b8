# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ManagedFile with a check mode of its own: a caller asks for the read-only form of a decision without
touching the module's check_mode, and nothing on disk changes."""

from __future__ import annotations

import os

import pytest

from ansible_collections.fleet.mtls.plugins.module_utils import _module
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError


class Module(object):
    """What ManagedFile uses of an AnsibleModule, in normal (not check) mode; it must not apply attributes."""

    def __init__(self):
        self.params = {}
        self.check_mode = False
        self._diff = True

    def load_file_common_arguments(self, args, path=None):
        return dict(args, path=path)

    def set_fs_attributes_if_different(self, file_args, changed):
        raise AssertionError("a file in check mode had its attributes applied: %r" % (file_args,))


def snapshot(path):
    st = os.lstat(path)
    with open(path, "rb") as handle:
        return handle.read(), st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns


def a_file(tmp_path, name, content, mode):
    """(path, its snapshot): a file as a module finds it."""
    path = tmp_path / name
    path.write_bytes(content)
    os.chmod(path, mode)
    return path, snapshot(path)


def test_own_check_mode_writes_nothing_and_reports_the_change(tmp_path):
    path, before = a_file(tmp_path, "cert.pem", b"old\n", 0o600)
    module = Module()
    target = _module.ManagedFile(module, str(path), 0o644, check_mode=True)
    diffs = []
    assert target.check_mode is True and module.check_mode is False
    assert target.replace(b"new\n", diffs) is True
    assert diffs and diffs[0]["after"] == "new\n"
    assert target.ensure_attributes(False) is True  # 0600 is not the 0644 wanted
    assert target.remove([]) is True
    assert snapshot(path) == before


def test_own_check_mode_sees_attributes_that_already_fit(tmp_path):
    path = tmp_path / "ca-bundle.pem"
    path.write_bytes(b"pem\n")
    os.chmod(path, 0o644)
    st = os.lstat(path)
    target = _module.ManagedFile(Module(), str(path), 0o644, owner=str(st.st_uid), group=str(st.st_gid),
                                 check_mode=True)
    assert target.replace(b"pem\n", []) is False
    assert target.ensure_attributes(False) is False
    assert target.ensure_attributes(True) is True
    assert _module.attributes_differ(str(path), 0o644, owner=st.st_uid + 1) is True
    assert _module.attributes_differ(str(path), 0o644, group=st.st_gid + 1) is True


def test_own_check_mode_names_an_owner_that_does_not_exist(tmp_path):
    path = tmp_path / "cert.pem"
    path.write_bytes(b"pem\n")
    os.chmod(path, 0o644)
    target = _module.ManagedFile(Module(), str(path), 0o644, owner="no-such-user-fleet-mtls", check_mode=True)
    with pytest.raises(PkiError, match="owner no-such-user-fleet-mtls does not exist"):
        target.ensure_attributes(False)


def test_the_module_check_mode_is_the_default():
    module = Module()
    assert _module.ManagedFile(module, "/nonexistent/x", 0o644).check_mode is False
    module.check_mode = True
    assert _module.ManagedFile(module, "/nonexistent/x", 0o644).check_mode is True


def test_check_mode_reports_an_account_an_earlier_task_makes_instead_of_failing(tmp_path):
    """The certificate role makes a key's group before certificate_request sets it; check mode made none."""
    path, before = a_file(tmp_path, "server.key", b"key\n", 0o600)
    module = Module()
    module.check_mode = True
    assert _module.missing_accounts(owner="root", group="fleet-mtls-no-such-group") == ["fleet-mtls-no-such-group"]
    assert _module.missing_accounts(owner="0", group=str(os.getgid())) == []
    target = _module.ManagedFile(module, str(path), 0o640, group="fleet-mtls-no-such-group")
    assert target.ensure_attributes(False) is True
    assert snapshot(path) == before
