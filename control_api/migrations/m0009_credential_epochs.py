"""Credential epochs, login challenges that live from their creation, and the
break-glass account's apparent lock.

A counter on each user that every credential change bumps, recorded on the sessions
and login challenges made under it, so that whatever was proven before a change cannot
be turned into a session or a token after it. Login challenges also remember when they
were made (their lifetime runs from then) and when a code was last mailed; challenges
pending at the upgrade have no creation time and must be started again (they lived
five minutes at most). auth_throttle gets a third kind of row, `apparent_lock`: the
count behind the break-glass account's look-alike lock (see control_api/auth/guard.py).
"""

VERSION = 9
NAME = "credential_epochs"

_THROTTLE = """CREATE TABLE {name} (
    kind TEXT NOT NULL CHECK (kind IN ('ip', 'account', 'apparent_lock')),
    key TEXT NOT NULL,
    window_start DOUBLE PRECISION NOT NULL,
    attempts INTEGER NOT NULL,
    locked_until DOUBLE PRECISION NULL,
    PRIMARY KEY (kind, key)
)"""


def up(db, dialect: str) -> None:
    statements = [
        "ALTER TABLE users ADD COLUMN credential_epoch INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE sessions ADD COLUMN credential_epoch INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE login_challenges ADD COLUMN credential_epoch INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE login_challenges ADD COLUMN created_at TIMESTAMP NULL",
        "ALTER TABLE login_challenges ADD COLUMN email_code_sent_at TIMESTAMP NULL",
    ]
    if dialect == "postgresql":
        statements += [
            "ALTER TABLE auth_throttle DROP CONSTRAINT auth_throttle_kind_check",
            "ALTER TABLE auth_throttle ADD CONSTRAINT auth_throttle_kind_check "
            "CHECK (kind IN ('ip', 'account', 'apparent_lock'))",
        ]
    else:  # SQLite cannot change a CHECK in place: the table is rebuilt, rows kept.
        statements += [
            _THROTTLE.format(name="auth_throttle_v9"),
            "INSERT INTO auth_throttle_v9 (kind, key, window_start, attempts, locked_until) "
            "SELECT kind, key, window_start, attempts, locked_until FROM auth_throttle",
            "DROP TABLE auth_throttle",
            "ALTER TABLE auth_throttle_v9 RENAME TO auth_throttle",
        ]
    for sql in statements:
        db.execute_sql(sql)
