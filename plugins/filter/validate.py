# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of values the service roles render into server configurations, made before any file changes."""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.mtls.plugins.module_utils._policy import COMMON_NAME


def identity_refusals(names, variable):
    """One message for each allow-list entry that no certificate of the CA can carry as its common name.

    The CA issues subjects of exactly one CN of letters, digits, '.', '_'
    and '-' (_policy.COMMON_NAME); the servers match the whole subject,
    CN=<entry>. Anything else in an entry could only ever match a subject
    the CA would not build, and in a server's configuration it is syntax.
    """
    if names is None:
        return []
    if isinstance(names, (str, bytes)) or not isinstance(names, (list, tuple)):
        raise AnsibleFilterError("identity_refusals: %s must be a list of names, not %r" % (variable, names))
    refusals = []
    for name in names:
        if not isinstance(name, str) or not COMMON_NAME.fullmatch(name):
            refusals.append("%s: %r is not a name the CA issues (one word of letters, digits, '.', '_' and '-', at "
                            "most 64 characters)" % (variable, name))
    return refusals


# What each kind of value may look like where the roles write it into nginx,
# HAProxy or systemd syntax: (the whole value, fullmatch; the characters it
# may hold at all, to name the first one that is not; what it is). Each
# pattern reads a value in one way only, so that refusing one takes as long
# as reading it (no nested repetition). None of them admits whitespace, a
# control character, '"', "'", ';', '{', '}', '#' or a backslash; only
# "header" admits '$' (an nginx variable, "$host").
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_HOST = r"(?:\*\.)?[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})"
_ADDRESS = r"(?:[A-Za-z0-9_.-]{1,253}|\[?[0-9A-Fa-f:.]{2,45}\]?)"
_PORT = r"[0-9]{1,5}"
KINDS = {
    "name": (r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", _ALNUM + "_.-",
             "a name of letters, digits, '_', '.' and '-' (at most 64, the first a letter or digit)"),
    "host": (_HOST + r"|_", _ALNUM + "_.*-", "a host name"),
    "address": (_ADDRESS, _ALNUM + "_.:[]-", "a host name or an IP address"),
    "listen": (r"(?:%s:)?%s" % (_ADDRESS, _PORT), _ALNUM + "_.:[]-", "a port, or an address and a port"),
    # Segments each closed by '/', then the last one: one way to read any path, so that a refused one is
    # refused at once ("(?:[...]+/?)*" reads "/aaaa#" in 2**n ways before it gives up).
    "path": (r"/(?:[A-Za-z0-9._@+-]+/)*[A-Za-z0-9._@+-]*", _ALNUM + "_.@+/-", "an absolute path"),
    "url": (r"https?://%s(?::%s)?(?:/[A-Za-z0-9._~/%%-]*)?" % (_ADDRESS, _PORT), _ALNUM + "_.:/~%[]-",
            "an http:// or https:// URL without credentials, query or fragment"),
    "header": (r"\$?[A-Za-z0-9_.:-]+", _ALNUM + "_.:$-", "a header value (a host name, or an nginx variable like $host)"),
    "word": (r"[A-Za-z0-9_.:+!-]+", _ALNUM + "_.:+!-", "one word (letters, digits, '_', '.', ':', '+', '!', '-')"),
    "user": (r"[a-z_][a-z0-9_-]{0,31}", _ALNUM + "_-", "a user or group name"),
    "duration": (r"[0-9]+(?:ms|[smhdwMy])?", "0123456789smhdwMy", "a number, or a number with a unit (10m, 30s)"),
    "number": (r"[0-9]{1,9}", "0123456789", "a whole number"),
}


def _first_not_in(text, allowed):
    for character in text:
        if character not in allowed:
            return character
    return None


def _check_range(value, low, high, what, variable, refusals):
    """Refuse value unless it is a whole number (an int, or its decimal digits) from low to high."""
    if isinstance(value, bool) or not re.fullmatch(r"[0-9]{1,9}", str(value)) or not low <= int(str(value)) <= high:
        refusals.append("%s: %r is not %s (%d to %d)" % (variable, value, what, low, high))


def _check(value, kind, variable, refusals):
    if kind == "port":
        _check_range(value, 1, 65535, "a port", variable, refusals)
        return
    bounds = re.fullmatch(r"number ([0-9]{1,9})-([0-9]{1,9})", kind)
    if bounds:
        _check_range(value, int(bounds.group(1)), int(bounds.group(2)), "a whole number", variable, refusals)
        return
    if kind == "identity":
        refusals.extend(identity_refusals(value, variable))
        return
    if kind not in KINDS:
        raise AnsibleFilterError("config_refusals: unknown kind %r for %s (use %s, port, number MIN-MAX, identity)"
                                 % (kind, variable, ", ".join(sorted(KINDS))))
    pattern, charset, what = KINDS[kind]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        refusals.append("%s: must be %s, not %r" % (variable, what, value))
        return
    text = str(value)
    if re.fullmatch(pattern, text) and (kind != "path" or ".." not in text.split("/")):
        return
    character = _first_not_in(text, charset)
    if character is not None:
        refusals.append("%s: %r is not %s: the character %r is not allowed there" % (variable, text, what, character))
    elif kind == "path" and ".." in text.split("/"):
        refusals.append("%s: %r is not %s: '..' is not allowed there" % (variable, text, what))
    else:
        refusals.append("%s: %r is not %s" % (variable, text, what))


def _walk(value, schema, variable, refusals):
    if value is None:
        return
    if isinstance(schema, str):
        _check(value, schema, variable, refusals)
    elif isinstance(schema, list):
        item_schema = schema[0]
        if isinstance(value, (str, bytes)) and isinstance(item_schema, str) and schema[1:] == ["or_one"]:
            _check(value, item_schema, variable, refusals)
        elif not isinstance(value, (list, tuple)):
            refusals.append("%s: must be a list, not %r" % (variable, value))
        else:
            for index, item in enumerate(value):
                _walk(item, item_schema, "%s[%d]" % (variable, index), refusals)
    elif isinstance(schema, dict):
        if not isinstance(value, dict):
            refusals.append("%s: must be a dict, not %r" % (variable, value))
            return
        for key, field_schema in schema.items():
            if key in value:
                _walk(value[key], field_schema, "%s.%s" % (variable, key), refusals)
    else:
        raise AnsibleFilterError("config_refusals: the schema of %s must be a kind, a list or a dict" % variable)


def config_refusals(values, schema):
    """One message for each value that the role would write into a server configuration or a unit with a
    changed meaning.

    values: {variable name: value}; schema: {variable name: kind, [schema]
    for a list, [kind, "or_one"] for one value or a list of them, or
    {field: schema} for a dict}. The kinds are in KINDS, plus "port",
    "number MIN-MAX" (a whole number from MIN to MAX, both included) and
    "identity" (allow-list entries, identity_refusals). Each message names
    the variable (with the list index and field) and the first character
    that is not allowed. The roles assert that there is none before any
    file changes.
    """
    if not isinstance(values, dict) or not isinstance(schema, dict):
        raise AnsibleFilterError("config_refusals: values and schema must be dicts of variable: ...")
    refusals = []
    for variable, variable_schema in schema.items():
        _walk(values.get(variable), variable_schema, variable, refusals)
    return refusals


class FilterModule(object):
    def filters(self):
        return {"identity_refusals": identity_refusals, "config_refusals": config_refusals}
