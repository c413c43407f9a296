"""Column encryption: AES-256-GCM under subkeys of MASTER_SECRET, AAD mandatory.

Follows NIST SP 800-38D (GCM, 96-bit random nonces) and RFC 5869 (HKDF-SHA256).

- Every ciphertext is `v1.<key id>.<base64url(nonce | ciphertext | tag)>`: the
  version and the id of the master secret that made it travel with it, so several
  master secrets can be read during a rotation and a row always says which one it
  needs.
- The key for a column is HKDF(MASTER_SECRET, info = label, table, column): no two
  columns share a key, and the master secret is never used directly.
- AAD is mandatory and binds the ciphertext to its table, column and row id (and to
  the version and key id), so a value copied to another row, column or table does
  not decrypt. A lint (`weco check security`) refuses encrypt/decrypt calls
  without `aad=`.
- Every failure raises CryptoError with a message that names no secret.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = "v1"
MASTER_SECRET_BYTES = 32
_NONCE_BYTES = 12
_KEY_ID_LABEL = b"weco/master-key-id/v1"
_SUBKEY_LABEL = b"weco/column-key/v1\x00"
_AAD_LABEL = b"weco/column-aad/v1\x00"


class CryptoError(Exception):
    """Encryption or decryption failed; str() says why, never with key material."""


@dataclasses.dataclass(frozen=True)
class Aad:
    """Where a ciphertext lives: it decrypts only there."""

    table: str
    column: str
    row_id: int | str

    def encode(self, key_id: str) -> bytes:
        parts = (VERSION, key_id, self.table, self.column, str(self.row_id))
        if any("\x00" in part for part in parts):
            raise CryptoError("AAD parts must not contain NUL")
        return _AAD_LABEL + "\x00".join(parts).encode("utf-8")


def master_key_id(master: bytes) -> str:
    """A public name for a master secret: 16 hex digits of an HMAC under it."""
    return hmac.new(master, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:16]


class Keyring:
    """The master secrets this process can use; new ciphertexts use `current`."""

    def __init__(self, current: bytes, others: tuple[bytes, ...] = ()) -> None:
        for master in (current, *others):
            if len(master) != MASTER_SECRET_BYTES:
                raise CryptoError(f"a master secret must be {MASTER_SECRET_BYTES} bytes")
        self.current_id = master_key_id(current)
        self._masters = {master_key_id(m): m for m in (*others, current)}

    @property
    def key_ids(self) -> set[str]:
        return set(self._masters)

    def _subkey(self, key_id: str, aad: Aad) -> bytes:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                    info=_SUBKEY_LABEL + f"{aad.table}\x00{aad.column}".encode())
        return hkdf.derive(self._masters[key_id])

    def encrypt(self, plaintext: bytes, *, aad: Aad) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(self._subkey(self.current_id, aad)).encrypt(
            nonce, plaintext, aad.encode(self.current_id))
        body = base64.urlsafe_b64encode(nonce + sealed).decode("ascii")
        return f"{VERSION}.{self.current_id}.{body}"

    def decrypt(self, token: str, *, aad: Aad) -> bytes:
        version, key_id, raw = _split(token)
        if version != VERSION:
            raise CryptoError(f"unsupported ciphertext version {version!r}")
        if key_id not in self._masters:
            raise CryptoError(f"ciphertext was made with master key {key_id}, which is not loaded")
        if len(raw) < _NONCE_BYTES + 16:
            raise CryptoError("ciphertext is truncated")
        try:
            return AESGCM(self._subkey(key_id, aad)).decrypt(
                raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], aad.encode(key_id))
        except InvalidTag:
            raise CryptoError(
                f"ciphertext does not authenticate for {aad.table}.{aad.column} row {aad.row_id} "
                "(tampered, truncated, or moved from another row)") from None


def key_id_of(token: str) -> str:
    """The master key id a ciphertext names (no decryption)."""
    return _split(token)[1]


def _split(token: str) -> tuple[str, str, bytes]:
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3:
        raise CryptoError("not a ciphertext: expected VERSION.KEYID.DATA")
    try:
        raw = base64.b64decode(parts[2].encode("ascii"), altchars=b"-_", validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise CryptoError("ciphertext data is not base64url") from None
    return parts[0], parts[1], raw
