"""Bounded steady load against the Python service: one new TLS connection per request.

usage: load.py HOST PORT CERT KEY CA STOP_FILE MAX_REQUESTS MAX_SECONDS

Stops after MAX_REQUESTS requests, after MAX_SECONDS, or once STOP_FILE
exists, whichever comes first. Prints one JSON object: requests sent,
failed, the first errors, and how many answers each server certificate
serial gave.
"""
import collections
import http.client
import json
import os
import ssl
import sys
import time

host, port, cert, key, ca, stop_file = sys.argv[1:7]
max_requests, max_seconds = int(sys.argv[7]), float(sys.argv[8])

context = ssl.create_default_context(cafile=ca)
context.load_cert_chain(cert, key)

sent = failed = 0
errors = []
serials = collections.Counter()
start = time.monotonic()
while sent < max_requests and time.monotonic() - start < max_seconds and not os.path.exists(stop_file):
    sent += 1
    conn = http.client.HTTPSConnection(host, int(port), context=context, timeout=10)
    try:
        conn.connect()
        serial = conn.sock.getpeercert()["serialNumber"]
        conn.request("GET", "/load")
        response = conn.getresponse()
        body = response.read()
        if response.status != 200 or b'"verify": "SUCCESS"' not in body:
            raise RuntimeError("status %s" % response.status)
        serials[serial] += 1
    except Exception as exc:  # every failure counts
        failed += 1
        if len(errors) < 10:
            errors.append("%s: %s" % (type(exc).__name__, exc))
    finally:
        conn.close()
    time.sleep(0.005)

print(json.dumps({"sent": sent, "failed": failed, "errors": errors, "serials": dict(serials),
                  "seconds": round(time.monotonic() - start, 1)}))
