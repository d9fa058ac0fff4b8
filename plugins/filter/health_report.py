# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet's health report: what the metrics module read on each host, judged as the alert rules judge it.

``playbooks/report.yml`` gathers every host's ``fleet.mtls.metrics`` result (with ``write: false``) and hands the
list to ``health_report``, which returns a JSON document; ``health_report_markdown`` and ``health_report_html``
render that document for AWX's job output and for a page to read offline or print.

Every judgement (expired, expiring, overdue, stale, stalled) is made here, in Python with unit tests, and never in
a template. The thresholds are the ones of ``extensions/prometheus/fleet-mtls-alerts.yml`` (``docs/monitoring.md``
explains each), so the report and the alerts agree about the same host at the same moment. The renderers only
format what the document says, escape every value, and take the moment from the document, so the same document
always gives the same bytes.
"""

from __future__ import annotations

import datetime
import html
import math
from collections.abc import Mapping, Sequence

from ansible.errors import AnsibleFilterError

SCHEMA_VERSION = 1

_DAY = 86400.0
_UTC = datetime.timezone.utc

_MODES = ("off", "permissive", "strict")
_SEVERITY_RANK = {"critical": 0, "warning": 1}

# Fixed parts of the alert rules: the fraction of a certificate's lifetime under which it is "expiring" when that
# is shorter than the expiry window, the fraction of it that bounds the renewal slack, and the CRL rule's half of
# the validity minus a day. Only the day counts are options, as in the rules' comments.
_EXPIRY_LIFETIME_FRACTION = 0.25
_RENEWAL_SLACK_LIFETIME_FRACTION = 0.1
_CRL_REFRESH_FRACTION = 0.5
_CRL_REFRESH_SLACK_DAYS = 1

_ADOPTION_KEYS = ("requests", "valid", "none", "failed")

# Month names of our own: strftime("%b") follows the controller's locale, and the page must not.
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# --- input ---------------------------------------------------------------------------------------------------------

def _fail(where, problem):
    raise AnsibleFilterError(f"health_report: {where}: {problem}")


def _parse_time(value, where, field):
    """An aware datetime in UTC, from ISO 8601 text (``Z`` or an offset).

    A time without an offset is refused rather than guessed: the module always writes UTC, so a naive time means
    the value did not come from it.
    """
    if isinstance(value, datetime.datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.datetime.fromisoformat(value.strip())
        except ValueError:
            _fail(where, f"{field}={value!r} is not an ISO 8601 time")
    else:
        _fail(where, f"{field}={value!r} is not an ISO 8601 time")
    if moment.tzinfo is None or moment.utcoffset() is None:
        _fail(where, f"{field}={value!r} has no UTC offset (write it with Z or +00:00)")
    return moment.astimezone(_UTC)


def _iso(moment):
    """ISO 8601 in UTC with a Z, to the second, as the metrics module writes it."""
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _required(item, key, where):
    if key not in item:
        _fail(where, f"{key!r} is missing")
    return item[key]


def _text(item, key, where):
    value = _required(item, key, where)
    if not isinstance(value, str):
        _fail(where, f"{key}={value!r} is not a string")
    return str(value)


def _time(item, key, where, nullable=False):
    value = item.get(key) if nullable else _required(item, key, where)
    if value is None and nullable:
        return None
    return _parse_time(value, where, key)


def _count(item, key, where):
    value = _required(item, key, where)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        _fail(where, f"{key}={value!r} is not a count (a whole number, 0 or more)")
    return int(value)


def _list(item, key, where):
    value = _required(item, key, where)
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        _fail(where, f"{key} is not a list")
    for index, element in enumerate(value):
        if not isinstance(element, Mapping):
            _fail(where, f"{key}[{index}] is not a dict")
    return list(value)


def _threshold(value, name):
    """A threshold in days: a number, 0 or more; kept an int when it is one, so the document shows 14, not 14.0."""
    if isinstance(value, bool):
        raise AnsibleFilterError(f"health_report: {name}={value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise AnsibleFilterError(f"health_report: {name}={value!r} is not a number") from None
    if not math.isfinite(number) or number < 0:
        raise AnsibleFilterError(f"health_report: {name}={value!r} must be a finite number, 0 or more")
    return int(number) if number.is_integer() else number


def _days(seconds):
    """Days to two decimals; ``+ 0.0`` turns a -0.0 into 0.0, which JSON would otherwise print with its sign."""
    return round(seconds / _DAY, 2) + 0.0


# --- judgement -----------------------------------------------------------------------------------------------------

def _duration(seconds):
    """A span in words, to two units, as Prometheus' humanizeDuration in the alerts' summaries."""
    seconds = int(abs(seconds))
    days, rest = divmod(seconds, int(_DAY))
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60

    def unit(number, word):
        return f"{number} {word}" + ("" if number == 1 else "s")

    if days:
        return unit(days, "day") + (" " + unit(hours, "hour") if hours else "")
    if hours:
        return unit(hours, "hour") + (" " + unit(minutes, "minute") if minutes else "")
    if minutes:
        return unit(minutes, "minute")
    return "less than a minute"


def _relative(moment, now):
    seconds = (moment - now).total_seconds()
    return f"in {_duration(seconds)}" if seconds > 0 else f"{_duration(seconds)} ago"


def _when(moment):
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _finding(severity, kind, host, subject, deadline, message, issuer=None):
    """One attention item. ``subject`` names what it is about; for a CRL, its file, and ``issuer`` which CRL of the
    file (a file such as crls.pem holds several); ``issuer`` is null for every other kind."""
    return {"severity": severity, "kind": kind, "host": host, "subject": subject, "issuer": issuer,
            "deadline": deadline, "message": message}


def _certificate(cert, where, now, limits, host, findings):
    """Annotate one certificate with days_left and state, as the three certificate alerts see it.

    Expired: not_after has passed (FleetMtlsCertificateExpired). Expiring: less than the expiry window left, the
    window being the smaller of expiry_warning_days and a quarter of the lifetime, so a short-lived certificate is
    not "expiring" from its issuance. Renewal overdue: now is past renew_at by more than the slack, the smaller of
    renewal_slack_days and a tenth of the lifetime. One state per certificate, the most urgent, and one finding for
    it; ``renewal_overdue`` still says whether the renewal was missed when the certificate is also expiring.
    """
    record = {key: _text(cert, key, where) for key in ("name", "path", "serial", "subject", "issuer")}
    # Optional, described but not judged: the names and the key (the metrics module returns them).
    sans = cert.get("subject_alt_names") or []
    if isinstance(sans, (str, bytes)) or not isinstance(sans, Sequence) or not all(isinstance(n, str) for n in sans):
        _fail(where, "subject_alt_names is not a list of names")
    key_size = cert.get("key_size")
    if key_size is not None and (isinstance(key_size, bool) or not isinstance(key_size, int) or key_size <= 0):
        _fail(where, f"key_size={key_size!r} is not a number of bits")
    record.update(subject_alt_names=[str(n) for n in sans], key_type=cert.get("key_type") or None, key_size=key_size)
    not_before = _time(cert, "not_before", where)
    not_after = _time(cert, "not_after", where)
    renew_at = _time(cert, "renew_at", where)
    lifetime = (not_after - not_before).total_seconds()
    if lifetime <= 0:
        _fail(where, f"not_after={_iso(not_after)} is not after not_before={_iso(not_before)}")
    left = (not_after - now).total_seconds()
    window = min(lifetime * _EXPIRY_LIFETIME_FRACTION, limits["expiry_warning_days"] * _DAY)
    slack = min(lifetime * _RENEWAL_SLACK_LIFETIME_FRACTION, limits["renewal_slack_days"] * _DAY)
    overdue = (now - renew_at).total_seconds() > slack
    if left <= 0:
        state = "expired"
    elif left < window:
        state = "expiring"
    elif overdue:
        state = "renewal_overdue"
    else:
        state = "ok"
    record.update(not_before=_iso(not_before), not_after=_iso(not_after), renew_at=_iso(renew_at),
                  lifetime_days=_days(lifetime), days_left=_days(left), renewal_overdue=overdue, state=state)

    name, serial = record["name"], record["serial"]
    late = ", and has not been renewed" if overdue else ""
    if state == "expired":
        findings.append(_finding(
            "critical", "certificate_expired", host, name, not_after,
            f"Certificate {name} (serial {serial}) on {host} expired {_relative(not_after, now)}, at "
            f"{_when(not_after)}: its peers refuse it; renew it now with the rotate playbook."))
    elif state == "expiring":
        findings.append(_finding(
            "warning", "certificate_expiring", host, name, not_after,
            f"Certificate {name} (serial {serial}) on {host} expires {_relative(not_after, now)}, at "
            f"{_when(not_after)}{late}; run the rotate playbook for this host and find out why it was not renewed."))
    elif state == "renewal_overdue":
        findings.append(_finding(
            "warning", "certificate_renewal_overdue", host, name, not_after,
            f"Certificate {name} (serial {serial}) on {host} entered its renewal window {_relative(renew_at, now)} "
            f"and is still the one installed (it expires at {_when(not_after)}); check that the rotate playbook "
            "runs and reaches this host."))
    return record


def _ca(ca, where, now, limits, host, findings):
    """A trusted CA certificate: expiring within ca_warning_days (FleetMtlsCaExpiringSoon), or expired.

    The rule has one state for both; the report tells an expired CA apart and calls it critical, since every
    certificate that chains to it then fails to verify.
    """
    record = {key: _text(ca, key, where) for key in ("subject", "serial", "fingerprint")}
    not_after = _time(ca, "not_after", where)
    left = (not_after - now).total_seconds()
    if left <= 0:
        state = "expired"
    elif left < limits["ca_warning_days"] * _DAY:
        state = "expiring"
    else:
        state = "ok"
    record.update(not_after=_iso(not_after), days_left=_days(left), state=state)
    subject, serial = record["subject"], record["serial"]
    if state == "expired":
        findings.append(_finding(
            "critical", "ca_expired", host, subject, not_after,
            f"CA {subject} (serial {serial}) trusted on {host} expired {_relative(not_after, now)}, at "
            f"{_when(not_after)}: certificates that chain to it no longer verify; roll a new CA out now."))
    elif state == "expiring":
        findings.append(_finding(
            "warning", "ca_expiring", host, subject, not_after,
            f"CA {subject} (serial {serial}) trusted on {host} expires {_relative(not_after, now)}, at "
            f"{_when(not_after)}; the certificates it issues no longer get their full lifetime, so roll a new CA "
            "out into the trust bundles before it ends."))
    return record


def _crl(crl, where, now, host, findings):
    """A CRL: expired past next_update (FleetMtlsCrlExpired), or refresh overdue (FleetMtlsCrlRefreshOverdue).

    Refresh overdue is less than half its validity (last_update to next_update) left, minus a day: the crl module
    re-signs at half, and a CRL still the old one a day later missed the daily runs. A CRL without a nextUpdate
    never lapses and no rule fires for it; its state says so and it is no finding. One file may hold several CRLs
    (crls.pem: the root CA's and the issuing CA's), so a CRL is its path, its issuer and the issuer's key identifier
    (two issuing CAs of one name during a rollover), as in the metrics' labels; a key_id absent (metrics of an
    earlier release) is empty.
    """
    record = {key: _text(crl, key, where) for key in ("path", "issuer")}
    record["key_id"] = str(crl.get("key_id") or "")
    number = _count(crl, "crl_number", where)
    last_update = _time(crl, "last_update", where)
    next_update = _time(crl, "next_update", where, nullable=True)
    if next_update is None:
        validity = left = None
        state = "no_next_update"
    else:
        validity = (next_update - last_update).total_seconds()
        if validity <= 0:
            _fail(where, f"next_update={_iso(next_update)} is not after last_update={_iso(last_update)}")
        left = (next_update - now).total_seconds()
        if left <= 0:
            state = "expired"
        elif left < validity * _CRL_REFRESH_FRACTION - _CRL_REFRESH_SLACK_DAYS * _DAY:
            state = "refresh_overdue"
        else:
            state = "ok"
    record.update(crl_number=number, last_update=_iso(last_update), next_update=_iso(next_update),
                  validity_days=None if validity is None else _days(validity),
                  days_left=None if left is None else _days(left), state=state)
    path, issuer = record["path"], record["issuer"]
    if state == "expired":
        findings.append(_finding(
            "critical", "crl_expired", host, path, next_update,
            f"CRL of {issuer} in {path} on {host} lapsed {_relative(next_update, now)}, at {_when(next_update)}: "
            "the servers that check it refuse every client; re-sign it (CA playbook) and redeploy it now.",
            issuer=issuer))
    elif state == "refresh_overdue":
        findings.append(_finding(
            "warning", "crl_refresh_overdue", host, path, next_update,
            f"CRL of {issuer} in {path} on {host} stops being current {_relative(next_update, now)}, at "
            f"{_when(next_update)}, and is past its refresh point; run the CA playbook and redeploy it.",
            issuer=issuer))
    return record


def _missing_crl_paths(host_input, where, host, findings):
    """The CRL files the host was told to watch that do not exist (the metrics module's ``missing_crl_paths``).

    Each is a critical finding: the service roles load that file by default and refuse a configuration whose CRL
    file is missing (nginx -t, haproxy -c, the Python service's check), so the servers cannot take a new
    configuration, and until it is there they check no revocation from it. The certificate role writes it. No
    deadline: it is already the case.
    """
    paths = host_input.get("missing_crl_paths") or []
    if isinstance(paths, (str, bytes, Mapping)) or not isinstance(paths, Sequence) or \
            not all(isinstance(path, str) and path for path in paths):
        _fail(where, "missing_crl_paths is not a list of paths")
    paths = sorted({str(path) for path in paths})
    for path in paths:
        findings.append(_finding(
            "critical", "crl_missing", host, path, None,
            f"CRL file {path} on {host} does not exist: the servers told to load it cannot apply a configuration "
            "that does (their roles refuse it), and check no revocation from it meanwhile; run the certificate role "
            "on this host (the rotate or site playbook), which writes it."))
    return paths


def _service(service, where, now, limits, host, findings):
    """A service's mode; permissive for more than permissive_days since ``since`` is a stalled rollout.

    Without ``since`` the report cannot count (the alert then falls back to how long Prometheus saw it), so such
    a service is no finding. The finding has no deadline: nothing lapses, it is the rollout that has stopped.
    """
    name = _text(service, "service", where)
    mode = _required(service, "mode", where)
    if mode is False:
        mode = "off"  # an unquoted YAML off, as the metrics module takes it
    if mode not in _MODES:
        _fail(where, f"mode={mode!r} is not one of {', '.join(_MODES)}")
    since = _time(service, "since", where, nullable=True)
    in_mode = None if since is None else (now - since).total_seconds()
    stalled = mode == "permissive" and in_mode is not None and in_mode > limits["permissive_days"] * _DAY
    if stalled:
        findings.append(_finding(
            "warning", "service_permissive", host, name, None,
            f"{name} on {host} has accepted clients without a certificate for {_duration(in_mode)}, since "
            f"{_when(since)}; finish the rollout (gate, then strict) or record why it stays permissive."))
    return {"service": name, "mode": str(mode), "since": _iso(since),
            "days_in_mode": None if in_mode is None else _days(in_mode),
            "state": "permissive_too_long" if stalled else "ok"}


def _adoption(host_input, where):
    """The share of requests with a valid client certificate, from the rollout's observation, or None."""
    adoption = host_input.get("adoption")
    if adoption is None:
        return None
    if not isinstance(adoption, Mapping):
        _fail(where, "adoption is neither null nor a dict")
    counts = {key: _count(adoption, key, where + ", adoption") for key in _ADOPTION_KEYS}
    counts["valid_share"] = round(counts["valid"] / counts["requests"], 4) if counts["requests"] else None
    return counts


def _sorted_unique(records, key, where, what):
    records.sort(key=key)
    for first, second in zip(records, records[1:]):
        if key(first) == key(second):
            _fail(where, f"{what} {key(first)!r} is listed twice")
    return records


def _host(host_input, now, limits, findings):
    """Validate one host's input and annotate it; its findings go to ``findings``."""
    if not isinstance(host_input, Mapping):
        raise AnsibleFilterError(f"health_report: every host must be a dict, not {host_input!r}")
    if "host" not in host_input:
        raise AnsibleFilterError("health_report: a host's 'host' (its name) is missing")
    name = host_input["host"]
    if not isinstance(name, str) or not name:
        raise AnsibleFilterError(f"health_report: host={name!r} is not a host name")
    name = str(name)
    where = f"host {name!r}"
    groups = host_input.get("groups") or []
    if isinstance(groups, (str, bytes)) or not isinstance(groups, Sequence) or \
            not all(isinstance(group, str) for group in groups):
        _fail(where, "groups is not a list of group names")
    reachable = _required(host_input, "reachable", where)
    if not isinstance(reachable, bool):
        _fail(where, f"reachable={reachable!r} is not true or false")
    record = {"host": name, "groups": sorted({str(group) for group in groups}), "reachable": reachable,
              "status": "ok", "certificates": [], "cas": [], "crls": [], "missing_crl_paths": [], "services": [],
              "adoption": None}
    mine = []
    error = host_input.get("error")
    if error is not None and (reachable or not isinstance(error, str)):
        _fail(where, "error is a message, given only for a host that was not read")
    if not reachable and error:
        # Reached, but its files could not be read or checked (a corrupt certificate, a missing bundle).
        mine.append(_finding("critical", "host_unreadable", name, None, None,
                             f"{name} could not be checked: {error}"))
    elif not reachable:
        # What an unreached host may still carry is from another run: report nothing of it as current.
        mine.append(_finding("critical", "host_unreachable", name, None, None,
                             f"{name} was not reached, so none of its certificates, CRLs or services were checked."))
    else:
        for index, cert in enumerate(_list(host_input, "certificates", where)):
            record["certificates"].append(_certificate(cert, f"{where}, certificates[{index}]", now, limits, name,
                                                       mine))
        for index, ca in enumerate(_list(host_input, "cas", where)):
            record["cas"].append(_ca(ca, f"{where}, cas[{index}]", now, limits, name, mine))
        for index, crl in enumerate(_list(host_input, "crls", where)):
            record["crls"].append(_crl(crl, f"{where}, crls[{index}]", now, name, mine))
        record["missing_crl_paths"] = _missing_crl_paths(host_input, where, name, mine)
        for index, service in enumerate(_list(host_input, "services", where)):
            record["services"].append(_service(service, f"{where}, services[{index}]", now, limits, name, mine))
        record["adoption"] = _adoption(host_input, where)
        _sorted_unique(record["certificates"], lambda c: c["name"], where, "certificate")
        _sorted_unique(record["cas"], lambda c: (c["subject"], c["serial"]), where, "CA")
        _sorted_unique(record["crls"], lambda c: (c["path"], c["issuer"], c["key_id"]), where, "CRL")
        _sorted_unique(record["services"], lambda s: s["service"], where, "service")
    if mine:
        record["status"] = min((f["severity"] for f in mine), key=_SEVERITY_RANK.__getitem__)
    findings.extend(mine)
    return record


def _urgency(finding):
    """Critical first; then the soonest deadline (findings without one after those with one); then host, name."""
    deadline = finding["deadline"]
    return (_SEVERITY_RANK[finding["severity"]], deadline is None, deadline or datetime.datetime.min.replace(
        tzinfo=_UTC), finding["host"], finding["kind"], finding["subject"] or "", finding["issuer"] or "")


def _summary(hosts, findings):
    def states(records, names):
        counts = {"total": len(records)}
        counts.update((state, sum(1 for r in records if r["state"] == state)) for state in names)
        return counts

    certificates = [c for h in hosts for c in h["certificates"]]
    crls = [c for h in hosts for c in h["crls"]]
    services = [s for h in hosts for s in h["services"]]
    # A CA is one CA however many hosts trust it: count the distinct ones, each in its own (same) state.
    cas = list({(c["fingerprint"], c["subject"], c["serial"]): c for h in hosts for c in h["cas"]}.values())
    service_counts = {"total": len(services)}
    service_counts.update((mode, sum(1 for s in services if s["mode"] == mode)) for mode in _MODES)
    service_counts["permissive_too_long"] = sum(1 for s in services if s["state"] == "permissive_too_long")
    critical = sum(1 for f in findings if f["severity"] == "critical")
    warning = len(findings) - critical
    return {
        "status": "critical" if critical else "warning" if warning else "ok",
        "hosts": len(hosts),
        "reachable": sum(1 for h in hosts if h["reachable"]),
        "unreachable": sum(1 for h in hosts if not h["reachable"]),
        "certificates": states(certificates, ("expired", "expiring", "renewal_overdue", "ok")),
        "cas": states(cas, ("expired", "expiring", "ok")),
        "crls": states(crls, ("expired", "refresh_overdue", "no_next_update", "ok")),
        "services": service_counts,
        "attention": {"critical": critical, "warning": warning},
    }


def health_report(hosts, now=None, expiry_warning_days=14, ca_warning_days=90, renewal_slack_days=1,
                  permissive_days=14):
    """The fleet's health as a JSON-ready document, judged as the alert rules judge the same values.

    ``hosts`` is a list of ``fleet.mtls.metrics`` results with ``host``, ``groups``, ``reachable`` and
    ``adoption`` added. ``now`` (ISO 8601, default the current time) is the moment everything is judged at, so a
    report can be reproduced: the same hosts and ``now`` give the same document. Bad input (a missing key, a time
    that is not ISO 8601 with an offset, an unknown mode) is an error naming the host and the field, never a
    report that quietly says less.
    """
    limits = {
        "expiry_warning_days": _threshold(expiry_warning_days, "expiry_warning_days"),
        "ca_warning_days": _threshold(ca_warning_days, "ca_warning_days"),
        "renewal_slack_days": _threshold(renewal_slack_days, "renewal_slack_days"),
        "permissive_days": _threshold(permissive_days, "permissive_days"),
    }
    if now is None:
        moment = datetime.datetime.now(_UTC).replace(microsecond=0)
    else:
        moment = _parse_time(now, "now", "now")
    if isinstance(hosts, (str, bytes, Mapping)) or not isinstance(hosts, Sequence):
        raise AnsibleFilterError("health_report: expects a list of hosts")
    findings = []
    records = [_host(host, moment, limits, findings) for host in hosts]
    _sorted_unique(records, lambda h: h["host"], "hosts", "host")
    findings.sort(key=_urgency)
    for finding in findings:
        finding["deadline"] = _iso(finding["deadline"])
    thresholds = dict(limits)
    thresholds.update(expiry_lifetime_fraction=_EXPIRY_LIFETIME_FRACTION,
                      renewal_slack_lifetime_fraction=_RENEWAL_SLACK_LIFETIME_FRACTION,
                      crl_refresh_fraction=_CRL_REFRESH_FRACTION, crl_refresh_slack_days=_CRL_REFRESH_SLACK_DAYS)
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": _iso(moment),
        "thresholds": dict(sorted(thresholds.items())),
        "summary": _summary(records, findings),
        "hosts": records,
        "attention": findings,
    }


# --- rendering, shared ---------------------------------------------------------------------------------------------

_KIND_TITLES = {
    "host_unreachable": "host not reached",
    "host_unreadable": "host not checked",
    "certificate_expired": "certificate expired",
    "certificate_expiring": "certificate expiring",
    "certificate_renewal_overdue": "renewal overdue",
    "ca_expired": "CA expired",
    "ca_expiring": "CA expiring",
    "crl_expired": "CRL expired",
    "crl_refresh_overdue": "CRL refresh overdue",
    "crl_missing": "CRL file missing",
    "service_permissive": "still permissive",
}

_STATE_SEVERITY = {
    "expired": "critical", "expiring": "warning", "renewal_overdue": "warning", "refresh_overdue": "warning",
    "permissive_too_long": "warning", "no_next_update": "neutral", "ok": "ok",
}

_MODE_ORDER = {mode: index for index, mode in enumerate(_MODES)}


def _document(report, caller):
    """The report, checked to be one this code renders: a document of another schema is an error, not a guess."""
    if not isinstance(report, Mapping) or report.get("schema_version") != SCHEMA_VERSION:
        raise AnsibleFilterError(f"{caller}: expects the document health_report returns (schema_version "
                                 f"{SCHEMA_VERSION})")
    return report


def _report_time(text):
    return _parse_time(text, "report", "time")


def _label(state):
    return state.replace("_", " ")


def _fmt_days(days):
    return "—" if days is None else f"{days:.1f}"


def _adoption_text(adoption):
    if not adoption:
        return "—"
    share = adoption["valid_share"]
    percent = "no requests" if share is None else f"{share * 100:.1f}% valid"
    return (f"{percent} ({adoption['valid']}/{adoption['requests']}; {adoption['none']} without, "
            f"{adoption['failed']} failed)")


def _servers(report):
    """Every (host, service), by mode (off, permissive, strict), then host and service."""
    rows = [(h, s) for h in report["hosts"] for s in h["services"]]
    rows.sort(key=lambda row: (_MODE_ORDER.get(row[1]["mode"], len(_MODES)), row[0]["host"], row[1]["service"]))
    return rows


def _distinct_cas(report):
    """Each CA once, with the hosts that trust it: its expiry is a fact about the CA, not about a host."""
    cas = {}
    for host in report["hosts"]:
        for ca in host["cas"]:
            key = (ca["not_after"], ca["subject"], ca["serial"], ca["fingerprint"])
            cas.setdefault(key, (ca, []))[1].append(host["host"])
    return [cas[key] for key in sorted(cas)]


# --- Markdown ------------------------------------------------------------------------------------------------------

def _key_text(cert):
    """'ec 256', 'ed25519', or '—' when the input did not say."""
    if not cert["key_type"]:
        return "—"
    return f'{cert["key_type"]} {cert["key_size"]}' if cert["key_size"] else cert["key_type"]


def _md(value):
    """Free text for Markdown: a backslash before each character that could make markup, a link or HTML."""
    text = " ".join(str(value).split())
    return "".join("\\" + char if char in "\\`*_[]<>|&#~" else char for char in text)


def _md_code(value):
    """An identifier (serial, path, subject) as a code span: shown as it is, whatever it contains."""
    text = " ".join(str(value).split()).replace("|", "\\|")
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") or fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _md_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines


def health_report_markdown(report):
    """The report as Markdown, for AWX's job output and chat: the attention list first, then the details.

    Values are escaped (identifiers as code spans, free text with backslashes), so a subject containing Markdown
    or HTML shows as text wherever the summary is rendered.
    """
    report = _document(report, "health_report_markdown")
    try:
        return _markdown(report)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise AnsibleFilterError(f"health_report_markdown: not a complete health_report document ({error!r})") \
            from None


def _markdown(report):
    summary = report["summary"]
    out = [f"# Fleet mTLS health report — {report['generated_at']}", ""]
    attention = summary["attention"]
    out.append(f"Status **{summary['status']}**: {summary['hosts']} hosts ({summary['unreachable']} unreachable), "
               f"{attention['critical']} critical, {attention['warning']} warning.")
    out += ["", "## Needs attention", ""]
    if report["attention"]:
        for index, finding in enumerate(report["attention"], 1):
            deadline = f" (deadline {finding['deadline']})" if finding["deadline"] else ""
            out.append(f"{index}. **{finding['severity'].upper()}** {_md(finding['host'])}, "
                       f"{_KIND_TITLES.get(finding['kind'], _label(finding['kind']))}{deadline}: "
                       f"{_md(finding['message'])}")
    else:
        out.append("Nothing needs attention.")

    out += ["", "## Hosts", ""]
    out += _md_table(("host", "groups", "reached", "certificates", "services", "status"), [
        (_md(h["host"]), _md(", ".join(h["groups"])) or "—", "yes" if h["reachable"] else "**no**",
         str(len(h["certificates"])), str(len(h["services"])), h["status"]) for h in report["hosts"]])

    out += ["", "## Certificates", ""]
    rows = []
    for host in report["hosts"]:
        for cert in host["certificates"]:
            rows.append((_md(host["host"]), _md_code(cert["name"]), _md_code(cert["serial"]),
                         _md(", ".join(cert["subject_alt_names"])) or "—", _md(_key_text(cert)),
                         cert["not_after"], _fmt_days(cert["days_left"]), cert["renew_at"], _label(cert["state"])))
        if not host["certificates"]:
            rows.append((_md(host["host"]), "—", "—", "—", "—", "—", "—", "—",
                         "no certificate" if host["reachable"] else "not reached"))
    out += _md_table(("host", "name", "serial", "SANs", "key", "not_after", "days left", "renew_at", "state"), rows)

    services = summary["services"]
    out += ["", "## Servers by mode", "",
            f"{services['off']} off, {services['permissive']} permissive "
            f"({services['permissive_too_long']} too long), {services['strict']} strict.", ""]
    servers = _servers(report)
    if servers:
        out += _md_table(("mode", "host", "service", "since", "days in mode", "client certificates", "state"), [
            (s["mode"], _md(h["host"]), _md_code(s["service"]), s["since"] or "—", _fmt_days(s["days_in_mode"]),
             _md(_adoption_text(h["adoption"])), _label(s["state"])) for h, s in servers])
    else:
        out.append("No service reported a mode.")

    out += ["", "## CRLs", ""]
    rows = []
    for host in report["hosts"]:
        rows.extend((_md(host["host"]), _md_code(c["path"]), _md_code(c["issuer"]), str(c["crl_number"]),
                     c["last_update"], c["next_update"] or "—", _fmt_days(c["days_left"]), _label(c["state"]))
                    for c in host["crls"])
        rows.extend((_md(host["host"]), _md_code(path), "—", "—", "—", "—", "—", "file missing")
                    for path in host.get("missing_crl_paths", []))
    if rows:
        out += _md_table(("host", "path", "issuer", "number", "last_update", "next_update", "days left", "state"),
                         rows)
    else:
        out.append("No CRL reported.")

    out += ["", "## CAs", ""]
    cas = _distinct_cas(report)
    if cas:
        out += _md_table(("subject", "serial", "not_after", "days left", "state", "trusted on"), [
            (_md_code(ca["subject"]), _md_code(ca["serial"]), ca["not_after"], _fmt_days(ca["days_left"]),
             _label(ca["state"]), _md(", ".join(hosts))) for ca, hosts in cas])
    else:
        out.append("No CA reported.")
    return "\n".join(out) + "\n"


# --- HTML ----------------------------------------------------------------------------------------------------------

def _e(value):
    """Every value that reaches the page goes through here: subjects may hold <, & and quotes."""
    return html.escape(str(value), quote=True)


_CSS = """
:root { color-scheme: light; --text: #1d2939; --muted: #667085; --line: #e4e7ec; --soft: #f2f4f7; --bg: #f8f9fb;
  --critical: #b42318; --critical-bg: #fef3f2; --critical-line: #fecdca; --critical-bar: #d92d20;
  --warning: #b54708; --warning-bg: #fffaeb; --warning-line: #fedf89; --warning-bar: #f79009;
  --ok: #067647; --ok-bg: #ecfdf3; --ok-line: #abefc6; --ok-bar: #17b26a;
  --neutral: #475467; --neutral-bg: #f2f4f7; --neutral-line: #d0d5dd; --neutral-bar: #98a2b3; }
* { box-sizing: border-box; }
html { background: var(--bg); }
body { margin: 0; color: var(--text); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans",
  "Liberation Sans", "DejaVu Sans", Arial, sans-serif; }
.page { max-width: 1200px; margin: 0 auto; padding: 14px 24px 28px; }
header { display: flex; justify-content: space-between; align-items: flex-end; gap: 16px; }
h1 { font-size: 21px; line-height: 1.2; margin: 0; font-weight: 650; letter-spacing: -0.01em; }
.meta { color: var(--muted); margin: 3px 0 0; font-size: 13px; }
h2 { font-size: 15px; margin: 0 0 10px; font-weight: 650; }
h2 .count { color: var(--muted); font-weight: 500; margin-left: 6px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; margin-top: 12px; }
.tiles { display: grid; grid-template-columns: repeat(5, 1fr); gap: 10px; margin-top: 12px; }
.tile { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 6px 12px; }
.tile .label { color: var(--muted); font-size: 11px; text-transform: uppercase; letter-spacing: 0.05em; }
.tile .number { font-size: 20px; font-weight: 650; line-height: 1.3; font-variant-numeric: tabular-nums; }
.tile .detail { font-size: 12px; color: var(--muted); }
.tile .detail b { font-weight: 600; }
.status { font-weight: 650; font-size: 13px; padding: 5px 12px; border-radius: 999px; border: 1px solid; }
.critical { color: var(--critical); } .warning { color: var(--warning); } .ok { color: var(--ok); }
.neutral { color: var(--neutral); }
.status.critical, .pill.critical { background: var(--critical-bg); border-color: var(--critical-line); }
.status.warning, .pill.warning { background: var(--warning-bg); border-color: var(--warning-line); }
.status.ok, .pill.ok { background: var(--ok-bg); border-color: var(--ok-line); }
.pill.neutral { background: var(--neutral-bg); border-color: var(--neutral-line); }
.pill { display: inline-block; padding: 0 8px; border-radius: 999px; border: 1px solid; font-size: 12px;
  font-weight: 600; white-space: nowrap; }
.findings { list-style: none; margin: 0; padding: 0; }
.finding { display: grid; grid-template-columns: 76px 1fr 170px; gap: 12px; align-items: start;
  padding: 6px 12px; margin: 0 0 5px; border: 1px solid var(--line); border-left: 4px solid; border-radius: 6px; }
.finding.critical { border-left-color: var(--critical-bar); background: var(--critical-bg); }
.finding.warning { border-left-color: var(--warning-bar); background: var(--warning-bg); }
.finding .severity { font-size: 11px; font-weight: 700; text-transform: uppercase; letter-spacing: 0.05em;
  padding-top: 2px; }
.finding .what { font-weight: 600; color: var(--text); }
.finding .what .kind { font-weight: 500; color: var(--muted); }
.finding .message { color: var(--text); font-size: 13px; line-height: 1.4; }
.finding .deadline { text-align: right; font-size: 12px; color: var(--muted); font-variant-numeric: tabular-nums; }
.finding .deadline b { display: block; color: var(--text); font-weight: 600; }
.nothing { margin: 0; padding: 10px 12px; border-radius: 6px; background: var(--ok-bg); color: var(--ok);
  border: 1px solid var(--ok-line); font-weight: 600; }
table { width: 100%; border-collapse: collapse; font-size: 13px; }
th { text-align: left; color: var(--muted); font-weight: 600; font-size: 12px; padding: 5px 8px;
  border-bottom: 1px solid var(--line); white-space: nowrap; }
td { padding: 5px 8px; border-bottom: 1px solid var(--soft); vertical-align: top; }
tr:last-child td { border-bottom: none; }
td.number { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
th.number { text-align: right; }
.mono, code { font-family: ui-monospace, "SFMono-Regular", "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas,
  monospace; font-size: 12px; }
.wrap { overflow-wrap: break-word; }
.nowrap { white-space: nowrap; }
.muted { color: var(--muted); }
.modes { display: flex; gap: 8px; margin: 0 0 10px; }
svg { display: block; width: 100%; height: auto; }
svg text { font-size: 12px; fill: var(--text); }
svg .axis text { fill: var(--muted); font-size: 11px; }
svg .grid { stroke: var(--soft); stroke-width: 1; }
svg .host text.name { font-weight: 650; }
svg .band { fill: var(--bg); }
svg .now line { stroke: var(--text); stroke-width: 1.5; stroke-dasharray: 4 3; }
svg .now text { font-weight: 650; font-size: 11px; }
svg .renew { stroke: var(--text); stroke-width: 2; }
svg .left { font-variant-numeric: tabular-nums; font-weight: 600; }
svg .left.critical { fill: var(--critical); } svg .left.warning { fill: var(--warning); }
svg .left.ok { fill: var(--ok); } svg .note { fill: var(--muted); font-style: italic; }
svg .note.critical { fill: var(--critical); font-style: normal; font-weight: 600; }
.bar-critical { fill: var(--critical-bar); } .bar-warning { fill: var(--warning-bar); }
.bar-ok { fill: var(--ok-bar); } .bar-neutral { fill: var(--neutral-bar); }
.rest { opacity: 0.28; }
.legend { display: flex; flex-wrap: wrap; gap: 16px; margin-top: 8px; font-size: 12px; color: var(--muted); }
.legend svg { display: inline-block; width: auto; vertical-align: -2px; margin-right: 4px; }
p.note { margin: 8px 0 0; color: var(--muted); font-size: 12px; }
footer { margin-top: 14px; color: var(--muted); font-size: 12px; }
@media print {
  html, body { background: #fff; }
  body { font-size: 11px; }
  .page { max-width: none; padding: 0; }
  section { border: none; border-radius: 0; padding: 0; margin-top: 12px; break-inside: avoid; }
  .tile, .finding { break-inside: avoid; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  @page { margin: 12mm; }
}
"""


def health_report_html(report):
    """The report as one self-contained HTML5 page: inline CSS and SVG, no script, no font, no link.

    It is read offline, archived with a job or printed (``@media print``), so it must not depend on anything but
    itself; and it is made from the document alone, so the same report gives the same page.
    """
    report = _document(report, "health_report_html")
    try:
        return _html(report)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise AnsibleFilterError(f"health_report_html: not a complete health_report document ({error!r})") from None


def _html_time(text):
    """A time as a reader scans it (to the minute, UTC), with the exact ISO value as its tooltip."""
    if text is None:
        return '<span class="muted">—</span>'
    return f'<span class="nowrap" title="{_e(text)}">{_e(_when(_report_time(text)))}</span>'


def _pill(text, severity):
    return f'<span class="pill {_e(severity)}">{_e(text)}</span>'


def _html_tiles(summary, missing_crl_files):
    certs, cas, crls, services = summary["certificates"], summary["cas"], summary["crls"], summary["services"]

    def detail(parts):
        shown = [f'<b class="{severity}">{count} {_e(text)}</b>' for count, text, severity in parts if count]
        return ", ".join(shown) or '<span class="ok">all fine</span>'

    tiles = [
        ("Hosts", summary["hosts"], detail([(summary["unreachable"], "unreachable", "critical")])
         if summary["unreachable"] else f'<span class="ok">{"all" if summary["hosts"] else "none"} reached</span>'),
        ("Certificates", certs["total"], detail([(certs["expired"], "expired", "critical"),
                                                 (certs["expiring"], "expiring", "warning"),
                                                 (certs["renewal_overdue"], "renewal overdue", "warning")])),
        ("Servers", services["total"], f'{services["strict"]} strict, {services["permissive"]} permissive, '
                                       f'{services["off"]} off'),
        ("CRLs", crls["total"], detail([(missing_crl_files, "file missing" if missing_crl_files == 1 else
                                         "files missing", "critical"),
                                        (crls["expired"], "expired", "critical"),
                                        (crls["refresh_overdue"], "refresh overdue", "warning")])),
        ("CAs", cas["total"], detail([(cas["expired"], "expired", "critical"),
                                      (cas["expiring"], "expiring", "warning")])),
    ]
    out = ['<div class="tiles">']
    for label, number, text in tiles:
        out.append(f'<div class="tile"><div class="label">{_e(label)}</div><div class="number">{_e(number)}</div>'
                   f'<div class="detail">{text}</div></div>')
    out.append("</div>")
    return out


def _html_attention(report, now):
    findings = report["attention"]
    out = ['<section id="attention">',
           f'<h2>Needs attention<span class="count">{len(findings)}</span></h2>']
    if not findings:
        out.append('<p class="nothing">Nothing needs attention.</p>')
    else:
        out.append('<ol class="findings">')
        for finding in findings:
            severity = finding["severity"]
            subject = f' <code>{_e(finding["subject"])}</code>' if finding["subject"] else ""
            if finding.get("issuer"):
                subject += f' <span class="kind">of</span> <code>{_e(finding["issuer"])}</code>'
            if finding["deadline"]:
                moment = _report_time(finding["deadline"])
                deadline = f'<b>{_e(_when(moment))}</b>{_e(_relative(moment, now))}'
            else:
                deadline = '<span class="muted">no deadline</span>'
            out.append(
                f'<li class="finding {_e(severity)}" data-kind="{_e(finding["kind"])}" '
                f'data-host="{_e(finding["host"])}">'
                f'<div class="severity {_e(severity)}">{_e(severity)}</div>'
                f'<div><div class="what">{_e(finding["host"])} <span class="kind">· '
                f'{_e(_KIND_TITLES.get(finding["kind"], _label(finding["kind"])))}</span>{subject}</div>'
                f'<div class="message">{_e(finding["message"])}</div></div>'
                f'<div class="deadline">{deadline}</div></li>')
        out.append("</ol>")
    out.append("</section>")
    return out


def _ticks(start, end):
    """Axis ticks at midnights or first days of months, few enough (at most about ten) to stay legible."""
    span = (end - start).total_seconds() / _DAY
    ticks = []
    if span <= 70:
        step = next(days for days in (1, 2, 7, 14) if span / days <= 10)
        moment = start.replace(hour=0, minute=0, second=0, microsecond=0) + datetime.timedelta(days=1)
        while moment <= end:
            ticks.append((moment, f"{moment.day} {_MONTHS[moment.month - 1]}"))
            moment += datetime.timedelta(days=step)
    else:
        step = next((months for months in (1, 2, 3, 6, 12, 24, 60) if span / (30.44 * months) <= 10), 120)
        index = start.year * 12 + start.month  # the month after start's, 0-based
        index += (-index) % step
        while True:
            moment = datetime.datetime(index // 12, index % 12 + 1, 1, tzinfo=_UTC)
            if moment > end:
                break
            label = _MONTHS[moment.month - 1] + (f" {moment.year}" if moment.month == 1 or not ticks else "")
            ticks.append((moment, label))
            index += step
    return ticks


def _svg_timeline(report, now):
    """Each host's certificates as bars from not_before to not_after on one time axis, with now and renew_at.

    The common axis is what lets a reader compare: which certificate ends first, which renewals are behind. The
    elapsed part of a bar is solid and the rest pale, so the position of "now" reads at a glance.
    """
    width, label_w, right_w = 1110, 190, 130
    x0, x1 = label_w, width - right_w
    certs = [(h, c, {k: _report_time(c[k]) for k in ("not_before", "not_after", "renew_at")})
             for h in report["hosts"] for c in h["certificates"]]
    if certs:
        start = min([row[2]["not_before"] for row in certs] + [now])
        end = max([row[2]["not_after"] for row in certs] + [now])
    else:
        start, end = now - datetime.timedelta(days=7), now + datetime.timedelta(days=7)
    pad = max((end - start) * 0.03, datetime.timedelta(hours=6))
    start, end = start - pad, end + pad
    total = (end - start).total_seconds()

    def x(moment):
        return round(x0 + (x1 - x0) * (moment - start).total_seconds() / total, 1)

    rows = []  # (kind, host, cert, times)
    for host in report["hosts"]:
        rows.append(("host", host, None, None))
        rows.extend(("cert", host, c, t) for h, c, t in certs if h is host)
    top, host_h, cert_h = 40, 26, 22
    height = top + sum(host_h if row[0] == "host" else cert_h for row in rows) + 8
    out = [f'<svg viewBox="0 0 {width} {height}" width="{width}" '
           f'height="{height}" role="img" aria-labelledby="timeline-title">',
           '<title id="timeline-title">Certificate validity per host on a common time axis</title>']
    out.append('<g class="axis">')
    for moment, label in _ticks(start, end):
        out.append(f'<line class="grid" x1="{x(moment)}" y1="{top - 6}" x2="{x(moment)}" y2="{height - 4}"/>'
                   f'<text x="{x(moment)}" y="{top - 12}" text-anchor="middle">{_e(label)}</text>')
    out.append("</g>")
    y = top
    body = []
    for kind, host, cert, times in rows:
        if kind == "host":
            groups = ", ".join(host["groups"])
            body.append(f'<g class="host"><rect class="band" x="0" y="{y}" width="{width}" height="{host_h}"/>'
                        f'<text class="name" x="8" y="{y + 17}">{_e(host["host"])}</text>'
                        f'<text class="note" x="{x0 - 8}" y="{y + 17}" text-anchor="end">{_e(groups)}</text>')
            if not host["reachable"]:
                body.append(f'<text class="note critical" x="{x0 + 8}" y="{y + 17}">not reached: nothing checked'
                            '</text>')
            elif not host["certificates"]:
                body.append(f'<text class="note" x="{x0 + 8}" y="{y + 17}">no certificate</text>')
            body.append("</g>")
            y += host_h
            continue
        severity = _STATE_SEVERITY.get(cert["state"], "neutral")
        mid = y + cert_h / 2
        bx0, bx1 = x(times["not_before"]), x(times["not_after"])
        split = min(max(x(now), bx0), bx1)
        names = f', {", ".join(cert["subject_alt_names"])}' if cert["subject_alt_names"] else ""
        tip = (f'{host["host"]} {cert["name"]}: serial {cert["serial"]}{names}, {_key_text(cert)}, '
               f'{cert["not_before"]} to {cert["not_after"]}, renew at {cert["renew_at"]}, {_label(cert["state"])}')
        left = cert["days_left"]
        left_text = f"expired {abs(left):.1f} d ago" if left <= 0 else f"{left:.1f} d left"
        body.append(
            f'<g class="cert"><title>{_e(tip)}</title>'
            f'<text x="24" y="{mid + 4}">{_e(cert["name"])}</text>'
            f'<rect class="bar-{severity} rest" x="{bx0}" y="{mid - 5}" width="{round(max(bx1 - bx0, 1), 1)}" '
            f'height="10" rx="2"/>'
            f'<rect class="bar-{severity}" x="{bx0}" y="{mid - 5}" width="{round(max(split - bx0, 0), 1)}" '
            f'height="10" rx="2"/>'
            f'<line class="renew" x1="{x(times["renew_at"])}" y1="{mid - 8}" x2="{x(times["renew_at"])}" '
            f'y2="{mid + 8}"/>'
            f'<text class="left {severity}" x="{width - 8}" y="{mid + 4}" text-anchor="end">{_e(left_text)} · '
            f'{_e(_label(cert["state"]))}</text></g>')
        y += cert_h
    out.extend(body)
    # The label above the ticks' and the line from below them: "now" never covers a month's name.
    anchor = "end" if x(now) > x1 - 120 else "middle" if x(now) > x0 + 120 else "start"
    out.append(f'<g class="now"><line x1="{x(now)}" y1="{top - 6}" x2="{x(now)}" y2="{height - 4}"/>'
               f'<text x="{x(now)}" y="11" text-anchor="{anchor}">now, {_e(_when(now))}</text></g>')
    out.append("</svg>")
    return out


def _legend():
    def swatch(cls):
        return (f'<svg width="22" height="10" viewBox="0 0 22 10" aria-hidden="true"><rect class="{cls}" x="0" y="0" '
                'width="22" height="10" rx="2"/></svg>')

    return ['<div class="legend">',
            f'<span>{swatch("bar-ok")}valid</span>',
            f'<span>{swatch("bar-warning")}expiring or renewal overdue</span>',
            f'<span>{swatch("bar-critical")}expired</span>',
            '<span><svg width="22" height="14" viewBox="0 0 22 14" aria-hidden="true"><rect class="bar-ok rest" '
            'x="0" y="2" width="22" height="10" rx="2"/><line class="renew" x1="11" y1="0" x2="11" y2="14" '
            'style="stroke:#1d2939;stroke-width:2"/></svg>renewal time (renew_at)</span>',
            '<span><svg width="14" height="14" viewBox="0 0 14 14" aria-hidden="true"><line x1="7" y1="0" x2="7" '
            'y2="14" style="stroke:#1d2939;stroke-width:1.5;stroke-dasharray:4 3"/></svg>now</span>',
            '<span>solid: elapsed, pale: remaining validity</span>',
            "</div>"]


def _html_servers(report):
    services = report["summary"]["services"]
    out = ['<section id="servers">', f'<h2>Servers by mode<span class="count">{services["total"]}</span></h2>',
           '<div class="modes">', _pill(f'{services["off"]} off', "neutral"),
           _pill(f'{services["permissive"]} permissive', "warning" if services["permissive_too_long"] else "neutral"),
           _pill(f'{services["strict"]} strict', "ok"), "</div>"]
    servers = _servers(report)
    if not servers:
        out += ['<p class="muted">No service reported a mode.</p>', "</section>"]
        return out
    out.append('<table><thead><tr><th>mode</th><th>host</th><th>service</th><th>in this mode since (UTC)</th>'
               '<th class="number">days</th><th>client certificates (rollout observation)</th></tr></thead><tbody>')
    for host, service in servers:
        mode = service["mode"]
        severity = "ok" if mode == "strict" else "warning" if service["state"] != "ok" else "neutral"
        text = mode + (" (too long)" if service["state"] != "ok" else "")
        out.append(f'<tr><td>{_pill(text, severity)}</td><td>{_e(host["host"])}</td>'
                   f'<td class="mono">{_e(service["service"])}</td><td>{_html_time(service["since"])}</td>'
                   f'<td class="number">{_e(_fmt_days(service["days_in_mode"]))}</td>'
                   f'<td>{_e(_adoption_text(host["adoption"]))}</td></tr>')
    out += ["</tbody></table>", "</section>"]
    return out


def _crl_meter(crl, now):
    """How much of a CRL's validity is left, with its refresh point marked: a small bar, like a fuel gauge."""
    if crl["next_update"] is None:
        return '<span class="muted">never lapses</span>'
    last, nxt = _report_time(crl["last_update"]), _report_time(crl["next_update"])
    validity = (nxt - last).total_seconds()
    share = min(max((nxt - now).total_seconds() / validity, 0.0), 1.0)
    refresh = min(max(_CRL_REFRESH_FRACTION - _CRL_REFRESH_SLACK_DAYS * _DAY / validity, 0.0), 1.0)
    severity = _STATE_SEVERITY.get(crl["state"], "neutral")
    return (f'<svg width="120" height="12" viewBox="0 0 120 12" role="img" aria-label="{_e(round(share * 100))}% '
            f'of its validity left" style="display:inline-block;width:120px;vertical-align:-1px">'
            f'<rect class="bar-neutral rest" x="0" y="1" width="120" height="10" rx="2"/>'
            f'<rect class="bar-{severity}" x="0" y="1" width="{round(120 * share, 1)}" height="10" rx="2"/>'
            f'<line class="renew" x1="{round(120 * refresh, 1)}" y1="0" x2="{round(120 * refresh, 1)}" y2="12" '
            'style="stroke:#1d2939;stroke-width:1.5"/></svg>')


def _html_crls(report, now):
    """Each host's CRLs, then the CRL files it was to publish that do not exist."""
    count = sum(len(h["crls"]) for h in report["hosts"])
    if not count and not any(h.get("missing_crl_paths") for h in report["hosts"]):
        return ['<section id="crls">', f'<h2>CRL freshness<span class="count">{count}</span></h2>',
                '<p class="muted">No CRL reported.</p>', "</section>"]
    out = ['<section id="crls">', f'<h2>CRL freshness<span class="count">{count}</span></h2>',
           '<table><thead><tr><th>host</th><th>CRL and its issuer</th><th class="number">number</th>'
           '<th>last update (UTC)</th><th>next update (UTC)</th><th>validity left</th>'
           '<th class="number">days</th><th>state</th></tr></thead><tbody>']
    for host in report["hosts"]:
        for crl in host["crls"]:
            severity = _STATE_SEVERITY.get(crl["state"], "neutral")
            out.append(f'<tr><td>{_e(host["host"])}</td><td class="wrap"><div class="mono">{_e(crl["path"])}</div>'
                       f'<div class="muted">{_e(crl["issuer"])}</div></td>'
                       f'<td class="number">{_e(crl["crl_number"])}</td>'
                       f'<td>{_html_time(crl["last_update"])}</td><td>{_html_time(crl["next_update"])}</td>'
                       f'<td>{_crl_meter(crl, now)}</td><td class="number">{_e(_fmt_days(crl["days_left"]))}</td>'
                       f'<td>{_pill(_label(crl["state"]), severity)}</td></tr>')
        for path in host.get("missing_crl_paths", []):
            out.append(f'<tr><td>{_e(host["host"])}</td><td class="wrap"><div class="mono">{_e(path)}</div>'
                       '<div class="muted">no such file</div></td><td class="number">—</td><td>—</td><td>—</td>'
                       '<td><span class="muted">—</span></td><td class="number">—</td>'
                       f'<td>{_pill("file missing", "critical")}</td></tr>')
    out.append("</tbody></table>")
    out.append('<p class="note">The mark on each bar is the CRL\'s refresh point: half its validity, less '
               f'{_e(_CRL_REFRESH_SLACK_DAYS)} day. A CRL still there past it was neither re-signed nor '
               'redeployed.</p>')
    out.append("</section>")
    return out


def _html_cas(report):
    cas = _distinct_cas(report)
    out = ['<section id="cas">', f'<h2>CA expiry<span class="count">{len(cas)}</span></h2>']
    if not cas:
        out += ['<p class="muted">No CA reported.</p>', "</section>"]
        return out
    out.append('<table><thead><tr><th>subject</th><th>serial</th><th>not after (UTC)</th>'
               '<th class="number">days left</th>'
               '<th>state</th><th>trusted on</th></tr></thead><tbody>')
    for ca, hosts in cas:
        severity = _STATE_SEVERITY.get(ca["state"], "neutral")
        out.append(f'<tr><td class="mono wrap">{_e(ca["subject"])}</td><td class="mono wrap">{_e(ca["serial"])}</td>'
                   f'<td>{_html_time(ca["not_after"])}</td><td class="number">{_e(_fmt_days(ca["days_left"]))}'
                   f'</td><td>{_pill(_label(ca["state"]), severity)}</td><td>{_e(", ".join(hosts))}</td></tr>')
    out += ["</tbody></table>", "</section>"]
    return out


def _missing_note(host):
    missing = len(host.get("missing_crl_paths", []))
    return f' <span class="critical">({missing} file{"" if missing == 1 else "s"} missing)</span>' if missing else ""


def _html_hosts(report):
    out = ['<section id="hosts">', f'<h2>Hosts<span class="count">{len(report["hosts"])}</span></h2>',
           '<table><thead><tr><th>host</th><th>groups</th><th>reached</th><th class="number">certificates</th>'
           '<th class="number">CAs</th><th class="number">CRLs</th><th class="number">services</th><th>status</th>'
           '</tr></thead><tbody>']
    for host in report["hosts"]:
        status = host["status"]
        out.append(f'<tr><td>{_e(host["host"])}</td><td>{_e(", ".join(host["groups"]) or "—")}</td>'
                   f'<td>{"yes" if host["reachable"] else _pill("no", "critical")}</td>'
                   f'<td class="number">{len(host["certificates"])}</td><td class="number">{len(host["cas"])}</td>'
                   f'<td class="number">{len(host["crls"])}{_missing_note(host)}</td>'
                   f'<td class="number">{len(host["services"])}</td>'
                   f'<td>{_pill(status, status)}</td></tr>')
    out += ["</tbody></table>", "</section>"]
    return out


def _html(report):
    now = _report_time(report["generated_at"])
    summary = report["summary"]
    attention = summary["attention"]
    status = summary["status"]
    status_text = {"critical": f'{attention["critical"]} critical, {attention["warning"]} warning',
                   "warning": f'{attention["warning"]} warning', "ok": "all fine"}[status]
    limits = report["thresholds"]
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f'<title>Fleet mTLS health report, {_e(report["generated_at"])}</title>',
           f"<style>{_CSS}</style>", "</head>", "<body>", '<div class="page">',
           '<header><div><h1>Fleet mTLS health report</h1>'
           f'<p class="meta">Generated {_e(_when(now))} · {_e(summary["hosts"])} hosts · '
           f'{_e(summary["reachable"])} reached</p></div>'
           f'<div class="status {_e(status)}">{_e(status_text)}</div></header>']
    out += _html_tiles(summary, sum(len(h.get("missing_crl_paths", [])) for h in report["hosts"]))
    out += _html_attention(report, now)
    certificates = summary["certificates"]["total"]
    out += ['<section id="timeline">',
            f'<h2>Certificate expiry timeline<span class="count">{certificates}</span></h2>']
    out += _svg_timeline(report, now)
    out += _legend()
    out.append("</section>")
    out += _html_servers(report)
    out += _html_crls(report, now)
    out += _html_cas(report)
    out += _html_hosts(report)
    out.append(
        f'<footer>Thresholds, as the alert rules: expiring under {_e(limits["expiry_warning_days"])} days or a '
        f'quarter of the lifetime; renewal overdue {_e(limits["renewal_slack_days"])} day(s) after renew_at (a '
        f'tenth of the lifetime when shorter); CA expiring under {_e(limits["ca_warning_days"])} days; CRL refresh '
        f'overdue under half its validity minus {_e(limits["crl_refresh_slack_days"])} day; permissive for more than '
        f'{_e(limits["permissive_days"])} days. Schema version {_e(report["schema_version"])}.</footer>')
    out += ["</div>", "</body>", "</html>"]
    return "\n".join(out) + "\n"


def health_report_hosts(hosts, hostvars):
    """health_report's input from a play: each host's facts as role certificate's entry point health read them.

    A host with ``mtls_certificate_metrics`` (the module's result) was read; one
    with ``mtls_report_error`` (role report's rescue) was reached but could not
    be checked; one with neither was not reached. ``adoption`` is the rollout's
    observation (``mtls_rollout_adoption.totals``) when the play has one.
    """
    inputs = []
    for host in hosts:
        seen = hostvars[host]
        read = seen.get("mtls_certificate_metrics") or {}
        error = seen.get("mtls_report_error")
        entry = {"host": str(host), "groups": [str(group) for group in seen.get("group_names") or []]}
        if read.get("certificates") is not None and not read.get("failed") and not error:
            entry.update(reachable=True, **{key: read[key] for key in ("certificates", "cas", "crls", "services")})
            entry["missing_crl_paths"] = list(read.get("missing_crl_paths") or [])
            totals = (seen.get("mtls_rollout_adoption") or {}).get("totals")
            if totals:
                entry["adoption"] = {key: totals.get(key, 0) for key in _ADOPTION_KEYS}
        else:
            entry.update(reachable=False, error=str(error) if error else None)
        inputs.append(entry)
    return inputs


class FilterModule:
    """health_report_hosts, health_report, health_report_markdown and health_report_html."""

    def filters(self):
        return {
            "health_report_hosts": health_report_hosts,
            "health_report": health_report,
            "health_report_markdown": health_report_markdown,
            "health_report_html": health_report_html,
        }
