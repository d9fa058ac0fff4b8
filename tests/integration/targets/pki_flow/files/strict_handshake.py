"""Serve CERT+KEY on loopback and connect with VERIFY_X509_STRICT against CA.

Usage: strict_handshake.py CERT KEY CA SERVER_NAME. Prints 'verified NAME' on success.
"""
import socket
import ssl
import sys
import threading

cert, key, ca, name = sys.argv[1:5]
server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
server_ctx.load_cert_chain(cert, key)
client_ctx = ssl.create_default_context(cafile=ca)
client_ctx.verify_flags |= ssl.VERIFY_X509_STRICT
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(1)
listener.settimeout(10)


def serve():
    conn, _addr = listener.accept()
    try:
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1)
    except (ssl.SSLError, OSError):
        pass


thread = threading.Thread(target=serve)
thread.daemon = True
thread.start()
with socket.create_connection(listener.getsockname(), timeout=10) as raw:
    with client_ctx.wrap_socket(raw, server_hostname=name) as tls:
        tls.sendall(b"x")
        print("verified %s with %s" % (name, tls.version()))
thread.join(10)
