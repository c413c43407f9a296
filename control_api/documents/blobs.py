"""The document store on disk: every original and flattened PDF kept once, under its
SHA-256, and the private places uploads pass through.

Layout under the store's root (FF_DOCUMENT_STORE_DIR, default FF_DATA_DIR/documents),
every directory 0700:

    sha256/ab/<digest>   a stored file, read-only (0444), written once and never changed
    quarantine/<digest>  a copy of an upload the virus scanner flagged (0400), for review
    tmp/<random>/        one private directory per upload in progress, removed when it ends

A file enters `sha256/` by a hard link from the upload's directory, after it was
fsynced: the name appears whole or not at all, and a second upload of the same content
finds it there and links nothing.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

_DIGEST = re.compile(r"[0-9a-f]{64}")


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def ensure(self) -> None:
        for part in ("", "sha256", "quarantine", "tmp"):
            directory = self.root / part
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            directory.chmod(0o700)

    def path(self, digest: str) -> Path:
        if not _DIGEST.fullmatch(digest):
            raise ValueError("not a SHA-256 hex digest")
        return self.root / "sha256" / digest[:2] / digest

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    @contextlib.contextmanager
    def workspace(self) -> Iterator[Path]:
        """A private directory for one upload, removed with everything in it at the end,
        whatever happened."""
        self.ensure()
        directory = Path(tempfile.mkdtemp(prefix="upload-", dir=self.root / "tmp"))
        try:
            yield directory
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def put(self, source: Path, digest: str) -> Path:
        """Keep `source` (already hashed to `digest`) as the stored file; a file already
        stored under that digest is kept as it is."""
        final = self.path(digest)
        if final.is_file():
            return final
        final.parent.mkdir(mode=0o700, exist_ok=True)
        _fsync(source)
        source.chmod(0o444)
        with contextlib.suppress(FileExistsError):  # stored meanwhile by a parallel upload
            os.link(source, final)
        _fsync_dir(final.parent)
        return final

    def quarantine(self, source: Path, digest: str) -> Path:
        target = self.root / "quarantine" / self.path(digest).name
        if not target.exists():
            partial = target.with_name(target.name + ".partial")
            shutil.copyfile(source, partial)
            partial.chmod(0o400)
            partial.replace(target)
        return target

    def tmp_entries(self) -> list[Path]:
        """What uploads in progress (or leaked) hold: empty when none is running."""
        tmp = self.root / "tmp"
        return sorted(tmp.iterdir()) if tmp.is_dir() else []


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
