"""Durable cursors over the sealed audit chain: how far the SIEM forwarder has been
acknowledged (one row per receiver, `siem:URL`) and how far the anomaly rules have
read (`anomaly`). A cursor names the last row it covers by sequence number and MAC,
so a chain rewritten under it shows; it only moves forward (see control_api/siem/cursor.py).
"""

from control_api.migrations.sqltypes import BIGINT

VERSION = 10
NAME = "audit_cursors"


def up(db, dialect: str) -> None:
    db.execute_sql(f"""CREATE TABLE audit_cursors (
        name TEXT PRIMARY KEY,
        seq {BIGINT[dialect]} NOT NULL CHECK (seq >= 0),
        mac CHAR(64) NOT NULL,
        updated_at TIMESTAMP NOT NULL
    )""")
