"""Login throttling state shared by every worker and kept across restarts."""

VERSION = 4
NAME = "auth_throttle"


def up(db, dialect: str) -> None:
    # Times are epoch seconds: compared arithmetically inside one atomic upsert.
    db.execute_sql(
        """CREATE TABLE auth_throttle (
            kind TEXT NOT NULL CHECK (kind IN ('ip', 'account')),
            key TEXT NOT NULL,
            window_start DOUBLE PRECISION NOT NULL,
            attempts INTEGER NOT NULL,
            locked_until DOUBLE PRECISION NULL,
            PRIMARY KEY (kind, key)
        )""")
