"""file:PATH: the master secret itself, base64, in a file only its owner can read."""

from __future__ import annotations

from pathlib import Path

from keyproviders.base import (
    KeyProviderError,
    check_private,
    decode_secret,
    encode_secret,
    write_private,
)


class FileProvider:
    local = True

    def __init__(self, path: str) -> None:
        if not path:
            raise KeyProviderError("file: needs a path, as in file:/etc/weco/master.key")
        self.path = Path(path)
        self.uri = f"file:{path}"

    def unwrap(self) -> bytes:
        try:
            check_private(self.path)
            return decode_secret(self.path.read_text(), str(self.path))
        except FileNotFoundError:
            raise KeyProviderError(f"{self.path} does not exist: run `weco master-secret init`") from None
        except PermissionError:
            raise KeyProviderError(f"{self.path} cannot be read by this user") from None

    def store(self, secret: bytes) -> None:
        write_private(self.path, (encode_secret(secret) + "\n").encode())
