"""A marker HTTP listener for the egress_allowlist scenario's verify.

`eg_listener.py ADDRESS BODY LIFETIME PORT [PORT ...]` answers every HTTP request on
each ADDRESS:PORT with BODY, and exits by itself after LIFETIME seconds so a failed
run cannot leave it behind for long. A script of its own (not `python -m http.server`)
so it can be told apart from other tests' listeners on a shared machine.
"""

from __future__ import annotations

import http.server
import sys
import threading


def marker_server(address: str, port: int, body: bytes) -> http.server.ThreadingHTTPServer:
    class Marker(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return http.server.ThreadingHTTPServer((address, port), Marker)


def main() -> None:
    address, body, lifetime, *ports = sys.argv[1:]
    # Bind every port before serving any, so a port already taken ends the process at once.
    servers = [marker_server(address, int(port), body.encode()) for port in ports]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    threading.Event().wait(float(lifetime))


if __name__ == "__main__":
    main()
