"""Every variable a role defines is in the collection's namespace: mtls_<role>_ or a shared mtls_ name.

Looks at defaults, vars, argument_specs, and the names tasks register or
set_fact. Prints each offender; exits 1 if there is any.
"""
import pathlib
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]


class AnsibleYamlLoader(yaml.SafeLoader):
    """YAML as Ansible reads it here: its !unsafe and !vault tags are plain text."""


for _tag in ("!unsafe", "!vault"):
    AnsibleYamlLoader.add_constructor(_tag, lambda loader, node: loader.construct_scalar(node))


def load(path):
    return yaml.load(path.read_text(), Loader=AnsibleYamlLoader)  # nosec - a SafeLoader with two text tags


def task_variables(tasks):
    for task in tasks or []:
        if not isinstance(task, dict):
            continue
        if "register" in task:
            yield task["register"]
        for key in ("ansible.builtin.set_fact", "set_fact"):
            if isinstance(task.get(key), dict):
                yield from (k for k in task[key] if k != "cacheable")
        for key in ("block", "rescue", "always"):
            yield from task_variables(task.get(key))


def role_variables(role):
    for name in ("defaults/main.yml", "vars/main.yml"):
        path = role / name
        if path.exists():
            yield from (load(path) or {}).keys()
    specs = role / "meta/argument_specs.yml"
    if specs.exists():
        for spec in (load(specs) or {}).get("argument_specs", {}).values():
            yield from (spec.get("options") or {}).keys()
    for path in sorted((role / "tasks").glob("*.yml")) + sorted((role / "handlers").glob("*.yml")):
        yield from task_variables(load(path))


def main():
    offenders = []
    for role in sorted(p for p in (ROOT / "roles").iterdir() if p.is_dir()):
        own = "mtls_%s_" % role.name
        for variable in set(role_variables(role)):
            if not variable.startswith("mtls_"):
                offenders.append("%s: %s does not start with %s (or mtls_ for shared ones)" % (role.name, variable, own))
    for line in sorted(offenders):
        print(line)
    return 1 if offenders else 0


if __name__ == "__main__":
    sys.exit(main())
