"""Recording audit events inside mutations, and sealing them into the chain in batches.

A mutation and its events commit together: `AuditLog.mutation()` opens the
transaction, `record` signs each event with the witness and queues it in that same
transaction, and any failure there rolls the mutation back (AuditUnavailable,
answered as 503). So no mutation exists without its signed, durable event.

Sealing is separate: one sealer at a time (an advisory lock on PostgreSQL; SQLite
has one writer anyway) moves every queued event into audit_events with its
sequence number and chain MAC, in one transaction. It first checks each queued row
(signature, form, duplicates: see quarantine.py) and sets aside, with an audited
alert, what it cannot seal, so one bad row never stalls the rest. Writers never hold a chain lock
while they commit, so commits proceed in parallel and the chain grows in batches,
as a transparency log integrates queued entries (Rekor: a signed promise at once,
inclusion in the next batch).

Who seals: a CLI command seals right after its commit (waiting for the lock), so
it ends with its event in the chain. A server does not make requests wait on the
chain: each server process runs a background sealer that seals every queued event
every SEAL_INTERVAL seconds, skipping a round when another process holds the lock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import peewee

from control_api.audit import quarantine
from control_api.audit.chain import GENESIS_MAC, ChainKey, Witness, canonical_json
from control_api.audit.checkpoints import CheckpointFile
from control_api.clock import SystemClock
from control_api.db import dialect

log = logging.getLogger(__name__)

_PG_SEAL_LOCK = 0x77656331
SEAL_BATCH = 1000
# How long a server leaves an event queued at most (plus the sealing itself).
SEAL_INTERVAL = 0.2


class AuditUnavailable(Exception):
    """The event could not be signed or written, so the mutation did not happen."""


@dataclasses.dataclass(frozen=True)
class Actor:
    """Who acts, and from where: `user:ID`, `cli:OSUSER` or `anonymous`."""

    id: str
    source_ip: str = ""
    user_agent: str = ""


@dataclasses.dataclass(frozen=True)
class SealResult:
    sealed: int  # rows added to the chain, quarantine alerts included
    head_seq: int
    head_mac: str
    quarantined: int = 0


@dataclasses.dataclass(frozen=True)
class _Batch:
    result: SealResult
    passed_checkpoint: bool
    last_queue_id: int
    read: int


class AuditLog:
    def __init__(
        self,
        db: peewee.Database,
        clock: SystemClock,
        chain_key: ChainKey,
        witness: Witness,
        checkpoints: CheckpointFile,
        checkpoint_every: int = 1000,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        seal_after_commit: bool = True,
    ) -> None:
        self.db = db
        self.clock = clock
        self.chain_key = chain_key
        self.witness = witness
        self.checkpoints = checkpoints
        self.checkpoint_every = checkpoint_every
        self.new_id = new_id
        self.seal_after_commit = seal_after_commit
        self._queue_insert = _insert_sql("audit_queue", _QUEUE_COLUMNS, 1, db.param)

    # -- recording ------------------------------------------------------------------

    @contextlib.contextmanager
    def mutation(self) -> Iterator[AuditLog]:
        """A transaction whose changes and recorded events commit together."""
        outermost = not self.db.in_transaction()
        with self.db.atomic():
            yield self
        if outermost and self.seal_after_commit:
            self.seal_quietly()

    def record(self, actor: Actor, action: str, target: str, metadata: dict | None = None) -> None:
        """Sign and queue one event; only inside `mutation()`."""
        if not self.db.in_transaction():
            raise RuntimeError("AuditLog.record must run inside AuditLog.mutation()")
        try:
            event_json = canonical_json(self._event(actor, action, target, metadata))
            signature = self.witness.sign_event(event_json)
            # Plain SQL (built from constants only): this runs in every mutation, and
            # building it through the ORM cost as much CPU as all other audit work.
            self.db.execute_sql(self._queue_insert,
                                (event_json, self.witness.key_id, signature, self.clock.now()))
        except Exception as exc:
            log.error("audit event %s could not be recorded: %s", action, exc)
            raise AuditUnavailable(f"the audit event {action} could not be recorded") from exc

    def record_alone(self, actor: Actor, action: str, target: str, metadata: dict | None = None) -> None:
        """An event with no other change (a failed login, say), in its own transaction."""
        with self.mutation():
            self.record(actor, action, target, metadata)

    def _event(self, actor: Actor, action: str, target: str, metadata: dict | None) -> dict:
        return {
            "id": self.new_id(),
            "time": self.clock.now().isoformat(timespec="microseconds") + "Z",
            "actor": actor.id,
            "action": action,
            "target": target,
            "source_ip": actor.source_ip,
            "user_agent": actor.user_agent[:256],
            "metadata": metadata or {},
        }

    # -- sealing --------------------------------------------------------------------

    def seal_quietly(self) -> None:
        """Seal after a commit. The events are already durable and signed, so a failure
        here only delays sealing until the next call; it must not fail the request."""
        try:
            self.seal()
        except Exception:
            log.exception("sealing the audit queue failed; the next seal will retry")

    def seal(self, wait: bool = True) -> SealResult | None:
        """Move every queued event into the chain; return the new head, or None when
        wait=False and another sealer holds the lock."""
        # From the lowest id there is (None): a row planted at 0 or below is not skipped.
        total, quarantined, after = 0, 0, None
        while True:
            batch = self._seal_batch(wait, after)
            if batch is None:
                return None
            total += batch.result.sealed
            quarantined += batch.result.quarantined
            after = batch.last_queue_id
            if batch.passed_checkpoint:
                self.checkpoint(batch.result)
            if batch.read < SEAL_BATCH:
                return dataclasses.replace(batch.result, sealed=total, quarantined=quarantined)

    def start_background_sealer(self, interval: float = SEAL_INTERVAL) -> threading.Thread:
        """Seal stragglers every `interval` seconds for the life of the process."""

        def loop() -> None:
            while True:
                time.sleep(interval)
                try:
                    self.seal(wait=False)
                except Exception:
                    log.exception("background audit sealing failed; retrying")
                finally:
                    self.db.close()

        thread = threading.Thread(target=loop, name="audit-sealer", daemon=True)
        thread.start()
        return thread

    def _seal_batch(self, wait: bool, after: int | None) -> _Batch | None:
        """Seal the queued rows after queue id `after` (None: from the first), up to
        SEAL_BATCH of them."""
        with self.db.atomic():
            if dialect(self.db) == "postgresql":
                if wait:
                    self.db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_PG_SEAL_LOCK,))
                else:
                    cursor = self.db.execute_sql("SELECT pg_try_advisory_xact_lock(%s)",
                                                 (_PG_SEAL_LOCK,))
                    if not cursor.fetchone()[0]:
                        return None
            head = self.db.execute_sql(
                "SELECT seq, mac FROM audit_events ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev_mac = head if head else (0, GENESIS_MAC)
            start = seq
            sqlite = dialect(self.db) == "sqlite"
            rows = self.db.execute_sql(_select_queued_sql(self.db.param, sqlite, after is None),
                                       () if after is None else (after,)).fetchall()
            queued = [quarantine.Queued(row[0], *_as_stored(row[1:])) if sqlite else quarantine.Queued(*row)
                      for row in rows]
            now = self.clock.now()
            verdicts = quarantine.triage(queued, self.witness.public, now, self._sealed_seqs)
            values: list = []
            done: list[int] = []
            for row, verdict in zip(queued, verdicts, strict=True):
                if verdict.leave:
                    continue
                done.append(row.id)
                event = verdict.event
                if verdict.reason is not None:
                    quarantine.set_aside(self.db, row, verdict.reason, now)
                    row, event = self._alert(row, verdict.reason)
                seq += 1
                mac = self.chain_key.mac(seq, prev_mac, row.witness_key_id, row.signature, row.event_json)
                values += _sealed_row(seq, event, row.event_json, row.witness_key_id, row.signature,
                                      self.chain_key.key_id, prev_mac, mac)
                prev_mac = mac
            if done:
                # Plain SQL for the same reason as in record(): per-row ORM cost. Only
                # placeholders and constant column names are formatted in.
                insert = _insert_sql("audit_events", _SEALED_COLUMNS, seq - start, self.db.param)
                self.db.execute_sql(insert, values)
                self.db.execute_sql(_delete_queued_sql(len(done), self.db.param), done)
        passed = self.checkpoint_every and seq // self.checkpoint_every > start // self.checkpoint_every
        result = SealResult(seq - start, seq, prev_mac, sum(v.reason is not None for v in verdicts))
        return _Batch(result, bool(passed), queued[-1].id if queued else after, len(queued))

    def _sealed_seqs(self, event_ids: list[str]) -> dict[str, int]:
        if not event_ids:
            return {}
        marks = ", ".join([self.db.param] * len(event_ids))
        return dict(self.db.execute_sql(
            f"SELECT event_id, seq FROM audit_events WHERE event_id IN ({marks})", event_ids).fetchall())

    def _alert(self, row: quarantine.Queued, reason: str) -> tuple[quarantine.Queued, dict]:
        """The signed `audit.quarantine` event sealed in place of a row set aside."""
        event = self._event(Actor(quarantine.SEALER_ACTOR_ID), quarantine.ALERT_ACTION,
                            f"audit_queue:{row.id}", {"queue_id": row.id, "reason": reason})
        event_json = canonical_json(event)
        signed = quarantine.Queued(row.id, event_json, self.witness.key_id,
                                   self.witness.sign_event(event_json), None)
        return signed, event

    def checkpoint(self, head: SealResult | None = None) -> dict | None:
        """Sign the current head and append it to the checkpoint file."""
        if head is None:
            head = self.seal(wait=True)
        if head.head_seq == 0:
            return None
        return self.checkpoints.append(self.witness, head.head_seq, head.head_mac, self.clock.now())


_QUEUE_COLUMNS = ("event_json", "witness_key_id", "signature", "queued_at")


def _select_queued_sql(param: str, sqlite: bool, first: bool) -> str:
    columns = ("event_json", "witness_key_id", "signature", "queued_at")
    if sqlite:
        # SQLite keeps any bytes in a TEXT column, and reading text that is not UTF-8
        # raises for the whole batch: read each value's type and bytes instead.
        columns = tuple(f"typeof({c}), CAST({c} AS BLOB)" for c in columns)
    after = "" if first else f"WHERE id > {param} "
    return f"SELECT id, {', '.join(columns)} FROM audit_queue {after}ORDER BY id LIMIT {SEAL_BATCH}"


def _as_stored(typed: tuple) -> list:
    """SQLite (type, bytes) pairs back to values: text that is not UTF-8 stays bytes,
    which triage refuses, so the row is quarantined instead of stopping the sealer."""
    values = []
    for kind, raw in zip(typed[::2], typed[1::2], strict=True):
        if kind == "text":
            try:
                values.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                values.append(raw)
        elif kind == "integer":
            values.append(int(raw))
        elif kind == "real":
            values.append(float(raw))
        else:  # blob, null
            values.append(raw)
    return values


def _insert_sql(table: str, columns: tuple[str, ...], rows: int, param: str) -> str:
    """INSERT of `rows` rows; only constant names and placeholders are formatted in."""
    row = "(" + ", ".join([param] * len(columns)) + ")"
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES " + ", ".join([row] * rows)


def _delete_queued_sql(count: int, param: str) -> str:
    # Exactly the ids sealed: a range would also take a row whose transaction began
    # earlier but committed after the SELECT, unsealed.
    return f"DELETE FROM audit_queue WHERE id IN ({', '.join([param] * count)})"


_SEALED_COLUMNS = ("seq", "event_id", "occurred_at", "actor", "action", "target", "event_json",
                   "witness_key_id", "signature", "mac_key_id", "prev_mac", "mac")


def _sealed_row(seq: int, event: dict, event_json: str, witness_key_id: str, signature: str,
                mac_key_id: str, prev_mac: str, mac: str) -> list:
    """Values for _SEALED_COLUMNS; the indexed columns repeat what the signed event says."""
    occurred_at = dt.datetime.fromisoformat(event["time"].removesuffix("Z"))
    return [seq, event["id"], occurred_at, event["actor"], event["action"], event["target"],
            event_json, witness_key_id, signature, mac_key_id, prev_mac, mac]
