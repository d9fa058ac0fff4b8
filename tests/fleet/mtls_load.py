"""Steady mTLS load against one or more servers: one thread per server, a new
TLS connection for every request, so that every request meets the server's
current certificate and configuration.

usage: mtls_load.py --ca CA [--cert CERT --key KEY] --stop STOP_FILE
                    [--max-seconds S] [--max-requests N] [--pause S]
                    [--path /] [--expect-body TEXT] [--user-agent NAME]
                    [--once-strict] HOST:PORT [HOST:PORT ...]

Without --cert the caller presents no client certificate (a caller the
rollout must notice). Each thread stops once STOP_FILE exists, after
--max-seconds, or after --max-requests requests. A request counts as failed
unless it gets HTTP 200 (and, with --expect-body, a body containing TEXT).
With --once-strict a thread first waits (within --max-seconds) until its
server refuses a request without a certificate, asking every half second
with the fleet's probe token (environment FLEET_MTLS_PROBE_TOKEN), so that
the waiting leaves no client record in the server's log: a client whose
requests start to be refused once a server is strict, as a rollout's soak
must catch. Prints one JSON object: the totals (sent, failed, the first errors, answers
per server certificate serial) and the same per server under "targets".

Each server's name is resolved once, before the first request, and every
connection goes to that address, with the name for SNI, the certificate
check and the Host header: what is measured is TLS, never the test
network's DNS under load.
"""
import argparse
import collections
import http.client
import json
import os
import socket
import ssl
import threading
import time

parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
parser.add_argument("--ca", required=True)
parser.add_argument("--cert")
parser.add_argument("--key")
parser.add_argument("--stop", required=True, help="stop once this file exists")
parser.add_argument("--max-seconds", type=float, default=240)
parser.add_argument("--max-requests", type=int, default=0, help="per server; 0: no limit")
parser.add_argument("--pause", type=float, default=0.0, help="seconds between two requests of a thread")
parser.add_argument("--path", default="/")
parser.add_argument("--expect-body", default="")
parser.add_argument("--user-agent", default="fleet-mtls-load", help="names the caller in the servers' logs")
parser.add_argument("--once-strict", action="store_true",
                    help="start once the server refuses a certificate-less probe (FLEET_MTLS_PROBE_TOKEN)")
parser.add_argument("targets", nargs="+", metavar="HOST:PORT")
args = parser.parse_args()

context = ssl.create_default_context(cafile=args.ca)
if args.cert:
    context.load_cert_chain(args.cert, args.key)
expected = args.expect_body.encode()
results = {}


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to an address resolved once, named (SNI, verification, Host) by the server's name."""

    def __init__(self, host, port, address, **kwargs):
        super().__init__(host, port, **kwargs)
        self.address = address

    def connect(self):
        sock = socket.create_connection((self.address, self.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def resolve(host, port):
    """The server's address, asked once (retrying for a few seconds)."""
    for attempt in range(10):
        try:
            return socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)[0][4][0]
        except socket.gaierror:
            if attempt == 9:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


def refuses_certificate_less(host, port, address):
    """Whether the server refuses a probe without a certificate now (the probe's token keeps it out of the counts)."""
    probe_context = ssl.create_default_context(cafile=args.ca)
    conn = PinnedHTTPSConnection(host, int(port), address, context=probe_context, timeout=10)
    try:
        conn.request("GET", args.path, headers={"User-Agent": args.user_agent,
                                                "X-Fleet-Mtls-Probe": os.environ.get("FLEET_MTLS_PROBE_TOKEN", "")})
        return conn.getresponse().status != 200
    except (OSError, http.client.HTTPException):
        return True
    finally:
        conn.close()


def load(target):
    host, port = target.rsplit(":", 1)
    sent = failed = 0
    errors = []
    serials = collections.Counter()
    start = time.monotonic()
    address = resolve(host, port)
    if args.once_strict:
        while time.monotonic() - start < args.max_seconds and not os.path.exists(args.stop):
            if refuses_certificate_less(host, port, address):
                break
            time.sleep(0.5)
    while (time.monotonic() - start < args.max_seconds and not os.path.exists(args.stop)
           and not (args.max_requests and sent >= args.max_requests)):
        sent += 1
        conn = PinnedHTTPSConnection(host, int(port), address, context=context, timeout=10)
        try:
            conn.connect()
            serial = conn.sock.getpeercert()["serialNumber"]
            conn.request("GET", args.path, headers={"User-Agent": args.user_agent})
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise RuntimeError("HTTP %s" % response.status)
            if expected not in body:
                raise RuntimeError("HTTP 200 without %r in the body" % args.expect_body)
            serials[serial] += 1
        except Exception as exc:  # every failure counts, whatever it is
            failed += 1
            if len(errors) < 10:
                errors.append("%.1fs %s: %s" % (time.monotonic() - start, type(exc).__name__, exc))
        finally:
            conn.close()
        if args.pause:
            time.sleep(args.pause)
    results[target] = {"sent": sent, "failed": failed, "errors": errors, "serials": dict(serials),
                       "seconds": round(time.monotonic() - start, 1)}


threads = [threading.Thread(target=load, args=(target,)) for target in args.targets]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
all_serials = collections.Counter()
for result in results.values():
    all_serials.update(result["serials"])
print(json.dumps({
    "sent": sum(r["sent"] for r in results.values()),
    "failed": sum(r["failed"] for r in results.values()),
    "errors": [error for r in results.values() for error in r["errors"]][:10],
    "serials": dict(all_serials),
    "seconds": max(r["seconds"] for r in results.values()),
    "targets": results,
}))
