"""`weco db`: the store's schema."""

from __future__ import annotations

import peewee

from control_api import migrations, pgroles
from control_api.cli.common import CommandError, cli_actor
from control_api.clock import SystemClock
from control_api.db import dialect, open_database
from control_api.settings import Settings
from control_api.wiring import build_audit_log


def cmd_db_upgrade(settings: Settings, args) -> None:
    db = open_database(settings.effective_database_url)
    clock = SystemClock()
    # Keys and privileges first: an upgrade that could not finish must not start.
    audit = build_audit_log(settings, db, clock)
    if dialect(db) == "postgresql":
        missing = pgroles.upgrade_shortfalls(db)
        if missing:
            raise CommandError(f"cannot upgrade: {'; '.join(missing)}; nothing was changed")
    actor = cli_actor()

    def record(applied: list[migrations.MigrationState]) -> None:
        audit.record(actor, "db.upgrade", "store", {"versions": [state.version for state in applied]})

    try:
        with audit.mutation():
            applied = migrations.upgrade(db, clock.now(), record=record)
    except peewee.DatabaseError as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CommandError(f"the upgrade failed and was rolled back, nothing was changed: {reason}") from None
    for state in applied:
        print(f"applied {state.version:04d} {state.name}")
    print("store is up to date" if not applied else f"{len(applied)} migration(s) applied")


def cmd_db_status(settings: Settings, args) -> None:
    db = open_database(settings.effective_database_url)
    for state in migrations.status(db):
        print(f"{state.version:04d} {state.name}  {state.applied_at or 'pending'}")
    if migrations.pending(db):
        raise SystemExit(1)


def register(groups) -> None:
    db = groups.add_parser("db", help="the store's schema").add_subparsers(required=True)
    db.add_parser("upgrade", help="apply pending migrations").set_defaults(fn=cmd_db_upgrade)
    db.add_parser("status", help="list migrations; exit 1 if any pending").set_defaults(fn=cmd_db_status)
