"""SCIM 2.0 provisioning: the IdP's bearer tokens (only their SHA-256), the SCIM view of
each provisioned account (its SCIM id, userName, externalId and other attributes), the
groups the IdP pushes and their members."""

from control_api.migrations.sqltypes import BIGINT, PK

VERSION = 18
NAME = "scim"


def up(db, dialect: str) -> None:
    pk, ref = PK[dialect], BIGINT[dialect]
    for sql in (
        f"""CREATE TABLE scim_tokens (
            id {pk},
            name TEXT NOT NULL UNIQUE,
            token_hash CHAR(64) NOT NULL UNIQUE,
            created_at TIMESTAMP NOT NULL,
            revoked_at TIMESTAMP NULL,
            last_used_at TIMESTAMP NULL
        )""",
        f"""CREATE TABLE scim_users (
            id {pk},
            scim_id TEXT NOT NULL UNIQUE,
            user_id {ref} NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
            user_name TEXT NOT NULL,
            user_name_key TEXT NOT NULL UNIQUE,
            external_id TEXT NULL,
            attributes TEXT NOT NULL,
            created_at TIMESTAMP NOT NULL,
            updated_at TIMESTAMP NOT NULL,
            version INTEGER NOT NULL DEFAULT 1
        )""",
        f"""CREATE TABLE scim_groups (
            id {pk},
            scim_id TEXT NOT NULL UNIQUE,
            display_name TEXT NOT NULL,
            display_key TEXT NOT NULL UNIQUE,
            external_id TEXT NULL,
            created_at TIMESTAMP NOT NULL,
            updated_at TIMESTAMP NOT NULL,
            version INTEGER NOT NULL DEFAULT 1
        )""",
        f"""CREATE TABLE scim_members (
            group_id {ref} NOT NULL REFERENCES scim_groups (id) ON DELETE CASCADE,
            member_id {ref} NOT NULL REFERENCES scim_users (id) ON DELETE CASCADE,
            PRIMARY KEY (group_id, member_id)
        )""",
        "CREATE INDEX scim_members_member ON scim_members (member_id)",
        "CREATE INDEX scim_users_external ON scim_users (external_id)",
    ):
        db.execute_sql(sql)
