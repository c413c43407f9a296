"""Shared by the audit tests: fill a log, verify it, and tamper with it as a DB superuser."""

from __future__ import annotations

from pathlib import Path

from control_api.audit.checkpoints import read_checkpoints
from control_api.audit.log import Actor, AuditLog
from control_api.audit.verify import Report, Verifier, rows_from_store
from control_api.db import dialect

ACTOR = Actor("user:1", "192.0.2.7", "pytest")


def fill(audit: AuditLog, count: int, action: str = "test.event") -> None:
    for number in range(count):
        audit.record_alone(ACTOR, action, f"thing:{number + 1}", {"n": number + 1})


def verify_store(audit: AuditLog, checkpoint_path: Path | None = None) -> Report:
    verifier = Verifier([audit.witness.public], [audit.chain_key])
    checkpoints = list(read_checkpoints(checkpoint_path)) if checkpoint_path else []
    return verifier.verify(rows_from_store(), checkpoints)


def sql(db, statement: str, *params) -> list:
    """Run SQL written with ? placeholders on either backend."""
    cursor = db.execute_sql(statement.replace("?", db.param), params)
    return cursor.fetchall() if cursor.description else []


def drop_guards(db) -> None:
    """What an attacker with database superuser rights does first."""
    if dialect(db) == "postgresql":
        for table, trigger in (("audit_events", "audit_events_no_update_delete"),
                               ("audit_events", "audit_events_no_truncate"),
                               ("audit_queue", "audit_queue_no_update"),
                               ("audit_queue", "audit_queue_delete_guard"),
                               ("audit_queue", "audit_queue_no_truncate"),
                               ("audit_quarantine", "audit_quarantine_no_update_delete"),
                               ("audit_quarantine", "audit_quarantine_no_truncate")):
            sql(db, f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
    else:
        for trigger in ("audit_events_no_update", "audit_events_no_delete", "audit_queue_no_update",
                        "audit_queue_delete_guard", "audit_quarantine_no_update",
                        "audit_quarantine_no_delete"):
            sql(db, f"DROP TRIGGER IF EXISTS {trigger}")


COLUMNS = ("event_id", "occurred_at", "actor", "action", "target", "event_json",
           "witness_key_id", "signature", "mac_key_id", "prev_mac", "mac")


def row(db, seq: int) -> dict:
    values = sql(db, f"SELECT {', '.join(COLUMNS)} FROM audit_events WHERE seq = ?", seq)[0]
    return dict(zip(COLUMNS, values, strict=True))
