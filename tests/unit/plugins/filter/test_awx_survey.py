# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""awx_survey: the job templates' surveys, generated from the roles' own argument_specs."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.mtls.plugins.filter.awx_survey import awx_survey

REPO = pathlib.Path(__file__).resolve().parents[4]
AWX_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}


ROLES = ("certificate", "report", "rollout")


def specs(*roles):
    roles = roles or ROLES
    return dict((role, yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text()))
                for role in roles)


def survey(role, entry, variables, **names):
    return awx_survey([dict(role=role, entry=entry, variables=variables)], specs(), **names)


def check_awx_rules(survey):
    """What AWX checks when a survey spec is saved (the survey spec view): name, description, a list of questions,
    each with a known type, a unique variable, a question name, required; choices for the choice types, every
    default among them; numbers and text lengths as numbers."""
    assert isinstance(survey["name"], str) and isinstance(survey["description"], str)
    assert isinstance(survey["spec"], list) and survey["spec"]
    variables = [question["variable"] for question in survey["spec"]]
    assert len(variables) == len(set(variables))
    for question in survey["spec"]:
        assert question["type"] in AWX_TYPES
        assert question["question_name"] and isinstance(question["required"], bool)
        if question["type"] in ("multiplechoice", "multiselect"):
            assert question["choices"] and all(isinstance(choice, str) for choice in question["choices"])
            for default in str(question.get("default", "")).splitlines():
                assert default in question["choices"], question
        if question["type"] == "integer" and "default" in question:
            assert isinstance(question["default"], int)
        if question["type"] in ("text", "password"):
            assert 0 <= question["min"] <= question["max"]


def test_the_rollout_survey_from_the_rollout_role():
    made = awx_survey([dict(role="rollout", entry="gate", variables=["mtls_rollout_gate_override"]),
                       dict(role="rollout", entry="soak",
                            variables=["mtls_rollout_soak_seconds", "mtls_rollout_regression_threshold"])],
                      specs("rollout"), name="fleet.mtls rollout", description="Strict mode, wave by wave")
    check_awx_rules(made)
    assert (made["name"], made["description"]) == ("fleet.mtls rollout", "Strict mode, wave by wave")
    assert [question["variable"] for question in made["spec"]] == [
        "mtls_rollout_gate_override", "mtls_rollout_soak_seconds", "mtls_rollout_regression_threshold"]
    seconds = made["spec"][1]
    assert (seconds["variable"], seconds["type"], seconds["default"], seconds["required"]) == (
        "mtls_rollout_soak_seconds", "integer", 900, False)
    assert seconds["question_description"] == "How long the wave soaks."


def test_types_choices_and_booleans():
    gate = survey("rollout", "gate", ["mtls_rollout_gate_override", "mtls_rollout_min_adoption",
                                      "mtls_rollout_serial"])
    check_awx_rules(gate)
    override, adoption, serial = gate["spec"]
    assert override["type"] == "multiplechoice"
    assert (override["choices"], override["default"]) == (["true", "false"], "false")
    assert (adoption["type"], adoption["default"]) == ("float", 1.0)
    assert (serial["type"], serial["min"], serial["max"]) == ("text", 0, 1024)
    mode = survey("rollout", "mode", ["mtls_rollout_mode"])
    check_awx_rules(mode)
    assert (mode["spec"][0]["type"], mode["spec"][0]["choices"], mode["spec"][0]["default"]) == (
        "multiplechoice", ["strict", "permissive"], "permissive")


def test_a_secret_is_a_password_question():
    made = survey("certificate", "main", ["mtls_ca_key_passphrase", "mtls_certificate_force_renewal"])
    check_awx_rules(made)
    assert [question["type"] for question in made["spec"]] == ["password", "multiplechoice"]
    assert "default" not in made["spec"][0]


def test_every_survey_of_the_controller_role_is_generated_and_valid():
    defaults = yaml.safe_load((REPO / "roles" / "awx" / "defaults" / "main.yml").read_text())
    templates = defaults["mtls_awx_job_templates"]
    assert {template["name"] for template in templates} >= {
        "fleet.mtls rollout", "fleet.mtls rotate", "fleet.mtls revoke", "fleet.mtls CA rollover", "fleet.mtls report"}
    surveyed = [template for template in templates if template.get("survey")]
    assert surveyed
    for template in surveyed:
        check_awx_rules(awx_survey(template["survey"], specs(), name=template["name"]))


def test_a_variable_or_entry_the_specs_do_not_have():
    with pytest.raises(AnsibleFilterError, match="'soak' of role rollout has no variable 'mtls_rollout_soak_minutes'"):
        survey("rollout", "soak", ["mtls_rollout_soak_minutes"])
    with pytest.raises(AnsibleFilterError, match="role rollout has no entry point 'rollback'"):
        survey("rollout", "rollback", [])
    with pytest.raises(AnsibleFilterError, match="no argument_specs of role 'awx'"):
        survey("awx", "main", [])
    with pytest.raises(AnsibleFilterError, match="mtls_certificate_certificates is of type list"):
        survey("certificate", "main", ["mtls_certificate_certificates"])
    with pytest.raises(AnsibleFilterError, match="asked twice: mtls_rollout_mode"):
        awx_survey([dict(role="rollout", entry="mode", variables=["mtls_rollout_mode"]),
                    dict(role="rollout", entry="main", variables=["mtls_rollout_mode"])], specs())
