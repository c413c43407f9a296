"""`weco db`: the store's schema."""

from __future__ import annotations

from control_api import migrations
from control_api.app import build_audit_log
from control_api.cli.common import cli_actor
from control_api.clock import SystemClock
from control_api.db import open_database
from control_api.settings import Settings


def cmd_db_upgrade(settings: Settings, args) -> None:
    db = open_database(settings.effective_database_url)
    clock = SystemClock()
    # Keys first: an upgrade that could not be audited must not start.
    audit = build_audit_log(settings, db, clock)
    applied = migrations.upgrade(db, clock.now())
    for state in applied:
        print(f"applied {state.version:04d} {state.name}")
    if applied:
        audit.record_alone(cli_actor(), "db.upgrade", "store",
                           {"versions": [state.version for state in applied]})
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
