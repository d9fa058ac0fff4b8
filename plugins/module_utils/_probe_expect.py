# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The expect language of tls_probe: what a task says the probe must find.

``expect`` maps fact names to a wanted value or a list of accepted ones;
check_expect() refuses a bad expectation before any connection, and
failure_message() says why a probe's facts fail the task, or None.
"""

from __future__ import annotations

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError
from ansible_collections.fleet.mtls.plugins.module_utils._probe import HANDSHAKE_STATES, OUTCOMES

EXPECT_KEYS = ("handshake", "outcome", "alert", "protocol", "cipher", "status", "reason", "server_cert_verified",
               "client_cert_requested", "client_ca_names", "body_contains")


def _as_list(value):
    return list(value) if isinstance(value, (list, tuple)) else [value]


def check_expect(expect):
    """Refuse unknown keys and impossible values before probing."""
    for key, wanted in (expect or {}).items():
        if key not in EXPECT_KEYS:
            raise PkiError("expect: unknown key %r; use: %s" % (key, ", ".join(EXPECT_KEYS)))
        choices = {"outcome": OUTCOMES, "handshake": HANDSHAKE_STATES}.get(key)
        if choices:
            for value in _as_list(wanted):
                if value not in choices:
                    raise PkiError("expect.%s: %r is not one of %s" % (key, value, ", ".join(choices)))
        if key in ("server_cert_verified", "client_cert_requested"):
            try:
                boolean(wanted, strict=True)
            except TypeError:
                raise PkiError("expect.%s must be true or false, not %r" % (key, wanted))
        if key == "status":
            for value in _as_list(wanted):
                try:
                    int(value)
                except (TypeError, ValueError):
                    raise PkiError("expect.status: %r is not an HTTP status" % (value,))


def _met(key, actual, wanted):
    if key == "body_contains":
        return actual is not None and all(str(text) in actual for text in _as_list(wanted))
    if key == "client_ca_names":
        return actual is not None and sorted(actual) == sorted(str(n) for n in _as_list(wanted))
    if key in ("server_cert_verified", "client_cert_requested"):
        return actual is not None and actual == boolean(wanted, strict=True)
    if key == "status":
        return actual is not None and actual in [int(v) for v in _as_list(wanted)]
    return actual is not None and str(actual) in [str(v) for v in _as_list(wanted)]


def unmet_expectations(facts, expect):
    """One line per expectation the facts do not meet, in key order."""
    check_expect(expect)
    unmet = []
    for key in sorted(expect or {}):
        wanted = expect[key]
        actual = facts.get("body" if key == "body_contains" else key)
        if _met(key, actual, wanted):
            continue
        if key == "body_contains":
            unmet.append("body does not contain %r" % (wanted,))
        elif isinstance(wanted, (list, tuple)) and key != "client_ca_names":
            unmet.append("%s is %r, expected one of %r" % (key, actual, list(wanted)))
        else:
            unmet.append("%s is %r, expected %r" % (key, actual, wanted))
    return unmet


def untrusted_server_expected(expect):
    """Whether expect says the server's certificate should not verify: in outcome, or server_cert_verified false."""
    expect = expect or {}
    if "server_cert_untrusted" in _as_list(expect.get("outcome")):
        return True
    return "server_cert_verified" in expect and not boolean(expect["server_cert_verified"], strict=True)


def failure_message(facts, expect):
    """Why the task fails, or None: unmet expectations, or a connection that failed or a server that did not
    verify when expect does not say so."""
    unmet = unmet_expectations(facts, expect)
    facts["unmet_expectations"] = unmet
    expect = expect or {}
    target = "%s:%d" % (facts["host"], facts["port"])
    if facts["outcome"] == "connection_failed" and "connection_failed" not in _as_list(expect.get("outcome")):
        return "; ".join([facts["error"]] + unmet)
    if facts["outcome"] == "server_cert_untrusted" and not untrusted_server_expected(expect):
        return "; ".join(["%s: %s; it was sent no client certificate and no request" % (target, facts["error"])]
                         + unmet)
    if unmet:
        return "%s: expectation not met: %s" % (target, "; ".join(unmet))
    return None
