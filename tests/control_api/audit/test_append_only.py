"""audit_events is append-only in the database itself, on both backends."""

from __future__ import annotations

import peewee
import psycopg2
import pytest

from control_api.migrations import APP_ROLE
from tests.control_api.audit.helpers import drop_guards, fill, sql, verify_store


@pytest.fixture
def log(deps):
    fill(deps.audit, 3)
    return deps


@pytest.mark.parametrize("statement", [
    "UPDATE audit_events SET action = 'x' WHERE seq = 2",
    "DELETE FROM audit_events WHERE seq = 3",
    "DELETE FROM audit_events",
])
def test_update_and_delete_are_refused(log, statement):
    with pytest.raises(peewee.DatabaseError, match="audit_events is append-only"), log.db.atomic():
        sql(log.db, statement)
    assert verify_store(log.audit).rows == 3


@pytest.mark.postgres_only
def test_truncate_is_refused_on_postgresql(log):
    with pytest.raises(peewee.DatabaseError, match="TRUNCATE refused"), log.db.atomic():
        sql(log.db, "TRUNCATE audit_events")
    assert verify_store(log.audit).rows == 3


@pytest.mark.postgres_only
def test_the_application_role_cannot_rewrite_audit_rows(log, postgres, database_url):
    drop_guards(log.db)  # even without the triggers, privileges hold
    login = f"weco_app_login_{database_url.rsplit('_', 1)[-1]}"
    postgres.admin_sql(f"CREATE ROLE {login} LOGIN IN ROLE {APP_ROLE}")
    dbname = database_url.rsplit("/", 1)[-1]
    conn = psycopg2.connect(host="127.0.0.1", port=postgres.port, user=login, dbname=dbname)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            # No SET ROLE: a member of weco_app inherits exactly its privileges.
            cur.execute("SELECT count(*) FROM audit_events")
            assert cur.fetchone() == (3,)
            cur.execute("SELECT count(*) FROM users")  # the app's own tables are usable
            cur.execute("INSERT INTO audit_queue (event_json, witness_key_id, signature, queued_at) "
                        "VALUES ('{}', 'k', 's', now()) RETURNING id")
            queued = cur.fetchone()[0]
            cur.execute("DELETE FROM audit_queue WHERE id = %s", (queued,))  # the sealer's job
            for statement in ("UPDATE audit_events SET action = 'x'", "DELETE FROM audit_events",
                              "TRUNCATE audit_events", "DELETE FROM schema_migrations",
                              "UPDATE audit_queue SET signature = 'x'", "TRUNCATE audit_queue",
                              "UPDATE audit_quarantine SET reason = 'x'", "DELETE FROM audit_quarantine",
                              "TRUNCATE audit_quarantine"):
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute(statement)
    finally:
        conn.close()
    assert verify_store(log.audit).rows == 3
