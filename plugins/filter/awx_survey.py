# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An AWX / Automation Controller survey made from a role's argument_specs, not copied from them."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

# AWX's question types, by the argument_specs type of the variable.
_TYPES = {"str": "text", "path": "text", "raw": "text", "int": "integer", "float": "float"}
_TEXT_MAX = 1024


def _description(option):
    text = option.get("description", "")
    if isinstance(text, list):
        text = " ".join(str(part) for part in text)
    return " ".join(str(text).split())


def _question(variable, option):
    kind = option.get("type", "str")
    question = dict(variable=variable, question_name=variable, question_description=_description(option),
                    required=bool(option.get("required", False)))
    choices = option.get("choices")
    default = option.get("default")
    if option.get("no_log"):
        question["type"] = "password"
    elif kind == "bool":
        question.update(type="multiplechoice", choices=["true", "false"])
        default = None if default is None else ("true" if default else "false")
    elif choices:
        question.update(type="multiselect" if kind == "list" else "multiplechoice",
                        choices=[str(choice) for choice in choices])
        if isinstance(default, list):
            default = "\n".join(str(item) for item in default)
    elif kind in _TYPES:
        question["type"] = _TYPES[kind]
    else:
        raise AnsibleFilterError("awx_survey: %s is of type %s, which no survey question can hold; leave it to "
                                 "extra variables" % (variable, kind))
    if question["type"] in ("text", "password"):
        question.update(min=0, max=_TEXT_MAX)
    if default is not None:
        question["default"] = default
    return question


def awx_survey(sources, argument_specs, name="", description=""):
    """The survey spec of a job template, its questions made from the roles' argument_specs.

    ``sources`` lists, in order, ``{role, entry, variables}``: the variables
    of one entry point of one role's argument_specs (``argument_specs`` holds
    each role's file, parsed, by role name). Each question's type,
    description, choices, default and whether it is required come from the
    variable's spec. A role, entry point or variable the specs do not have
    fails, naming it, so that a renamed variable cannot leave behind a
    survey that sets nothing.
    """
    questions = []
    for source in sources or []:
        role = source.get("role")
        entry = source.get("entry", "main")
        if role not in (argument_specs or {}):
            raise AnsibleFilterError("awx_survey: no argument_specs of role %r" % (role,))
        specs = argument_specs[role].get("argument_specs", argument_specs[role]) or {}
        if entry not in specs:
            raise AnsibleFilterError("awx_survey: role %s has no entry point %r (it has %s)" % (
                role, entry, ", ".join(sorted(specs)) or "none"))
        options = specs[entry].get("options") or {}
        for variable in source.get("variables") or []:
            if variable not in options:
                raise AnsibleFilterError("awx_survey: entry point %r of role %s has no variable %r" % (
                    entry, role, variable))
            questions.append(_question(variable, options[variable]))
    variables = [question["variable"] for question in questions]
    twice = sorted(set(variable for variable in variables if variables.count(variable) > 1))
    if twice:
        raise AnsibleFilterError("awx_survey: asked twice: %s" % ", ".join(twice))
    return dict(name=name, description=description, spec=questions)


class FilterModule(object):
    def filters(self):
        return {"awx_survey": awx_survey}
