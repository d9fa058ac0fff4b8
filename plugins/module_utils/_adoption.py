# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How far clients have moved to certificates, counted from the servers' access logs.

The nginx, haproxy and python_service roles write one JSON object per request
with the same keys (``time``, ``server``, ``site``, ``client_addr``,
``tls_client_verify``, ``tls_client_subject``, ``tls_client_serial``,
``tls_client_spiffe_id``, ``status``), ``tls_client_verify`` spelled as
nginx's ``$ssl_client_verify``: ``SUCCESS``, ``NONE`` or ``FAILED:<reason>``.
A handshake refused for its client certificate is logged the same way with
status 0, except by HAProxy 2.6, which has no ``error-log-format`` and writes
a line of text instead (``10.0.0.4:51738 [26/Nov/2026:21:40:40.842]
strict/1: SSL handshake failure``); that line is read too.

Files are read line by line and only counts are kept, so a large log costs
time, not memory. No Ansible objects here: the module only maps its options
to ``count_adoption()``.
"""

from __future__ import annotations

import collections
import datetime
import functools
import hmac
import ipaddress
import json
import os
import re

from ansible_collections.fleet.mtls.plugins.module_utils import _time as c
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError

VALID = "valid"
NONE = "none"
FAILED = "failed"
OUTCOMES = (VALID, NONE, FAILED)

# The suffix logrotate gives the newest rotated generation (uncompressed with
# Debian's delaycompress).
ROTATED_SUFFIX = ".1"

# How many user agents a client's result names (the most frequent first).
MAX_USER_AGENTS = 3

Record = collections.namedtuple("Record", "time server site client_addr outcome reason identity user_agent probe status")

# The statuses of a request the server refused for its client certificate or
# identity: 0 for a refused handshake (no HTTP status), 403 (nginx's 495 and
# 496 are answered as 403 by the nginx role), 495 and 496 as nginx logs them
# without that mapping. A strict server refuses every request without a valid
# certificate; a permissive one only those its allow-list refuses.
REFUSED_STATUSES = frozenset((0, 403, 495, 496))

_MONTHS = dict((name, number) for number, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1))

# HAProxy 2.6's line for a connection that failed before its first request:
# "<addr>:<port> [<accept date, local time>] <frontend>/<bind>: <error>".
# The address may be IPv6 (colons), so the port is the last ":<digits>".
_HAPROXY_CONNECTION_ERROR = re.compile(
    r"(?:^|\s)(?P<addr>\S+):\d+ "
    r"\[(?P<day>\d{2})/(?P<month>[A-Z][a-z]{2})/(?P<year>\d{4}):(?P<hms>\d{2}:\d{2}:\d{2})\.(?P<ms>\d{3})\] "
    r"(?P<frontend>[^/\s]+)/\S+: (?P<error>.+)$")


def classify(verify):
    """(outcome, failure reason or None) for a ``tls_client_verify`` value.

    Anything that is neither SUCCESS nor an absent certificate is a failure:
    an unknown value is not a verified certificate. Its reason is then the
    whole value.
    """
    text = _text(verify)
    word = text.upper()
    if word in ("", "NONE"):
        return NONE, None
    if word == "SUCCESS":
        return VALID, None
    if word.startswith("FAILED"):
        return FAILED, text[len("FAILED"):].lstrip(":").strip() or "unspecified"
    return FAILED, text


def normalize_address(value):
    """A client address in one spelling: IPv6 compressed, IPv4-mapped IPv6 as IPv4, anything else as is."""
    return _normalize_address(_text(value))


# Logs repeat the same few addresses and (per second) times: parsing each once saves most of the time per line.
@functools.lru_cache(maxsize=4096)
def _normalize_address(text):
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return text
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


def address_sort_key(text):
    """Addresses in numeric order (10.0.0.9 before 10.0.0.10), IPv4 before IPv6, anything else after them."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return (1, 0, 0, text)
    return (0, address.version, int(address), text)


class InvalidLine(ValueError):
    """A line that should hold an access record (it has a JSON object) but does not hold a readable one."""


def parse_line(line, local_timezone=None):
    """The access record in one log line, or None for a line of text that holds none (HAProxy's own notices).

    The JSON object may follow a prefix (a syslog header), so it is read from
    the first ``{``; a line with one that is not a readable record raises
    InvalidLine, saying why. HAProxy 2.6's connection errors carry a local
    time without offset: it is read in ``local_timezone`` (default: this
    host's, which is the one HAProxy wrote it in).
    """
    start = line.find("{")
    if start != -1:
        return _json_record(line[start:])
    return _haproxy_connection_error(line, local_timezone)


def _text(value):
    """A log field as text; null and HAProxy's "-" for an empty sample are empty."""
    if value is None:
        return ""
    text = str(value).strip()
    return "" if text == "-" else text


def _log_time(value):
    return _parse_log_time(value) if isinstance(value, str) else None


@functools.lru_cache(maxsize=4096)
def _parse_log_time(text):
    try:
        return c.parse_isoformat(text)  # no offset means UTC
    except PkiError:
        return None


def _json_record(text):
    try:
        entry = json.loads(text)
    except ValueError as exc:
        raise InvalidLine("not JSON (%s)" % exc)
    if not isinstance(entry, dict):
        raise InvalidLine("not a JSON object")
    if "tls_client_verify" not in entry:
        raise InvalidLine("no tls_client_verify field")
    time = _log_time(entry.get("time"))
    if time is None:
        raise InvalidLine("no readable time (%r)" % (entry.get("time"),))
    outcome, reason = classify(entry["tls_client_verify"])
    identity = ""
    if outcome != NONE:
        identity = _text(entry.get("tls_client_spiffe_id")) or _text(entry.get("tls_client_subject"))
    return Record(time, _text(entry.get("server")), _text(entry.get("site")),
                  normalize_address(entry.get("client_addr")), outcome, reason, identity, _text(entry.get("user_agent")),
                  _text(entry.get("probe")), _status(entry.get("status")))


def _status(value):
    """The logged HTTP status as an int (0 for a refused handshake), None when the record has none."""
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def refused(record):
    """Whether the server refused this record's request (its handshake, or with a 403 for the client's identity)."""
    return record.status in REFUSED_STATUSES


def _haproxy_connection_error(line, local_timezone):
    match = _HAPROXY_CONNECTION_ERROR.search(line)
    if match is None or match.group("month") not in _MONTHS:
        return None
    try:
        hour, minute, second = (int(part) for part in match.group("hms").split(":"))
        local = datetime.datetime(int(match.group("year")), _MONTHS[match.group("month")], int(match.group("day")),
                                  hour, minute, second, int(match.group("ms")) * 1000)
    except ValueError:
        return None
    if local_timezone is not None:
        time = local.replace(tzinfo=local_timezone).astimezone(c.UTC)
    else:
        time = local.astimezone(c.UTC)  # a naive datetime is taken as this host's local time
    return Record(time, "haproxy", match.group("frontend"), normalize_address(match.group("addr")), FAILED,
                  match.group("error").strip(), "", "", "", 0)


def _counts():
    return dict((outcome, 0) for outcome in OUTCOMES)


class _Client(object):

    def __init__(self, client_addr, identity):
        self.client_addr = client_addr
        self.identity = identity
        self.counts = _counts()
        self.refused = 0
        self.failure_reasons = collections.Counter()
        self.user_agents = collections.Counter()
        self.first_seen = None
        self.last_seen = None
        self.sites = set()

    def add(self, record):
        self.counts[record.outcome] += 1
        self.refused += refused(record)
        if record.reason is not None:
            self.failure_reasons[record.reason] += 1
        if record.outcome != VALID and record.user_agent:
            # Only to tell an operator which program it is: a client chooses its user agent.
            self.user_agents[record.user_agent] += 1
        if self.first_seen is None or record.time < self.first_seen:
            self.first_seen = record.time
        if self.last_seen is None or record.time > self.last_seen:
            self.last_seen = record.time
        self.sites.add(record.site)

    def result(self):
        return dict(client_addr=self.client_addr, identity=self.identity, requests=sum(self.counts.values()),
                    refused=self.refused, failure_reasons=dict(sorted(self.failure_reasons.items())),
                    user_agents=[agent for agent, _count in sorted(
                        self.user_agents.items(), key=lambda item: (-item[1], item[0]))[:MAX_USER_AGENTS]],
                    first_seen=c.isoformat(self.first_seen), last_seen=c.isoformat(self.last_seen),
                    sites=sorted(self.sites), **self.counts)


class AdoptionCounter(object):
    """Counts of records in the window [since, until): per client, per site and in total.

    Records that carry probe_token (the fleet's own probes send it in a
    header, which the servers log as ``probe``) are counted apart, in
    ``excluded``: they are not clients. Nothing else a client can choose
    (a user agent, a path) leaves a record out.
    """

    OUTSIDE_WINDOW = "outside_window"
    EXCLUDED = "excluded"
    COUNTED = "records"

    def __init__(self, since=None, until=None, probe_token=None):
        self.since = since
        self.until = until
        self.probe_token = probe_token.encode("utf-8") if probe_token else None
        self.excluded = 0
        self.totals = _counts()
        self.refused = 0
        self.sites_refused = collections.Counter()
        self.failure_reasons = collections.Counter()
        self.clients = {}
        self.sites = {}
        self.first_seen = None
        self.last_seen = None

    def in_window(self, time):
        return (self.since is None or time >= self.since) and (self.until is None or time < self.until)

    def add(self, record):
        """Count one record; which of COUNTED, OUTSIDE_WINDOW and EXCLUDED it was."""
        if not self.in_window(record.time):
            return self.OUTSIDE_WINDOW
        if self.probe_token and record.probe and hmac.compare_digest(record.probe.encode("utf-8"), self.probe_token):
            self.excluded += 1
            return self.EXCLUDED
        self.totals[record.outcome] += 1
        self.refused += refused(record)
        if record.reason is not None:
            self.failure_reasons[record.reason] += 1
        key = (record.client_addr, record.identity)
        if key not in self.clients:
            self.clients[key] = _Client(record.client_addr, record.identity)
        self.clients[key].add(record)
        site_key = (record.site, record.server)
        if site_key not in self.sites:
            self.sites[site_key] = _counts()
        self.sites[site_key][record.outcome] += 1
        self.sites_refused[site_key] += refused(record)
        if self.first_seen is None or record.time < self.first_seen:
            self.first_seen = record.time
        if self.last_seen is None or record.time > self.last_seen:
            self.last_seen = record.time
        return self.COUNTED

    def result(self):
        requests = sum(self.totals.values())
        clients = [client.result() for client in sorted(
            self.clients.values(), key=lambda client: (address_sort_key(client.client_addr), client.identity))]
        sites = [dict(site=site, server=server, requests=sum(counts.values()), adoption=_ratio(counts),
                      refused=self.sites_refused[(site, server)], **counts)
                 for (site, server), counts in sorted(self.sites.items())]
        return dict(
            totals=dict(requests=requests, refused=self.refused, **self.totals),
            records_excluded=self.excluded,
            adoption=_ratio(self.totals),
            failure_reasons=dict(sorted(self.failure_reasons.items())),
            clients=clients,
            clients_without_certificate=_addresses(clients, NONE),
            clients_with_failed_certificate=_addresses(clients, FAILED),
            sites=sites,
            window=dict(since=_isoformat(self.since), until=_isoformat(self.until),
                        first_seen=_isoformat(self.first_seen), last_seen=_isoformat(self.last_seen)),
        )


def _ratio(counts):
    # Not rounded: a gate comparing with 1.0 must never pass on a rounded 0.99996.
    requests = sum(counts.values())
    return counts[VALID] / requests if requests else None


def _addresses(clients, outcome):
    """The client addresses with at least one record of outcome, in the clients' (address) order."""
    addresses = []
    for client in clients:
        # Sorted by address first, so one address's entries are adjacent.
        if client[outcome] and (not addresses or addresses[-1] != client["client_addr"]):
            addresses.append(client["client_addr"])
    return addresses


def _isoformat(value):
    return None if value is None else c.isoformat(value)


def parse_bound(text, name):
    """A window bound given as an option: ISO 8601, naive meaning UTC."""
    if text is None or str(text).strip() == "":
        return None
    try:
        return c.parse_isoformat(str(text).strip())
    except PkiError:
        raise PkiError("%s=%r is not an ISO 8601 date and time (e.g. 2026-11-27T00:00:00Z)" % (name, text))


def _open_log(path):
    """The file open for reading, or None when it does not exist."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise PkiError("access log %s is a directory" % path)
    except OSError as exc:
        raise PkiError("cannot read access log %s: %s" % (path, exc.strerror or exc))


def read_log(handle, path, counter, local_timezone=None, invalid_lines="fail"):
    """Feed every record of an open log to counter; the file's own counts.

    A line that should hold a record and does not fails the read, naming the
    file and the line, unless invalid_lines is "skip" (then it is counted in
    ``lines_invalid``): a log that cannot be read is no evidence.
    """
    stats = dict(path=path, records=0, outside_window=0, excluded=0, lines_skipped=0, lines_invalid=0)
    number = 0
    try:
        for number, raw in enumerate(handle, 1):
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            try:
                record = parse_line(line, local_timezone)
            except InvalidLine as exc:
                if invalid_lines != "skip":
                    # Not the line itself: it may carry what a probe sent.
                    raise PkiError("access log %s, line %d: %s; the log is no evidence until it is fixed "
                                   "(or read it with invalid_lines=skip)" % (path, number, exc))
                stats["lines_invalid"] += 1
                continue
            if record is None:
                stats["lines_skipped"] += 1
            else:
                stats[counter.add(record)] += 1
    except OSError as exc:
        raise PkiError("cannot read access log %s (after line %d): %s" % (path, number, exc.strerror or exc))
    return stats


def count_adoption(paths, since=None, until=None, include_rotated=False, fail_on_missing=True,
                   local_timezone=None, probe_token=None, invalid_lines="fail"):
    """The module's result (without changed) for the access logs at paths.

    A missing log is an error, or with fail_on_missing false is listed in
    ``missing_paths``. With include_rotated, ``<path>.1`` is read too when it
    exists (it is never reported missing).
    """
    if not paths:
        raise PkiError("paths must name at least one access log")
    if invalid_lines not in ("fail", "skip"):
        raise PkiError("invalid_lines must be fail or skip, not %r" % (invalid_lines,))
    since_time = parse_bound(since, "since")
    until_time = parse_bound(until, "until")
    if since_time is not None and until_time is not None and since_time >= until_time:
        raise PkiError("since (%s) must be before until (%s)" % (c.isoformat(since_time), c.isoformat(until_time)))
    counter = AdoptionCounter(since_time, until_time, probe_token)
    files = []
    missing_paths = []
    opened = set()
    for path in paths:
        candidates = [(path + ROTATED_SUFFIX, False)] if include_rotated else []
        candidates.append((path, True))
        for candidate, required in candidates:
            handle = _open_log(candidate)
            if handle is None:
                if required and candidate not in missing_paths:
                    if fail_on_missing:
                        raise PkiError("access log %s does not exist: nothing can be observed there (is the "
                                       "service installed and its log where the role wrote it?)" % candidate)
                    missing_paths.append(candidate)
                continue
            with handle:
                # The same file twice (listed twice, through a link, or as X and X.1) must not count twice.
                status = os.fstat(handle.fileno())
                if (status.st_dev, status.st_ino) in opened:
                    continue
                opened.add((status.st_dev, status.st_ino))
                files.append(read_log(handle, candidate, counter, local_timezone, invalid_lines))
    result = counter.result()
    result.update(
        files=files,
        missing_paths=missing_paths,
        lines_skipped=sum(stats["lines_skipped"] for stats in files),
        lines_invalid=sum(stats["lines_invalid"] for stats in files),
        records_outside_window=sum(stats["outside_window"] for stats in files),
    )
    return result
