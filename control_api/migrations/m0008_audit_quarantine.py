"""The audit quarantine, and guards on the audit queue.

audit_quarantine keeps queued rows the sealer could not seal (a bad signature, a
malformed event, a duplicate), byte for byte, with the reason. It is append-only
like audit_events. audit_queue rows are never updated, and a row may leave the queue
only once its event is in the chain or in the quarantine with the same signature: so
deleting an unsealed event takes dropping a trigger, as rewriting a sealed one does.
On PostgreSQL `weco_app` also lacks the matching privileges (see migrations/__init__.py).
"""

from control_api.migrations.sqltypes import BIGINT, PK

VERSION = 8
NAME = "audit_quarantine"

_SQLITE_GUARDS = [
    """CREATE TRIGGER audit_quarantine_no_update BEFORE UPDATE ON audit_quarantine
       BEGIN SELECT RAISE(ABORT, 'audit_quarantine is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER audit_quarantine_no_delete BEFORE DELETE ON audit_quarantine
       BEGIN SELECT RAISE(ABORT, 'audit_quarantine is append-only: DELETE refused'); END""",
    """CREATE TRIGGER audit_queue_no_update BEFORE UPDATE ON audit_queue
       BEGIN SELECT RAISE(ABORT, 'audit_queue rows never change: UPDATE refused'); END""",
    # CASE decides in order, so the JSON is read only for rows not quarantined (a
    # quarantined row may not be JSON at all). Compared as bytes: a quarantined copy of
    # text that is not UTF-8 is kept as a BLOB.
    """CREATE TRIGGER audit_queue_delete_guard BEFORE DELETE ON audit_queue
       WHEN CASE
         WHEN EXISTS (SELECT 1 FROM audit_quarantine q WHERE q.queue_id = OLD.id
                      AND CAST(q.signature AS BLOB) = CAST(OLD.signature AS BLOB)
                      AND CAST(q.event_json AS BLOB) = CAST(OLD.event_json AS BLOB)) THEN 0
         WHEN EXISTS (SELECT 1 FROM audit_events e
                      WHERE e.event_id = json_extract(OLD.event_json, '$.id')
                      AND e.signature = OLD.signature) THEN 0
         ELSE 1 END
       BEGIN SELECT RAISE(ABORT, 'audit_queue: DELETE refused, the event is neither sealed nor quarantined');
       END""",
]

_PG_GUARDS = [
    # %% because psycopg2 formats parameters into every statement it is given.
    """CREATE OR REPLACE FUNCTION weco_audit_refuse() RETURNS trigger
       LANGUAGE plpgsql AS $$
       BEGIN
         RAISE EXCEPTION '%% is append-only: %% refused', TG_TABLE_NAME, TG_OP
           USING ERRCODE = 'insufficient_privilege';
       END $$""",
    """CREATE OR REPLACE FUNCTION weco_audit_queue_unchanged() RETURNS trigger
       LANGUAGE plpgsql AS $$
       BEGIN
         RAISE EXCEPTION 'audit_queue rows never change: %% refused', TG_OP
           USING ERRCODE = 'insufficient_privilege';
       END $$""",
    # One check per DELETE statement, over all its rows (the sealer deletes a batch at
    # a time); CASE fixes the order, so the JSON is read only for rows not quarantined.
    """CREATE OR REPLACE FUNCTION weco_audit_queue_leaves() RETURNS trigger
       LANGUAGE plpgsql AS $$
       BEGIN
         IF EXISTS (SELECT 1 FROM gone g WHERE CASE
              WHEN EXISTS (SELECT 1 FROM audit_quarantine q WHERE q.queue_id = g.id
                           AND q.signature = g.signature AND q.event_json = g.event_json) THEN false
              WHEN EXISTS (SELECT 1 FROM audit_events e WHERE e.event_id = g.event_json::json ->> 'id'
                           AND e.signature = g.signature) THEN false
              ELSE true END) THEN
           RAISE EXCEPTION 'audit_queue: DELETE refused, the event is neither sealed nor quarantined'
             USING ERRCODE = 'insufficient_privilege';
         END IF;
         RETURN NULL;
       END $$""",
    """CREATE TRIGGER audit_quarantine_no_update_delete BEFORE UPDATE OR DELETE ON audit_quarantine
       FOR EACH ROW EXECUTE FUNCTION weco_audit_refuse()""",
    """CREATE TRIGGER audit_quarantine_no_truncate BEFORE TRUNCATE ON audit_quarantine
       FOR EACH STATEMENT EXECUTE FUNCTION weco_audit_refuse()""",
    """CREATE TRIGGER audit_queue_no_update BEFORE UPDATE ON audit_queue
       FOR EACH STATEMENT EXECUTE FUNCTION weco_audit_queue_unchanged()""",
    """CREATE TRIGGER audit_queue_no_truncate BEFORE TRUNCATE ON audit_queue
       FOR EACH STATEMENT EXECUTE FUNCTION weco_audit_queue_unchanged()""",
    """CREATE TRIGGER audit_queue_delete_guard AFTER DELETE ON audit_queue
       REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION weco_audit_queue_leaves()""",
]


def up(db, dialect: str) -> None:
    pk, big = PK[dialect], BIGINT[dialect]
    statements = [
        # The queue row as it was, and why and when it was set aside.
        f"""CREATE TABLE audit_quarantine (
            id {pk},
            queue_id {big} NOT NULL,
            event_json TEXT NOT NULL,
            witness_key_id TEXT NOT NULL,
            signature TEXT NOT NULL,
            queued_at TIMESTAMP NOT NULL,
            reason TEXT NOT NULL,
            quarantined_at TIMESTAMP NOT NULL
        )""",
        "CREATE INDEX audit_quarantine_queue_id ON audit_quarantine (queue_id)",
    ]
    statements += _PG_GUARDS if dialect == "postgresql" else _SQLITE_GUARDS
    for sql in statements:
        db.execute_sql(sql)
