# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The role READMEs' variable tables come from argument_specs: the markup, the rows, and the lint's verdict."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]
spec = importlib.util.spec_from_file_location("role_readmes", REPO / "tests/lint/role_readmes.py")
role_readmes = importlib.util.module_from_spec(spec)
spec.loader.exec_module(role_readmes)


def test_ansible_markup_becomes_markdown():
    text = role_readmes.markup(["Set O(mtls_verify_mode=strict) or V(permissive); C(a|b) via M(fleet.mtls.tls_probe).",
                                "See O(fleet.mtls.nginx#role:main:mtls_nginx_sites) and U(https://example.org)."],
                               "verify", "main")
    assert text == ("Set `mtls_verify_mode=strict` or `permissive`; `a\\|b` via `fleet.mtls.tls_probe`.<br><br>"
                    "See `mtls_nginx_sites` (of `fleet.mtls.nginx`) and <https://example.org>.")


def test_bad_markup_is_refused():
    with pytest.raises(ValueError, match="not a FQCN"):
        role_readmes.markup("from the M(fleet.mtls.probe_token#lookup) lookup", "verify", "main")


def test_rows_name_suboptions_types_and_defaults():
    rows = role_readmes._rows({"b_list": {"type": "list", "elements": "dict", "default": [], "description": "L.",
                                          "options": {"port": {"type": "int", "required": True, "description": "P."}}},
                               "a_mode": {"choices": ["strict", "permissive"], "default": None, "description": "M."}},
                              "verify", "main")
    assert rows == ["| `a_mode` | str: `strict`, `permissive` | `null` | M. |",
                    "| `b_list` | list of dict | `[]` | L. |",
                    "| `b_list[].port` | int, required |  | P. |"]


def test_every_readme_is_current():
    assert role_readmes.main([]) == 0


def test_a_stale_or_unmarked_readme_fails(tmp_path, capsys):
    role = tmp_path / "verify"
    (role / "meta").mkdir(parents=True)
    (role / "meta/argument_specs.yml").write_text((REPO / "roles/verify/meta/argument_specs.yml").read_text())
    readme = role / "README.md"
    readme.write_text("# verify\n\n%s\n| old | table |\n%s\n\nMore prose.\n" % (role_readmes.BEGIN, role_readmes.END))
    assert role_readmes.main([str(role)]) == 1
    assert "verify/README.md" in capsys.readouterr().err
    assert role_readmes.main(["--write", str(role)]) == 0
    assert role_readmes.main([str(role)]) == 0
    text = readme.read_text()
    assert text.startswith("# verify\n\n") and text.endswith("\n\nMore prose.\n") and "| old |" not in text
    readme.write_text("# verify, no markers\n")
    with pytest.raises(SystemExit, match="marker lines"):
        role_readmes.main([str(role)])
