"""Every encrypted column, in one list: rotation walks it, and the AAD of each value
is (table, column, row id). A column holding a secret is added here when it is
created."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class EncryptedColumn:
    table: str
    column: str
    id_column: str = "id"


ENCRYPTED_COLUMNS: list[EncryptedColumn] = [
    EncryptedColumn("totp_credentials", "seed", id_column="user_id"),
    EncryptedColumn("hosts", "ssh_private_key"),
    EncryptedColumn("hosts", "ssh_private_key_next"),
]
