"""Versioned schema migrations, applied in order by `weco db upgrade`.

Each migration module has VERSION, NAME and `up(db, dialect)`. One upgrade is one
transaction: every pending migration with its row in `schema_migrations`, the grants
to weco_app on PostgreSQL, and the caller's audit event (`record`), so a failure
anywhere leaves no trace and upgrading twice changes nothing. Migrations speak SQL
rather than the current models, because the models move on and a migration must not.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

import peewee

from control_api.db import dialect
from control_api.migrations import (
    m0001_initial,
    m0002_audit,
    m0003_master_keys,
    m0004_auth_throttle,
    m0005_second_factors,
    m0006_sites_runs,
    m0007_credential_checks,
    m0008_audit_quarantine,
    m0009_credential_epochs,
    m0010_audit_cursors,
    m0012_documents,
    m0013_host_grants_approvals,
    m0014_licenses,
    m0015_host_keys,
    m0016_webauthn,
    m0017_sso,
    m0018_scim,
    m0019_releases,
)

MIGRATIONS = (m0001_initial, m0002_audit, m0003_master_keys, m0004_auth_throttle,
              m0005_second_factors, m0006_sites_runs, m0007_credential_checks, m0008_audit_quarantine,
              m0009_credential_epochs, m0010_audit_cursors, m0012_documents,
              m0013_host_grants_approvals, m0014_licenses, m0015_host_keys,
              m0016_webauthn, m0017_sso, m0018_scim, m0019_releases)

# The least-privilege role the API and workers run as on PostgreSQL: it may read and
# write the tables it needs, but never rewrite or remove audit rows.
APP_ROLE = "weco_app"

# Any fixed 64-bit number: serialises concurrent `weco db upgrade` on PostgreSQL.
_PG_LOCK_KEY = 0x77656330

_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TIMESTAMP NOT NULL
)"""


@dataclasses.dataclass(frozen=True)
class MigrationState:
    version: int
    name: str
    applied_at: dt.datetime | None


def _applied(db: peewee.Database) -> dict[int, dt.datetime]:
    rows = db.execute_sql("SELECT version, applied_at FROM schema_migrations").fetchall()
    return {int(version): applied_at for version, applied_at in rows}


def upgrade(db: peewee.Database, now: dt.datetime,
            record: Callable[[list[MigrationState]], None] | None = None) -> list[MigrationState]:
    """Apply every pending migration in one transaction; return the ones applied.

    `record` is called inside that transaction with what was applied (when anything
    was), so the upgrade's audit event commits with it or the upgrade does not happen.
    """
    kind = dialect(db)
    done: list[MigrationState] = []
    with db.atomic():
        if kind == "postgresql":
            db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK_KEY,))
        db.execute_sql(_CREATE_LEDGER)
        applied = _applied(db)
        for migration in MIGRATIONS:
            if migration.VERSION in applied:
                continue
            migration.up(db, kind)
            db.execute_sql(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)"
                if kind == "postgresql"
                else "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.VERSION, migration.NAME, now),
            )
            done.append(MigrationState(migration.VERSION, migration.NAME, now))
        if kind == "postgresql":
            grant_app_role(db)
        if done and record is not None:
            record(done)
    return done


def grant_app_role(db: peewee.Database) -> None:
    """(Re)create weco_app's privileges: everything it needs, no UPDATE/DELETE on audit rows.

    Roles are cluster-wide, so it is created only if missing; grants are per database
    and re-applied after every upgrade so that new tables are covered.
    """
    db.execute_sql(
        f"""DO $$ BEGIN
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                CREATE ROLE {APP_ROLE} NOLOGIN;
              END IF;
            END $$"""
    )
    for sql in (
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}",
        f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM {APP_ROLE}",
        f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_quarantine FROM {APP_ROLE}",
        f"REVOKE UPDATE, TRUNCATE ON audit_queue FROM {APP_ROLE}",
        f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON schema_migrations FROM {APP_ROLE}",
    ):
        db.execute_sql(sql)


def status(db: peewee.Database) -> list[MigrationState]:
    """Every known migration with the time it was applied, or None if pending."""
    tables = db.get_tables()
    applied = _applied(db) if "schema_migrations" in tables else {}
    return [MigrationState(m.VERSION, m.NAME, applied.get(m.VERSION)) for m in MIGRATIONS]


def pending(db: peewee.Database) -> list[MigrationState]:
    return [state for state in status(db) if state.applied_at is None]
