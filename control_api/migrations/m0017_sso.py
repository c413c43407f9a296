"""Single sign-on (SAML 2.0 and OpenID Connect): the link from an IdP's subject to an
account, the logins a browser started and has not finished (each bound to a cookie
and used once), and the assertion ids already accepted (each accepted once)."""

from control_api.migrations.sqltypes import BIGINT, PK

VERSION = 17
NAME = "sso"


def up(db, dialect: str) -> None:
    pk, ref = PK[dialect], BIGINT[dialect]
    for sql in (
        # (issuer, subject) names a person for good; an email can be reassigned.
        f"""CREATE TABLE sso_identities (
            id {pk},
            user_id {ref} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            protocol TEXT NOT NULL CHECK (protocol IN ('saml', 'oidc')),
            issuer TEXT NOT NULL,
            subject TEXT NOT NULL,
            created_at TIMESTAMP NOT NULL,
            last_login_at TIMESTAMP NULL,
            UNIQUE (protocol, issuer, subject)
        )""",
        "CREATE INDEX sso_identities_user ON sso_identities (user_id)",
        # The cookie's value is never stored: only its SHA-256.
        f"""CREATE TABLE sso_logins (
            id {pk},
            binding_hash CHAR(64) NOT NULL UNIQUE,
            protocol TEXT NOT NULL CHECK (protocol IN ('saml', 'oidc')),
            request_id TEXT NOT NULL,
            created_at TIMESTAMP NOT NULL,
            expires_at TIMESTAMP NOT NULL,
            used_at TIMESTAMP NULL
        )""",
        "CREATE INDEX sso_logins_expiry ON sso_logins (expires_at)",
        f"""CREATE TABLE sso_seen (
            id {pk},
            protocol TEXT NOT NULL,
            issuer TEXT NOT NULL,
            item TEXT NOT NULL,
            expires_at TIMESTAMP NOT NULL,
            UNIQUE (protocol, issuer, item)
        )""",
        "CREATE INDEX sso_seen_expiry ON sso_seen (expires_at)",
    ):
        db.execute_sql(sql)
