# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shared option groups of _params: each is its doc fragment's options, modules compose them without
replacing them, and the key_spec group's one check of a key's type and size."""

from __future__ import annotations

import importlib

import pytest
import yaml

from ansible_collections.fleet.mtls.plugins.module_utils import _params
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError


def fragment_options(group):
    fragment = importlib.import_module("ansible_collections.fleet.mtls.plugins.doc_fragments." + group)
    return yaml.safe_load(fragment.ModuleDocFragment.DOCUMENTATION)["options"]


@pytest.mark.parametrize("group", sorted(_params.OPTION_GROUPS))
def test_each_group_is_the_options_of_its_doc_fragment(group):
    """What sanity checks for each module that takes a group, held for the group itself."""
    documented = fragment_options(group)
    options = _params.OPTION_GROUPS[group]
    assert sorted(documented) == sorted(options)
    for name, option in options.items():
        doc = documented[name]
        assert (doc.get("type"), doc.get("choices"), doc.get("default"), bool(doc.get("required"))) == \
            (option.get("type"), option.get("choices"), option.get("default"), bool(option.get("required"))), name


def test_key_spec_offers_the_key_types_with_their_sizes():
    assert _params.OPTION_GROUPS["key_spec"]["key_type"]["choices"] == list(_params.KEY_TYPES) == \
        list(_params.KEY_SIZES) == list(_params.DEFAULT_KEY_SIZE)
    for key_type, sizes in _params.KEY_SIZES.items():
        assert _params.DEFAULT_KEY_SIZE[key_type] in sizes


def test_a_modules_own_entry_for_a_group_option_adds_to_it():
    spec = _params.argument_spec(["key_spec"], key_type=dict(aliases=["type"]), path=dict(type="path"))
    assert spec["key_type"] == dict(type="str", choices=["ec", "rsa", "ed25519"], default="ec", aliases=["type"])
    assert spec["key_size"] == dict(type="int") and spec["path"] == dict(type="path")
    assert "aliases" not in _params.OPTION_GROUPS["key_spec"]["key_type"]  # the group itself is left alone
    spec["key_type"]["choices"].append("dsa")
    assert _params.OPTION_GROUPS["key_spec"]["key_type"]["choices"] == ["ec", "rsa", "ed25519"]


def test_suboptions_compose_as_a_modules_options_do():
    assert _params.suboptions(["key_spec"], name=dict(type="str")) == \
        dict(_params.argument_spec(["key_spec"]), name=dict(type="str"))


@pytest.mark.parametrize("key_type, key_size, new_size", [
    ("ec", None, 256), ("ec", 256, 256), ("ec", 384, 384),
    ("rsa", None, 3072), ("rsa", 2048, 2048), ("rsa", 4096, 4096),
    ("ed25519", None, None),
])
def test_a_new_key_gets_the_size_asked_or_its_types_default(key_type, key_size, new_size):
    assert _params.new_key_size(key_type, key_size) == new_size


def test_a_module_may_have_its_own_default_sizes():
    ca_defaults = {"ec": 256, "rsa": 4096, "ed25519": None}
    assert _params.new_key_size("rsa", None, ca_defaults) == 4096
    assert _params.new_key_size("rsa", 2048, ca_defaults) == 2048


@pytest.mark.parametrize("key_type, key_size, message", [
    ("ec", 521, "a ec key takes size 256, 384, not 521"),
    ("rsa", 1024, "a rsa key takes size 2048, 3072, 4096, not 1024"),
    ("rsa", 0, "a rsa key takes size 2048, 3072, 4096, not 0"),
    ("ed25519", 256, "an ed25519 key has no size; leave key_size unset"),
    ("dsa", None, "unknown key type 'dsa'; use one of: ec, rsa, ed25519"),
])
def test_a_size_the_type_does_not_take_is_refused_naming_the_options(key_type, key_size, message):
    with pytest.raises(PkiError) as refused:
        _params.new_key_size(key_type, key_size)
    assert str(refused.value) == message
    with pytest.raises(PkiError) as refused:
        _params.new_key_size(key_type, key_size, where="certificates[1]")
    assert str(refused.value) == "certificates[1]: " + message
