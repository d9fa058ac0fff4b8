# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The verify role's judgement: did each endpoint answer as its mode says it must?"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

_MODES = ("strict", "permissive")


def _served(answer):
    """Accepted, with an HTTP status below 400 (no status counts as not served)."""
    status = answer.get("status")
    return answer.get("outcome") == "accepted" and (status or 999) < 400


def _what(answer):
    text = "outcome %s, HTTP %s" % (answer.get("outcome") or "?", answer.get("status"))
    for key in ("alert", "error"):
        if answer.get(key):
            text += ", %s" % answer[key]
    return text


def verify_verdict(answers, mode=None, address="", expected_serials=None, refused=False):
    """The verdict on the probes of one server (the registered loop of M(fleet.mtls.tls_probe)).

    Each result's ``item`` is the probe: its ``endpoint`` (service, name,
    port, mode or null) and whether it presented the client certificate.
    With a certificate, the endpoint must serve (and serve the expected
    serial, when one is given for its service); without one, a strict
    endpoint must refuse and a permissive one serve. A server certificate
    the bundle does not verify is always a problem. An endpoint's own mode
    wins over ``mode``. With ``refused``, the client certificate is one
    every endpoint must refuse (revoked, or of a retired CA): serving it is
    the problem.
    """
    if mode not in _MODES + (None, ""):
        raise AnsibleFilterError("verify_verdict: mode must be strict, permissive or null, not %r" % (mode,))
    expected_serials = expected_serials or {}
    results = answers.get("results", []) if isinstance(answers, dict) else answers
    problems = []
    probes = []
    for answer in results or []:
        item = answer.get("item") or {}
        endpoint = item.get("endpoint") or {}
        certificate = item.get("certificate")
        where = "%s %s on %s:%s" % (endpoint.get("service"), endpoint.get("name"), address, endpoint.get("port"))
        served = _served(answer)
        serial = (answer.get("server_cert") or {}).get("serial")
        expected = expected_serials.get(endpoint.get("service"))
        endpoint_mode = endpoint.get("mode") or mode or None
        if answer.get("outcome") == "server_cert_untrusted":
            problems.append("%s serves a certificate the fleet does not trust: %s" % (
                where, answer.get("verify_error") or "?"))
        elif certificate and refused:
            if served:
                problems.append("%s served a client certificate it must refuse (%s)" % (where, _what(answer)))
        elif certificate:
            if not served:
                problems.append("%s refused a good client certificate (%s)" % (where, _what(answer)))
            elif expected and serial != expected:
                problems.append("%s serves serial %s, not the new %s" % (where, serial, expected))
        elif endpoint_mode == "strict" and served:
            problems.append("%s served a client without a certificate in strict mode" % where)
        elif endpoint_mode == "permissive" and not served:
            problems.append("%s refused a client without a certificate in permissive mode (%s)" % (
                where, _what(answer)))
        probes.append(dict(service=endpoint.get("service"), name=endpoint.get("name"), port=endpoint.get("port"),
                           mode=endpoint_mode, certificate=certificate, served=served,
                           outcome=answer.get("outcome"), status=answer.get("status"), serial=serial))
    unique = []
    for problem in problems:
        if problem not in unique:
            unique.append(problem)
    return dict(passed=not problems, problems=unique, probes=probes)


class FilterModule(object):
    def filters(self):
        return {"verify_verdict": verify_verdict}
