"""Asking clamd whether a file holds malware, over its unix socket with the INSTREAM
command (clamd(8), "INSTREAM": the data in chunks, each prefixed with its length as a
4-byte big-endian integer, ended by a zero-length chunk; the reply is
"stream: OK", "stream: NAME FOUND" or an error, NUL-terminated with the z prefix).

Anything but a clear OK or FOUND (no socket, a timeout, clamd's own size limit, an
error reply) is `Unreachable`: the caller decides, by FF_REQUIRE_AV, whether an
unscanned upload may go on.
"""

from __future__ import annotations

import dataclasses
import socket
import struct
from pathlib import Path

CHUNK = 1 << 16
REPLY_MAX = 4096


class Unreachable(Exception):
    """The file could not be scanned; str() says why."""


@dataclasses.dataclass(frozen=True)
class Verdict:
    clean: bool
    signature: str | None = None


class ClamdScanner:
    def __init__(self, socket_path: str, timeout: float = 120.0) -> None:
        self.socket_path, self.timeout = socket_path, timeout

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError as exc:
            sock.close()
            why = exc.strerror or exc
            raise Unreachable(f"clamd is not reachable at {self.socket_path}: {why}") from None
        return sock

    def ping(self) -> bool:
        try:
            with self._connect() as sock:
                sock.sendall(b"zPING\0")
                return _read_reply(sock) == "PONG"
        except (Unreachable, OSError):
            return False

    def scan(self, path: Path) -> Verdict:
        try:
            with self._connect() as sock, open(path, "rb") as handle:
                sock.sendall(b"zINSTREAM\0")
                try:
                    while block := handle.read(CHUNK):
                        sock.sendall(struct.pack(">I", len(block)) + block)
                    sock.sendall(struct.pack(">I", 0))
                except BrokenPipeError:
                    pass  # clamd stopped reading (its size limit): its reply says why
                reply = _read_reply(sock)
        except TimeoutError:
            raise Unreachable(f"clamd did not answer within {self.timeout:g} s") from None
        except OSError as exc:
            raise Unreachable(f"clamd failed: {exc.strerror or exc}") from None
        return _verdict(reply)


def _read_reply(sock: socket.socket) -> str:
    reply = b""
    while not reply.endswith(b"\0") and len(reply) < REPLY_MAX:
        block = sock.recv(REPLY_MAX)
        if not block:
            break
        reply += block
    return reply.rstrip(b"\0").decode("utf-8", "replace").strip()


def _verdict(reply: str) -> Verdict:
    _, _, result = reply.partition(": ")
    if result == "OK":
        return Verdict(clean=True)
    if result.endswith(" FOUND") and result[: -len(" FOUND")].strip():
        return Verdict(clean=False, signature=result[: -len(" FOUND")].strip()[:200])
    raise Unreachable(f"clamd could not scan the file: {reply[:200] or 'no answer'}")
