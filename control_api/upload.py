"""Streaming an uploaded body to a private file, never whole into memory: hashed
(SHA-256) as it is written, and cut off the moment it passes its limit, whatever
Content-Length said. Documents (documents/receive.py) and release bundles
(release/updates.py) are received through it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import falcon

CHUNK = 1 << 16


def body_stream(req: falcon.Request) -> BinaryIO:
    """The request's body. A chunked body declares no length: gunicorn marks the input
    terminated and the raw stream ends with the body (readers never go past a limit anyway)."""
    chunked = req.content_length is None and req.env.get("wsgi.input_terminated")
    return req.stream if chunked else req.bounded_stream


class Sink:
    """A new file (0600, never an existing one): hashed, counted, bounded. Past `limit`
    bytes, `too_large()` is raised and nothing more is written."""

    def __init__(self, path: Path, limit: int, too_large: Callable[[], Exception]) -> None:
        self.path, self.limit, self.too_large = path, limit, too_large
        self.handle: BinaryIO = open(path, "xb")  # noqa: SIM115 (closed by close())
        path.chmod(0o600)
        self.digest, self.size = hashlib.sha256(), 0

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise self.too_large()
        self.digest.update(data)
        self.handle.write(data)

    def close(self) -> None:
        self.handle.close()


def chunks(stream: BinaryIO, limit: int) -> Iterator[bytes]:
    """The body in chunks; never reads more than one byte past `limit`."""
    read = 0
    while True:
        chunk = stream.read(min(CHUNK, limit + 1 - read))
        if not chunk:
            return
        read += len(chunk)
        yield chunk
        if read > limit:
            return


def receive(stream: BinaryIO, path: Path, limit: int, too_large: Callable[[], Exception]) -> tuple[str, int]:
    """The whole body into a new file at `path`: (SHA-256 hex, size). On any error the
    caller removes the file (it owns the directory)."""
    sink = Sink(path, limit, too_large)
    try:
        for chunk in chunks(stream, limit):
            sink.write(chunk)
    finally:
        sink.close()
    return sink.digest.hexdigest(), sink.size
