"""A small real HTTPS receiver for the SIEM's https:// target: TLS with a test CA's
certificate, a bearer token it checks, each POSTed line appended to a file as it came;
told to, it answers 503 to the next N batches (a receiver in trouble)."""

from __future__ import annotations

import http.server
import ssl
import threading
from pathlib import Path

from tests.peers.testca import TestCA


class HttpsReceiver:
    def __init__(self, ca: TestCA, directory: Path, token: str) -> None:
        self.token, self.out = token, directory / "received.jsonl"
        self.fail_next = 0
        self.requests: list[dict] = []
        cert, key = ca.issue("https-receiver", ["localhost", "127.0.0.1"])
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append({"path": self.path,
                                          "authorization": self.headers.get("Authorization"),
                                          "content_type": self.headers.get("Content-Type")})
                if self.headers.get("Authorization") != f"Bearer {receiver.token}":
                    return self._answer(401)
                if receiver.fail_next:
                    receiver.fail_next -= 1
                    return self._answer(503)
                with receiver.out.open("ab") as handle:
                    handle.write(body)
                self._answer(200)

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"https://localhost:{self.port}/services/collector/event"

    def start(self) -> HttpsReceiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
