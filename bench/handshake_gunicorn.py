# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""mTLS handshakes against real gunicorn with the python_service role's configuration, side by side in one run:

- per connection: a TLS context built for every connection (gunicorn's own
  way, which the role's ssl_context hook followed until it kept one context
  per worker): the CA bundle, the CRLs and the certificate parsed each time;
- per worker, full: the role's hook today, one context per worker, every
  connection a full handshake;
- per worker, resumed: the same, each connection resuming the session of the
  one before (a session ticket).

For TLS 1.3 and 1.2, one worker, ECDSA P-256 certificates, the role's CRL
check on, a client certificate on every connection. Each cell runs for
--seconds, the three kinds in turn, --rounds times; the table gives medians:
connections per second, the gunicorn worker's CPU per connection (read from
/proc), the client's CPU share, and the ratios. The client is one Python
process on the same machine, so rates with a busy client (a share near 100%)
understate the server; the worker's CPU per connection does not depend on it.

usage: .venv/bin/python bench/handshake_gunicorn.py [--seconds S] [--rounds N]

gunicorn: the first of FLEET_MTLS_TEST_GUNICORN (executables separated by
os.pathsep) that is version 21 or later (20.1 has no ssl_context hook), or
python -m gunicorn. scripts/test.sh unit makes 20.1 and 23 in ~/.cache/fleet-mtls.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "unit", "roles", "python_service"))
from gunicorn_harness import Gunicorn, Pki, free_port, gunicorns, render_configuration  # noqa: E402

PER_CONNECTION_HOOK = "    return fleet_mtls_identity.check_revocation(default_ssl_context_factory())\n"


def gunicorn_command():
    for command in gunicorns():
        version = subprocess.run(command + ["--version"], capture_output=True, text=True, timeout=30, check=False)
        text = (version.stdout + version.stderr).replace("(", " ").replace(")", " ").split()
        number = next((word for word in text if word[:1].isdigit()), "0")
        if int(number.split(".")[0]) >= 21:
            return command, number
    sys.exit("no gunicorn 21 or later: set FLEET_MTLS_TEST_GUNICORN (see the usage)")


def start(command, pki, directory, per_connection):
    os.makedirs(directory, exist_ok=True)
    port = free_port()
    config = render_configuration(pki, pathlib.Path(directory), port, pki.path("crls.pem"))
    if per_connection:
        text = open(config, encoding="utf-8").read()
        hook = text.index("    return fleet_mtls_identity.worker_ssl_context(")
        text = text[:hook] + PER_CONNECTION_HOOK
        open(config, "w", encoding="utf-8").write(text)
    server = Gunicorn(command, config, os.path.join(directory, "gunicorn.log"))
    server.wait_ready(port)
    return server, port


def worker_cpu(master_pid):
    """CPU seconds of the master's children (the one worker)."""
    total = 0.0
    for task in os.listdir("/proc/%d/task" % master_pid):
        with open("/proc/%d/task/%s/children" % (master_pid, task), encoding="ascii") as handle:
            for child in handle.read().split():
                with open("/proc/%s/stat" % child, encoding="ascii") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def cell(port, client, seconds, resume, master_pid):
    """(connections per second, worker CPU ms per connection, client CPU share)."""
    session, done = None, 0
    cpu_before, client_before, began = worker_cpu(master_pid), time.process_time(), time.monotonic()
    while time.monotonic() - began < seconds:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with client.wrap_socket(raw, server_hostname="localhost", session=session if resume else None) as tls:
                tls.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
                while tls.recv(65536):
                    pass
                if resume and done and not tls.session_reused:
                    raise RuntimeError("a session did not resume")
                session = tls.session
        done += 1
    elapsed = time.monotonic() - began
    time.sleep(0.2)  # the worker's last CPU ticks
    return (done / elapsed, 1000 * (worker_cpu(master_pid) - cpu_before) / done,
            100 * (time.process_time() - client_before) / elapsed)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    command, version = gunicorn_command()
    top = tempfile.mkdtemp(prefix="fleet-mtls-bench-")
    pki = Pki(top)
    servers = {}
    try:
        servers["per connection"] = start(command, pki, os.path.join(top, "per-connection"), True)
        servers["per worker"] = start(command, pki, os.path.join(top, "per-worker"), False)
        kinds = [("per connection", "full", False), ("per worker", "full", False), ("per worker", "resumed", True)]
        rows = []
        for tls_name, maximum in (("1.3", ssl.TLSVersion.TLSv1_3), ("1.2", ssl.TLSVersion.TLSv1_2)):
            client = ssl.create_default_context(cafile=pki.path("ca-bundle.pem"))
            client.check_hostname = False
            client.minimum_version = client.maximum_version = maximum
            client.load_cert_chain(pki.path("good.pem"))
            results = {kind: [] for kind in kinds}
            for _round in range(args.rounds):
                for kind in kinds:
                    server, port = servers[kind[0]]
                    results[kind].append(cell(port, client, args.seconds, kind[2], server.process.pid))
            medians = {kind: [statistics.median(values) for values in zip(*runs)] for kind, runs in results.items()}
            base = medians[kinds[0]]
            for kind in kinds:
                rate, cpu, client_share = medians[kind]
                rows.append((tls_name, "%s, %s" % kind[:2], rate, rate / base[0], cpu, base[1] / cpu, client_share))
    finally:
        for server, _port in servers.values():
            server.stop()
    print("gunicorn %s, 1 sync worker, CRL check on; %d rounds of %.0f s, medians"
          % (version, args.rounds, args.seconds))
    print("| TLS | context, handshake | conn/s | ratio | worker CPU ms/conn | CPU ratio | client CPU |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for tls_name, name, rate, ratio, cpu, cpu_ratio, client_share in rows:
        print("| %s | %s | %.0f | %.2fx | %.2f | %.2fx | %.0f%% |"
              % (tls_name, name, rate, ratio, cpu, cpu_ratio, client_share))


if __name__ == "__main__":
    main()
