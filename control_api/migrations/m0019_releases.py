"""Release bundles uploaded for self-update: one row per version received (its SHA-256 and
tag, read from the verified signature), who uploaded it and who asked to apply it, and
what the root-run upgrade made of it (applied, or failed with its one-line error). The
bundle itself is in FF_DATA_DIR/updates; the root side never trusts this row."""

from control_api.migrations.sqltypes import BIGINT, PK

VERSION = 19
NAME = "releases"


def up(db, dialect: str) -> None:
    pk, ref = PK[dialect], BIGINT[dialect]
    db.execute_sql(f"""CREATE TABLE releases (
        id {pk},
        version TEXT NOT NULL UNIQUE,
        sha256 CHAR(64) NOT NULL,
        tag TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('received', 'apply_requested', 'applied', 'failed')),
        received_by {ref} NOT NULL REFERENCES users (id),
        received_at TIMESTAMP NOT NULL,
        apply_requested_by {ref} NULL REFERENCES users (id),
        apply_requested_at TIMESTAMP NULL,
        finished_at TIMESTAMP NULL,
        error TEXT NULL
    )""")
