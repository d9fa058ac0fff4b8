# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import datetime

import pytest
from cryptography import x509

from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _params
from ansible_collections.fleet.mtls.plugins.module_utils import _policy
from ansible_collections.fleet.mtls.plugins.module_utils import _signing
from ansible_collections.fleet.mtls.plugins.module_utils import _x509
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError

DAY = datetime.timedelta(days=1)
LAB_POLICY = dict(allowed_domains=["lab.internal"], allowed_ip_ranges=["10.0.0.0/8"],
                  spiffe_trust_domain="lab.internal")


def pem(csr):
    return _x509.csr_pem(csr).decode("ascii")


def test_policy_allows_names_under_its_domains():
    policy = _policy.SigningPolicy(**LAB_POLICY)
    allowed = _x509.build_sans(["DNS:lab.internal", "DNS:web1.lab.internal", "DNS:*.web.lab.internal",
                                "IP:10.1.2.3"], spiffe_id="spiffe://lab.internal/web/web1")
    assert policy.refusals(allowed) == []


@pytest.mark.parametrize("san,why", [
    ("DNS:evil.example", "allowed domains"),
    ("DNS:notlab.internal", "allowed domains"),
    ("IP:192.168.1.1", "allowed IP ranges"),
    ("URI:spiffe://other.domain/web", "trust domain"),
    ("URI:https://lab.internal/x", "only SPIFFE IDs"),
    ("email:ops@lab.internal", "email SANs"),
])
def test_policy_refuses_names_outside_it(san, why):
    refusals = _policy.SigningPolicy(**LAB_POLICY).refusals(_x509.build_sans([san]))
    assert len(refusals) == 1 and why in refusals[0] and san.split(":")[0] in refusals[0]


def assert_one_refusal(policy, san, why):
    refusals = policy.refusals(_x509.build_sans([san]))
    assert len(refusals) == 1 and why in refusals[0] and san in refusals[0], refusals


@pytest.mark.parametrize("san,why", [
    ("DNS:anything.example", "allowed domains: none"),
    ("IP:8.8.8.8", "allowed IP ranges: none"),
    ("URI:spiffe://fleet.test/web/web1", "no SPIFFE trust domain"),
    ("email:a@b.c", "email SANs are not allowed"),
])
def test_an_empty_policy_is_closed(san, why):
    assert_one_refusal(_policy.SigningPolicy(), san, why)


def test_email_only_where_allowed():
    assert _policy.SigningPolicy(allow_email=True).refusals(_x509.build_sans(["email:a@b.c"])) == []


def _constraints(permitted=(), excluded=()):
    return _x509.build_name_constraints(list(permitted), list(excluded))


CA_CONSTRAINTS = dict(permitted=["DNS:lab.internal", "IP:10.0.0.0/8", "URI:lab.internal"],
                      excluded=["DNS:secret.lab.internal"])
OPEN_POLICY = dict(allowed_domains=["internal", "example"], allowed_ip_ranges=["0.0.0.0/0"],
                   spiffe_trust_domain="lab.internal")


@pytest.mark.parametrize("san", ["DNS:lab.internal", "DNS:web1.lab.internal", "IP:10.1.2.3",
                                 "URI:spiffe://lab.internal/web/web1"])
def test_names_inside_the_cas_constraints_pass(san):
    policy = _policy.SigningPolicy(ca_constraints=_constraints(**CA_CONSTRAINTS), **OPEN_POLICY)
    assert policy.refusals(_x509.build_sans([san])) == []


@pytest.mark.parametrize("san,why", [
    ("DNS:www.example", "outside the CA's name constraints: DNS:lab.internal"),
    ("DNS:evillab.internal", "outside the CA's name constraints"),
    ("DNS:db.secret.lab.internal", "excluded by the CA's name constraints: DNS:secret.lab.internal"),
    ("IP:8.8.8.8", "outside the CA's name constraints: IP:10.0.0.0/8"),
])
def test_names_outside_the_cas_constraints_are_refused_though_the_policy_allows_them(san, why):
    assert_one_refusal(_policy.SigningPolicy(ca_constraints=_constraints(**CA_CONSTRAINTS), **OPEN_POLICY), san, why)


def test_a_uri_outside_the_cas_uri_constraint_is_refused():
    policy = _policy.SigningPolicy(ca_constraints=_constraints(permitted=["URI:lab.internal"]),
                                   spiffe_trust_domain="other.internal")
    refusals = policy.refusals(_x509.build_sans(["URI:spiffe://other.internal/web/web1"]))
    assert refusals == ["URI:spiffe://other.internal/web/web1 (outside the CA's name constraints: "
                        "URI:lab.internal)"]


def test_without_a_dns_san_the_common_name_meets_the_dns_constraints():
    policy = _policy.SigningPolicy(ca_constraints=_constraints(permitted=["DNS:lab.internal"]),
                                   spiffe_trust_domain="lab.internal")
    sans = _x509.build_sans(["URI:spiffe://lab.internal/client/c1"])
    assert policy.refusals(sans, "c1.lab.internal") == []
    assert policy.refusals(sans, "admin.evil.example") == [
        "DNS:admin.evil.example (outside the CA's name constraints: DNS:lab.internal)"]


def test_a_constrained_ca_refuses_before_signing(pki):
    """The audit's case: a SAN outside the issuing CA's constraints was signed, and openssl rejected the result."""
    key = c.generate_private_key("ec")
    ca = _x509.build_ca_certificate(key, {"CN": "Constrained"}, pki.now - DAY, pki.now + 30 * DAY,
                                    issuer_cert=pki.root, issuer_key=pki.root_key, path_length=0,
                                    permitted=["DNS:lab.internal"])
    policy = _policy.SigningPolicy(allowed_domains=["lab.internal", "example.com"],
                                   ca_constraints=_x509.name_constraints_of(ca))
    _key, csr = pki.csr(["DNS:www.example.com"])
    item = dict(name="web1/server", csr=_x509.csr_pem(csr).decode("ascii"), profile="server")
    with pytest.raises(PkiError, match=r"www\.example\.com \(outside the CA's name constraints: DNS:lab\.internal\)"):
        _signing.check_requests([item], policy)


def test_profiles_follow_the_csr_unless_given(pki):
    _key, server_csr = pki.csr(["DNS:a.lab"], eku=("serverAuth",))
    _key, both_csr = pki.csr(["DNS:a.lab"], eku=("serverAuth", "clientAuth"))
    _key, bare_csr = pki.csr(["DNS:a.lab"], eku=())
    assert _policy.profile_for(server_csr, None, "a") == "server"
    assert _policy.profile_for(both_csr, None, "a") == "server_client"
    assert _policy.profile_for(bare_csr, "client", "a") == "client"
    assert _policy.profile_for(server_csr, "server_client", "a") == "server_client"
    with pytest.raises(PkiError, match="no extended key usage"):
        _policy.profile_for(bare_csr, None, "a")
    with pytest.raises(PkiError, match="does not grant"):
        _policy.profile_for(both_csr, "client", "a")


def test_batch_signs_every_request_with_unique_serials(pki):
    items = []
    for index in range(20):
        _key, csr = pki.csr(["DNS:host%02d.lab.internal" % index], eku=("serverAuth", "clientAuth"))
        items.append(dict(name="host%02d" % index, csr=pem(csr)))
    requests = _signing.check_requests(items, _policy.SigningPolicy(**LAB_POLICY))
    issued = _signing.sign_requests(requests, pki.issuing, pki.issuing_key, pki.now)
    assert [r.name for r, _cert in issued] == [i["name"] for i in items]
    serials = set(cert.serial_number for _r, cert in issued)
    assert len(serials) == 20
    for request, cert in issued:
        assert c.cert_signed_by(cert, pki.issuing)
        assert _x509.sans_of(cert) == request.sans
        assert _x509.extended_key_usage_names(_x509.extension_value(cert, x509.ExtendedKeyUsage)) == \
            ["serverAuth", "clientAuth"]
        assert len(c.serial_hex(cert.serial_number)) <= 40


def test_a_bad_request_stops_the_whole_batch_before_signing(pki):
    _k, good = pki.csr(["DNS:good.lab.internal"])
    _k, bad = pki.csr(["DNS:bad.example.com"])
    with pytest.raises(PkiError) as refused:
        _signing.check_requests([dict(name="good", csr=pem(good)), dict(name="bad", csr=pem(bad))],
                                _policy.SigningPolicy(**LAB_POLICY))
    assert "CSR bad" in str(refused.value) and "DNS:bad.example.com" in str(refused.value)


def test_batch_input_errors_are_named(pki):
    _k, csr = pki.csr(["DNS:a.lab.internal"])
    policy = _policy.SigningPolicy(**LAB_POLICY)
    with pytest.raises(PkiError, match="appears twice"):
        _signing.check_requests([dict(name="a", csr=pem(csr)), dict(name="a", csr=pem(csr))], policy)
    with pytest.raises(PkiError, match="not a PEM certificate request"):
        _signing.check_requests([dict(name="a", csr="garbage")], policy)
    key = c.generate_private_key("ec")
    no_san = _x509.build_csr(key, {"CN": "a.lab.internal"}, [], extended_key_usage=["serverAuth"])
    with pytest.raises(PkiError, match="no subjectAltName"):
        _signing.check_requests([dict(name="a", csr=pem(no_san))], policy)


def test_csr_asking_to_be_a_ca_is_refused(pki):
    key = c.generate_private_key("ec")
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(_x509.build_name({"CN": "sneaky"}))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName("sneaky.lab")]), critical=False)
           .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
           .sign(key, c.signature_hash(key)))
    with pytest.raises(PkiError, match="asks to be a CA"):
        _signing.check_requests([dict(name="s", csr=pem(csr), profile="server")], _policy.SigningPolicy())


def test_validity_window_is_backdated_and_capped_by_the_ca(pki):
    now = pki.now
    not_before, not_after = _policy.validity_window(now, 90, 300, now + 365 * DAY)
    assert not_before == now - datetime.timedelta(seconds=300)
    assert not_after == now + 90 * DAY
    _nb, capped = _policy.validity_window(now, 90, 300, now + 10 * DAY)
    assert capped == now + 10 * DAY
    with pytest.raises(PkiError):
        _policy.validity_window(now, 0, 300, now + DAY)
    # a root has no CA above it: its own lifetime, backdated alike
    assert _policy.validity_window(now, 3650, 300) == (now - datetime.timedelta(seconds=300), now + 3650 * DAY)


def test_renewal_defaults_to_two_thirds_of_the_lifetime():
    start = datetime.datetime(2026, 1, 1, tzinfo=c.UTC)
    end = start + 90 * DAY
    assert _policy.renewal_time(start, end) == start + 60 * DAY
    assert _policy.renewal_time(start, end, renew_days_before=7) == end - 7 * DAY
    assert _policy.renewal_time(start, end, renew_fraction=0.5) == start + 45 * DAY


def test_jitter_is_stable_per_seed_bounded_and_spread():
    start = datetime.datetime(2026, 1, 1, tzinfo=c.UTC)
    end = start + 90 * DAY
    points = [_policy.renewal_time(start, end, jitter=0.1, seed="host%d" % i) for i in range(50)]
    assert all(start + 51 * DAY <= p <= start + 60 * DAY for p in points)
    assert len(set(points)) == 50
    assert points[3] == _policy.renewal_time(start, end, jitter=0.1, seed="host3")


def test_reissue_reasons(pki, other_pki):
    key, cert = pki.leaf(["DNS:web1.lab"])
    anchors = [pki.root]
    assert _policy.reissue_reasons(cert, pki.now, key=key, anchors=anchors, intermediates=[pki.issuing],
                                   wanted_sans=_x509.build_sans(["DNS:web1.lab"])) == []
    assert _policy.reissue_reasons(cert, pki.now, key=c.generate_private_key("ec")) == ["key_mismatch"]
    assert _policy.reissue_reasons(cert, pki.now, wanted_sans=_x509.build_sans(["DNS:web2.lab"])) == \
        ["identity_changed"]
    assert _policy.reissue_reasons(cert, pki.now, anchors=[other_pki.root], intermediates=[pki.issuing]) == \
        ["untrusted_issuer"]
    assert _policy.reissue_reasons(cert, pki.now, wanted_key_type="ec") == []
    assert _policy.reissue_reasons(cert, pki.now, wanted_key_type="ec", wanted_key_size=384) == ["key_type_changed"]
    assert _policy.reissue_reasons(cert, pki.now, wanted_key_type="rsa") == ["key_type_changed"]
    assert _policy.reissue_reasons(cert, pki.now + 70 * DAY) == ["renewal_window"]
    assert _policy.reissue_reasons(cert, pki.now + 100 * DAY) == ["expired"]


def test_renewal_decision_applies_the_module_options_to_both_answers(pki):
    key, cert = pki.leaf(["DNS:web1.lab"])
    start, end = c.not_valid_before(cert), c.not_valid_after(cert)
    defaults = dict(renew_fraction=None, renew_days_before=None, renew_jitter=0.0)
    assert _policy.renewal_decision(cert, pki.now, defaults, "web1/server", key=key) == \
        ([], _policy.renewal_time(start, end))
    assert _policy.renewal_decision(cert, pki.now, defaults, "web1/server",
                                    key=c.generate_private_key("ec"))[0] == ["key_mismatch"]

    options = dict(renew_fraction=0.5, renew_days_before=None, renew_jitter=0.1)
    reasons, renew_at = _policy.renewal_decision(cert, pki.now + 50 * DAY, options, "web1/server")
    assert renew_at == _policy.renewal_time(start, end, renew_fraction=0.5, jitter=0.1, seed="web1/server")
    assert renew_at != _policy.renewal_time(start, end, renew_fraction=0.5, jitter=0.1, seed="web2/server")
    assert reasons == _policy.reissue_reasons(cert, pki.now + 50 * DAY, renew_fraction=0.5, jitter=0.1,
                                              seed="web1/server") == ["renewal_window"]

    options = dict(renew_fraction=0.5, renew_days_before=7, renew_jitter=0.0)
    assert _policy.renewal_decision(cert, pki.now + 50 * DAY, options, None) == ([], end - 7 * DAY)

    with pytest.raises(PkiError, match="renew_fraction"):
        _policy.renewal_decision(cert, pki.now, dict(defaults, renew_fraction=1.5), None)


def test_the_choices_modules_offer_are_what_the_core_knows():
    assert list(_params.KEY_TYPES) == list(c.KEY_SIZES) == list(c.DEFAULT_KEY_SIZE)
    assert list(_params.PROFILES) == list(_policy.PROFILES)
