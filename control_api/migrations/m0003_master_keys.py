"""Which master secret the store's ciphertexts are under, and any rotation under way."""

VERSION = 3
NAME = "master_keys"


def up(db, dialect: str) -> None:
    db.execute_sql(
        """CREATE TABLE master_keys (
            key_id TEXT PRIMARY KEY,
            provider_uri TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('active', 'rotating', 'retired')),
            created_at TIMESTAMP NOT NULL,
            retired_at TIMESTAMP NULL
        )""")
