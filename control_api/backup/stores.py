"""Consistent snapshots of the store and restores into an empty one, per backend.

- SQLite: the online backup API (sqlite3.Connection.backup) copies a consistent
  snapshot into a private temporary file beside the store (the store itself is on that
  disk in the clear already), which is streamed out and removed. A restore writes the
  database to a temporary file beside the target, checks it, and links it into place
  only once the whole backup verified: no partial store ever appears.
- PostgreSQL: a REPEATABLE READ transaction exports its snapshot; the row counts are
  taken in it and `pg_dump --snapshot` dumps exactly that state (custom format), so
  counts and dump agree under concurrent writes. A restore runs `pg_restore
  --single-transaction --exit-on-error`, so a failure leaves the store empty.
  The password reaches pg_dump/pg_restore in PGPASSWORD, never on a command line.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

READ_BYTES = 1 << 20


class StoreError(Exception):
    """The store cannot be snapshotted or restored; str() is one line for the operator."""


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def open_backend(url: str) -> SqliteBackend | PostgresBackend:
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return SqliteBackend(Path(unquote(parts.path)))
    return PostgresBackend(url)


class SqliteBackend:
    kind = "sqlite"
    member = "store.sqlite3"

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[tuple[dict, Iterator[bytes]]]:
        """(facts of the snapshot, its bytes)."""
        if not self.path.exists():
            raise StoreError(f"no store at {self.path}")
        temporary = _private_temp(self.path.parent, ".backup")
        try:
            source = sqlite3.connect(self.path)
            target = sqlite3.connect(temporary)
            try:
                source.backup(target)  # one step: a consistent read of the whole database
                target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
                facts = _facts(target, self.kind)
            finally:
                target.close()
                source.close()
            with temporary.open("rb") as handle:
                yield facts, iter(lambda: handle.read(READ_BYTES), b"")
        finally:
            temporary.unlink(missing_ok=True)

    def is_empty(self) -> bool:
        if not self.path.exists():
            return True
        connection = sqlite3.connect(self.path)
        try:
            return not _tables(connection)
        finally:
            connection.close()

    def restore(self, chunks: Iterable[bytes], expected: dict, finish: Callable[[], None]) -> None:
        """Write the database aside, check it against the manifest's counts, and put it in
        place once `finish` has read and verified the rest of the backup, its final chunk included."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = _private_temp(self.path.parent, ".restore")
        try:
            with temporary.open("wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            connection = sqlite3.connect(temporary)
            try:
                if connection.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                    raise StoreError("the restored SQLite database fails its integrity check")
                _check_counts(_facts(connection, self.kind)["counts"], expected)
                connection.execute("PRAGMA journal_mode=WAL")
            finally:
                connection.close()
            finish()
            if not self.is_empty():
                raise StoreError(f"{self.path} is not empty: restore only into an empty store")
            for suffix in ("-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            os.replace(temporary, self.path)
        finally:
            temporary.unlink(missing_ok=True)

    def drop(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)


class PostgresBackend:
    kind = "postgresql"
    member = "store.pgdump"

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.database = unquote(parts.path.lstrip("/"))
        self.user = unquote(parts.username or "") or None
        self.password = unquote(parts.password or "") or None
        self.host = parts.hostname
        self.port = parts.port or 5432

    def _connect(self, database: str | None = None):
        import psycopg2

        try:
            return psycopg2.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                                    dbname=database or self.database, connect_timeout=10)
        except psycopg2.Error as exc:
            raise StoreError(f"cannot connect to the store: {str(exc).strip().splitlines()[0]}") from None

    def _tool(self, name: str, *args: str) -> list[str]:
        found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                                                         reverse=True)), None)
        if found is None:
            raise StoreError(f"{name} is not installed (apt-get install postgresql-client)")
        return [found, "--no-password", f"--host={self.host}", f"--port={self.port}",
                *([f"--username={self.user}"] if self.user else []), *args]

    def _env(self) -> dict[str, str]:
        # The child's own environment: the password never appears on a command line.
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
        if self.password:
            env["PGPASSWORD"] = self.password
        return env

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[tuple[dict, Iterator[bytes]]]:
        connection = self._connect()
        try:
            connection.set_session(isolation_level="REPEATABLE READ", readonly=True)
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_export_snapshot()")
                snapshot_id = cursor.fetchone()[0]
            facts = _facts(connection, self.kind)
            process = subprocess.Popen(
                self._tool("pg_dump", "--format=custom", f"--snapshot={snapshot_id}",
                           f"--dbname={self.database}"),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self._env())
            try:
                yield facts, _drain(process, "pg_dump")
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        finally:
            connection.close()

    def is_empty(self) -> bool:
        connection = self._connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
                return cursor.fetchone()[0] == 0
        finally:
            connection.close()

    def restore(self, chunks: Iterable[bytes], expected: dict, finish: Callable[[], None]) -> None:
        """pg_restore in one transaction, fed from the verified chunks; the counts are
        checked after it commits. Its input is closed, which lets it commit, only after `finish`
        verified the rest of the backup; the whole backup also verified before this pass."""
        process = subprocess.Popen(
            self._tool("pg_restore", "--single-transaction", "--exit-on-error", "--no-owner",
                       "--no-privileges", f"--dbname={self.database}"),
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=self._env())
        try:
            for chunk in chunks:
                process.stdin.write(chunk)
            finish()
            process.stdin.close()
            error = process.stderr.read().decode("utf-8", "replace")
            if process.wait() != 0:
                raise StoreError(f"pg_restore failed: {_first_line(error)}")
        except BrokenPipeError:
            process.wait()
            error = process.stderr.read().decode("utf-8", "replace")
            raise StoreError(f"pg_restore failed: {_first_line(error)}") from None
        finally:
            if process.poll() is None:
                process.kill()  # the transaction is rolled back with the connection
                process.wait()
        connection = self._connect()
        try:
            _check_counts(_facts(connection, self.kind)["counts"], expected)
        finally:
            connection.close()

    @contextlib.contextmanager
    def scratch(self) -> Iterator[PostgresBackend]:
        """A new, empty database on the same server for a drill, dropped afterwards."""
        name = f"weco_drill_{secrets.token_hex(6)}"
        admin = self._connect()
        admin.autocommit = True
        try:
            with admin.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE {name}")
            scratch = PostgresBackend.__new__(PostgresBackend)
            scratch.__dict__.update(self.__dict__, database=name)
            try:
                yield scratch
            finally:
                with admin.cursor() as cursor:
                    cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            admin.close()

    def url(self) -> str:
        from urllib.parse import quote

        auth = quote(self.user or "", safe="")
        if self.password:
            auth += f":{quote(self.password, safe='')}"
        return f"postgresql://{auth + '@' if auth else ''}{self.host}:{self.port}/{quote(self.database)}"


def _drain(process: subprocess.Popen, name: str) -> Iterator[bytes]:
    yield from iter(lambda: process.stdout.read(READ_BYTES), b"")
    error = process.stderr.read().decode("utf-8", "replace")
    if process.wait() != 0:
        raise StoreError(f"{name} failed: {_first_line(error)}")


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or ["(no message)"])[0]


def _private_temp(directory: Path, tag: str) -> Path:
    path = directory / f".weco{tag}-{secrets.token_hex(6)}.sqlite3"
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    return path


def _tables(connection) -> list[str]:
    if isinstance(connection, sqlite3.Connection):
        rows = connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        return [row[0] for row in rows]
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
        return [row[0] for row in cursor.fetchall()]


def _query(connection, sql: str) -> list[tuple]:
    if isinstance(connection, sqlite3.Connection):
        return connection.execute(sql).fetchall()
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def _facts(connection, kind: str) -> dict:
    """Row counts of every table, the schema version, the audit head and the master key ids."""
    tables = _tables(connection)
    # Table names come from the catalogue, quoted as identifiers: never from input.
    counts = {name: int(_query(connection, f"SELECT count(*) FROM {quote_ident(name)}")[0][0])  # noqa: S608
              for name in tables}
    facts: dict = {"backend": kind, "counts": counts, "schema_version": None, "audit_head": None,
                   "master_key_ids": []}
    if "schema_migrations" in counts:
        facts["schema_version"] = _query(connection, "SELECT max(version) FROM schema_migrations")[0][0]
    if "audit_events" in counts:
        head = _query(connection, "SELECT seq, mac, mac_key_id, witness_key_id FROM audit_events "
                                  "ORDER BY seq DESC LIMIT 1")
        facts["audit_head"] = (dict(zip(("seq", "mac", "mac_key_id", "witness_key_id"), head[0], strict=True))
                               if head else None)
    if "master_keys" in counts:
        facts["master_key_ids"] = [row[0] for row in _query(connection,
                                                            "SELECT key_id FROM master_keys ORDER BY key_id")]
    return facts


def _check_counts(actual: dict, expected: dict) -> None:
    if actual != expected:
        differ = sorted(name for name in set(actual) | set(expected)
                        if actual.get(name) != expected.get(name))
        shown = ", ".join(f"{n} {actual.get(n)} (backup says {expected.get(n)})" for n in differ[:5])
        raise StoreError(f"the restored store's row counts differ from the backup's: {shown}")
