# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""tls_probe's probe token: sent in its header, never shown, never to a server that is not verified."""

from __future__ import annotations

from ansible_collections.fleet.mtls.plugins.modules import tls_probe

MODULE = tls_probe

TOKEN = "fleet-probe-secret-0123456789"


def params(**extra):
    base = dict(http_path="/", http_method=None, http_host=None, http_headers=None, probe_token=None)
    base.update(extra)
    return base


def test_the_token_goes_in_its_header_and_replaces_one_given_by_hand():
    assert tls_probe.http_request(params())["headers"] == {}
    request = tls_probe.http_request(params(probe_token=TOKEN, http_headers={"x-fleet-mtls-probe": "forged", "A": "b"}))
    assert request["headers"] == {"A": "b", "X-Fleet-Mtls-Probe": TOKEN}
    assert tls_probe.http_request(params(http_path=None, probe_token=TOKEN)) is None


def test_no_token_without_server_verification(run_module):
    result = run_module(dict(host="127.0.0.1", port=9, http_path="/", probe_token=TOKEN))
    assert result["failed"] and "ca_bundle_path" in result["msg"]
    assert TOKEN not in repr(result)


def test_no_token_without_a_request(run_module, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    result = run_module(dict(host="127.0.0.1", port=9, ca_bundle_path=str(bundle), probe_token=TOKEN))
    assert result["failed"] and "http_path" in result["msg"]
    assert TOKEN not in repr(result)
