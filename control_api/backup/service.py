"""Backups of the store: create, verify, restore and the restore drill.

A backup is one encrypted stream (stream.py) holding an archive (container.py) of
`manifest.json` (backend, schema version, row counts, audit head, master key ids),
`checkpoints.jsonl` (the audit checkpoint file, read before the snapshot so that it
vouches only for rows the snapshot holds) and the store (stores.py). Never the master
secret, the audit secret or the witness key: a restore needs the same ones configured.

A restore goes into an empty store only. It first verifies the whole backup, then
restores in a second pass that verifies every chunk again before its plaintext is used,
and commits (SQLite: links the file into place; PostgreSQL: ends pg_restore's single
transaction) only after the final chunk verified.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from control_api.backup.container import ContainerError, ContainerWriter, read_members
from control_api.backup.passphrase import PassphraseError
from control_api.backup.stores import PostgresBackend, SqliteBackend, StoreError, open_backend
from control_api.backup.stream import BackupCryptoError, EncryptingWriter, decrypt_stream
from control_api.backup.targets import TargetError, newest, open_sink, open_source

FORMAT = "weco-backup/1"
MANIFEST, CHECKPOINTS = "manifest.json", "checkpoints.jsonl"
ERRORS = (BackupCryptoError, ContainerError, PassphraseError, StoreError, TargetError)


class BackupError(Exception):
    """A backup operation was refused or failed; str() is one line for the operator."""


@dataclasses.dataclass(frozen=True)
class Created:
    location: str
    plaintext_bytes: int
    stored_bytes: int
    seconds: float
    manifest: dict


@dataclasses.dataclass(frozen=True)
class DrillResult:
    location: str
    ok: bool
    seconds: float
    rows: int
    audit_rows: int
    failure: str | None


def _read_file_chunks(path: Path) -> list[bytes]:
    try:
        return [path.read_bytes()]
    except FileNotFoundError:
        return []


def create(database_url: str, location: str, passphrase: bytes, now: dt.datetime, checkpoint_path: Path,
           s3_client: Callable, retention_days: int, **stream_options) -> Created:
    started = time.perf_counter()
    backend = open_backend(database_url)
    checkpoints = _read_file_chunks(checkpoint_path)  # before the snapshot: see the docstring
    sink = open_sink(location, now, s3_client, retention_days)
    try:
        writer = EncryptingWriter(sink, passphrase, **stream_options)
        archive = ContainerWriter(writer)
        with backend.snapshot() as (facts, data):
            manifest = {"format": FORMAT, "created_at": now.isoformat(timespec="seconds") + "Z",
                        "has_checkpoints": bool(checkpoints), "store": backend.member, **facts}
            archive.member(MANIFEST, [json.dumps(manifest, sort_keys=True).encode()])
            archive.member(CHECKPOINTS, checkpoints)
            archive.member(backend.member, data)
        archive.end()
        writer.close()
        sink.commit()
    except BaseException:
        sink.abort()
        raise
    return Created(sink.location, writer.bytes_in, writer.bytes_out, time.perf_counter() - started, manifest)


def _manifest(members: Iterator[tuple[str, Iterator[bytes]]]) -> dict:
    name, frames = next(members, (None, iter(())))
    if name != MANIFEST:
        raise ContainerError("the archive does not start with its manifest")
    try:
        manifest = json.loads(b"".join(frames))
    except ValueError:
        raise ContainerError("the manifest is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ContainerError(f"the manifest is not {FORMAT}")
    return manifest


def verify(source: BinaryIO, passphrase: bytes) -> tuple[dict, dict[str, int]]:
    """Decrypt and parse the whole backup; (manifest, bytes of every member)."""
    members = read_members(decrypt_stream(source, passphrase))
    manifest = _manifest(members)
    sizes = {MANIFEST: 0}
    for name, frames in members:
        sizes[name] = sum(len(frame) for frame in frames)
    expected = {MANIFEST, CHECKPOINTS, manifest.get("store")}
    if set(sizes) != expected:
        raise ContainerError(f"the archive holds {sorted(sizes)}, expected {sorted(expected)}")
    return manifest, sizes


def restore(database_url: str, open_backup: Callable[[], BinaryIO], passphrase: bytes,
            checkpoint_path: Path, precheck: Callable[[dict], None] = lambda manifest: None) -> dict:
    """Restore into an empty store; the manifest restored. `precheck(manifest)` runs once
    the backup verified and before anything is written: it raises to refuse."""
    backend = open_backend(database_url)
    if not backend.is_empty():
        raise BackupError("the target store is not empty: restore only into an empty store "
                          "(a new database, or no SQLite file)")
    if checkpoint_path.exists() and checkpoint_path.stat().st_size:
        raise BackupError(f"the checkpoint file {checkpoint_path} is not empty: restore next to an empty one")
    with open_backup() as source:
        manifest, _ = verify(source, passphrase)
    if manifest["backend"] != backend.kind:
        raise BackupError(f"this is a {manifest['backend']} backup; it restores into a "
                          f"{manifest['backend']} store, "
                          f"not {backend.kind}")
    precheck(manifest)
    with open_backup() as source:
        members = read_members(decrypt_stream(source, passphrase))
        _manifest(members)
        name, frames = next(members)
        checkpoints = b"".join(frames) if name == CHECKPOINTS else None
        name, frames = next(members)
        if checkpoints is None or name != manifest["store"]:
            raise ContainerError("the archive's members are not in order")

        def finish() -> None:
            for extra, _frames in members:
                raise ContainerError(f"unexpected member {extra!r} after the store")

        backend.restore(frames, manifest["counts"], finish)
    if checkpoints:
        checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        with os.fdopen(os.open(checkpoint_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
            out.write(checkpoints)
    return manifest


def drill(database_url: str, source: str, passphrase: bytes, s3_client: Callable,
          check_restored: Callable[[str, Path, dict], tuple[int, str | None]],
          precheck: Callable[[dict], None] = lambda manifest: None) -> DrillResult:
    """Restore the newest backup under `source` into a scratch store of the live store's
    kind, then `check_restored(scratch_url, checkpoint_path, manifest)` -> (audit rows,
    failure). Any refusal is a failed drill, not an exception: it is recorded as such."""
    started = time.perf_counter()
    location, manifest, failure, audit_rows = source, {}, None, 0
    try:
        location = newest(source, s3_client)
        with tempfile.TemporaryDirectory(prefix="weco-drill-") as scratch_dir, \
                _scratch(open_backend(database_url), Path(scratch_dir)) as scratch_url:
            checkpoint_path = Path(scratch_dir) / "checkpoints.jsonl"
            manifest = restore(scratch_url, lambda: open_source(location, s3_client), passphrase,
                               checkpoint_path, precheck)
            audit_rows, failure = check_restored(scratch_url, checkpoint_path, manifest)
    except (BackupError, *ERRORS) as exc:
        failure = str(exc)
    rows = sum(manifest.get("counts", {}).values())
    return DrillResult(location, failure is None, time.perf_counter() - started, rows, audit_rows, failure)


class _scratch:
    def __init__(self, live: SqliteBackend | PostgresBackend, directory: Path) -> None:
        self.live, self.directory, self._inner = live, directory, None

    def __enter__(self) -> str:
        if isinstance(self.live, SqliteBackend):
            return f"sqlite:///{self.directory / 'drill.sqlite3'}"
        self._inner = self.live.scratch()
        return self._inner.__enter__().url()

    def __exit__(self, *exc) -> None:
        if self._inner is not None:
            self._inner.__exit__(*exc)
