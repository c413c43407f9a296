"""Pinned SSH host keys and host credential rotation: each host's pinned host key and a
scanned one awaiting confirmation ("TYPE BASE64", '' for none), and the private key a
credential rotation has staged but not yet finished (encrypted: AAD (hosts,
ssh_private_key_next, id); NULL for none)."""

VERSION = 15
NAME = "host_keys"


def up(db, dialect: str) -> None:
    for sql in (
        "ALTER TABLE hosts ADD COLUMN ssh_host_key TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE hosts ADD COLUMN ssh_host_key_pending TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE hosts ADD COLUMN ssh_private_key_next TEXT NULL",
    ):
        db.execute_sql(sql)
