"""The fleet.mtls demo service: answers every request with the caller's verified identity, as JSON."""

import json
import socket

import fleet_mtls_identity


def app(environ, start_response):
    peer = fleet_mtls_identity.peer_identity(environ)
    body = json.dumps({
        "service": "fleet.mtls python_service demo",
        "host": socket.gethostname(),
        "path": environ.get("PATH_INFO", "/"),
        "client_addr": environ.get("REMOTE_ADDR", ""),
        "client": peer,
    }, sort_keys=True).encode("utf-8") + b"\n"
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
