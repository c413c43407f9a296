"""Second factors (TOTP, recovery codes, email codes), login challenges, step-up
tokens, break-glass accounts, and the time sealed mode was first seen."""

from control_api.migrations.sqltypes import BIGINT, FALSE, PK

VERSION = 5
NAME = "second_factors"


def up(db, dialect: str) -> None:
    pk, ref = PK[dialect], BIGINT[dialect]
    for sql in (
        f"ALTER TABLE users ADD COLUMN break_glass BOOLEAN NOT NULL DEFAULT {FALSE[dialect]}",
        "ALTER TABLE users ADD COLUMN email_2fa_at TIMESTAMP NULL",
        f"""CREATE TABLE totp_credentials (
            user_id {ref} PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
            seed TEXT NOT NULL,
            confirmed_at TIMESTAMP NULL,
            last_step BIGINT NOT NULL DEFAULT 0,
            created_at TIMESTAMP NOT NULL
        )""",
        f"""CREATE TABLE recovery_codes (
            id {pk},
            user_id {ref} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            code_hash CHAR(64) NOT NULL,
            used_at TIMESTAMP NULL
        )""",
        "CREATE INDEX recovery_codes_user ON recovery_codes (user_id)",
        f"""CREATE TABLE login_challenges (
            id {pk},
            token_hash CHAR(64) NOT NULL UNIQUE,
            user_id {ref} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            expires_at TIMESTAMP NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            used_at TIMESTAMP NULL,
            email_code_hash CHAR(64) NULL,
            email_code_expires_at TIMESTAMP NULL
        )""",
        f"""CREATE TABLE step_up_tokens (
            id {pk},
            token_hash CHAR(64) NOT NULL UNIQUE,
            user_id {ref} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            session_id {ref} NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
            scope TEXT NOT NULL,
            expires_at TIMESTAMP NOT NULL
        )""",
        "CREATE TABLE system_state (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ):
        db.execute_sql(sql)
