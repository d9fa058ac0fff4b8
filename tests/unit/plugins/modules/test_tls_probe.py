# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""tls_probe verifies the server before it sends anything: the client certificate, the request and the probe
token go only to a server whose certificate verified; the token is never shown.

The servers are real (probe_servers.RecordingTLSServer on 127.0.0.1) and record what the module sent them.
"""

from __future__ import annotations

import ssl

import pytest

from ansible_collections.fleet.mtls.plugins.modules import tls_probe
from ansible_collections.fleet.mtls.tests.unit.plugins.module_utils import probe_servers as ps

MODULE = tls_probe

TOKEN = "fleet-probe-secret-0123456789"
NO_BUNDLE = "tls_probe verifies the server: give ca_bundle_path, or verify_server: false to probe without verifying"


@pytest.fixture(scope="module")
def probe_pki(tmp_path_factory):
    return ps.ProbePki(tmp_path_factory.mktemp("probe-pki"))


@pytest.fixture
def recording_server(request, probe_pki):
    """start(cert, version='1.3', verify_mode): a RecordingTLSServer serving the ProbePki attribute cert, stopped
    at the end."""

    def start(cert, version="1.3", verify_mode=ssl.CERT_OPTIONAL):
        server = ps.RecordingTLSServer(probe_pki, getattr(probe_pki, cert), version, verify_mode)
        request.addfinalizer(server.stop)
        return server

    return start


def everything(pki, port, **extra):
    """Arguments that would send all there is to send: a client certificate, a request, the probe token."""
    args = dict(host=ps.LOOPBACK, port=port, server_name=ps.SERVER_NAME, ca_bundle_path=pki.ca_path,
                client_cert_path=pki.client[0], client_key_path=pki.client[1], http_path="/", probe_token=TOKEN,
                alert_wait=0.2, timeout=5)
    args.update(extra)
    return args


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


def test_without_a_bundle_it_fails_before_connecting(run_module, recording_server):
    server = recording_server("server")
    result = run_module(dict(host=ps.LOOPBACK, port=server.port))
    server.stop()
    assert result["failed"] and result["msg"] == NO_BUNDLE
    assert server.connections == 0


@pytest.mark.parametrize("option, message", [
    ("ca_bundle_path", "ca_bundle_path and verify_server: false exclude each other"),
    ("client_cert_path", "client_cert_path needs a verified server"),
    ("http_path", "http_path needs a verified server"),
])
def test_without_verifying_nothing_to_send_can_be_given(run_module, recording_server, probe_pki, option, message):
    server = recording_server("server")
    given = {"ca_bundle_path": dict(ca_bundle_path=probe_pki.ca_path),
             "client_cert_path": dict(client_cert_path=probe_pki.client[0], client_key_path=probe_pki.client[1]),
             "http_path": dict(http_path="/")}[option]
    result = run_module(dict(host=ps.LOOPBACK, port=server.port, verify_server=False, **given))
    server.stop()
    assert result["failed"] and result["msg"].startswith(message)
    assert server.connections == 0


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_a_verified_server_gets_the_certificate_the_request_and_the_token(run_module, recording_server, probe_pki,
                                                                          version):
    """The control for the tests below: what the recording server sees when the server verifies."""
    server = recording_server("server", version)
    result = run_module(everything(probe_pki, server.port, expect={"outcome": "accepted", "status": 200}))
    server.stop()
    assert not result.get("failed"), result
    assert (result["server_cert_verified"], result["body"]) == (True, "ok\n")
    assert server.certificates_presented == 1
    assert b"\r\nX-Fleet-Mtls-Probe: %s\r\n" % TOKEN.encode() in server.received
    assert TOKEN not in repr(result)


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("cert", ["expired_server", "self_signed_server", "wrong_name_server"])
def test_an_untrusted_server_fails_the_task_and_gets_nothing(run_module, recording_server, probe_pki, version, cert):
    server = recording_server(cert, version)
    result = run_module(everything(probe_pki, server.port))
    server.stop()
    assert result["failed"]
    assert result["msg"].startswith("127.0.0.1:%d: the server's certificate did not verify: %s"
                                    % (server.port, result["verify_error"]))
    assert result["msg"].endswith("; it was sent no client certificate and no request")
    assert (result["outcome"], result["server_cert_verified"], result["status"]) == ("server_cert_untrusted", False,
                                                                                     None)
    assert server.certificates_presented == 0 and server.client_certificates == [0]
    assert server.received == b""
    assert TOKEN not in repr(result)


def test_an_untrusted_server_passes_when_expected_and_still_gets_nothing(run_module, recording_server, probe_pki):
    server = recording_server("self_signed_server")
    result = run_module(everything(probe_pki, server.port, expect={"outcome": "server_cert_untrusted"}))
    server.stop()
    assert not result.get("failed"), result
    assert result["outcome"] == "server_cert_untrusted" and result["unmet_expectations"] == []
    assert server.certificates_presented == 0 and server.received == b""


@pytest.mark.parametrize("verify_mode, outcome", [(ssl.CERT_OPTIONAL, "accepted"),
                                                  (ssl.CERT_REQUIRED, "rejected_no_client_cert")],
                         ids=["optional", "required"])
def test_without_verifying_it_looks_and_sends_nothing(run_module, recording_server, verify_mode, outcome):
    server = recording_server("self_signed_server", "1.3", verify_mode)
    result = run_module(dict(host=ps.LOOPBACK, port=server.port, server_name=ps.SERVER_NAME, verify_server=False,
                             alert_wait=0.2))
    server.stop()
    assert not result.get("failed"), result
    assert (result["outcome"], result["server_cert_verified"]) == (outcome, None)
    assert result["server_cert"]["issuer_string"] == "CN=" + ps.SERVER_NAME
    assert result["client_cert_requested"] is True
    assert server.connections == 1 and server.client_certificates == [0]
    assert server.received == b""
