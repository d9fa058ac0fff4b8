"""Issue certificates to N local hosts with fleet.mtls and with the
community.crypto recipe, alternately, and print medians and ratios; beside
them the floor (bare ping module runs, as many per host as fleet.mtls needs)
and the best ratio any design with that many module runs per host could
reach against the recipe.

Usage: run.py N [ROUNDS]
"""
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
PLAYBOOK = {"recipe": HERE / "community_crypto.yml", "fleet.mtls": HERE / "fleet_mtls.yml"}
SITUATIONS = ("cold", "no-op", "forced renewal")
FLOOR = HERE / "floor.yml"


def inventory(path, hosts):
    lines = ["[ca]", "ca", "[fleet]"] + ["host%03d" % i for i in range(1, hosts + 1)]
    lines += ["[all:vars]", "ansible_connection=local", "ansible_python_interpreter=/usr/bin/python3"]
    path.write_text("\n".join(lines) + "\n")


def play(playbook, inv, bench_dir, force, counts, extra=()):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_FORKS="10",
               ANSIBLE_CALLBACK_PLUGINS=str(HERE / "callback_plugins"), ANSIBLE_CALLBACKS_ENABLED="module_runs",
               FLEET_MTLS_BENCH_COUNTS=str(counts))
    command = [str(REPO / ".venv/bin/ansible-playbook"), "-i", str(inv), str(playbook),
               "-e", "bench_dir=%s" % bench_dir, "-e", "bench_force=%s" % force] + list(extra)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=str(REPO), capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit("%s failed:\n%s" % (playbook.name, done.stdout[-3000:]))
    runs = json.loads(counts.read_text())
    return took, runs


def main():
    hosts = int(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    top = pathlib.Path(tempfile.mkdtemp(prefix="fleet-mtls-bench."))
    inv = top / "hosts.ini"
    inventory(inv, hosts)
    times = dict((k, dict((s, []) for s in SITUATIONS)) for k in PLAYBOOK)
    runs = dict((k, {}) for k in PLAYBOOK)
    floor = {1: [], 2: []}
    try:
        for name in PLAYBOOK:
            subprocess.run([str(REPO / ".venv/bin/ansible-playbook"), "-i", str(inv), str(HERE / "ca.yml"),
                            "-e", "bench_dir=%s" % (top / name)], cwd=str(REPO), check=True,
                           capture_output=True, env=dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg")))
        for _round in range(rounds):
            for name, playbook in PLAYBOOK.items():  # alternate, so drift hits both alike
                bench_dir = top / name
                for host_dir in bench_dir.glob("host*"):
                    shutil.rmtree(str(host_dir))
                for situation, force in zip(SITUATIONS, ("false", "false", "true")):
                    took, counted = play(playbook, inv, bench_dir, force, top / "counts.json")
                    times[name][situation].append(took)
                    runs[name][situation] = counted
            for pings, extra in ((1, ["--skip-tags", "second"]), (2, [])):
                took, _counted = play(FLOOR, inv, top, "false", top / "counts.json", extra)
                floor[pings].append(took)
    finally:
        shutil.rmtree(str(top), ignore_errors=True)

    print("N = %d hosts, forks 10, %d rounds, median seconds" % (hosts, rounds))
    columns = ("situation", "recipe", "fleet.mtls", "ratio", "floor", "ceiling",
               "module runs per host / on the CA host (recipe -> fleet.mtls)")
    print("%-15s %10s %12s %8s %8s %9s   %s" % columns)
    for situation in SITUATIONS:
        recipe = statistics.median(times["recipe"][situation])
        fleet = statistics.median(times["fleet.mtls"][situation])
        per_host, host_runs = [], {}
        for name in PLAYBOOK:
            counted = runs[name][situation]
            host_runs[name] = statistics.median([v for k, v in counted.items() if k != "ca"] or [0])
            per_host.append("%s / %d" % (host_runs[name], counted.get("ca", 0)))
        lowest = statistics.median(floor[2 if host_runs["fleet.mtls"] > 1 else 1])
        print("%-15s %10.1f %12.1f %7.1fx %8.1f %8.1fx   %s -> %s" % (
            situation, recipe, fleet, recipe / fleet, lowest, recipe / lowest, per_host[0], per_host[1]))
    print("floor: bare ping module runs, as many per host as fleet.mtls runs; ceiling: recipe / floor")


if __name__ == "__main__":
    main()
