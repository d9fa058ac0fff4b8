# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every secret a role takes is marked no_log in its argument_specs, so that its validation never shows it."""

from __future__ import annotations

import pathlib
import re

import yaml

REPO = pathlib.Path(__file__).resolve().parents[3]
SECRET = re.compile(r"(passphrase|password|token|secret)$")  # the value itself, not the name of where it is kept


def options(spec, path):
    for name, option in (spec.get("options") or {}).items():
        yield "%s.%s" % (path, name), name, option
        yield from options(option, "%s.%s" % (path, name))


def test_secret_options_are_no_log():
    found = []
    for specs_file in sorted(REPO.glob("roles/*/meta/argument_specs.yml")):
        specs = yaml.safe_load(specs_file.read_text())["argument_specs"]
        for entry, spec in specs.items():
            for path, name, option in options(spec, "%s:%s" % (specs_file.parts[-3], entry)):
                if SECRET.search(name):
                    found.append((path, option.get("no_log")))
    assert found, "no secret option at all: the pattern is wrong"
    assert [path for path, no_log in found if no_log is not True] == []
    # the ones this guards today
    assert {path.split(".")[-1] for path, _no_log in found} >= {"mtls_ca_key_passphrase", "mtls_probe_token"}
