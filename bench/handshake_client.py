# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The client of the handshake benchmark (bench/handshake.yml runs it on a client host of the fleet).

    handshake_client.py --host web1 --port 443 --ca CA [--cert C --key K] --tls 1.3
                        --resume none|id|ticket [--seconds 3] [--procs 2] [--path /]

Each of --procs processes makes TLS connections one after the other for
--seconds: connect (TCP_NODELAY), handshake, one GET with "Connection:
close", read to the end, close. --resume none makes every handshake a full
one; id and ticket offer the session of the connection before (id: the
client refuses tickets, so a TLS 1.2 server resumes from its session cache;
in TLS 1.3 every resumption is a ticket, and id is the same as ticket).
Prints one JSON object: connections per second, the share of handshakes
that resumed, the HTTP statuses, errors, and the client's own CPU use (in
cores) beside the rate, so that a client that bounds the rate shows.
Standard library only: it runs with the host's Python.
"""
import argparse
import json
import multiprocessing
import socket
import ssl
import sys
import time


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--tls", choices=["1.2", "1.3"], required=True)
    parser.add_argument("--resume", choices=["none", "id", "ticket"], default="none")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--path", default="/")
    args = parser.parse_args(argv)
    if bool(args.cert) != bool(args.key):
        parser.error("--cert and --key go together")
    if not 0.2 <= args.seconds <= 60 or not 1 <= args.procs <= 16:
        parser.error("--seconds is 0.2 to 60, --procs 1 to 16")
    return args


def client_context(args):
    context = ssl.create_default_context(cafile=args.ca)
    version = ssl.TLSVersion.TLSv1_3 if args.tls == "1.3" else ssl.TLSVersion.TLSv1_2
    context.minimum_version = context.maximum_version = version
    if args.cert:
        context.load_cert_chain(args.cert, args.key)
    if args.resume == "id":
        context.options |= ssl.OP_NO_TICKET
    return context


def one_connection(context, args, request, session):
    """One connection, one request; (resumed, status, session to offer next)."""
    raw = socket.create_connection((args.host, args.port), timeout=10)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with context.wrap_socket(raw, server_hostname=args.host, session=session) as tls:
        tls.sendall(request)
        head = b""
        while True:
            data = tls.recv(65536)
            if not data:
                break
            if len(head) < 16:
                head += data[:16]
        status = head.split(b" ", 2)[1].decode() if head.count(b" ") >= 1 else "?"
        return tls.session_reused, status, tls.session


def worker(args, queue):
    context = client_context(args)
    request = ("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: fleet.mtls-handshake-bench\r\n"
               "Connection: close\r\n\r\n" % (args.path, args.host)).encode()
    counts = {"connections": 0, "resumed": 0, "errors": 0, "statuses": {}, "error": ""}
    session = None
    start_cpu = time.process_time()
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        try:
            resumed, status, new_session = one_connection(context, args, request,
                                                          session if args.resume != "none" else None)
        except (OSError, ssl.SSLError) as exc:
            counts["errors"] += 1
            counts["error"] = str(exc)[:200]
            session = None
            continue
        counts["connections"] += 1
        counts["resumed"] += bool(resumed)
        counts["statuses"][status] = counts["statuses"].get(status, 0) + 1
        session = new_session
    counts["cpu"] = time.process_time() - start_cpu
    queue.put(counts)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    queue = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=worker, args=(args, queue)) for _proc in range(args.procs)]
    start = time.monotonic()
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=args.seconds + 60) for _proc in procs]
    for proc in procs:
        proc.join()
    wall = time.monotonic() - start
    connections = sum(r["connections"] for r in results)
    statuses = {}
    for r in results:
        for status, count in r["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    print(json.dumps({
        "host": args.host, "port": args.port, "tls": args.tls, "resume": args.resume,
        "mtls": bool(args.cert), "procs": args.procs, "seconds": round(wall, 3),
        "connections": connections, "rate": round(connections / args.seconds, 1),
        "resumed_share": round(sum(r["resumed"] for r in results) / connections, 3) if connections else 0.0,
        "statuses": statuses, "errors": sum(r["errors"] for r in results),
        "last_error": next((r["error"] for r in results if r["error"]), ""),
        "client_cpu_cores": round(sum(r["cpu"] for r in results) / args.seconds, 2),
    }, sort_keys=True))
    return 0 if connections else 1


if __name__ == "__main__":
    sys.exit(main())
