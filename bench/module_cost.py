"""CPU time of one run of each module a no-op re-run executes, fleet.mtls and
the community.crypto recipe side by side, with ansible.builtin.ping as the
floor every module run pays (a Python process starting Ansible's module
support code).

Usage: module_cost.py [REPEATS]

Each playbook issues to one local host, then runs again with
ANSIBLE_KEEP_REMOTE_FILES so that the no-op run's module payloads stay on
disk; each payload is then run REPEATS times (default 7) by the host's
Python and its user + system CPU time is taken from the child's rusage.
The median is printed.
"""
import os
import pathlib
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import run  # noqa: E402  (the same inventory as the benchmark)

PYTHON = "/usr/bin/python3"


def cpu_seconds(payload, repeats):
    times = []
    for _repeat in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([PYTHON, str(payload)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        times.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(times)


def payloads(playbook, top, extra_args):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    kept = top / ("kept-" + playbook)
    command = [str(REPO / ".venv/bin/ansible-playbook"), "-i", str(top / "hosts.ini")] + extra_args
    subprocess.run(command, env=env, cwd=str(REPO), check=True, capture_output=True)
    subprocess.run(command, env=dict(env, ANSIBLE_KEEP_REMOTE_FILES="1", ANSIBLE_REMOTE_TMP=str(kept)),
                   cwd=str(REPO), check=True, capture_output=True)
    return sorted(kept.glob("*/AnsiballZ_*.py"))


def main():
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    top = pathlib.Path(tempfile.mkdtemp(prefix="fleet-mtls-module-cost."))
    try:
        run.inventory(top / "hosts.ini", 1)
        rows = []
        for name, playbook in run.PLAYBOOK.items():
            bench_dir = top / name
            subprocess.run([str(REPO / ".venv/bin/ansible-playbook"), "-i", str(top / "hosts.ini"),
                            str(HERE / "ca.yml"), "-e", "bench_dir=%s" % bench_dir], cwd=str(REPO), check=True,
                           capture_output=True, env=dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg")))
            for payload in payloads(name, top, [str(playbook), "-e", "bench_dir=%s" % bench_dir,
                                                "-e", "bench_force=false"]):
                module = re.sub(r"^AnsiballZ_|\.py$", "", payload.name)
                rows.append((name, module, cpu_seconds(payload, repeats)))
        floor = payloads("ping", top, ["-e", "ansible_python_interpreter=%s" % PYTHON, str(HERE / "ping.yml")])
        rows.append(("floor", "ping", cpu_seconds(floor[0], repeats)))
    finally:
        shutil.rmtree(str(top), ignore_errors=True)
    print("CPU seconds of one module run in a no-op re-run (median of %d), %s" % (repeats, PYTHON))
    for name, module, seconds in rows:
        print("%-11s %-24s %5.2f" % (name, module, seconds))


if __name__ == "__main__":
    main()
