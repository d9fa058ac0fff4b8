"""What a job's artifacts must show, as ansible-runner process wrote them (tests/ee/run.sh).

    python3 tests/ee/artifacts.py check ARTIFACTS VERSION
    python3 tests/ee/artifacts.py lab ARTIFACTS HOST...

Both: the status is successful and the rc 0, and the job's summary (set_stats) arrived in the
playbook_on_stats event's artifact_data, as AWX shows it.
check: the PKI check job (project/ee_check.yml): fleet.mtls found once in the image at
VERSION, its four certificates matching their keys and chaining to their bundle, no refusal.
lab: the scheduled rotation (project/rotate.yml) against a converged fleet: each HOST
(those rotate.yml rotates) reached and counted, nothing renewed, none unreachable, and no
host of the run changed, failed or unreachable.
Prints what it read; exits 1 naming each problem.
"""
import json
import pathlib
import sys


def read(artifacts):
    """The job's status, rc and last playbook_on_stats event data."""
    def text(name):
        path = artifacts / name
        return path.read_text().strip() if path.exists() else None

    events = [json.loads(path.read_text()) for path in (artifacts / "job_events").glob("*.json")]
    stats = [event["event_data"] for event in events if event.get("event") == "playbook_on_stats"]
    print("artifacts: status %s, rc %s, %d job events" % (text("status"), text("rc"), len(events)))
    problems = []
    if text("status") != "successful" or text("rc") != "0":
        problems.append("status %r, rc %r" % (text("status"), text("rc")))
    if not stats:
        problems.append("no playbook_on_stats event")
    return problems, (stats[-1] if stats else {})


def check_job(stats, version):
    problems = []
    summary = (stats.get("artifact_data") or {}).get("mtls_ee_check")
    if not summary:
        return ["the job published no mtls_ee_check summary (set_stats)"]
    found = {path: names["fleet.mtls"]["version"] for path, names in summary["collections"].items()
             if "fleet.mtls" in names}
    print("fleet.mtls found in the image: %s; ansible-core %s; cryptography %s"
          % (found, summary["ansible_core"], summary["cryptography"]))
    if found != {"/usr/share/ansible/collections/ansible_collections": version}:
        problems.append("fleet.mtls %s is not the one (and only one) in the image: %s" % (version, found))
    certificates = summary["certificates"]
    for host, facts in sorted(certificates.items()):
        print("  %s: serial %s, key matches %s, chains to the bundle %s"
              % (host, facts["serial"], facts["matches_key"], facts["chains_to_bundle"]))
        if not (facts["matches_key"] and facts["chains_to_bundle"]):
            problems.append("%s's certificate does not match its key or chain to its bundle" % host)
    if len(certificates) != 4:
        problems.append("%d certificates in the summary, not 4" % len(certificates))
    if summary["refusals"]:
        problems.append("identity_refusals refused: %s" % summary["refusals"])
    return problems


def lab_job(stats, hosts):
    problems = []
    data = stats.get("artifact_data") or {}
    print("summary (set_stats): %s" % json.dumps(data, sort_keys=True))
    if data.get("mtls_rotate_hosts_done") != len(hosts):
        problems.append("mtls_rotate_hosts_done is %r, not the %d hosts rotated (%s)"
                        % (data.get("mtls_rotate_hosts_done"), len(hosts), ", ".join(hosts)))
    if data.get("mtls_rotate_renewed"):
        problems.append("a converged fleet had certificates renewed: %s" % data["mtls_rotate_renewed"])
    if data.get("mtls_rotate_unreachable"):
        problems.append("hosts not reached: %s" % data["mtls_rotate_unreachable"])
    processed = set(stats.get("processed") or {})
    print("hosts of the run: %s" % ", ".join(sorted(processed)))
    missing = sorted(set(hosts) - processed)
    if missing:
        problems.append("the run never reached %s" % ", ".join(missing))
    for kind in ("changed", "failures", "dark"):
        if stats.get(kind):
            problems.append("%s: %s" % (kind, stats[kind]))
    return problems


def main(argv):
    if len(argv) < 3 or argv[0] not in ("check", "lab"):
        print(__doc__, file=sys.stderr)
        return 2
    problems, stats = read(pathlib.Path(argv[1]))
    if stats:
        problems += check_job(stats, argv[2]) if argv[0] == "check" else lab_job(stats, argv[2:])
    for problem in problems:
        print("tests/ee/run.sh: %s" % problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
