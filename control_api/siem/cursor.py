"""Durable cursors over the sealed audit chain (table audit_cursors), and the lock that
lets one watcher at a time move them.

A cursor is (seq, MAC) of the last row it covers. It only moves forward, by a
compare-and-set on the position it was read at, so even two processes that both
believed they held the lock could not move it backwards or skip rows between them.

The lock: on PostgreSQL a session-level advisory lock (pg_try_advisory_lock) held on
the watcher's own connection for as long as it runs, so one watcher at a time across
every machine using the store; on SQLite (one machine) an exclusive flock on a file
beside the database.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import os
from pathlib import Path

import peewee

from control_api.audit.chain import GENESIS_MAC
from control_api.db import dialect
from control_api.siem.message import SealedRow

_PG_WATCH_LOCK = 0x77656332


@dataclasses.dataclass(frozen=True)
class Position:
    seq: int
    mac: str


START = Position(0, GENESIS_MAC)


class CursorMoved(Exception):
    """Another process moved the cursor since it was read: this one must stop."""


def read(db: peewee.Database, name: str) -> Position:
    # Only placeholders (and an int) are formatted into the SQL of this module.
    row = db.execute_sql(f"SELECT seq, mac FROM audit_cursors WHERE name = {db.param}",  # noqa: S608
                         (name,)).fetchone()
    return Position(int(row[0]), row[1]) if row else START


def advance(db: peewee.Database, name: str, old: Position, new: Position, now: dt.datetime) -> None:
    """Move the cursor from `old` to `new` (inside the caller's transaction, if any)."""
    p = db.param
    if new.seq <= old.seq:
        raise ValueError("a cursor only moves forward")
    with db.atomic():
        if old == START and read(db, name) == START:
            cursor = db.execute_sql(
                f"INSERT INTO audit_cursors (name, seq, mac, updated_at) VALUES ({p}, {p}, {p}, {p}) "  # noqa: S608
                "ON CONFLICT (name) DO NOTHING", (name, new.seq, new.mac, now))
        else:
            cursor = db.execute_sql(
                f"UPDATE audit_cursors SET seq = {p}, mac = {p}, updated_at = {p} "  # noqa: S608
                f"WHERE name = {p} AND seq = {p} AND mac = {p}",
                (new.seq, new.mac, now, name, old.seq, old.mac))
        if cursor.rowcount != 1:
            raise CursorMoved(f"the cursor {name} moved since it was read at row {old.seq}")


def rows_after(db: peewee.Database, seq: int, limit: int) -> list[SealedRow]:
    """Sealed rows after `seq`, in order, at most `limit`."""
    cursor = db.execute_sql(
        "SELECT seq, mac, prev_mac, mac_key_id, witness_key_id, signature, event_json FROM audit_events "  # noqa: S608
        f"WHERE seq > {db.param} ORDER BY seq LIMIT {int(limit)}", (seq,))
    return [SealedRow(int(r[0]), *r[1:]) for r in cursor.fetchall()]


def head(db: peewee.Database) -> Position:
    row = db.execute_sql("SELECT seq, mac FROM audit_events ORDER BY seq DESC LIMIT 1").fetchone()
    return Position(int(row[0]), row[1]) if row else START


class WatchLock:
    """One watcher at a time. `try_acquire` never waits; `held` after a store error is
    False (the connection, and a PostgreSQL lock with it, may be gone)."""

    def __init__(self, db: peewee.Database, lock_file: Path | None = None) -> None:
        self.db = db
        self.lock_file = lock_file
        self.held = False
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        if self.held:
            return True
        if dialect(self.db) == "postgresql":
            self.held = bool(self.db.execute_sql("SELECT pg_try_advisory_lock(%s)",
                                                 (_PG_WATCH_LOCK,)).fetchone()[0])
        else:
            fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            self._fd, self.held = fd, True
        return self.held

    def lost(self) -> None:
        """The connection failed: drop it (and so the lock) for good, and start over."""
        self.held = False
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if dialect(self.db) == "postgresql":
            self._drop_connection()

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        else:
            try:
                self.db.execute_sql("SELECT pg_advisory_unlock(%s)", (_PG_WATCH_LOCK,))
            except peewee.DatabaseError:
                self._drop_connection()

    def _drop_connection(self) -> None:
        # Closed for real, not returned to the pool: a pooled connection would keep
        # a session lock for whoever got it next.
        try:
            if hasattr(self.db, "manual_close"):
                self.db.manual_close()
            else:
                self.db.close()
        except peewee.DatabaseError:
            pass
