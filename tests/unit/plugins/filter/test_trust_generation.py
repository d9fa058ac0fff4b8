# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""trust_generation: a new name for the session cache exactly when what verification used changed."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.mtls.plugins.filter.trust import trust_generation

BUNDLE = "/etc/fleet-mtls/certs/ca-bundle.pem"
CRL = "/etc/fleet-mtls/certs/ca.crl"


def site(mode="strict", bundle=BUNDLE, crl=CRL):
    return [dict(name="api", mode=mode, ca_bundle=bundle, crl=crl)]


def test_same_inputs_same_generation():
    checksums = {BUNDLE: "aa", CRL: "cc"}
    first = trust_generation(site(), checksums)
    assert first == trust_generation(site(), dict(checksums))
    assert len(first) == 16 and int(first, 16) >= 0


@pytest.mark.parametrize("change", [
    dict(checksums={BUNDLE: "ab", CRL: "cc"}),      # the CA bundle's content (a CA removed, a rollover)
    dict(checksums={BUNDLE: "aa", CRL: "cd"}),      # a new CRL (a client revoked)
    dict(checksums={BUNDLE: "aa", CRL: None}),      # the CRL gone
    dict(inputs=site(mode="permissive")),           # the verify mode
])
def test_any_trust_change_makes_a_new_generation(change):
    base = trust_generation(site(), {BUNDLE: "aa", CRL: "cc"})
    assert trust_generation(change.get("inputs", site()), change.get("checksums", {BUNDLE: "aa", CRL: "cc"})) != base


def test_a_moved_file_with_the_same_content_keeps_the_generation():
    moved = "/srv/bundle.pem"
    assert trust_generation(site(bundle=moved), {moved: "aa", CRL: "cc"}) == \
        trust_generation(site(), {BUNDLE: "aa", CRL: "cc"})


def test_bad_input_is_an_error():
    with pytest.raises(AnsibleFilterError, match="not a string"):
        trust_generation([object()])
    with pytest.raises(AnsibleFilterError, match="must be a dict"):
        trust_generation([], ["x"])
