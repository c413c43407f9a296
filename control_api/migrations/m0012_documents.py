"""Uploaded documents: the content the store knows by SHA-256 (an original and the
flattened copy made from it), and each site's ordered documents pointing at it.

`document_files` is keyed by the original's digest, so a PDF uploaded again (to any
site) is stored and flattened once; the files themselves live on disk under those
digests (control_api/documents/blobs.py). A site's documents are deleted with it.
"""

from control_api.migrations.sqltypes import BIGINT, PK

VERSION = 12
NAME = "documents"


def up(db, dialect: str) -> None:
    pk, ref = PK[dialect], BIGINT[dialect]
    for sql in (
        f"""CREATE TABLE document_files (
            original_sha256 CHAR(64) PRIMARY KEY,
            original_size {ref} NOT NULL,
            sha256 CHAR(64) NOT NULL,
            size {ref} NOT NULL,
            pages INTEGER NOT NULL,
            created_at TIMESTAMP NOT NULL
        )""",
        f"""CREATE TABLE documents (
            id {pk},
            site_id {ref} NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            title TEXT NOT NULL,
            filename TEXT NOT NULL,
            original_sha256 CHAR(64) NOT NULL REFERENCES document_files (original_sha256),
            scanned BOOLEAN NOT NULL,
            uploaded_by {ref} NULL REFERENCES users (id) ON DELETE SET NULL,
            created_at TIMESTAMP NOT NULL,
            UNIQUE (site_id, original_sha256)
        )""",
        "CREATE INDEX documents_site_position ON documents (site_id, position)",
    ):
        db.execute_sql(sql)
