"""Credential epochs, and login challenges that live from their creation.

A counter on each user that every credential change bumps, recorded on the sessions
and login challenges made under it, so that whatever was proven before a change cannot
be turned into a session or a token after it. Login challenges also remember when they
were made (their lifetime runs from then) and when a code was last mailed; challenges
pending at the upgrade have no creation time and must be started again (they lived
five minutes at most).
"""

VERSION = 9
NAME = "credential_epochs"


def up(db, dialect: str) -> None:
    statements = [
        "ALTER TABLE users ADD COLUMN credential_epoch INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE sessions ADD COLUMN credential_epoch INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE login_challenges ADD COLUMN credential_epoch INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE login_challenges ADD COLUMN created_at TIMESTAMP NULL",
        "ALTER TABLE login_challenges ADD COLUMN email_code_sent_at TIMESTAMP NULL",
    ]
    for sql in statements:
        db.execute_sql(sql)
