"""Does a TLS session made before a change of a server's trust still resume after it?

usage: resume_probe.py --ca CA --cert CERT --key KEY --ready FILE --go FILE
                       [--fresh-cert CERT --fresh-key KEY] [--tls 1.2|1.3]
                       [--path /] [--wait S] [--attempts N] HOST:PORT

One process, so that it can keep its session across the change:
  1. "first": a full handshake with CERT, one request;
  2. "resumed_before": the session resumed, one request (it must resume);
  3. it writes FILE (--ready) and waits (at most --wait seconds) until the
     file --go exists: meanwhile the test changes the server and reloads it;
  4. "resumed_after": the session from 2 offered again, one request;
  5. "fresh_after": a full handshake with --fresh-cert (default CERT).
Each step gives whether the session was reused and the HTTP status, or the
error that ended it (a refused handshake). Prints one JSON object.
Steps 2 and 4 offer the session up to --attempts times (default 1), until it
resumes: on a server of several processes that each keep their own sessions
(gunicorn's workers), a connection resumes only on the one that made it. The
step then gives the attempt that resumed, or else the first one, and how
many were made.
Every connection sets TCP_NODELAY and sends "Connection: close".
"""
import argparse
import json
import os
import socket
import ssl
import sys
import time

parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
parser.add_argument("--ca", required=True)
parser.add_argument("--cert", required=True)
parser.add_argument("--key", required=True)
parser.add_argument("--fresh-cert")
parser.add_argument("--fresh-key")
parser.add_argument("--ready", required=True)
parser.add_argument("--go", required=True)
parser.add_argument("--tls", choices=["1.2", "1.3"], default="1.3")
parser.add_argument("--path", default="/")
parser.add_argument("--wait", type=float, default=120.0)
parser.add_argument("--attempts", type=int, default=1, help="offer the session up to N times (steps 2 and 4)")
parser.add_argument("target")
args = parser.parse_args()
host, _colon, port = args.target.rpartition(":")
version = ssl.TLSVersion.TLSv1_3 if args.tls == "1.3" else ssl.TLSVersion.TLSv1_2


def context(cert, key):
    ctx = ssl.create_default_context(cafile=args.ca)
    ctx.minimum_version = ctx.maximum_version = version
    ctx.load_cert_chain(cert, key)
    return ctx


def request(ctx, session=None):
    """One request on a new connection: (result, the connection's session)."""
    result = dict(reused=None, status=None, error=None)
    try:
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with ctx.wrap_socket(raw, server_hostname=host, session=session) as tls:
                tls.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                             % (args.path, host)).encode("ascii"))
                answer = b""
                while True:
                    chunk = tls.recv(65536)
                    if not chunk:
                        break
                    answer += chunk
                result["reused"] = tls.session_reused
                status_line = answer.split(b"\r\n", 1)[0].decode("ascii", "replace")
                parts = status_line.split()
                result["status"] = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
                result["body"] = answer.partition(b"\r\n\r\n")[2][:200].decode("utf-8", "replace")
                return result, tls.session
    except (OSError, ssl.SSLError) as error:
        result["error"] = "%s: %s" % (type(error).__name__, error)
    return result, None


def offer(ctx, session):
    """The session offered up to --attempts times: (the attempt that resumed, else the first; its session)."""
    tried = []
    for _attempt in range(max(1, args.attempts)):
        result, new_session = request(ctx, session)
        tried.append((result, new_session))
        if result["reused"]:
            break
    result, new_session = tried[-1] if tried[-1][0]["reused"] else tried[0]
    return dict(result, attempts=len(tried)), new_session


ctx = context(args.cert, args.key)
report = {}
report["first"], session = request(ctx)
report["resumed_before"], resumed = offer(ctx, session)
session = resumed if report["resumed_before"]["reused"] else session

with open(args.ready, "w", encoding="ascii") as ready:
    ready.write("ready\n")
deadline = time.monotonic() + args.wait
while not os.path.exists(args.go):
    if time.monotonic() > deadline:
        report["error"] = "no %s within %s s" % (args.go, args.wait)
        print(json.dumps(report))
        sys.exit(2)
    time.sleep(0.2)

report["resumed_after"], _session = offer(ctx, session)
fresh = context(args.fresh_cert or args.cert, args.fresh_key or args.key)
report["fresh_after"], _session = request(fresh)
print(json.dumps(report))
