"""Check one host's node_exporter scrape, and its part of the health report, against what openssl says.

Run on the controller with the test venv's Python (prometheus_client parses
the scrape, as a Prometheus client library would):

    check_scrape.py SCRAPE --host web1 \
        --certificate 'server=<openssl x509 -noout -serial -startdate -enddate output>' \
        --service nginx=strict

Each --certificate names a certificate and what `openssl x509 -noout -serial
-startdate -enddate` printed for it; each --service the mode the service must
be in. With --report-json and --report-html (role report's health.json and
health.html), the host's entry must hold the same serials and dates, and the
page must name the host and each serial and end of validity. Exits 1 with every difference
found, 0 with a JSON summary.
"""

from __future__ import annotations

import argparse
import calendar
import datetime
import json
import sys
import time

from prometheus_client.parser import text_string_to_metric_families

MODES = ("off", "permissive", "strict")


def openssl_fields(text):
    """{'serial': 'AB..', 'notBefore': epoch, 'notAfter': epoch} from openssl x509's lines."""
    fields = {}
    for line in text.splitlines():
        key, _sep, value = line.strip().partition("=")
        if key == "serial":
            fields["serial"] = value.upper()
        elif key in ("notBefore", "notAfter"):
            # 'Dec  4 02:00:00 2027 GMT': openssl always prints GMT
            fields[key] = calendar.timegm(time.strptime(" ".join(value.split()), "%b %d %H:%M:%S %Y GMT"))
    return fields


def samples(scrape):
    """{metric name: [(labels, value)]} of the fleet_mtls_ families."""
    found = {}
    for family in text_string_to_metric_families(scrape):
        for sample in family.samples:
            if sample.name.startswith("fleet_mtls_"):
                found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


def check(scrape, host, certificates, services):
    problems = []
    found = samples(scrape)

    def one(metric, **labels):
        matches = [value for sample_labels, value in found.get(metric, [])
                   if all(sample_labels.get(k) == v for k, v in labels.items())]
        if len(matches) != 1:
            problems.append("%s%s: %d samples, expected one" % (metric, labels, len(matches)))
            return None
        return matches[0]

    for name, values in found.items():
        for labels, _value in values:
            if labels.get("host") != host:
                problems.append("%s%s has no host label %r" % (name, labels, host))
    one("fleet_mtls_last_run_timestamp_seconds", host=host)
    if not found.get("fleet_mtls_ca_not_after_timestamp_seconds"):
        problems.append("no trusted CA published")
    for name, fields in sorted(certificates.items()):
        labels = dict(host=host, name=name, serial=fields.get("serial"))
        not_before = one("fleet_mtls_certificate_not_before_timestamp_seconds", **labels)
        not_after = one("fleet_mtls_certificate_not_after_timestamp_seconds", **labels)
        renewal = one("fleet_mtls_certificate_renewal_timestamp_seconds", **labels)
        if not_before is not None and not_before != fields["notBefore"]:
            problems.append("%s: not_before %s, openssl says %s" % (name, not_before, fields["notBefore"]))
        if not_after is not None and not_after != fields["notAfter"]:
            problems.append("%s: not_after %s, openssl says %s" % (name, not_after, fields["notAfter"]))
        if renewal is not None and not fields["notBefore"] < renewal < fields["notAfter"]:
            problems.append("%s: renewal at %s, outside its validity" % (name, renewal))
    for service, mode in sorted(services.items()):
        for each in MODES:
            value = one("fleet_mtls_service_mode", host=host, service=service, mode=each)
            if value is not None and value != (1.0 if each == mode else 0.0):
                problems.append("%s: mode %s is %s, expected mode %s" % (service, each, value, mode))
    return problems, {name: len(values) for name, values in sorted(found.items())}


def epoch(iso):
    return calendar.timegm(datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).utctimetuple())


def check_report(report, page, host, certificates, services):
    """The host's entry in the health report: the same certificates, dates and modes; the page names them."""
    problems = []
    entries = [entry for entry in report["hosts"] if entry["host"] == host]
    if len(entries) != 1 or not entries[0]["reachable"]:
        return ["health report: %s is not there as a reachable host" % host]
    entry = entries[0]
    published = {cert["name"]: cert for cert in entry["certificates"]}
    if sorted(published) != sorted(certificates):
        problems.append("health report: certificates %s, expected %s" % (sorted(published), sorted(certificates)))
    for name, fields in sorted(certificates.items()):
        cert = published.get(name)
        if cert is None:
            continue
        if cert["serial"] != fields["serial"]:
            problems.append("health report: %s serial %s, openssl says %s" % (name, cert["serial"], fields["serial"]))
        for key, field in (("not_before", "notBefore"), ("not_after", "notAfter")):
            if epoch(cert[key]) != fields[field]:
                problems.append("health report: %s %s %s, openssl says %s" % (name, key, cert[key], fields[field]))
        if cert["serial"] not in page:
            problems.append("health page: serial %s of %s is not on it" % (cert["serial"], name))
        until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(fields["notAfter"]))
        if until not in page:
            problems.append("health page: %s's not_after %s (openssl's) is not on it" % (name, until))
    modes = {service["service"]: service["mode"] for service in entry["services"]}
    if modes != services:
        problems.append("health report: modes %s, expected %s" % (modes, services))
    if ">%s<" % host not in page:
        problems.append("health page: %s is not on it" % host)
    return problems


def pairs(values, convert=str):
    result = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit("expected NAME=VALUE, got %r" % item)
        result[key] = convert(value)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scrape", help="the scraped text (a file)")
    parser.add_argument("--host", required=True)
    parser.add_argument("--certificate", action="append", default=[])
    parser.add_argument("--service", action="append", default=[])
    parser.add_argument("--report-json")
    parser.add_argument("--report-html")
    args = parser.parse_args()
    with open(args.scrape, encoding="utf-8") as handle:
        scrape = handle.read()
    certificates = pairs(args.certificate, openssl_fields)
    services = pairs(args.service)
    problems, summary = check(scrape, args.host, certificates, services)
    if args.report_json:
        with open(args.report_json, encoding="utf-8") as handle:
            report = json.load(handle)
        with open(args.report_html, encoding="utf-8") as handle:
            page = handle.read()
        problems += check_report(report, page, args.host, certificates, services)
    if problems:
        print("\n".join(problems))
        return 1
    print(json.dumps(dict(host=args.host, certificates=sorted(certificates), samples=summary), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
