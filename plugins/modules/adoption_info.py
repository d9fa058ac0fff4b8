#!/usr/bin/python
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: adoption_info
short_description: Measure client certificate adoption, per client, from the servers' access logs
version_added: 0.1.0
description:
  - Reads the JSON access logs that the P(fleet.mtls.nginx#role), P(fleet.mtls.haproxy#role) and
    P(fleet.mtls.python_service#role) roles write on a server and counts, per client, the requests whose client
    certificate verified (C(tls_client_verify) V(SUCCESS)), that came without one (V(NONE), empty or V(-)), and whose
    certificate failed (V(FAILED:<reason>), or any other value), with the reasons.
  - Meant for the observation phase of a rollout, before a site moves from C(permissive) to C(strict) mode. Strict mode
    can be enforced when C(totals.requests) is above zero and equals C(totals.valid); C(clients_without_certificate)
    and C(clients_with_failed_certificate) name the clients still in the way.
  - "A handshake refused for its client certificate is logged with status 0 and counts as a request. HAProxy 2.6 has no
    C(error-log-format) and writes such a connection as a line of text (V(10.0.0.4:51738 [26/Nov/2026:21:40:40.842]
    strict/1: SSL handshake failure)); that line is counted as a failure too, with the error as its reason."
  - The files are read line by line, keeping only counts. A JSON object is looked for from the first V({) of a line, so
    a syslog prefix does no harm. A line with one that is not a readable access record (not JSON, no
    C(tls_client_verify), no readable C(time)) fails the task, naming the file and the line, since a log that cannot be
    read is no evidence (see O(invalid_lines)). A line of text without one (HAProxy's own notices) is counted in
    C(lines_skipped).
author:
  - fleet.mtls maintainers (@fleet-mtls)
extends_documentation_fragment:
  - fleet.mtls.attributes.READS
  - fleet.mtls.attributes.PYTHON
options:
  paths:
    description:
      - The access logs to read, e.g. V(/var/log/nginx/fleet-mtls-access.log), V(/var/log/haproxy/access.log),
        V(/var/log/<service>/access.json). A file named twice (or through a link) is read once.
      - A file that does not exist fails the task, or with O(fail_on_missing=false) is listed in C(missing_paths).
    type: list
    elements: path
    required: true
  since:
    description:
      - Count only records at or after this time. ISO 8601 (V(2026-11-27T00:00:00Z), V(2026-11-27T01:00:00+01:00),
        V(2026-11-27)); a time without an offset is UTC.
    type: str
  until:
    description:
      - Count only records before this time (a record at exactly O(until) is not counted, so that consecutive windows
        do not overlap). Same forms as O(since), which must be earlier.
    type: str
  include_rotated:
    description:
      - Also read V(<path>.1), the newest rotated generation, when it exists, so that a window across a log rotation is
        complete. Compressed generations (V(.2.gz)) are not read; Debian's logrotate rules for nginx and HAProxy keep
        V(.1) uncompressed (C(delaycompress)).
    type: bool
    default: false
  fail_on_missing:
    description:
      - Fail when a log in O(paths) does not exist. With V(false), it is listed in C(missing_paths) instead, and counts
        as no request.
    type: bool
    default: true
  invalid_lines:
    description:
      - What a line that should hold an access record and does not (see the description) does. V(fail) fails the task
        with the file and line number; V(skip) counts it in C(lines_invalid), for a report over a damaged log. A gate
        must never use V(skip).
    type: str
    choices: [fail, skip]
    default: fail
  probe_token:
    description:
      - Requests whose log field C(probe) equals this secret are the fleet's own checks, not clients. They are counted
        only in C(records_excluded).
      - The P(fleet.mtls.verify#role) role sends its token (C(mtls_probe_token)) in the C(X-Fleet-Mtls-Probe) header,
        which the three service roles log as C(probe). A client does not know it, so no header, user agent or path it
        chooses leaves its requests out; a user agent is never trusted for this.
      - A refused handshake carries no header and is always counted.
    type: str
notes:
  - The logs are readable by root and the C(adm) group only; run the module with C(become).
  - Clients are told apart by address and identity (the SPIFFE ID when the log has one, otherwise the certificate's
    subject), so one address can appear once without a certificate and once with its certificate. The identity of a
    failed certificate is what the server logged, unverified.
  - IPv4-mapped IPv6 addresses are reported as IPv4, so that a client is one address whichever server it reached.
  - The times of HAProxy 2.6's text lines have no offset; they are read in the host's local time, the time HAProxy
    wrote them in.
  - Results give times in UTC to the second; the window itself is applied to each record's full precision.
seealso:
  - module: fleet.mtls.tls_probe
"""

EXAMPLES = r"""
- name: Count client certificates in the last day of traffic
  fleet.mtls.adoption_info:
    paths:
      - /var/log/nginx/fleet-mtls-access.log
      - /var/log/haproxy/access.log
      - /var/log/inventory/access.json
    since: "{{ observe_started }}"
    include_rotated: true
  become: true
  register: adoption

- name: Strict mode only when every request in the window had a valid certificate
  ansible.builtin.assert:
    that:
      - adoption.totals.requests > 0
      - adoption.totals.valid == adoption.totals.requests
    fail_msg: >-
      {{ inventory_hostname }}: {{ adoption.totals.requests }} requests, {{ adoption.totals.valid }} with a valid
      certificate; without one: {{ adoption.clients_without_certificate | join(', ') or 'none' }};
      failed: {{ adoption.clients_with_failed_certificate | join(', ') or 'none' }}

- name: Across the fleet, the clients still without a certificate
  ansible.builtin.debug:
    msg: >-
      {{ ansible_play_hosts | map('extract', hostvars, ['adoption', 'clients_without_certificate'])
         | flatten | unique | sort }}
  run_once: true
"""

RETURN = r"""
totals:
  description: Records in the window, by outcome. A refused handshake counts as a request.
  returned: always
  type: dict
  sample: {requests: 1520, valid: 1498, none: 20, failed: 2, refused: 0}
  contains:
    requests:
      description: All records in the window.
      type: int
    refused:
      description:
        - Records the server refused for the client's certificate or identity, whatever their outcome - a refused
          handshake (status 0) or a 403 (or nginx's 495 and 496). A strict server refuses every record without a valid
          certificate; in permissive mode only an allow-list refuses. The rollout's soak compares these across its
          windows.
      type: int
    valid:
      description: Records with a verified client certificate.
      type: int
    none:
      description: Records without a client certificate.
      type: int
    failed:
      description: Records whose client certificate failed.
      type: int
adoption:
  description:
    - C(totals.valid) / C(totals.requests), not rounded; null when there was no request in the window, which a gate
      must not take for full adoption.
  returned: always
  type: float
  sample: 0.9855
failure_reasons:
  description: How many failed records gave each reason (the text after V(FAILED:)).
  returned: always
  type: dict
  sample: {certificate has expired: 2}
clients:
  description: One entry per client address and identity, in numeric address order (IPv4 first), then by identity.
  returned: always
  type: list
  elements: dict
  sample:
    - client_addr: 10.0.0.21
      identity: spiffe://prod.example.com/app/app1
      requests: 1498
      refused: 0
      valid: 1498
      none: 0
      failed: 0
      failure_reasons: {}
      user_agents: []
      first_seen: "2026-11-27T00:00:03Z"
      last_seen: "2026-11-27T23:59:58Z"
      sites: [api]
    - client_addr: 10.0.0.35
      identity: ""
      requests: 20
      refused: 0
      valid: 0
      none: 20
      failed: 0
      failure_reasons: {}
      user_agents: [legacy-report/2.1]
      first_seen: "2026-11-27T06:10:00Z"
      last_seen: "2026-11-27T18:10:00Z"
      sites: [api, inventory]
  contains:
    client_addr:
      description: The client's address as the server saw it.
      type: str
    identity:
      description: The SPIFFE ID of the certificate, or its subject (RFC 4514) when the log has no SPIFFE ID; empty
        without a certificate.
      type: str
    requests:
      description: The client's records in the window.
      type: int
    refused:
      description: Of which refused by the server (see RV(totals.refused)).
      type: int
    valid:
      description: Of which with a verified certificate.
      type: int
    none:
      description: Of which without a certificate.
      type: int
    failed:
      description: Of which with a failed certificate.
      type: int
    failure_reasons:
      description: Failed records by reason.
      type: dict
    user_agents:
      description:
        - The user agents of its requests without a valid certificate, the most frequent first (three at most), to
          tell an operator which program on that host still calls without one. A client chooses its user agent, so
          nothing is decided by it.
      type: list
      elements: str
    first_seen:
      description: Time of the client's first record in the window (UTC).
      type: str
    last_seen:
      description: Time of its last record in the window (UTC).
      type: str
    sites:
      description: The sites (nginx site, HAProxy frontend, service) it reached, sorted.
      type: list
      elements: str
clients_without_certificate:
  description: The addresses that sent at least one request without a certificate, in address order.
  returned: always
  type: list
  elements: str
  sample: [10.0.0.35]
clients_with_failed_certificate:
  description: The addresses that presented a certificate that failed at least once, in address order.
  returned: always
  type: list
  elements: str
  sample: []
sites:
  description: Totals per site, sorted by site, then server.
  returned: always
  type: list
  elements: dict
  sample:
    - {site: api, server: nginx, requests: 1510, valid: 1498, none: 10, failed: 2, refused: 0, adoption: 0.9920529801324503}
    - {site: inventory, server: python_service, requests: 10, valid: 0, none: 10, failed: 0, refused: 0, adoption: 0.0}
  contains:
    site:
      description: The C(site) field of the log (nginx site, HAProxy frontend, service).
      type: str
    server:
      description: V(nginx), V(haproxy) or V(python_service).
      type: str
    requests:
      description: Records in the window.
      type: int
    valid:
      description: Of which with a verified certificate.
      type: int
    none:
      description: Of which without a certificate.
      type: int
    failed:
      description: Of which with a failed certificate.
      type: int
    refused:
      description: Of which refused by the server (see RV(totals.refused)).
      type: int
    adoption:
      description: valid / requests.
      type: float
window:
  description: The window asked for and the span of the records counted in it, in UTC; null where there is none.
  returned: always
  type: dict
  sample: {since: "2026-11-27T00:00:00Z", until: null, first_seen: "2026-11-27T00:00:03Z",
           last_seen: "2026-11-27T23:59:58Z"}
  contains:
    since:
      description: O(since), in UTC.
      type: str
    until:
      description: O(until), in UTC.
      type: str
    first_seen:
      description: The earliest record counted.
      type: str
    last_seen:
      description: The latest record counted.
      type: str
files:
  description: Each file read (rotated generations included), with its own counts.
  returned: always
  type: list
  elements: dict
  sample:
    - {path: /var/log/nginx/fleet-mtls-access.log.1, records: 800, outside_window: 3120, excluded: 0, lines_skipped: 0,
       lines_invalid: 0}
    - {path: /var/log/nginx/fleet-mtls-access.log, records: 720, outside_window: 0, excluded: 4, lines_skipped: 0,
       lines_invalid: 0}
  contains:
    path:
      description: The file.
      type: str
    records:
      description: Records counted (in the window).
      type: int
    outside_window:
      description: Records before O(since) or not before O(until).
      type: int
    excluded:
      description: Records in the window left out by O(probe_token).
      type: int
    lines_skipped:
      description: Lines of text that hold no access record.
      type: int
    lines_invalid:
      description: Lines that should hold a record and do not, with O(invalid_lines=skip).
      type: int
missing_paths:
  description: The files in O(paths) that do not exist (only with O(fail_on_missing=false)).
  returned: always
  type: list
  elements: str
  sample: [/var/log/haproxy/access.log]
lines_skipped:
  description:
    - "Lines of text, over all files, that hold no access record and no JSON object: HAProxy's own notices
      (V(Proxy <name> stopped ...))."
  returned: always
  type: int
  sample: 0
lines_invalid:
  description: Lines, over all files, that should hold a record and do not, counted with O(invalid_lines=skip).
  returned: always
  type: int
  sample: 0
records_outside_window:
  description: Records, over all files, outside the window.
  returned: always
  type: int
  sample: 3120
records_excluded:
  description: Records, over all files, in the window but left out as the fleet's own probes (O(probe_token)).
  returned: always
  type: int
  sample: 4
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils import _adoption
from ansible_collections.fleet.mtls.plugins.module_utils import _module
from ansible_collections.fleet.mtls.plugins.module_utils import _params


def count_adoption(module):
    params = module.params
    result = _adoption.count_adoption(
        params["paths"], since=params["since"], until=params["until"], include_rotated=params["include_rotated"],
        fail_on_missing=params["fail_on_missing"], probe_token=params["probe_token"],
        invalid_lines=params["invalid_lines"])
    result["changed"] = False
    return result


def main():
    module = AnsibleModule(
        argument_spec=_params.argument_spec(
            [],
            paths=dict(type="list", elements="path", required=True),
            since=dict(type="str"),
            until=dict(type="str"),
            include_rotated=dict(type="bool", default=False),
            fail_on_missing=dict(type="bool", default=True),
            invalid_lines=dict(type="str", choices=["fail", "skip"], default="fail"),
            probe_token=dict(type="str", no_log=True),
        ),
        supports_check_mode=True,
    )
    # Access logs only: no key, request or certificate, so no cryptography needed.
    _module.run(module, count_adoption, needs_cryptography=False)


if __name__ == "__main__":
    main()
