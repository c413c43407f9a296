"""An upload's way from its private temporary file to a PDF fit to publish. Every stage
is bounded and fails closed:

1. clamd scans the upload, whatever it is (a signature found: 422, the caller
   quarantines it; clamd unreachable: 503 when FF_REQUIRE_AV=1, otherwise the upload
   goes on marked unscanned), so that no parser reads what the scanner flagged;
2. the file starts with `%PDF-` and opens strictly, with at least one page (422 if not);
3. Ghostscript re-renders it (flatten.py: confined, timed, memory-capped);
4. what Ghostscript left active (a /Launch link, say) is stripped, and the result is
   inspected again: nothing active may remain, and it must have the original's page
   count (422 otherwise).

Parsing (1, 4) runs in a forked, bounded child (sandbox.py). Nothing here touches the
store: the caller keeps the files, records the outcome and cleans the directory.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from control_api.documents import pdfcheck
from control_api.documents.clamd import ClamdScanner, Unreachable
from control_api.documents.flatten import FlattenFailed, FlattenUnavailable, flatten
from control_api.documents.sandbox import CheckFailed, SandboxFailure, run_bounded

MAGIC = b"%PDF-"


@dataclasses.dataclass(frozen=True)
class Limits:
    seconds: int = 120
    memory_bytes: int = 1 << 30


class Rejected(Exception):
    """The content is refused. `reason` is a short code for the audit event; str() says why."""

    def __init__(self, reason: str, message: str, signature: str | None = None) -> None:
        super().__init__(message)
        self.reason, self.signature = reason, signature


class ScanImpossible(Exception):
    """clamd could not scan the file and FF_REQUIRE_AV=1; str() says why."""


class FlattenImpossible(Exception):
    """Ghostscript cannot run here at all; str() says why."""


@dataclasses.dataclass(frozen=True)
class Scan:
    scanned: bool
    note: str  # "clean", or why it was not scanned


@dataclasses.dataclass(frozen=True)
class Flattened:
    path: Path
    sha256: str
    size: int
    pages: int
    removed: tuple[str, ...]  # active content found in the original, or left by Ghostscript


class Pipeline:
    def __init__(self, scanner: ClamdScanner, require_av: bool, limits: Limits) -> None:
        self.scanner, self.require_av, self.limits = scanner, require_av, limits

    def _bounded(self, fn, *args):
        try:
            return run_bounded(fn, *args, timeout=self.limits.seconds, memory_bytes=self.limits.memory_bytes)
        except CheckFailed as exc:
            raise Rejected("not_pdf", f"the file is not a usable PDF: {exc}") from None
        except SandboxFailure as exc:
            raise Rejected("too_costly", f"checking the PDF was stopped: {exc}") from None

    def check(self, path: Path, size: int) -> dict:
        """Stage 2: {"pages", "active"} of the original."""
        if size == 0:
            raise Rejected("empty", "the file is empty")
        with open(path, "rb") as handle:
            if handle.read(len(MAGIC)) != MAGIC:
                raise Rejected("not_pdf", "the file is not a PDF (it does not start with %PDF-)")
        return self._bounded(pdfcheck.inspect, str(path))

    def scan(self, path: Path) -> Scan:
        """Stage 1. Rejected("virus") when clamd names a signature."""
        try:
            verdict = self.scanner.scan(path)
        except Unreachable as exc:
            if self.require_av:
                raise ScanImpossible(str(exc)) from None
            return Scan(scanned=False, note=f"not scanned: {exc}")
        if not verdict.clean:
            raise Rejected("virus", f"the virus scanner found {verdict.signature}", verdict.signature)
        return Scan(scanned=True, note="clean")

    def flatten(self, original: Path, pages: int, active: list[str]) -> Flattened:
        """Stages 3 and 4."""
        rendered = original.with_name("flattened.pdf")
        try:
            flatten(original, rendered, self.limits.seconds, self.limits.memory_bytes)
        except FlattenFailed as exc:
            raise Rejected("flatten_failed", f"the PDF could not be flattened: {exc}") from None
        except FlattenUnavailable as exc:
            raise FlattenImpossible(str(exc)) from None
        after = self._bounded(pdfcheck.inspect, str(rendered))
        removed = set(active)
        if after["active"]:
            stripped = original.with_name("stripped.pdf")
            removed.update(self._bounded(pdfcheck.strip, str(rendered), str(stripped))["removed"])
            rendered = stripped
            after = self._bounded(pdfcheck.inspect, str(rendered))
            if after["active"]:
                raise Rejected("active_content", "active content survived flattening: "
                                                 + ", ".join(after["active"]))
        if after["pages"] != pages:
            raise Rejected("page_count", f"flattening changed the page count ({pages} -> {after['pages']})")
        digest, size = file_sha256(rendered)
        return Flattened(rendered, digest, size, pages, tuple(sorted(removed)))


def file_sha256(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size
