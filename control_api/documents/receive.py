"""Reading an upload's body into the upload's private directory, never whole into memory.

Two forms: a raw `application/pdf` body, and `multipart/form-data` with one `file` part
(the PDF, with its filename) and an optional `title` part, parsed as it streams by
python-multipart. The PDF is hashed (SHA-256) as it is written, and the upload is cut
off (413) the moment it passes the limit, whatever Content-Length said.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from python_multipart.multipart import MultipartParser, parse_options_header

from control_api.documents.errors import BadUpload, UnsupportedUpload, UploadTooLarge
from control_api.upload import Sink, chunks, receive

FIELD_MAX_BYTES = 1024  # a title, or a part's header line
MULTIPART_SLACK = 64 * 1024  # what a multipart body may hold besides the file


@dataclasses.dataclass(frozen=True)
class Received:
    path: Path
    sha256: str
    size: int
    filename: str | None
    title: str | None


def _too_large(limit: int) -> Callable[[], Exception]:
    return lambda: UploadTooLarge(f"a document must be at most {limit // (1 << 20)} MiB")


def receive_raw(stream: BinaryIO, directory: Path, limit: int, filename: str | None,
                title: str | None) -> Received:
    path = directory / "upload.pdf"
    digest, size = receive(stream, path, limit, _too_large(limit))
    return Received(path, digest, size, filename, title)


class _Form:
    """python-multipart's callbacks: one `file` part to the sink, a small `title`."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.header_name = self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.part: str | None = None
        self.filename: str | None = None
        self.title: bytearray | None = None
        self.seen: set[str] = set()
        self.ended = False

    def callbacks(self) -> dict:
        return {"on_part_begin": self.part_begin, "on_header_field": self.header_field,
                "on_header_value": self.header_value_cb, "on_header_end": self.header_end,
                "on_headers_finished": self.headers_finished, "on_part_data": self.part_data,
                "on_end": self.end}

    def part_begin(self) -> None:
        self.headers, self.part = {}, None

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]
        if len(self.header_name) > FIELD_MAX_BYTES:
            raise BadUpload("a part's header is too long")

    def header_value_cb(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]
        if len(self.header_value) > FIELD_MAX_BYTES:
            raise BadUpload("a part's header is too long")

    def header_end(self) -> None:
        self.headers[self.header_name.strip().lower()] = self.header_value.strip()
        self.header_name = self.header_value = b""

    def headers_finished(self) -> None:
        kind, params = parse_options_header(self.headers.get(b"content-disposition", b""))
        if kind != b"form-data" or b"name" not in params:
            raise BadUpload("each part needs 'Content-Disposition: form-data; name=...'")
        name = _text(params[b"name"], "a part's name")
        if name not in ("file", "title"):
            raise BadUpload(f"unknown part '{name[:40]}': send 'file' (the PDF) and optionally 'title'")
        if name in self.seen:
            raise BadUpload(f"the part '{name}' is sent twice")
        self.seen.add(name)
        self.part = name
        if name == "file":
            self.filename = _text(params[b"filename"], "the filename") if b"filename" in params else None
        else:
            self.title = bytearray()

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self.part == "file":
            self.sink.write(data[start:end])
        elif self.part == "title":
            self.title += data[start:end]
            if len(self.title) > FIELD_MAX_BYTES:
                raise BadUpload(f"'title' must be at most {FIELD_MAX_BYTES} bytes")

    def end(self) -> None:
        self.ended = True


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadUpload(f"{what} is not UTF-8") from None


def boundary_of(content_type: str) -> bytes:
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary", b"")
    if not 1 <= len(boundary) <= 70:
        raise UnsupportedUpload("multipart/form-data needs a boundary of 1 to 70 characters")
    return boundary


def receive_multipart(stream: BinaryIO, directory: Path, limit: int, boundary: bytes) -> Received:
    sink = Sink(directory / "upload.pdf", limit, _too_large(limit))
    form = _Form(sink)
    parser = MultipartParser(boundary, form.callbacks())
    body_limit, read = limit + MULTIPART_SLACK, 0
    try:
        for chunk in chunks(stream, body_limit):
            read += len(chunk)
            if read > body_limit:
                raise UploadTooLarge(f"a document must be at most {limit // (1 << 20)} MiB, and the "
                                     f"rest of the form at most {MULTIPART_SLACK // 1024} KiB")
            parser.write(chunk)
        parser.finalize()
    except ValueError:  # python-multipart's parse errors (MultipartParseError is one)
        raise BadUpload("the multipart body does not parse") from None
    finally:
        sink.close()
    if not form.ended:
        raise BadUpload("the multipart body ends before its closing boundary")
    if "file" not in form.seen:
        raise BadUpload("send the PDF in a part named 'file'")
    title = _text(bytes(form.title), "'title'") if form.title is not None else None
    return Received(sink.path, sink.digest.hexdigest(), sink.size, form.filename, title)
