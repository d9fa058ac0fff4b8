"""Bounded load for the zero-loss reload test: one new TLS connection per request, with a client certificate,
until MAX requests are sent, SECONDS have passed or the STOP file exists (whichever first). Prints one JSON line
with the counts and the first few failures.

usage: load.py HOST PORT CERT KEY CAFILE MAX SECONDS STOP"""
import json
import os
import ssl
import sys
import time
import http.client

host, port, cert, key, cafile = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
max_requests, seconds, stop = int(sys.argv[6]), float(sys.argv[7]), sys.argv[8]

context = ssl.create_default_context(cafile=cafile)
context.load_cert_chain(cert, key)
sent = ok = 0
failures = []
statuses = {}
deadline = time.monotonic() + seconds
start = time.monotonic()
while sent < max_requests and time.monotonic() < deadline and not os.path.exists(stop):
    sent += 1
    try:
        conn = http.client.HTTPSConnection(host, port, context=context, timeout=10)
        conn.request("GET", "/load", headers={"Connection": "close"})
        response = conn.getresponse()
        response.read()
        conn.close()
        statuses[response.status] = statuses.get(response.status, 0) + 1
        if response.status == 200:
            ok += 1
        elif len(failures) < 10:
            failures.append("HTTP %d" % response.status)
    except Exception as exc:  # every failure counts, whatever it is
        if len(failures) < 10:
            failures.append(repr(exc))
print(json.dumps({"sent": sent, "ok": ok, "failed": sent - ok, "seconds": round(time.monotonic() - start, 1),
                  "statuses": statuses, "failures": failures}))
