# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""meta/runtime.yml's action groups: module_defaults for group/fleet.mtls.<group> hands every one of its
options to every module of the group, and a module refuses an option it does not have. So each group is
exactly the modules whose argument spec takes the shared option group of the same name (_params.OPTION_GROUPS,
documented by the doc fragment of that name), and any option of that group is safe for all of them."""

from __future__ import annotations

import importlib
import pathlib

import pytest
import yaml

from ansible_collections.fleet.mtls.plugins.module_utils import _params

ROOT = pathlib.Path(__file__).resolve().parents[4]
MODULES = sorted(path.stem for path in (ROOT / "plugins" / "modules").glob("*.py") if path.stem != "__init__")


class _Stop(Exception):
    pass


def option_groups_of(name, monkeypatch):
    """The shared option groups module NAME builds its argument spec from (main() stops right there)."""
    module = importlib.import_module("ansible_collections.fleet.mtls.plugins.modules." + name)
    seen = []

    def record(groups, **module_options):
        seen.append(list(groups))
        raise _Stop()

    with monkeypatch.context() as patch:
        patch.setattr(_params, "argument_spec", record)
        with pytest.raises(_Stop):
            module.main()
    assert len(seen) == 1, name
    return seen[0]


@pytest.fixture(scope="module")
def action_groups():
    return yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())["action_groups"]


def test_each_group_is_the_modules_of_its_option_group(action_groups, monkeypatch):
    users = {group: set() for group in _params.OPTION_GROUPS}
    for name in MODULES:
        for group in option_groups_of(name, monkeypatch):
            users[group].add(name)
    assert set(action_groups) <= set(_params.OPTION_GROUPS), "an action group with no shared option group"
    for group, members in action_groups.items():
        assert sorted(members) == sorted(users[group]), group


def test_each_member_documents_the_groups_options(action_groups):
    # ansible-doc shows a member's group options from the doc fragment of the group's name.
    for group, members in action_groups.items():
        for name in members:
            module = importlib.import_module("ansible_collections.fleet.mtls.plugins.modules." + name)
            documented = yaml.safe_load(module.DOCUMENTATION)
            assert "fleet.mtls." + group in documented.get("extends_documentation_fragment", []), (group, name)
