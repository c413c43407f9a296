"""Which second factor a session passed (API tokens need one when the account has
one), and throttled attempts counted per address and window instead of one audit
row each."""

VERSION = 7
NAME = "credential_checks"


def up(db, dialect: str) -> None:
    for sql in (
        "ALTER TABLE sessions ADD COLUMN second_factor TEXT NULL",
        # One row per client address (an IPv6 /64) and 15-minute window with refusals;
        # the row is deleted in the transaction that audits its final count.
        """CREATE TABLE auth_throttle_refusals (
            address TEXT NOT NULL,
            window_start DOUBLE PRECISION NOT NULL,
            refused INTEGER NOT NULL,
            by_address INTEGER NOT NULL,
            by_account INTEGER NOT NULL,
            PRIMARY KEY (address, window_start)
        )""",
        "CREATE INDEX auth_throttle_refusals_window ON auth_throttle_refusals (window_start)",
    ):
        db.execute_sql(sql)
