"""The audit log: a queue written inside each mutation, and the sealed, append-only chain.

audit_events refuses UPDATE and DELETE on both backends (and TRUNCATE on
PostgreSQL) through triggers. On PostgreSQL the application role `weco_app` also
lacks those privileges (see control_api/migrations/__init__.py: grants).
"""

from control_api.migrations.sqltypes import BIGINT, PK

VERSION = 2
NAME = "audit_log"


_SQLITE_GUARDS = [
    """CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
       BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
       BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused'); END""",
]

_PG_GUARDS = [
    # %% because psycopg2 formats parameters into every statement it is given.
    """CREATE OR REPLACE FUNCTION weco_audit_append_only() RETURNS trigger
       LANGUAGE plpgsql AS $$
       BEGIN
         RAISE EXCEPTION 'audit_events is append-only: %% refused', TG_OP
           USING ERRCODE = 'insufficient_privilege';
       END $$""",
    """CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON audit_events
       FOR EACH ROW EXECUTE FUNCTION weco_audit_append_only()""",
    """CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
       FOR EACH STATEMENT EXECUTE FUNCTION weco_audit_append_only()""",
]


def up(db, dialect: str) -> None:
    pk, big = PK[dialect], BIGINT[dialect]
    statements = [
        f"""CREATE TABLE audit_queue (
            id {pk},
            event_json TEXT NOT NULL,
            witness_key_id TEXT NOT NULL,
            signature TEXT NOT NULL,
            queued_at TIMESTAMP NOT NULL
        )""",
        f"""CREATE TABLE audit_events (
            seq {big} PRIMARY KEY CHECK (seq > 0),
            event_id TEXT NOT NULL UNIQUE,
            occurred_at TIMESTAMP NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL,
            event_json TEXT NOT NULL,
            witness_key_id TEXT NOT NULL,
            signature TEXT NOT NULL,
            mac_key_id TEXT NOT NULL,
            prev_mac CHAR(64) NOT NULL,
            mac CHAR(64) NOT NULL
        )""",
        "CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at)",
        "CREATE INDEX audit_events_actor ON audit_events (actor, seq)",
        "CREATE INDEX audit_events_action ON audit_events (action, seq)",
        "CREATE INDEX audit_events_target ON audit_events (target, seq)",
    ]
    statements += _PG_GUARDS if dialect == "postgresql" else _SQLITE_GUARDS
    for sql in statements:
        db.execute_sql(sql)
