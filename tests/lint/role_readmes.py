"""Each role README's variable tables, generated from the role's meta/argument_specs.yml.

    python tests/lint/role_readmes.py           # fail naming each README whose tables are out of date
    python tests/lint/role_readmes.py --write   # write them

A README holds its tables between the two marker lines below; the prose
around them is the README's own. One table per entry point (main first):
each option with its type, default and description, suboptions of a list or
dict as `option[].sub` rows. Ansible markup (O(), V(), C(), M(), ...) is
written as Markdown with antsibull-docs-parser, the parser the docs site
uses.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import yaml
from antsibull_docs_parser import dom
from antsibull_docs_parser.parser import Context, parse

BEGIN = "<!-- BEGIN generated from meta/argument_specs.yml by tests/lint/role_readmes.py: do not edit -->"
END = "<!-- END generated from meta/argument_specs.yml -->"
COLLECTION = "fleet.mtls"
ROOT = pathlib.Path(__file__).resolve().parents[2]


def _escape(text):
    return text.replace("|", "\\|")


def _code(text):
    text = str(text)
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return "%s%s%s%s%s" % (fence, pad, _escape(text), pad, fence)


def _option_name(part):
    name = part.name if part.value is None else "%s=%s" % (part.name, part.value)
    if part.plugin is not None and part.plugin.fqcn != "%s.%s" % (COLLECTION, _option_name.role):
        return "%s (of %s)" % (_code(name), _code(part.plugin.fqcn))
    return _code(name)


def _part(part):
    kind = part.type
    if kind == dom.PartType.TEXT:
        return _escape(part.text)
    if kind in (dom.PartType.CODE, dom.PartType.OPTION_VALUE, dom.PartType.ENV_VARIABLE):
        return _code(getattr(part, "text", None) or getattr(part, "value", None) or part.name)
    if kind == dom.PartType.OPTION_NAME:
        return _option_name(part)
    if kind == dom.PartType.RETURN_VALUE:
        return _code(part.name if part.value is None else "%s=%s" % (part.name, part.value))
    if kind == dom.PartType.MODULE:
        return _code(part.fqcn)
    if kind == dom.PartType.PLUGIN:
        return _code(part.plugin.fqcn)
    if kind == dom.PartType.BOLD:
        return "**%s**" % _escape(part.text)
    if kind == dom.PartType.ITALIC:
        return "*%s*" % _escape(part.text)
    if kind == dom.PartType.URL:
        return "<%s>" % part.url
    if kind == dom.PartType.LINK:
        return "[%s](%s)" % (_escape(part.text), part.url)
    if kind == dom.PartType.RST_REF:
        return _escape(part.text)
    if kind == dom.PartType.HORIZONTAL_LINE:
        return " "
    raise ValueError("markup that does not parse: %s" % (getattr(part, "message", part),))


def markup(text, role, entry_point):
    """One table cell of Markdown from a description (a string or a list of paragraphs) in Ansible markup."""
    if text is None:
        return ""
    paragraphs = [text] if isinstance(text, str) else list(text)
    context = Context(current_plugin=dom.PluginIdentifier(fqcn="%s.%s" % (COLLECTION, role), type="role"),
                      role_entrypoint=entry_point)
    _option_name.role = role
    parsed = parse(paragraphs, context, errors="exception", strict=True)
    return "<br><br>".join("".join(_part(part) for part in paragraph).strip() for paragraph in parsed)


def _default(option):
    if "default" not in option:
        return ""
    value = option["default"]
    if value is None:
        return _code("null")
    if isinstance(value, bool):
        return _code("true" if value else "false")
    if isinstance(value, (list, dict)) and not value:
        return _code("[]" if isinstance(value, list) else "{}")
    if isinstance(value, (list, dict)):
        return _code(yaml.safe_dump(value, default_flow_style=True, width=10000).strip())
    return _code(value)


def _type(option):
    kind = option.get("type", "str")
    if kind == "list" and option.get("elements"):
        kind = "list of %s" % option["elements"]
    if option.get("choices"):
        kind += ": " + ", ".join(_code(choice) for choice in option["choices"])
    if option.get("required"):
        kind += ", required"
    return kind


def _rows(options, role, entry_point, prefix=""):
    rows = []
    for name in sorted(options or {}):
        option = options[name] or {}
        full = prefix + name
        try:
            description = markup(option.get("description"), role, entry_point)
        except ValueError as exc:
            raise SystemExit("roles/%s/meta/argument_specs.yml, %s, option %s: %s" % (role, entry_point, full, exc))
        rows.append("| %s | %s | %s | %s |" % (_code(full), _type(option), _default(option), description))
        if option.get("options"):
            inner = full + ("[]." if option.get("type") == "list" else ".")
            rows += _rows(option["options"], role, entry_point, inner)
    return rows


def tables(role_dir):
    """The generated part of a role's README, markers included."""
    role = role_dir.name
    specs = yaml.safe_load((role_dir / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    lines = [BEGIN, ""]
    for entry_point in sorted(specs, key=lambda name: (name != "main", name)):
        spec = specs[entry_point]
        lines.append("### Entry point `%s`" % entry_point)
        lines.append("")
        lines.append(markup(spec.get("short_description"), role, entry_point).replace("<br><br>", " "))
        lines.append("")
        rows = _rows(spec.get("options"), role, entry_point)
        if rows:
            lines += ["| variable | type | default | what |", "| --- | --- | --- | --- |"] + rows
        else:
            lines.append("No variables.")
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


def updated(readme, generated):
    text = readme.read_text()
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise SystemExit("%s: needs exactly one pair of the marker lines:\n%s\n%s" % (readme, BEGIN, END))
    head, rest = text.split(BEGIN, 1)
    _old, tail = rest.split(END, 1)
    return text, head + generated + tail


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write the READMEs instead of checking them")
    parser.add_argument("roles", nargs="*", type=pathlib.Path,
                        default=sorted(p.parent.parent for p in ROOT.glob("roles/*/meta/argument_specs.yml")))
    args = parser.parse_args(argv)
    stale = []
    for role_dir in args.roles:
        readme = role_dir / "README.md"
        current, wanted = updated(readme, tables(role_dir))
        if current == wanted:
            continue
        if args.write:
            readme.write_text(wanted)
            print("wrote %s" % readme)
        else:
            stale.append(str(readme))
    if stale:
        print("out of date with meta/argument_specs.yml (run python tests/lint/role_readmes.py --write): %s"
              % ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
