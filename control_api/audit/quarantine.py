"""Queued audit events the sealer cannot seal: judged, set aside, alerted on, reported.

The sealer trusts nothing it reads from audit_queue, since whoever can write the store
can write there. A row is sealed only if its witness signature verifies under the
sealer's own witness key (Ed25519, RFC 8032), its event is well-formed as the recorder
writes it, and its event id is neither in the chain nor earlier in the batch. Any
other row is copied into audit_quarantine with the reason, and an `audit.quarantine`
event takes its place in the chain, in the same transaction: one bad row never stops
the rows behind it, and the chain says that something was set aside.

A row signed by another witness key is left queued for FOREIGN_KEY_GRACE first: while
FF_AUDIT_WITNESS_KEY changes across processes, one still holding the old key seals it.

`weco audit verify` reads the quarantine and the queue's ages through `queue_state`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Sequence

import peewee

from control_api.audit.chain import WitnessPublic, canonical_json
from control_api.audit.verify import parse_event, time_text

log = logging.getLogger(__name__)

FOREIGN_KEY_GRACE = dt.timedelta(seconds=60)
ALERT_ACTION = "audit.quarantine"
SEALER_ACTOR_ID = "system:audit-sealer"
LISTED = 20


@dataclasses.dataclass(frozen=True)
class Queued:
    """An audit_queue row as read: text, unless someone wrote otherwise (SQLite keeps any type)."""

    id: int
    event_json: object
    witness_key_id: object
    signature: object
    queued_at: object


@dataclasses.dataclass(frozen=True)
class Verdict:
    event: dict | None = None  # seal this event
    reason: str | None = None  # quarantine the row, for this reason
    # neither: leave the row queued

    @property
    def leave(self) -> bool:
        return self.event is None and self.reason is None


def judge(row: Queued, witness: WitnessPublic, now: dt.datetime) -> Verdict:
    """One row on its own; `triage` adds the duplicate checks."""
    if not all(isinstance(v, str) for v in (row.event_json, row.witness_key_id, row.signature)):
        return Verdict(reason="event_json, witness_key_id or signature is not text")
    if row.witness_key_id != witness.key_id:
        queued_at = as_datetime(row.queued_at)
        if queued_at is not None and abs(now - queued_at) <= FOREIGN_KEY_GRACE:
            return Verdict()
        return Verdict(reason="signed by a witness key this sealer does not hold")
    if not witness.verify_event(row.signature, row.event_json):
        return Verdict(reason="witness signature does not verify")
    try:
        return Verdict(event=recorded_event(row.event_json))
    except ValueError as exc:
        return Verdict(reason=f"not a well-formed event: {exc}")


def triage(rows: Sequence[Queued], witness: WitnessPublic, now: dt.datetime,
           sealed_seqs: Callable[[list[str]], dict[str, int]]) -> list[Verdict]:
    """A verdict per row. `sealed_seqs` maps event ids already in the chain to their rows."""
    verdicts = [judge(row, witness, now) for row in rows]
    in_chain = sealed_seqs([v.event["id"] for v in verdicts if v.event is not None])
    first: dict[str, int] = {}
    for index, (row, verdict) in enumerate(zip(rows, verdicts, strict=True)):
        if verdict.event is None:
            continue
        event_id = verdict.event["id"]
        if event_id in in_chain:
            verdicts[index] = Verdict(reason=f"duplicate of sealed row {in_chain[event_id]}")
        elif event_id in first:
            verdicts[index] = Verdict(reason=f"duplicate of queued row {first[event_id]}")
        else:
            first[event_id] = row.id
    return verdicts


def recorded_event(event_json: str) -> dict:
    """The event, or ValueError: sealed as it is, it would fail verification for good."""
    event = parse_event(event_json)
    if canonical_json(event) != event_json:
        # The recorder writes canonical JSON; anything else (duplicate keys, say) could
        # be read differently by the database's guard than by this code.
        raise ValueError("it is not canonical JSON")
    try:
        at = dt.datetime.fromisoformat(event["time"].removesuffix("Z"))
    except ValueError:
        at = None
    if at is None or time_text(at) != event["time"]:
        raise ValueError("its time is not in the recorder's format")
    return event


def as_datetime(value: object) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value
    try:
        return dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def set_aside(db: peewee.Database, row: Queued, reason: str, now: dt.datetime) -> None:
    """Copy the row into the quarantine byte for byte (its queue row may then be deleted)."""
    # Only placeholders are formatted into this SQL and the queries below.
    params = ", ".join([db.param] * 7)
    db.execute_sql(
        "INSERT INTO audit_quarantine (queue_id, event_json, witness_key_id, signature, queued_at, "  # noqa: S608
        f"reason, quarantined_at) VALUES ({params})",
        (row.id, row.event_json, row.witness_key_id, row.signature, row.queued_at, reason, now))
    log.error("audit queue row %s quarantined: %s (see `weco audit verify`)", row.id, reason)


# -- what verify reports --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Quarantined:
    id: int
    queue_id: int
    reason: str
    quarantined_at: str


@dataclasses.dataclass(frozen=True)
class QueueState:
    queued: int
    oldest_seconds: float | None  # None: nothing queued
    overdue: int  # queued longer than the bound, stamped beyond it in the future, or unreadable
    quarantined: int
    unreviewed: int
    listed: list[Quarantined]  # the first LISTED unreviewed rows


def queue_state(db: peewee.Database, now: dt.datetime, max_age: dt.timedelta,
                reviewed_through: int = 0) -> QueueState:
    ages = [(now - at).total_seconds() if at else None
            for at in (as_datetime(value) for (value,) in
                       db.execute_sql("SELECT queued_at FROM audit_queue").fetchall())]
    bound = max_age.total_seconds()
    overdue = sum(1 for age in ages if age is None or abs(age) > bound)
    readable = [age for age in ages if age is not None]
    (quarantined,), = db.execute_sql("SELECT count(*) FROM audit_quarantine").fetchall()
    (unreviewed,), = db.execute_sql(
        f"SELECT count(*) FROM audit_quarantine WHERE id > {db.param}",  # noqa: S608
        (reviewed_through,)).fetchall()
    rows = db.execute_sql(
        "SELECT id, queue_id, reason, quarantined_at FROM audit_quarantine "  # noqa: S608
        f"WHERE id > {db.param} ORDER BY id LIMIT {LISTED}", (reviewed_through,)).fetchall()
    listed = [Quarantined(i, q, reason, time_text(as_datetime(at) or str(at))) for i, q, reason, at in rows]
    return QueueState(len(ages), max(readable) if readable else None, overdue, quarantined,
                      unreviewed, listed)
