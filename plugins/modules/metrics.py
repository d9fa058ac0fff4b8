#!/usr/bin/python
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: metrics
short_description: Publish a host's certificates, trust anchors, CRLs and service modes as Prometheus metrics
version_added: 0.1.0
description:
  - Writes a file for node_exporter's textfile collector with, as gauges, the validity and renewal time of the host's
    certificates, the expiry of the CAs it trusts, the updates and number of its CRLs, and the client certificate
    mode of its services. The alert rules shipped in C(extensions/prometheus/fleet-mtls-alerts.yml) read them;
    C(docs/monitoring.md) lists every metric.
  - The renewal time is the one M(fleet.mtls.certificate_request) renews at, from the same O(renew_fraction),
    O(renew_days_before), O(renew_jitter) and O(requester).
  - Every file is read and checked before anything is written; a missing or unreadable one fails the task and leaves
    the metrics file as it was, so the last-run timestamp ages and the staleness alert fires. Reading only, a missing
    CRL file may be returned instead (O(crl_missing)).
  - The file is written whole and atomically (a temporary file in the same directory, renamed into place), so the
    collector never reads half of it.
  - Sorted and free of run-dependent values, the file is the same for the same inputs, except for
    C(fleet_mtls_last_run_timestamp_seconds), the moment of the run. That one value is what proves the others fresh,
    so the file is rewritten on every run that is not in check mode, but the task reports C(changed) (and a diff)
    only when another value, or the file's mode or owner, changed.
author:
  - fleet.mtls maintainers (@fleet-mtls)
extends_documentation_fragment:
  - fleet.mtls.file_attributes
  - fleet.mtls.renewal
  - fleet.mtls.attributes.WRITES
  - fleet.mtls.attributes.CRYPTOGRAPHY
options:
  path:
    description:
      - The metrics file. Its name must end in V(.prom), the only files the textfile collector reads.
      - The default is in the directory Debian's C(prometheus-node-exporter) reads textfiles from (its default
        C(--collector.textfile.directory)); the directory must exist.
      - Mode V('0644') unless O(mode) says otherwise; the collector runs as user C(prometheus). Without O(owner) and
        O(group) an existing file keeps its owner and group.
    type: path
    default: /var/lib/prometheus/node-exporter/fleet_mtls.prom
  certificates:
    description:
      - The host's certificates. The first certificate of each file is the one described, so a full chain will do.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The certificate's name, its C(name) label; unique. Use the names of M(fleet.mtls.certificate_request).
        type: str
        required: true
      path:
        description: The PEM file.
        type: path
        required: true
      jitter_seed:
        description: Seed of the renewal jitter instead of V(<requester>/<name>).
        type: str
  ca_bundle_paths:
    description:
      - Trust bundles whose CA certificates are described, each once. Add the chain file (C(<name>.chain.pem)) to
        describe the issuing CA too.
      - A certificate that is not a CA is an error.
    type: list
    elements: path
    default: []
  crl_paths:
    description:
      - CRL files (PEM) the host's services check client certificates against. A file may hold several CRLs, as the
        C(crls.pem) of role C(fleet.mtls.certificate) holds the root CA's and the issuing CA's; each CRL is published
        as series of its own, labelled by its C(issuer), the issuer's key identifier C(key_id) (two issuing CAs of one
        name publish a CRL each during a CA rollover) and the file's C(path).
      - Two CRLs of one issuer and key in one file are an error (their series would have the same labels).
    type: list
    elements: path
    default: []
  crl_missing:
    description:
      - What a file of O(crl_paths) that does not exist is.
      - V(fail) fails the task, as any other missing file does, and leaves the metrics file as it was.
      - V(report) leaves it out and returns it in RV(missing_crl_paths), for a caller that reports it (role
        C(fleet.mtls.report) makes it a finding). Only with O(write=false), since a published file that left out a CRL
        its servers are told to load would let no alert fire.
      - A file that exists but cannot be read, or holds no CRL, always fails the task.
    type: str
    choices: [fail, report]
    default: fail
  services:
    description: The client certificate mode of each service of the host (for instance from C(ansible_local.fleet_mtls)).
    type: list
    elements: dict
    default: []
    suboptions:
      service:
        description: The service's name, its C(service) label; unique.
        type: str
        required: true
      mode:
        description:
          - Its mode. An unquoted V(off), which YAML reads as false, is taken as V(off).
          - Without it, the mode (and O(services[].since)) recorded in O(mode_state_path).
        type: str
        choices: ["off", permissive, strict]
      since:
        description:
          - When it entered this mode (ISO 8601), e.g. C(ansible_local.fleet_mtls.permissive_since) for a permissive
            one. The alert on a server left permissive counts from it.
        type: str
  mode_state_path:
    description:
      - The JSON record of the services' mode that role C(fleet.mtls.rollout) keeps (C(fleet_mtls.fact) in its
        C(mtls_rollout_state_dir)), read on the host for every O(services) entry without a mode.
      - A missing file means no rollout yet, mode V(off); a file that names no mode is an error.
    type: path
  requester:
    description:
      - The host's name as M(fleet.mtls.certificate_request) gets it (the inventory host name); the jitter of
        certificate V(<name>) is drawn from V(<requester>/<name>), as it is there.
      - Needed with O(renew_jitter), unless every certificate has its own O(certificates[].jitter_seed).
    type: str
  host:
    description:
      - Add a C(host) label with this value to every sample, for when the scrape target's C(instance) does not name
        the host.
    type: str
  write:
    description:
      - V(false) reads and checks every file and returns what would be published, writing nothing and needing no
        metrics directory; C(playbooks/report.yml) gathers the fleet's report this way.
    type: bool
    default: true
  directory_missing:
    description:
      - What to do when the directory of O(path) does not exist, as on a host without node_exporter.
      - V(fail) fails the task. V(skip) reads and checks every file all the same, returns it, and writes nothing
        (RV(written) is false), so one task serves hosts with and without the collector.
    type: str
    choices: [fail, skip]
    default: fail
notes:
  - Debian's C(prometheus-node-exporter) reads C(/var/lib/prometheus/node-exporter/*.prom) out of the box. Other
    setups need C(--collector.textfile.directory) pointing at the directory of O(path).
seealso:
  - module: fleet.mtls.certificate_info
  - module: fleet.mtls.certificate_request
"""

EXAMPLES = r"""
- name: Publish the host's mTLS health for node_exporter
  fleet.mtls.metrics:
    certificates:
      - name: server
        path: /etc/fleet-mtls/certs/server.fullchain.pem
    ca_bundle_paths:
      - /etc/fleet-mtls/certs/ca-bundle.pem
      - /etc/fleet-mtls/certs/server.chain.pem
    crl_paths:
      - /etc/fleet-mtls/certs/crls.pem
    services:
      - service: nginx
        mode: "{{ ansible_local.fleet_mtls.mode }}"
        since: "{{ ansible_local.fleet_mtls.since }}"
    renew_fraction: 0.6667
    renew_jitter: 0.1
    requester: "{{ inventory_hostname }}"

- name: The same on every host, written only where node_exporter runs, the mode read from role rollout's record
  fleet.mtls.metrics:
    certificates:
      - name: server
        path: /etc/fleet-mtls/certs/server.fullchain.pem
    ca_bundle_paths:
      - /etc/fleet-mtls/certs/ca-bundle.pem
    services:
      - service: nginx
    mode_state_path: /etc/ansible/facts.d/fleet_mtls.fact
    directory_missing: skip
    requester: "{{ inventory_hostname }}"
  register: mtls_health
"""

RETURN = r"""
path:
  description: The metrics file.
  returned: always
  type: str
last_run:
  description: The value of C(fleet_mtls_last_run_timestamp_seconds), as ISO 8601 (UTC); null when nothing was written.
  returned: always
  type: str
written:
  description: Whether the metrics file was written (or would be, in check mode).
  returned: always
  type: bool
now:
  description: The moment the values were read, as ISO 8601 (UTC); the same as RV(last_run) when the file is written.
  returned: always
  type: str
certificates:
  description: What was published of each certificate, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Its name.
      type: str
    path:
      description: Its file.
      type: str
    serial:
      description: Serial number in upper-case hex.
      type: str
    subject:
      description: Subject as RFC 4514 text.
      type: str
    issuer:
      description: Issuer as RFC 4514 text.
      type: str
    subject_alt_names:
      description: Its SANs (C(DNS:...), C(IP:...), C(URI:...)); not published as metrics.
      type: list
      elements: str
    key_type:
      description: Its key's type (C(ec), C(rsa), C(ed25519)); not published as metrics.
      type: str
    key_size:
      description: Its key's size in bits (the curve's for EC, null for Ed25519); not published as metrics.
      type: int
    not_before:
      description: Start of validity (ISO 8601, UTC).
      type: str
    not_after:
      description: End of validity (ISO 8601, UTC).
      type: str
    renew_at:
      description: When it enters its renewal window (ISO 8601, UTC).
      type: str
cas:
  description: The distinct CA certificates of the bundles, by subject and serial.
  returned: always
  type: list
  elements: dict
  contains:
    subject:
      description: Subject as RFC 4514 text.
      type: str
    serial:
      description: Serial number in upper-case hex.
      type: str
    fingerprint:
      description: SHA-256 fingerprint.
      type: str
    not_after:
      description: End of validity (ISO 8601, UTC).
      type: str
crls:
  description: Every CRL of every file of O(crl_paths), by path, then issuer and key identifier.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The file it is in.
      type: str
    issuer:
      description: Issuer as RFC 4514 text.
      type: str
    key_id:
      description: The key identifier of its Authority Key Identifier (colon-separated upper-case hex), empty without
        one.
      type: str
    crl_number:
      description: Its CRL number (0 without one).
      type: int
    last_update:
      description: When it was issued (ISO 8601, UTC).
      type: str
    next_update:
      description: When it stops being current (ISO 8601, UTC); null when it has no nextUpdate.
      type: str
missing_crl_paths:
  description: The files of O(crl_paths) that do not exist, sorted; with O(crl_missing=report) only, else empty.
  returned: always
  type: list
  elements: str
services:
  description: The services and their modes, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    service:
      description: Its name.
      type: str
    mode:
      description: Its mode.
      type: str
    since:
      description: When it entered the mode (ISO 8601, UTC), if given.
      type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _files
from ansible_collections.fleet.mtls.plugins.module_utils import _metrics
from ansible_collections.fleet.mtls.plugins.module_utils import _module
from ansible_collections.fleet.mtls.plugins.module_utils import _params
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError


def _iso(moment):
    return c.isoformat(moment) if moment is not None else None


def _result_facts(facts):
    return dict(
        certificates=[dict(name=f["name"], path=f["path"], serial=f["serial"], subject=f["subject"], issuer=f["issuer"],
                           subject_alt_names=f["subject_alt_names"], key_type=f["key_type"], key_size=f["key_size"],
                           not_before=_iso(f["not_before"]), not_after=_iso(f["not_after"]),
                           renew_at=_iso(f["renew_at"])) for f in facts["certificates"]],
        cas=[dict(subject=f["subject"], serial=f["serial"], fingerprint=f["fingerprint"],
                  not_after=_iso(f["not_after"])) for f in facts["cas"]],
        crls=[dict(path=f["path"], issuer=f["issuer"], key_id=f["key_id"], crl_number=f["crl_number"],
                   last_update=_iso(f["last_update"]), next_update=_iso(f["next_update"])) for f in facts["crls"]],
        missing_crl_paths=list(facts["missing_crl_paths"]),
        services=[dict(service=f["service"], mode=f["mode"], since=_iso(f["since"])) for f in facts["services"]],
    )


def _existing_ids(path):
    """(uid, gid) of the file now there, or (None, None)."""
    try:
        st = os.stat(path)
    except OSError:
        return None, None
    return st.st_uid, st.st_gid


def publish(module):
    params = module.params
    path = _metrics.check_textfile_path(params["path"])
    mode = _module.parse_mode(params["mode"], 0o644)
    if params["crl_missing"] == "report" and params["write"]:
        raise PkiError("crl_missing=report needs write=false: a published metrics file without a CRL its servers "
                       "load would let no alert fire; a missing CRL file fails the task, and the file goes stale")
    now = c.utcnow().replace(microsecond=0)
    content, facts = _metrics.collect(params, now)
    if not params["write"] or (params["directory_missing"] == "skip"
                               and not os.path.isdir(os.path.dirname(path) or ".")):
        result = dict(changed=False, written=False, path=path, last_run=None, now=c.isoformat(now))
        result.update(_result_facts(facts))
        return result

    # A rewrite must not hand the file to root just because no owner was given.
    uid, gid = _existing_ids(path)
    owner = params["owner"] if params["owner"] is not None else uid
    group = params["group"] if params["group"] is not None else gid
    target = _module.ManagedFile(module, path, mode=mode, owner=owner, group=group)
    target.check_writable()
    diffs = []
    if _metrics.without_last_run(target.current) != _metrics.without_last_run(content):
        changed = target.replace(content, diffs)
        changed = target.ensure_attributes(changed)
    else:
        # Only the last-run timestamp differs: no change to report, but the new
        # timestamp is what tells Prometheus that every value is still current.
        changed = target.ensure_attributes(False)
        if not module.check_mode and target.current != content:
            _files.atomic_write(path, content, mode=mode, owner=owner, group=group)

    result = dict(changed=changed, written=True, path=path, last_run=c.isoformat(now), now=c.isoformat(now),
                  diff=diffs)
    result.update(_result_facts(facts))
    return result


def main():
    module = AnsibleModule(
        argument_spec=_params.argument_spec(
            ["file_attributes", "renewal"],
            path=dict(type="path", default=_metrics.DEFAULT_PATH),
            certificates=dict(type="list", elements="dict", default=[], options=dict(
                name=dict(type="str", required=True),
                path=dict(type="path", required=True),
                jitter_seed=dict(type="str"),
            )),
            ca_bundle_paths=dict(type="list", elements="path", default=[]),
            crl_paths=dict(type="list", elements="path", default=[]),
            crl_missing=dict(type="str", choices=list(_metrics.CRL_MISSING), default="fail"),
            services=dict(type="list", elements="dict", default=[], options=dict(
                service=dict(type="str", required=True),
                mode=dict(type="str", choices=list(_metrics.SERVICE_MODES)),
                since=dict(type="str"),
            )),
            mode_state_path=dict(type="path"),
            requester=dict(type="str"),
            host=dict(type="str"),
            write=dict(type="bool", default=True),
            directory_missing=dict(type="str", choices=["fail", "skip"], default="fail"),
        ),
        supports_check_mode=True,
    )
    _module.run(module, publish)


if __name__ == "__main__":
    main()
