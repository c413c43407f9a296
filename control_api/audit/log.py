"""Recording audit events inside mutations, and sealing them into the chain in batches.

A mutation and its events commit together: `AuditLog.mutation()` opens the
transaction, `record` signs each event with the witness and queues it in that same
transaction, and any failure there rolls the mutation back (AuditUnavailable,
answered as 503). After commit the caller seals: one sealer at a time (an advisory
lock on PostgreSQL; SQLite has one writer anyway) moves every queued event into
audit_events with its sequence number and chain MAC, in one transaction. Writers
therefore never hold a chain lock while they commit; like a transparency log
(Rekor's signed promise, then batched integration) the chain grows in batches.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import uuid
from collections.abc import Callable, Iterator

import peewee

from control_api.audit.chain import GENESIS_MAC, ChainKey, Witness, canonical_json
from control_api.audit.checkpoints import CheckpointFile
from control_api.clock import SystemClock
from control_api.db import dialect
from control_api.models import AuditEvent, AuditQueue

log = logging.getLogger(__name__)

_PG_SEAL_LOCK = 0x77656331
SEAL_BATCH = 1000


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
    sealed: int
    head_seq: int
    head_mac: str


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
    ) -> None:
        self.db = db
        self.clock = clock
        self.chain_key = chain_key
        self.witness = witness
        self.checkpoints = checkpoints
        self.checkpoint_every = checkpoint_every
        self.new_id = new_id

    # -- recording ------------------------------------------------------------------

    @contextlib.contextmanager
    def mutation(self) -> Iterator[AuditLog]:
        """A transaction whose changes and recorded events commit together."""
        with self.db.atomic():
            yield self
        self.seal_quietly()

    def record(self, actor: Actor, action: str, target: str, metadata: dict | None = None) -> None:
        """Sign and queue one event; only inside `mutation()`."""
        if not self.db.in_transaction():
            raise RuntimeError("AuditLog.record must run inside AuditLog.mutation()")
        event = {
            "id": self.new_id(),
            "time": self.clock.now().isoformat(timespec="microseconds") + "Z",
            "actor": actor.id,
            "action": action,
            "target": target,
            "source_ip": actor.source_ip,
            "user_agent": actor.user_agent[:256],
            "metadata": metadata or {},
        }
        try:
            event_json = canonical_json(event)
            signature = self.witness.sign_event(event_json)
            AuditQueue.create(
                event_json=event_json,
                witness_key_id=self.witness.key_id,
                signature=signature,
                queued_at=self.clock.now(),
            )
        except Exception as exc:
            log.error("audit event %s could not be recorded: %s", action, exc)
            raise AuditUnavailable(f"the audit event {action} could not be recorded") from exc

    def record_alone(self, actor: Actor, action: str, target: str, metadata: dict | None = None) -> None:
        """An event with no other change (a failed login, say), in its own transaction."""
        with self.mutation():
            self.record(actor, action, target, metadata)

    # -- sealing --------------------------------------------------------------------

    def seal_quietly(self) -> None:
        """Seal after a commit. The events are already durable and signed, so a failure
        here only delays sealing until the next call; it must not fail the request."""
        try:
            self.seal()
        except Exception:
            log.exception("sealing the audit queue failed; the next seal will retry")

    def seal(self) -> SealResult:
        """Move every queued event into the chain; return the new head."""
        total = 0
        while True:
            result, passed_checkpoint = self._seal_batch()
            total += result.sealed
            if passed_checkpoint:
                self.checkpoint(result)
            if result.sealed < SEAL_BATCH:
                return dataclasses.replace(result, sealed=total)

    def _seal_batch(self) -> tuple[SealResult, bool]:
        with self.db.atomic():
            if dialect(self.db) == "postgresql":
                self.db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_PG_SEAL_LOCK,))
            head = AuditEvent.select(AuditEvent.seq, AuditEvent.mac).order_by(AuditEvent.seq.desc()).first()
            seq, prev_mac = (head.seq, head.mac) if head else (0, GENESIS_MAC)
            start = seq
            queued = list(AuditQueue.select().order_by(AuditQueue.id).limit(SEAL_BATCH))
            rows = []
            for item in queued:
                seq += 1
                mac = self.chain_key.mac(seq, prev_mac, item.witness_key_id, item.signature, item.event_json)
                rows.append(_sealed_row(seq, item, self.chain_key.key_id, prev_mac, mac))
                prev_mac = mac
            if rows:
                AuditEvent.insert_many(rows).execute()
                AuditQueue.delete().where(AuditQueue.id.in_([item.id for item in queued])).execute()
        passed = self.checkpoint_every and seq // self.checkpoint_every > start // self.checkpoint_every
        return SealResult(len(rows), seq, prev_mac), bool(passed)

    def checkpoint(self, head: SealResult | None = None) -> dict | None:
        """Sign the current head and append it to the checkpoint file."""
        if head is None:
            head = self.seal()
        if head.head_seq == 0:
            return None
        return self.checkpoints.append(self.witness, head.head_seq, head.head_mac, self.clock.now())


def _sealed_row(seq: int, item: AuditQueue, mac_key_id: str, prev_mac: str, mac: str) -> dict:
    event = json.loads(item.event_json)
    return {
        "seq": seq,
        "event_id": event["id"],
        "occurred_at": dt.datetime.fromisoformat(event["time"].removesuffix("Z")),
        "actor": event["actor"],
        "action": event["action"],
        "target": event["target"],
        "event_json": item.event_json,
        "witness_key_id": item.witness_key_id,
        "signature": item.signature,
        "mac_key_id": mac_key_id,
        "prev_mac": prev_mac,
        "mac": mac,
    }
