"""WebAuthn passkeys and FF_SSO_ONLY: each user's random WebAuthn user handle, their
credentials (public key, signature counter, the backup-eligible and backed-up flags as
registered), the ceremonies' challenges (only their SHA-256, single-use, short-lived,
bound to what they were issued for), how each session was opened (`login_method`) and
what each API token was minted from (`minted_via`), which FF_SSO_ONLY judges."""

from control_api.migrations.sqltypes import BIGINT, PK

VERSION = 16
NAME = "webauthn"


def up(db, dialect: str) -> None:
    pk, ref = PK[dialect], BIGINT[dialect]
    for sql in (
        f"""CREATE TABLE webauthn_users (
            user_id {ref} PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
            user_handle TEXT NOT NULL UNIQUE
        )""",
        f"""CREATE TABLE webauthn_credentials (
            id {pk},
            user_id {ref} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            credential_id TEXT NOT NULL UNIQUE,
            public_key TEXT NOT NULL,
            sign_count {ref} NOT NULL DEFAULT 0,
            aaguid TEXT NOT NULL,
            fmt TEXT NOT NULL,
            transports TEXT NOT NULL,
            backup_eligible BOOLEAN NOT NULL,
            backed_up BOOLEAN NOT NULL,
            name TEXT NOT NULL,
            created_at TIMESTAMP NOT NULL,
            last_used_at TIMESTAMP NULL,
            UNIQUE (user_id, name)
        )""",
        f"""CREATE TABLE webauthn_challenges (
            id {pk},
            challenge_hash CHAR(64) NOT NULL UNIQUE,
            purpose TEXT NOT NULL,
            user_id {ref} NULL REFERENCES users (id) ON DELETE CASCADE,
            session_id {ref} NULL REFERENCES sessions (id) ON DELETE CASCADE,
            login_challenge_id {ref} NULL REFERENCES login_challenges (id) ON DELETE CASCADE,
            scope TEXT NULL,
            source_ip TEXT NOT NULL,
            created_at TIMESTAMP NOT NULL,
            expires_at TIMESTAMP NOT NULL,
            used_at TIMESTAMP NULL
        )""",
        "CREATE INDEX webauthn_credentials_user ON webauthn_credentials (user_id)",
        "CREATE INDEX webauthn_challenges_expiry ON webauthn_challenges (expires_at)",
        "ALTER TABLE sessions ADD COLUMN login_method TEXT NULL",
        "ALTER TABLE api_tokens ADD COLUMN minted_via TEXT NULL",
    ):
        db.execute_sql(sql)
