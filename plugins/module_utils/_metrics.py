# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host's mTLS health as Prometheus metrics, for node_exporter's textfile collector.

The exposition text (format 0.0.4) is written with the standard library:
managed hosts do not have prometheus_client. Every metric is a gauge whose
value only moves when a file it describes changes (timestamps of validity,
renewal and CRL updates, a CRL number, a one-hot mode), so the same files
always give the same bytes, in a fixed order. The one exception is
fleet_mtls_last_run_timestamp_seconds, the moment of the run, which the
module leaves out when it decides whether anything changed
(without_last_run()).
"""

from __future__ import annotations

import json
import math
import re

from ansible_collections.fleet.mtls.plugins.module_utils import _crl
from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _files
from ansible_collections.fleet.mtls.plugins.module_utils import _policy
from ansible_collections.fleet.mtls.plugins.module_utils import _x509
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError

# Where Debian's prometheus-node-exporter reads textfiles (its default
# --collector.textfile.directory); only files named *.prom are read.
DEFAULT_PATH = "/var/lib/prometheus/node-exporter/fleet_mtls.prom"
TEXTFILE_SUFFIX = ".prom"

SERVICE_MODES = ("off", "permissive", "strict")
# What a CRL file that does not exist is: an error, or a path returned for the caller to report.
CRL_MISSING = ("fail", "report")
LAST_RUN = "fleet_mtls_last_run_timestamp_seconds"

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")

# name: (help, label names). The labels of one family, in this order, on every sample.
FAMILIES = {
    "fleet_mtls_certificate_not_before_timestamp_seconds": (
        "Start of the validity of a certificate of this host, in Unix time.", ("name", "serial", "issuer")),
    "fleet_mtls_certificate_not_after_timestamp_seconds": (
        "End of the validity of a certificate of this host, in Unix time.", ("name", "serial", "issuer")),
    "fleet_mtls_certificate_renewal_timestamp_seconds": (
        "When a certificate of this host enters its renewal window (fleet.mtls renewal policy), in Unix time.",
        ("name", "serial", "issuer")),
    "fleet_mtls_ca_not_after_timestamp_seconds": (
        "End of the validity of a CA certificate this host trusts, in Unix time.", ("subject", "serial")),
    "fleet_mtls_crl_last_update_timestamp_seconds": (
        "When a CRL on this host was issued (thisUpdate), in Unix time.", ("issuer", "key_id", "path")),
    "fleet_mtls_crl_next_update_timestamp_seconds": (
        "When a CRL on this host stops being current (nextUpdate), in Unix time.", ("issuer", "key_id", "path")),
    "fleet_mtls_crl_number": (
        "The CRL number of a CRL on this host (0 when it has none).", ("issuer", "key_id", "path")),
    "fleet_mtls_service_mode": (
        "Client certificate mode of a service: 1 for its current mode, 0 for the others.", ("service", "mode")),
    "fleet_mtls_service_mode_since_timestamp_seconds": (
        "When a service entered its current client certificate mode, in Unix time.", ("service",)),
    LAST_RUN: (
        "When fleet.mtls last wrote these metrics, in Unix time: every other value in the file held then.", ()),
}


# --- the exposition format --------------------------------------------------


def escape_label_value(value):
    """A label value as the text format quotes it: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def escape_help(text):
    """HELP text escapes backslash and newline only."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value):
    """A sample value: integers exactly, other floats as Python's shortest round-trip repr."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PkiError("a metric value must be a number, not %r" % (value,))
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 2 ** 53:
        return str(int(value))
    return repr(value)


class Family(object):
    """One metric family: name, HELP, TYPE gauge, and its samples keyed by their label values."""

    def __init__(self, name, help_text, label_names):
        if not _METRIC_NAME.match(name):
            raise PkiError("%r is not a Prometheus metric name" % name)
        for label in label_names:
            if not _LABEL_NAME.match(label) or label.startswith("__"):
                raise PkiError("%r is not a label name a metric may carry" % label)
        if len(set(label_names)) != len(label_names):
            raise PkiError("metric %s names a label twice" % name)
        self.name = name
        self.help = help_text
        self.label_names = tuple(label_names)
        self.samples = {}

    def add(self, value, labels):
        """One sample: value, labels a dict of exactly the family's label names to text."""
        if set(labels) != set(self.label_names):
            raise PkiError("metric %s takes the labels %s, not %s"
                           % (self.name, ", ".join(self.label_names) or "none", ", ".join(sorted(labels)) or "none"))
        key = tuple(labels[name] for name in self.label_names)
        for text in key:
            if not isinstance(text, str):
                raise PkiError("label values of %s must be text, not %r" % (self.name, text))
        if key in self.samples:
            # A duplicate series is an error to node_exporter's registry.
            raise PkiError("metric %s would have two samples with the labels %s"
                           % (self.name, ", ".join("%s=%r" % pair for pair in zip(self.label_names, key))))
        format_value(value)
        self.samples[key] = value

    def lines(self):
        out = ["# HELP %s %s" % (self.name, escape_help(self.help)), "# TYPE %s gauge" % self.name]
        for key in sorted(self.samples):
            labels = ",".join('%s="%s"' % (name, escape_label_value(text)) for name, text in zip(self.label_names, key))
            out.append("%s%s %s" % (self.name, "{%s}" % labels if labels else "", format_value(self.samples[key])))
        return out


def exposition(families):
    """The text of the families that have samples, ordered by name; UTF-8 bytes ending in a newline."""
    names = [family.name for family in families]
    if len(set(names)) != len(names):
        raise PkiError("a metric family is given twice")
    lines = []
    for family in sorted(families, key=lambda f: f.name):
        if family.samples:
            lines.extend(family.lines())
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


def without_last_run(content):
    """content without its last-run sample lines: what decides whether the file changed."""
    kept = []
    for line in (content or b"").splitlines(True):
        if line.startswith(LAST_RUN.encode("ascii")) and line[len(LAST_RUN):len(LAST_RUN) + 1] in (b" ", b"{"):
            continue
        kept.append(line)
    return b"".join(kept)


def unix_seconds(moment):
    """An aware datetime as whole Unix seconds (rounded down; certificates and CRLs carry whole seconds)."""
    return int(math.floor(c.as_utc(moment).timestamp()))


# --- what the host has -------------------------------------------------------


def check_textfile_path(path, option="path"):
    if not path.endswith(TEXTFILE_SUFFIX):
        raise PkiError("%s %s must be a file name ending in %s: node_exporter's textfile collector reads no other"
                       % (option, path, TEXTFILE_SUFFIX))
    return path


def renewal_seed(entry, requester):
    """The jitter seed of a certificate: its own, else <requester>/<name> as certificate_request uses."""
    if entry.get("jitter_seed"):
        return entry["jitter_seed"]
    if requester:
        return "%s/%s" % (requester, entry["name"])
    return None


def describe_certificates(entries, renewal, requester):
    """One fact dict per certificate entry (the first certificate of its file), checked.

    renewal: the module's renewal options (renew_fraction, renew_days_before, renew_jitter).
    """
    seen, facts = set(), []
    for entry in entries:
        name, path = entry.get("name"), entry.get("path")
        if not name or not path:
            raise PkiError("every certificates entry needs a name and a path, not %r" % (entry,))
        if name in seen:
            raise PkiError("certificates: the name %r is given twice; each certificate's name is its label" % name)
        seen.add(name)
        seed = renewal_seed(entry, requester)
        if renewal.get("renew_jitter") and seed is None:
            raise PkiError("certificate %s: renew_jitter needs requester (as given to certificate_request) or the "
                           "entry's jitter_seed, else the renewal time would not be the one the host renews at" % name)
        cert = _x509.load_certificates(_files.read_required(path, "certificate"), source="certificate %s" % path)[0]
        not_before, not_after = c.not_valid_before(cert), c.not_valid_after(cert)
        renew_at = _policy.renewal_time_of(cert, renewal, seed)
        key_type, key_size = c.key_type_and_size(cert.public_key())
        facts.append(dict(name=name, path=path, serial=c.serial_hex(cert.serial_number),
                          subject=_x509.name_to_string(cert.subject), issuer=_x509.name_to_string(cert.issuer),
                          subject_alt_names=[_x509.san_to_string(n) for n in _x509.sans_of(cert)],
                          key_type=key_type, key_size=key_size,
                          not_before=not_before, not_after=not_after, renew_at=renew_at))
    return facts


def describe_cas(bundle_paths):
    """One fact dict per distinct CA certificate of the bundles (by fingerprint), checked to be CAs."""
    by_fingerprint, by_labels = {}, {}
    for path in bundle_paths:
        for cert in _x509.load_certificates(_files.read_required(path, "CA bundle"), source="CA bundle %s" % path):
            fingerprint = c.fingerprint(cert)
            if fingerprint in by_fingerprint:
                continue
            subject = _x509.name_to_string(cert.subject)
            if not _x509.is_ca(cert):
                raise PkiError("CA bundle %s holds a certificate that is not a CA: %s" % (path, subject))
            labels = (subject, c.serial_hex(cert.serial_number))
            if labels in by_labels:
                raise PkiError("CA bundle %s holds two different certificates with subject %s and serial %s"
                               % (path, labels[0], labels[1]))
            by_labels[labels] = fingerprint
            by_fingerprint[fingerprint] = dict(subject=labels[0], serial=labels[1], fingerprint=fingerprint,
                                               not_after=c.not_valid_after(cert))
    return sorted(by_fingerprint.values(), key=lambda fact: (fact["subject"], fact["serial"]))


def describe_crls(paths, now=None, missing="fail"):
    """(facts, missing paths): one fact dict per CRL of each file, sorted by path, then issuer.

    A file holds one CRL or more (the certificate role's crls.pem holds the
    root CA's and the issuing CA's): each is split and read as
    _crl.describe_crl_file reads it (crl_info's reading), and each is a
    series of its own, labelled by its file, its issuer and the issuer's key
    identifier (during an issuing-CA rollover two CAs of one name publish a
    CRL each). Two CRLs of one issuer and key in one file would be two series
    with the same labels, which node_exporter refuses: an error naming them.

    missing: "fail", a file that does not exist is an error; "report", it is
    left out and returned in the second list, for the caller to report.
    """
    if missing not in CRL_MISSING:
        raise PkiError("crl_missing must be one of %s, not %r" % (", ".join(CRL_MISSING), missing))
    facts, absent = [], []
    for path in sorted(set(paths)):
        data = _files.read_bytes(path)
        if data is None:
            if missing == "report":
                absent.append(path)
                continue
            raise PkiError("CRL file %s does not exist" % path)
        described = _crl.describe_crl_file(data, now=now, source="CRL file %s" % path)
        issuers = set()
        for crl in described["crls"]:
            key_id = crl.get("authority_key_identifier") or ""
            if (crl["issuer"], key_id) in issuers:
                raise PkiError("CRL file %s holds two CRLs of %s: their metrics would be two series with the same "
                               "labels (issuer, key_id, path); keep one CRL per CA in a file" % (path, crl["issuer"]))
            issuers.add((crl["issuer"], key_id))
            facts.append(dict(path=path, issuer=crl["issuer"], key_id=key_id, crl_number=crl["crl_number"] or 0,
                              last_update=c.parse_isoformat(crl["last_update"]),
                              next_update=c.parse_isoformat(crl["next_update"]) if crl["next_update"] else None))
    facts.sort(key=lambda fact: (fact["path"], fact["issuer"], fact["key_id"]))
    return facts, absent


def read_mode_record(path):
    """The mode role rollout recorded for the host's services (its JSON fact file): (mode, since).

    No file means no rollout yet: ("off", None). A file that is not such a
    record is an error, not a silent "off".
    """
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        return "off", None
    except OSError as exc:
        raise PkiError("cannot read the mode record %s: %s" % (path, exc.strerror or exc))
    try:
        record = json.loads(raw.decode("utf-8"))
    except ValueError as exc:
        raise PkiError("the mode record %s is not JSON: %s" % (path, exc))
    if not isinstance(record, dict) or record.get("mode") not in SERVICE_MODES:
        raise PkiError("the mode record %s names no mode of %s" % (path, ", ".join(SERVICE_MODES)))
    since = record.get("since")
    if since is not None and not isinstance(since, str):
        raise PkiError("the mode record %s: since must be ISO 8601 text, not %r" % (path, since))
    return record["mode"], since


def describe_services(entries, mode_record_path=None):
    """One fact dict per service; an entry without a mode takes the recorded one (read_mode_record)."""
    recorded = None
    seen, facts = set(), []
    for entry in entries:
        service, mode = entry.get("service"), entry.get("mode")
        if mode is None:
            if not mode_record_path:
                raise PkiError("service %s has no mode, and no mode_state_path says it" % service)
            if recorded is None:
                recorded = read_mode_record(mode_record_path)
            mode, since = recorded
            entry = dict(entry, mode=mode, since=entry.get("since") or since)
        if not service:
            raise PkiError("every services entry needs a service, not %r" % (entry,))
        if mode not in SERVICE_MODES:
            raise PkiError("service %s: mode must be one of %s, not %r"
                           % (service, ", ".join(SERVICE_MODES), mode))
        if service in seen:
            raise PkiError("services: %r is given twice" % service)
        seen.add(service)
        since = c.parse_isoformat(entry["since"]) if entry.get("since") else None
        facts.append(dict(service=service, mode=mode, since=since))
    return facts


def build_families(certificates, cas, crls, services, now, host=None):
    """The metric families of these facts; with host, a host label on every sample."""
    extra = ("host",) if host else ()
    families = dict((name, Family(name, help_text, labels + extra))
                    for name, (help_text, labels) in FAMILIES.items())

    def add(name, value, labels):
        if host:
            labels = dict(labels, host=host)
        families[name].add(value, labels)

    for fact in certificates:
        labels = dict(name=fact["name"], serial=fact["serial"], issuer=fact["issuer"])
        add("fleet_mtls_certificate_not_before_timestamp_seconds", unix_seconds(fact["not_before"]), labels)
        add("fleet_mtls_certificate_not_after_timestamp_seconds", unix_seconds(fact["not_after"]), labels)
        add("fleet_mtls_certificate_renewal_timestamp_seconds", unix_seconds(fact["renew_at"]), labels)
    for fact in cas:
        add("fleet_mtls_ca_not_after_timestamp_seconds", unix_seconds(fact["not_after"]),
            dict(subject=fact["subject"], serial=fact["serial"]))
    for fact in crls:
        labels = dict(issuer=fact["issuer"], key_id=fact["key_id"], path=fact["path"])
        add("fleet_mtls_crl_last_update_timestamp_seconds", unix_seconds(fact["last_update"]), labels)
        if fact["next_update"] is not None:  # optional in X.509; fleet.mtls CRLs always have one
            add("fleet_mtls_crl_next_update_timestamp_seconds", unix_seconds(fact["next_update"]), labels)
        add("fleet_mtls_crl_number", fact["crl_number"], labels)
    for fact in services:
        for mode in SERVICE_MODES:
            add("fleet_mtls_service_mode", 1 if mode == fact["mode"] else 0, dict(service=fact["service"], mode=mode))
        if fact["since"] is not None:
            add("fleet_mtls_service_mode_since_timestamp_seconds", unix_seconds(fact["since"]),
                dict(service=fact["service"]))
    add(LAST_RUN, unix_seconds(now), {})
    return list(families.values())


def collect(params, now):
    """(content, facts) for a module's parameters: every file read and checked before anything is written.

    params: certificates, ca_bundle_paths, crl_paths, crl_missing, services,
    renew_fraction, renew_days_before, renew_jitter, requester, host,
    mode_state_path (see the metrics module). facts["missing_crl_paths"] are
    the CRL files that do not exist, with crl_missing "report" (else empty).
    """
    facts = dict(
        certificates=describe_certificates(params.get("certificates") or [], params, params.get("requester")),
        cas=describe_cas(params.get("ca_bundle_paths") or []),
    )
    facts["crls"], facts["missing_crl_paths"] = describe_crls(params.get("crl_paths") or [], now,
                                                              params.get("crl_missing") or "fail")
    facts["services"] = describe_services(params.get("services") or [], params.get("mode_state_path"))
    families = build_families(facts["certificates"], facts["cas"], facts["crls"], facts["services"], now,
                              host=params.get("host"))
    return exposition(families), facts
