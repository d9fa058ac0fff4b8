# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""verify_verdict: each endpoint must answer as its mode says, and a failure says what it saw."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.mtls.plugins.filter.verify import verify_verdict

NGINX = dict(service="nginx", name="web", port=443, mode=None)
HAPROXY = dict(service="haproxy", name="api", port=443, mode=None)
PINNED = dict(service="python_service", name="app", port=8443, mode="strict")


def answer(endpoint, certificate, outcome="accepted", status=200, serial="5A3F", **extra):
    result = dict(item=dict(endpoint=endpoint, certificate=certificate), outcome=outcome, status=status,
                  server_cert=dict(serial=serial) if serial else None)
    result.update(extra)
    return result


def test_strict_serves_with_and_refuses_without():
    answers = dict(results=[answer(NGINX, True), answer(NGINX, False, status=403),
                            answer(HAPROXY, True), answer(HAPROXY, False, outcome="refused", status=None,
                                                          alert="certificate required")])
    verdict = verify_verdict(answers, "strict", "web1")
    assert verdict == dict(passed=True, problems=[], probes=[
        dict(service="nginx", name="web", port=443, mode="strict", certificate=True, served=True, outcome="accepted",
             status=200, serial="5A3F"),
        dict(service="nginx", name="web", port=443, mode="strict", certificate=False, served=False,
             outcome="accepted", status=403, serial="5A3F"),
        dict(service="haproxy", name="api", port=443, mode="strict", certificate=True, served=True,
             outcome="accepted", status=200, serial="5A3F"),
        dict(service="haproxy", name="api", port=443, mode="strict", certificate=False, served=False,
             outcome="refused", status=None, serial="5A3F")])


def test_each_wrong_answer_is_one_problem_saying_what_was_seen():
    answers = [answer(NGINX, True, outcome="refused", status=None, alert="unknown ca", error="handshake failed"),
               answer(NGINX, False),  # strict, served without a certificate
               answer(HAPROXY, False, status=403),  # permissive, refused
               answer(HAPROXY, True, serial="0BAD"),
               answer(PINNED, False)]  # its own mode (strict) wins over permissive
    verdict = verify_verdict(dict(results=answers[:2]), "strict", "web1")
    assert verdict["problems"] == [
        "nginx web on web1:443 refused a good client certificate (outcome refused, HTTP None, unknown ca, "
        "handshake failed)",
        "nginx web on web1:443 served a client without a certificate in strict mode"]
    verdict = verify_verdict(answers[2:], "permissive", "lb1", expected_serials=dict(haproxy="5A3F"))
    assert not verdict["passed"]
    assert verdict["problems"] == [
        "haproxy api on lb1:443 refused a client without a certificate in permissive mode (outcome accepted, "
        "HTTP 403)",
        "haproxy api on lb1:443 serves serial 0BAD, not the new 5A3F",
        "python_service app on lb1:8443 served a client without a certificate in strict mode"]
    assert [probe["mode"] for probe in verdict["probes"]] == ["permissive", "permissive", "strict"]


def test_an_untrusted_server_certificate_and_answers_without_status():
    answers = [answer(NGINX, True, outcome="server_cert_untrusted", status=None, serial=None,
                      verify_error="unable to get local issuer certificate"),
               answer(NGINX, True, outcome="server_cert_untrusted", status=None, serial=None,
                      verify_error="unable to get local issuer certificate"),
               answer(HAPROXY, True, status=None)]
    verdict = verify_verdict(answers, None, "web1")
    # the same problem twice is said once; an accepted handshake without an HTTP status is not served
    assert verdict["problems"] == [
        "nginx web on web1:443 serves a certificate the fleet does not trust: unable to get local issuer certificate",
        "haproxy api on web1:443 refused a good client certificate (outcome accepted, HTTP None)"]
    assert verdict["probes"][0]["serial"] is None


def test_without_a_mode_a_certificate_less_answer_is_not_judged():
    verdict = verify_verdict([answer(NGINX, False, status=403), answer(HAPROXY, False)], None, "web1")
    assert verdict["passed"] and [probe["mode"] for probe in verdict["probes"]] == [None, None]
    assert verify_verdict(dict(results=[]), "strict")["passed"]


def test_a_mode_it_cannot_judge():
    with pytest.raises(AnsibleFilterError, match="strict, permissive or null, not 'enforcing'"):
        verify_verdict([], "enforcing")


def test_a_certificate_that_must_be_refused_passes_only_when_refused():
    endpoint = dict(service="nginx", name="site", port=8443, mode="strict")
    refused = [dict(item=dict(endpoint=endpoint, certificate=True), outcome="refused", alert="certificate revoked")]
    served = [dict(item=dict(endpoint=endpoint, certificate=True), outcome="accepted", status=200)]
    assert verify_verdict(refused, mode="strict", address="web1", refused=True)["passed"]
    verdict = verify_verdict(served, mode="strict", address="web1", refused=True)
    assert not verdict["passed"]
    assert verdict["problems"] == ["nginx site on web1:8443 served a client certificate it must refuse "
                                   "(outcome accepted, HTTP 200)"]
    assert not verify_verdict(refused, mode="strict", address="web1")["passed"]
