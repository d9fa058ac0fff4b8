"""Steady load against several mTLS servers at once: one thread per server,
one new TLS connection per request.

usage: fleet_load.py CA CERT KEY STOP_FILE MAX_SECONDS HOST:PORT [HOST:PORT ...]

CERT and KEY may be "-": no client certificate (a caller the rollout must
notice). Runs until STOP_FILE exists or MAX_SECONDS have passed, then prints
one JSON object: per server, the requests sent, the failed ones with the
first errors, and how many answers each server certificate serial gave.
"""
import collections
import http.client
import json
import os
import ssl
import sys
import threading
import time

ca, cert, key, stop_file = sys.argv[1:5]
max_seconds = float(sys.argv[5])
targets = sys.argv[6:]

context = ssl.create_default_context(cafile=ca)
if cert != "-":
    context.load_cert_chain(cert, key)

results = {}


def load(target):
    host, port = target.rsplit(":", 1)
    sent = failed = 0
    errors = []
    serials = collections.Counter()
    start = time.monotonic()
    while time.monotonic() - start < max_seconds and not os.path.exists(stop_file):
        sent += 1
        conn = http.client.HTTPSConnection(host, int(port), context=context, timeout=10)
        try:
            conn.connect()
            serial = conn.sock.getpeercert()["serialNumber"]
            conn.request("GET", "/")
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError("HTTP %s" % response.status)
            serials[serial] += 1
        except Exception as exc:  # every failure counts
            failed += 1
            if len(errors) < 10:
                errors.append("%.1fs %s: %s" % (time.monotonic() - start, type(exc).__name__, exc))
        finally:
            conn.close()
        time.sleep(0.1)
    results[target] = {"sent": sent, "failed": failed, "errors": errors, "serials": dict(serials)}


threads = [threading.Thread(target=load, args=(target,)) for target in targets]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps({"targets": results, "sent": sum(r["sent"] for r in results.values()),
                  "failed": sum(r["failed"] for r in results.values())}))
