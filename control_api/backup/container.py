"""The plaintext inside a backup's encrypted stream: named members, each a sequence of
length-prefixed frames, so a member (pg_dump's output, say) is written as it is
produced, without knowing its size first, and read back in bounded memory.

    member   := b"M" name_len:u16 name frame* end_frame
    frame    := len:u32 bytes        (1 <= len <= MAX_FRAME)
    end_frame:= 0:u32
    archive  := member* b"E"
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from typing import BinaryIO

MAX_FRAME = 1 << 20
MAX_NAME = 255
_U16, _U32 = struct.Struct(">H"), struct.Struct(">I")


class ContainerError(Exception):
    """The decrypted plaintext is not a well-formed archive (a bug, or a foreign file)."""


class ContainerWriter:
    def __init__(self, sink: BinaryIO) -> None:
        self._sink = sink

    def member(self, name: str, chunks: Iterable[bytes]) -> int:
        encoded = name.encode("utf-8")
        if not 0 < len(encoded) <= MAX_NAME:
            raise ContainerError(f"member name {name!r} is empty or too long")
        self._sink.write(b"M" + _U16.pack(len(encoded)) + encoded)
        total = 0
        for chunk in chunks:
            for start in range(0, len(chunk), MAX_FRAME):
                frame = chunk[start:start + MAX_FRAME]
                self._sink.write(_U32.pack(len(frame)))
                self._sink.write(frame)
                total += len(frame)
        self._sink.write(_U32.pack(0))
        return total

    def end(self) -> None:
        self._sink.write(b"E")


class _Reader:
    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = bytearray()

    def read(self, size: int) -> bytes:
        while len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                raise ContainerError("the archive ends in the middle of a member")
            self._buffer += chunk
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def at_end(self) -> bool:
        if self._buffer:
            return False
        for chunk in self._chunks:
            if chunk:
                self._buffer += chunk
                return False
        return True


def read_members(chunks: Iterable[bytes]) -> Iterator[tuple[str, Iterator[bytes]]]:
    """(name, its data frames) for every member in order; each member's frames must be
    consumed (or abandoned with the whole iteration) before asking for the next."""
    reader = _Reader(chunks)
    while True:
        kind = reader.read(1)
        if kind == b"E":
            if not reader.at_end():
                raise ContainerError("data follows the archive's end marker")
            return
        if kind != b"M":
            raise ContainerError("not a backup archive (unknown record)")
        (length,) = _U16.unpack(reader.read(2))
        try:
            name = reader.read(length).decode("utf-8")
        except UnicodeDecodeError:
            raise ContainerError("a member name is not UTF-8") from None
        frames = _frames(reader)
        yield name, frames
        for _ in frames:  # the caller skipped the rest of this member
            pass


def _frames(reader: _Reader) -> Iterator[bytes]:
    while True:
        (length,) = _U32.unpack(reader.read(4))
        if length == 0:
            return
        if length > MAX_FRAME:
            raise ContainerError("a frame is larger than the format allows")
        yield reader.read(length)
