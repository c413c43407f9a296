"""The installed licenses and signed revocation lists, each kept whole (the token as
received) with who installed it and when. The newest row of each is the one in force;
older rows stay as history. Columns beside the token are for reading only: caps and
expiry are always taken from the token, verified again, never from these columns."""

from control_api.migrations.sqltypes import PK

VERSION = 14
NAME = "licenses"


def up(db, dialect: str) -> None:
    pk = PK[dialect]
    for sql in (
        f"""CREATE TABLE licenses (
            id {pk},
            token TEXT NOT NULL,
            jti TEXT NOT NULL,
            customer TEXT NOT NULL,
            tier TEXT NOT NULL,
            expires_at TIMESTAMP NOT NULL,
            installed_at TIMESTAMP NOT NULL,
            installed_by TEXT NOT NULL
        )""",
        f"""CREATE TABLE license_revocations (
            id {pk},
            token TEXT NOT NULL,
            jti TEXT NOT NULL,
            issued_at TIMESTAMP NOT NULL,
            revoked_count INTEGER NOT NULL,
            installed_at TIMESTAMP NOT NULL,
            installed_by TEXT NOT NULL
        )""",
    ):
        db.execute_sql(sql)
