# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The key_spec option group in the modules that make keys: private_key and ca take it as options (private_key
also by its first names, type and size), certificate_request per certificate. Each takes the group's options
unchanged, and refuses a size the type does not take before it reads or writes anything."""

from __future__ import annotations

import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _params
from ansible_collections.fleet.mtls.plugins.modules import ca
from ansible_collections.fleet.mtls.plugins.modules import certificate_request
from ansible_collections.fleet.mtls.plugins.modules import private_key

GROUP = _params.OPTION_GROUPS["key_spec"]


class _Stop(Exception):
    pass


def argument_spec_of(module, monkeypatch):
    """The argument_spec module's main() hands AnsibleModule."""
    seen = []

    def record(argument_spec, **_kwargs):
        seen.append(argument_spec)
        raise _Stop()

    monkeypatch.setattr(module, "AnsibleModule", record)
    with pytest.raises(_Stop):
        module.main()
    return seen[0]


@pytest.fixture
def run(capsys):
    """run(module, args, check_mode=False): the result module's main() printed."""
    def run_module(module, args, check_mode=False):
        if check_mode:
            args = dict(args, _ansible_check_mode=True)
        with patch_module_args(args):
            with pytest.raises(SystemExit):
                module.main()
        return json.loads(capsys.readouterr().out)
    return run_module


def test_each_module_takes_the_groups_options(monkeypatch):
    spec = argument_spec_of(private_key, monkeypatch)
    assert spec["key_type"] == dict(GROUP["key_type"], aliases=["type"])
    assert spec["key_size"] == dict(GROUP["key_size"], aliases=["size"])
    spec = argument_spec_of(ca, monkeypatch)
    assert (spec["key_type"], spec["key_size"]) == (GROUP["key_type"], GROUP["key_size"])
    entry = argument_spec_of(certificate_request, monkeypatch)["certificates"]["options"]
    assert (entry["key_type"], entry["key_size"]) == (GROUP["key_type"], GROUP["key_size"])


@pytest.mark.parametrize("first_names", [True, False])
def test_private_key_takes_the_groups_names_and_its_first_ones(run, tmp_path, first_names):
    path = tmp_path / "host.key"
    asked = dict(type="rsa", size=2048) if first_names else dict(key_type="rsa", key_size=2048)
    made = run(private_key, dict(asked, path=str(path)))
    assert made["changed"] and (made["key_type"], made["key_size"]) == ("rsa", 2048), made
    content = path.read_bytes()
    other = dict(key_type="rsa", key_size=2048) if first_names else dict(type="rsa", size=2048)
    kept = run(private_key, dict(other, path=str(path)))
    assert not kept["changed"] and not kept["regenerated"] and path.read_bytes() == content, kept


@pytest.mark.parametrize("check_mode", [False, True])
@pytest.mark.parametrize("asked, message", [
    (dict(key_type="ed25519", key_size=256), "an ed25519 key has no size; leave key_size unset"),
    (dict(type="rsa", size=1024), "a rsa key takes size 2048, 3072, 4096, not 1024"),
])
def test_private_key_refuses_a_size_the_type_does_not_take(run, tmp_path, check_mode, asked, message):
    result = run(private_key, dict(asked, path=str(tmp_path / "host.key")), check_mode=check_mode)
    assert result.get("failed") and result["msg"] == message, result
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("check_mode", [False, True])
def test_ca_refuses_a_size_the_type_does_not_take_before_anything_is_written(run, tmp_path, check_mode):
    args = dict(key_path=str(tmp_path / "root.key"), cert_path=str(tmp_path / "root.crt"), subject=dict(CN="Root"))
    result = run(ca, dict(args, key_type="ec", key_size=521), check_mode=check_mode)
    assert result.get("failed") and result["msg"] == "a ec key takes size 256, 384, not 521", result
    assert list(tmp_path.iterdir()) == []


def test_a_new_ca_key_gets_the_cas_own_default_size(run, tmp_path):
    """The group checks the size; the default a new key gets without one is the module's (a CA's RSA is 4096)."""
    made = run(ca, dict(key_path=str(tmp_path / "root.key"), cert_path=str(tmp_path / "root.crt"),
                        subject=dict(CN="Root"), key_type="rsa"))
    assert not made.get("failed") and made["key_generated"], made
    assert c.key_type_and_size(c.load_private_key((tmp_path / "root.key").read_bytes())) == ("rsa", 4096)


@pytest.mark.parametrize("check_mode", [False, True])
def test_certificate_request_refuses_an_entrys_size_before_anything_is_written(run, tmp_path, pki, check_mode):
    directory = tmp_path / "certs"
    entries = [dict(name="server", common_name="web1", subject_alt_names=["DNS:web1"]),
               dict(name="client", common_name="web1", subject_alt_names=["DNS:web1"], key_type="rsa",
                    key_size=1024)]
    args = dict(directory=str(directory), requester="web1", ca_bundle_path=str(directory / "ca-bundle.pem"),
                trust_certificates=[pki.bundle_pem().decode("ascii")], certificates=entries)
    result = run(certificate_request, args, check_mode=check_mode)
    assert result.get("failed") and \
        result["msg"] == "certificates[1]: a rsa key takes size 2048, 3072, 4096, not 1024", result
    assert not directory.exists()
