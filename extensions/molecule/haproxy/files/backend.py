"""A small HTTPS backend for the haproxy scenario: requires a client certificate from the fleet's CA and
answers every GET with what it saw (the TLS peer, whether its session was resumed, and the X-Client-*
headers HAProxy added), as JSON.

    backend.py [PORT [--tls12-close]]

--tls12-close: TLS 1.2 only, and every connection closed after its response, as gunicorn's sync worker
does; with Debian 12's Python such a server resumes sessions by tickets only."""
import http.server
import json
import ssl
import sys

CERTS = "/etc/fleet-mtls/certs"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 (http.server's name)
        peer = self.connection.getpeercert() or {}
        subject = dict(item[0] for item in peer.get("subject", ()))
        body = json.dumps({
            "backend": "ok",
            "tls_peer_cn": subject.get("commonName", ""),
            "tls_resumed": self.connection.session_reused,
            "headers": {k: v for k, v in self.headers.items() if k.lower().startswith("x-client-")},
        }).encode() + b"\n"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9443
    close = "--tls12-close" in sys.argv[2:]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if close:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        Handler.protocol_version = "HTTP/1.0"
    context.load_cert_chain(CERTS + "/server.fullchain.pem", CERTS + "/server.key")
    context.load_verify_locations(CERTS + "/ca-bundle.pem")
    context.verify_mode = ssl.CERT_REQUIRED
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
