"""A small local Cloud KMS: the v1 REST `:encrypt` and `:decrypt` methods, as the real
google-cloud-kms client speaks them (JSON, base64 bytes, int64 CRC32C as strings).

No emulator exists, so this is the one fake among the test peers. It behaves as the
service does where our code depends on it: unknown keys are 404, ciphertexts only
decrypt under their key and AAD, request checksums are verified and reported.
`corrupt` makes it lie in its answers, to show that our client-side checks hold.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import google_crc32c
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def _crc(data: bytes) -> str:
    return str(google_crc32c.value(data))


class FakeCloudKms:
    def __init__(self, keys: list[str]) -> None:
        self.keys = {name: AESGCM.generate_key(bit_length=256) for name in keys}
        self.corrupt: str | None = None  # "plaintext" | "ciphertext" | "unverified"
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeCloudKms:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        kms = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                path = urlsplit(self.path).path  # the client adds $alt=json etc.
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                name, _, method = path.removeprefix("/v1/").rpartition(":")
                if name not in kms.keys:
                    return self.reply(404, _error(404, "NOT_FOUND", f"CryptoKey {name} not found."))
                handler = {"encrypt": kms.encrypt, "decrypt": kms.decrypt}.get(method)
                if handler is None:
                    return self.reply(404, _error(404, "NOT_FOUND", "unknown method"))
                status, answer = handler(name, body)
                self.reply(status, answer)

            def reply(self, status: int, answer: dict) -> None:
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def encrypt(self, name: str, body: dict) -> tuple[int, dict]:
        plaintext = base64.b64decode(body.get("plaintext", ""))
        aad = base64.b64decode(body.get("additionalAuthenticatedData", ""))
        if "plaintextCrc32c" in body and body["plaintextCrc32c"] != _crc(plaintext):
            return 400, _error(400, "INVALID_ARGUMENT",
                               "The checksum in field plaintext_crc32c did not match.")
        nonce = os.urandom(12)
        ciphertext = b"fake1" + nonce + AESGCM(self.keys[name]).encrypt(nonce, plaintext, aad)
        answer = {"name": f"{name}/cryptoKeyVersions/1",
                  "ciphertext": base64.b64encode(ciphertext).decode(),
                  "ciphertextCrc32c": _crc(ciphertext),
                  "verifiedPlaintextCrc32c": "plaintextCrc32c" in body,
                  "verifiedAdditionalAuthenticatedDataCrc32c": "additionalAuthenticatedDataCrc32c" in body,
                  "protectionLevel": "SOFTWARE"}
        if self.corrupt == "ciphertext":
            answer["ciphertextCrc32c"] = str((int(answer["ciphertextCrc32c"]) + 1) % 2**32)
        if self.corrupt == "unverified":
            answer["verifiedPlaintextCrc32c"] = False
        return 200, answer

    def decrypt(self, name: str, body: dict) -> tuple[int, dict]:
        ciphertext = base64.b64decode(body.get("ciphertext", ""))
        aad = base64.b64decode(body.get("additionalAuthenticatedData", ""))
        if "ciphertextCrc32c" in body and body["ciphertextCrc32c"] != _crc(ciphertext):
            return 400, _error(400, "INVALID_ARGUMENT",
                               "The checksum in field ciphertext_crc32c did not match.")
        try:
            if not ciphertext.startswith(b"fake1"):
                raise InvalidTag
            plaintext = AESGCM(self.keys[name]).decrypt(ciphertext[5:17], ciphertext[17:], aad)
        except InvalidTag:
            return 400, _error(400, "INVALID_ARGUMENT", "Decryption failed: verify that 'name' refers "
                               "to the correct CryptoKey.")
        crc = _crc(plaintext)
        if self.corrupt == "plaintext":
            plaintext = bytes([plaintext[0] ^ 1]) + plaintext[1:]
        return 200, {"plaintext": base64.b64encode(plaintext).decode(), "plaintextCrc32c": crc,
                     "usedPrimary": True, "protectionLevel": "SOFTWARE"}


def _error(code: int, status: str, message: str) -> dict:
    return {"error": {"code": code, "message": message, "status": status}}
