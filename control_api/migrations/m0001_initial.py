"""Users, login sessions and API tokens."""

from control_api.migrations.sqltypes import BIGINT, PK

VERSION = 1
NAME = "users_sessions_tokens"


def up(db, dialect: str) -> None:
    pk, ref = PK[dialect], BIGINT[dialect]
    statements = [
        f"""CREATE TABLE users (
            id {pk},
            email TEXT NOT NULL,
            email_key TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL CHECK (role IN ('superadmin', 'admin')),
            password_hash TEXT NOT NULL,
            created_at TIMESTAMP NOT NULL,
            disabled_at TIMESTAMP NULL
        )""",
        f"""CREATE TABLE sessions (
            id {pk},
            token_hash CHAR(64) NOT NULL UNIQUE,
            user_id {ref} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            created_at TIMESTAMP NOT NULL,
            last_seen_at TIMESTAMP NOT NULL,
            expires_at TIMESTAMP NOT NULL,
            revoked_at TIMESTAMP NULL,
            source_ip TEXT NOT NULL,
            user_agent TEXT NOT NULL
        )""",
        "CREATE INDEX sessions_user_id ON sessions (user_id)",
        f"""CREATE TABLE api_tokens (
            id {pk},
            token_hash CHAR(64) NOT NULL UNIQUE,
            user_id {ref} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            created_at TIMESTAMP NOT NULL,
            expires_at TIMESTAMP NULL,
            revoked_at TIMESTAMP NULL,
            last_used_at TIMESTAMP NULL,
            UNIQUE (user_id, name)
        )""",
    ]
    for sql in statements:
        db.execute_sql(sql)
