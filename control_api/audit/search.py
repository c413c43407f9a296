"""Searching the audit log for the API: exact filters, a time window and a keyset
cursor on the sequence number, newest first."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

from control_api.models import AuditEvent


@dataclasses.dataclass(frozen=True)
class AuditQuery:
    limit: int
    cursor: int | None = None  # only rows before this sequence number
    actor: str | None = None
    action: str | None = None
    target: str | None = None
    since: dt.datetime | None = None  # naive UTC, inclusive
    until: dt.datetime | None = None  # naive UTC, exclusive


def search(query: AuditQuery) -> tuple[list[dict], int | None]:
    """The matching events (each with its seq), and the cursor of the next page or None."""
    rows = AuditEvent.select().order_by(AuditEvent.seq.desc()).limit(query.limit)
    for name in ("actor", "action", "target"):
        value = getattr(query, name)
        if value is not None:
            rows = rows.where(getattr(AuditEvent, name) == value)
    if query.since is not None:
        rows = rows.where(AuditEvent.occurred_at >= query.since)
    if query.until is not None:
        rows = rows.where(AuditEvent.occurred_at < query.until)
    if query.cursor is not None:
        rows = rows.where(AuditEvent.seq < query.cursor)
    found = list(rows)
    events = [dict(json.loads(row.event_json), seq=row.seq) for row in found]
    return events, (found[-1].seq if len(found) == query.limit else None)
