# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shipped Prometheus alert rules: valid to promtool, and their promtool unit tests pass.

promtool comes from Debian's prometheus package, which scripts/bootstrap.sh
installs. These tests fail, never skip, without it: a rules file nobody
checked is exactly what they are here to prevent.
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[3]
PROMETHEUS = ROOT / "extensions" / "prometheus"
RULES = PROMETHEUS / "fleet-mtls-alerts.yml"
TESTS = sorted((PROMETHEUS / "tests").glob("*.test.yml"))


def promtool():
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed: run scripts/bootstrap.sh (Debian package prometheus); "
                    "the alert rules are not checked without it")
    return path


def run_promtool(*args):
    return subprocess.run([promtool()] + [str(a) for a in args], capture_output=True, text=True, timeout=300,
                          check=False)


def rules():
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def alert_tests():
    """(alertname, exp_alerts) of every alert_rule_test of every test file."""
    found = []
    for path in TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                found.append((case["alertname"], case.get("exp_alerts") or []))
    return found


def test_the_rules_pass_promtool_check_with_every_lint():
    result = run_promtool("check", "rules", "--lint=all", "--lint-fatal", RULES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_promtool_unit_tests_pass():
    assert TESTS, "no promtool test files in %s" % (PROMETHEUS / "tests")
    result = run_promtool("test", "rules", *TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(TESTS), result.stdout


def test_a_changed_threshold_fails_the_promtool_tests(tmp_path):
    # The unit tests pin the thresholds: moving the permissive limit from 14
    # to 16 days (the nginx permissive for 15 days no longer fires) fails them.
    text = RULES.read_text()
    assert text.count("> 14 * 86400") == 1
    (tmp_path / "tests").mkdir()
    (tmp_path / RULES.name).write_text(text.replace("> 14 * 86400", "> 16 * 86400"))
    shutil.copy(PROMETHEUS / "tests" / "fleet-mtls-alerts.test.yml", tmp_path / "tests")
    result = run_promtool("test", "rules", tmp_path / "tests" / "fleet-mtls-alerts.test.yml")
    assert result.returncode != 0, result.stdout
    assert "FleetMtlsServiceNotStrict" in result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_some_not_firing():
    names = set(rule["alert"] for rule in rules() if "alert" in rule)
    fired = set(name for name, expected in alert_tests() if expected)
    assert names - fired == set()
    assert fired - names == set()
    assert any(not expected for _name, expected in alert_tests())


@pytest.mark.parametrize("rule", [r for r in rules() if "alert" in r], ids=lambda r: r["alert"])
def test_every_alert_has_a_severity_a_summary_and_a_description(rule):
    assert rule["labels"]["severity"] in ("warning", "critical")
    assert rule["annotations"]["summary"].strip()
    assert rule["annotations"]["description"].strip()
    # Every alert about one host names it: the module's host label, else the scrape target.
    if rule["alert"] != "FleetMtlsMetricsAbsent":
        assert "{{ or $labels.host $labels.instance }}" in rule["annotations"]["summary"]
        assert "{{ or $labels.host $labels.instance }}" in rule["annotations"]["description"]
