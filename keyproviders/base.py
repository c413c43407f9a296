"""What every key provider shares: the error type, the context, the envelope file."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

SECRET_BYTES = 32


class KeyProviderError(Exception):
    """A provider cannot produce or store the master secret; str() says why (never the secret)."""


@dataclasses.dataclass(frozen=True)
class ProviderContext:
    data_dir: Path
    # VAULT_ADDR, VAULT_TOKEN, VAULT_ROLE_ID, VAULT_SECRET_ID, VAULT_CACERT, as read by settings.
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)


class KeyProvider(Protocol):
    uri: str
    local: bool  # the secret (or its only protection) lives on this machine

    def unwrap(self) -> bytes: ...

    def store(self, secret: bytes) -> None: ...


def decode_secret(text: str, where: str) -> bytes:
    try:
        secret = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyProviderError(f"{where} is not base64") from None
    if len(secret) != SECRET_BYTES:
        raise KeyProviderError(f"{where} holds {len(secret)} bytes; a master secret is {SECRET_BYTES}")
    return secret


def encode_secret(secret: bytes) -> str:
    return base64.b64encode(secret).decode("ascii")


def check_private(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyProviderError(f"{path} is readable by group or others: chmod 600 it")


def write_private(path: Path, data: bytes) -> None:
    """Create a 0600 file whole, never replacing one that exists."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyProviderError(f"{path} already exists; refusing to overwrite a key") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def default_wrapped_path(context: ProviderContext, scheme: str, spec: str) -> Path:
    digest = hashlib.sha256(f"{scheme}:{spec}".encode()).hexdigest()[:12]
    return context.data_dir / "keys" / f"master.{scheme}-{digest}.json"


class Envelope:
    """The wrapped master secret on disk: which provider and key, and the ciphertext."""

    def __init__(self, path: Path, scheme: str, key: str) -> None:
        self.path, self.scheme, self.key = path, scheme, key

    def read(self) -> bytes:
        try:
            check_private(self.path)
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            raise KeyProviderError(
                f"no wrapped master secret at {self.path}: run `weco master-secret init`") from None
        except ValueError:
            raise KeyProviderError(f"{self.path} is not a wrapped master secret") from None
        if not isinstance(data, dict) or data.get("provider") != self.scheme or data.get("key") != self.key:
            raise KeyProviderError(f"{self.path} was wrapped by another provider or key")
        try:
            return base64.b64decode(data["ciphertext"], validate=True)
        except (KeyError, binascii.Error, ValueError, TypeError):
            raise KeyProviderError(f"{self.path} has no readable ciphertext") from None

    def write(self, ciphertext: bytes) -> None:
        body = {"provider": self.scheme, "key": self.key,
                "ciphertext": base64.b64encode(ciphertext).decode("ascii")}
        write_private(self.path, (json.dumps(body, indent=2) + "\n").encode())
