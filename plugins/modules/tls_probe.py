#!/usr/bin/python
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: tls_probe
short_description: Prove what a TLS server accepts, from the host that connects to it
version_added: 0.1.0
description:
  - Opens a TLS connection from the managed host to O(host):O(port), with SNI, verifying the server's certificate
    against O(ca_bundle_path), with an optional client certificate; optionally sends an HTTP request and reads the
    answer.
  - The client certificate, the HTTP request and O(probe_token) go only to a server whose certificate verified (chain
    and name). OpenSSL checks the server's certificate as soon as it arrives, before the client sends its own; a
    server that does not verify ends the handshake there (C(outcome=server_cert_untrusted)) and fails the task
    unless O(expect) says it should not verify.
  - O(verify_server=false) probes without verifying, to see what an unknown server offers; it then presents no client
    certificate and sends no request (see O(verify_server)).
  - Tells in C(outcome) what happened, in one word, whichever TLS version was negotiated. Under TLS 1.3 a server
    refuses a client certificate only after the client's side of the handshake has completed, with an alert that
    arrives at the client's first read, so the probe always reads once after the handshake (after sending the HTTP
    request, or for O(alert_wait) seconds without one; silence then means the server accepted).
  - Reports the server's certificate (also when it does not verify, through a second handshake that verifies nothing
    and sends no client certificate and no request), the negotiated protocol and cipher, and whether the server asked
    for a client certificate and from which certificate authorities.
  - A refused client is a result, not an error; the task fails when an expectation in O(expect) is not met, when the
    connection itself fails, or when the server's certificate does not verify, unless O(expect) says that is what
    should happen.
author:
  - fleet.mtls maintainers (@fleet-mtls)
extends_documentation_fragment:
  - fleet.mtls.attributes.READS
  - fleet.mtls.attributes.CRYPTOGRAPHY
options:
  host:
    description: Name or address to connect to, as seen from the managed host.
    type: str
    required: true
  port:
    description: TCP port.
    type: int
    default: 443
  server_name:
    description:
      - Name sent in SNI and checked against the server's certificate. Default O(host).
      - An IP address sends no SNI (as every client does) and is checked against the certificate's IP SANs.
    type: str
  client_cert_path:
    description:
      - Client certificate (PEM) to present when the server asks for one, with its chain after it if needed.
        Without it the probe presents no certificate.
      - Presented only to a server whose certificate verified against O(ca_bundle_path), so it cannot be combined
        with O(verify_server=false).
    type: path
  client_key_path:
    description: Private key of O(client_cert_path). Default the key in O(client_cert_path) itself.
    type: path
  client_key_passphrase:
    description: Passphrase of an encrypted client key. The value is never logged.
    type: str
  ca_bundle_path:
    description:
      - Trust anchors (PEM) to verify the server's certificate with, chain and name (O(server_name)).
      - Required unless O(verify_server=false); the two exclude each other.
    type: path
  verify_server:
    description:
      - Verify the server's certificate against O(ca_bundle_path), which is then required. A server that does not
        verify gets no client certificate and no request, and fails the task unless O(expect) says it should not
        verify.
      - V(false) probes without verifying and without O(ca_bundle_path), to see what a server offers. The probe then
        presents no client certificate and sends no request, so O(client_cert_path) and O(http_path) (and with them
        O(probe_token)) cannot be given. It connects once, completes the handshake as a client without a certificate,
        waits O(alert_wait) for the server's verdict and reports the server's certificate, the protocol and cipher,
        whether the server asked for a client certificate, and whether it accepts a client without one
        (C(outcome=accepted) or C(rejected_no_client_cert)); C(server_cert_verified) is null.
    type: bool
    default: true
  min_tls_version:
    description: Lowest TLS version to offer. Default the system's (OpenSSL configuration).
    type: str
    choices: ['1.2', '1.3']
  max_tls_version:
    description: Highest TLS version to offer. Default the highest the system supports.
    type: str
    choices: ['1.2', '1.3']
  timeout:
    description:
      - Seconds allowed to connect, for the handshake, and for the HTTP response. Resolving O(host) is left to the
        system resolver and its own timeouts.
    type: float
    default: 10
  alert_wait:
    description:
      - Without O(http_path), how many seconds to wait after the handshake for the server's verdict on the client
        certificate (TLS 1.3 sends it then). Raise it for servers far away; every probe without O(http_path) takes this
        long when the server accepts.
    type: float
    default: 1
  http_path:
    description:
      - Send an HTTP/1.1 request for this target (V(/), V(/healthz)) after the handshake and read the status, headers
        and the first O(body_bytes) of the body. Without it no request is sent.
      - Sent only to a server whose certificate verified, so it cannot be combined with O(verify_server=false).
    type: str
  http_method:
    description: Method of the HTTP request. Default V(GET).
    type: str
  http_host:
    description: The C(Host) header of the HTTP request. Default O(server_name), with the port unless it is 443.
    type: str
  http_headers:
    description:
      - Further request headers; they replace the defaults of the same name (C(User-Agent), C(Accept), C(Connection)).
    type: dict
  probe_token:
    description:
      - A secret sent in the C(X-Fleet-Mtls-Probe) request header, which the P(fleet.mtls.nginx#role),
        P(fleet.mtls.haproxy#role) and P(fleet.mtls.python_service#role) roles log as C(probe), so that
        M(fleet.mtls.adoption_info) (O(fleet.mtls.adoption_info#module:probe_token)) leaves the fleet's own probes out of
        the clients it counts. The P(fleet.mtls.verify#role) role sends C(mtls_probe_token).
      - Hidden from the task's output. Sent only in the request of the verified attempt, so it needs O(http_path) and
        O(ca_bundle_path), so that a server that does not verify never receives it.
    type: str
  body_bytes:
    description: How many bytes of the response body to read at most.
    type: int
    default: 4096
  expect:
    description:
      - What the probe must find, or the task fails with every fact in its result and a message naming each unmet
        expectation. Keys are V(handshake), V(outcome), V(alert), V(protocol), V(cipher), V(status), V(reason),
        V(server_cert_verified), V(client_cert_requested), V(client_ca_names) (compared as a set) and V(body_contains)
        (text, or a list of texts that must all be in C(body)).
      - "A list given for another key means any of its values, e.g. V({outcome: [rejected_no_client_cert,
        rejected_untrusted_client_cert]})."
      - Unknown keys and unknown C(outcome) or C(handshake) values are an error, so a typo never passes.
      - The task also fails when the connection fails (C(outcome=connection_failed)), unless O(expect) names
        V(connection_failed) in C(outcome); and when the server's certificate does not verify
        (C(outcome=server_cert_untrusted)), unless O(expect) names V(server_cert_untrusted) in C(outcome) or sets
        V(server_cert_verified=false).
    type: dict
    default: {}
notes:
  - C(client_cert_requested) and C(client_ca_names) come from the handshake messages themselves, read through a private
    hook of CPython's ssl module (C(SSLContext._msg_callback), present in Python 3.8 to 3.13). Where it is missing they
    are null; the rest of the probe does not depend on it.
  - Some servers (nginx with C(ssl_verify_client on)) complete the handshake without a client certificate and answer
    HTTP 400 instead of sending an alert; probe them with O(http_path) and expect a C(status).
  - Connections go from the managed host; use C(delegate_to) to probe from another host.
seealso:
  - module: fleet.mtls.certificate_info
"""

EXAMPLES = r"""
- name: The web server must refuse clients without a certificate
  fleet.mtls.tls_probe:
    host: web1.lab.internal
    port: 443
    ca_bundle_path: /etc/ssl/fleet/ca-bundle.pem
    expect:
      handshake: failed
      outcome: rejected_no_client_cert

- name: And serve a client with a good certificate
  fleet.mtls.tls_probe:
    host: web1.lab.internal
    ca_bundle_path: /etc/ssl/fleet/ca-bundle.pem
    client_cert_path: /etc/ssl/fleet/client.crt
    client_key_path: /etc/ssl/fleet/client.key
    http_path: /healthz
    expect:
      outcome: accepted
      server_cert_verified: true
      status: 200
      body_contains: ok

- name: The legacy server's certificate must not verify (it gets no client certificate and no request)
  fleet.mtls.tls_probe:
    host: legacy1.lab.internal
    ca_bundle_path: /etc/ssl/fleet/ca-bundle.pem
    client_cert_path: /etc/ssl/fleet/client.crt
    client_key_path: /etc/ssl/fleet/client.key
    expect:
      outcome: server_cert_untrusted

- name: Look only, without verifying (no client certificate, no request; a refusal does not fail the task)
  fleet.mtls.tls_probe:
    host: 10.0.0.11
    port: 8443
    server_name: api.lab.internal
    verify_server: false
    max_tls_version: '1.2'
  register: api_probe

- name: Show what the server asks of clients
  ansible.builtin.debug:
    msg: "{{ api_probe.outcome }}: asks for a client certificate from {{ api_probe.client_ca_names }}"
"""

RETURN = r"""
host:
  description: The host probed.
  returned: always
  type: str
port:
  description: The port probed.
  returned: always
  type: int
server_name:
  description: The name sent in SNI and verified.
  returned: always
  type: str
handshake:
  description:
    - V(ok) when the TLS handshake completed and the server did not refuse it; V(failed) when it did not complete,
      including a TLS 1.3 server's refusal of the client certificate by an alert right after the handshake.
  returned: always
  type: str
  sample: ok
outcome:
  description:
    - V(accepted) the server accepted the connection (with or without a client certificate; with
      O(verify_server=false), always without one).
    - V(rejected_no_client_cert) the server wanted a client certificate and got none (alerts certificate required,
      handshake failure).
    - V(rejected_untrusted_client_cert) the server refused the certificate presented (alerts bad, unsupported, revoked,
      expired or unknown certificate, unknown CA, access denied); C(alert) says which.
    - V(server_cert_untrusted) the server's certificate did not verify against O(ca_bundle_path); C(verify_error) says
      why. The probe sent it no client certificate and no request.
    - V(connection_failed) no TCP connection (refused, timed out, name not resolved).
    - V(protocol_error) anything else, such as no common protocol version or the server closing without an alert;
      C(error) says what.
  returned: always
  type: str
  sample: rejected_untrusted_client_cert
alert:
  description: The TLS alert the server sent, as OpenSSL names it.
  returned: always
  type: str
  sample: tlsv1 alert unknown ca
error:
  description: What went wrong, in words; null when the outcome is V(accepted).
  returned: always
  type: str
protocol:
  description: The negotiated protocol version, also when the handshake failed after the server's hello.
  returned: always
  type: str
  sample: TLSv1.3
cipher:
  description: The negotiated cipher suite (OpenSSL name).
  returned: always
  type: str
  sample: TLS_AES_256_GCM_SHA384
client_cert_requested:
  description: Whether the server asked for a client certificate; null when that could not be seen.
  returned: always
  type: bool
client_ca_names:
  description:
    - The distinguished names (RFC 4514) of the certificate authorities the server named in its request for a client
      certificate; empty when it named none or did not ask; null when that could not be seen.
  returned: always
  type: list
  elements: str
  sample: ["CN=Fleet Issuing CA 1,O=Example"]
server_cert:
  description:
    - The server's certificate, described as M(fleet.mtls.certificate_info) does (C(subject), C(subject_string),
      C(subject_alt_names), C(issuer_string), C(serial), C(not_after), C(fingerprint_sha256), ...); null when the
      server sent none.
  returned: always
  type: dict
server_cert_verified:
  description:
    - Whether the server's certificate verified against O(ca_bundle_path) (chain and name); null with
      O(verify_server=false), or when the handshake ended before the server's certificate arrived.
  returned: always
  type: bool
verify_error:
  description: Why the server's certificate did not verify.
  returned: always
  type: str
  sample: unable to get local issuer certificate
status:
  description: HTTP status code of the response to the request for O(http_path).
  returned: always
  type: int
  sample: 200
reason:
  description: HTTP reason phrase.
  returned: always
  type: str
headers:
  description: HTTP response headers, names in lower case; repeated headers are joined with a comma.
  returned: always
  type: dict
body:
  description: The first O(body_bytes) bytes of the response body, decoded as UTF-8 (invalid bytes replaced).
  returned: always
  type: str
unmet_expectations:
  description: One line per expectation in O(expect) that was not met.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils import _module
from ansible_collections.fleet.mtls.plugins.module_utils import _params
from ansible_collections.fleet.mtls.plugins.module_utils import _probe
from ansible_collections.fleet.mtls.plugins.module_utils import _probe_expect


# The header the service roles log as "probe".
PROBE_HEADER = "X-Fleet-Mtls-Probe"


def http_request(params):
    if params["http_path"] is None:
        return None
    headers = dict(params["http_headers"] or {})
    if params["probe_token"]:
        headers = dict((name, value) for name, value in headers.items() if name.lower() != PROBE_HEADER.lower())
        headers[PROBE_HEADER] = params["probe_token"]
    return dict(method=params["http_method"], path=params["http_path"], host=params["http_host"], headers=headers)


def run_probe(module):
    params = module.params
    _probe_expect.check_expect(params["expect"])
    options = _probe.ProbeOptions.load(
        params["host"], params["port"], server_name=params["server_name"],
        client_cert_path=params["client_cert_path"], client_key_path=params["client_key_path"],
        client_key_passphrase=params["client_key_passphrase"], ca_bundle_path=params["ca_bundle_path"],
        verify_server=params["verify_server"],
        min_tls_version=params["min_tls_version"], max_tls_version=params["max_tls_version"],
        timeout=params["timeout"], http=http_request(params), body_bytes=params["body_bytes"],
        alert_wait=params["alert_wait"])
    result = _probe.probe(options)
    result["changed"] = False
    message = _probe_expect.failure_message(result, params["expect"])
    if message:
        module.fail_json(msg=message, **result)
    return result


def main():
    versions = list(_probe.TLS_VERSIONS)
    module = AnsibleModule(
        argument_spec=_params.argument_spec(
            [],
            host=dict(type="str", required=True),
            port=dict(type="int", default=443),
            server_name=dict(type="str"),
            client_cert_path=dict(type="path"),
            client_key_path=dict(type="path"),
            client_key_passphrase=dict(type="str", no_log=True),
            ca_bundle_path=dict(type="path"),
            verify_server=dict(type="bool", default=True),
            min_tls_version=dict(type="str", choices=versions),
            max_tls_version=dict(type="str", choices=versions),
            timeout=dict(type="float", default=10.0),
            alert_wait=dict(type="float", default=1.0),
            http_path=dict(type="str"),
            http_method=dict(type="str"),
            http_host=dict(type="str"),
            http_headers=dict(type="dict"),
            probe_token=dict(type="str", no_log=True),
            body_bytes=dict(type="int", default=4096),
            expect=dict(type="dict", default={}),
        ),
        required_by={"client_key_path": "client_cert_path", "client_key_passphrase": "client_cert_path",
                     "http_method": "http_path", "http_host": "http_path", "http_headers": "http_path",
                     "probe_token": ["http_path", "ca_bundle_path"]},
        supports_check_mode=True,
    )
    _module.run(module, run_probe)


if __name__ == "__main__":
    main()
