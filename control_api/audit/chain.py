"""The audit log's cryptography: canonical events, the HMAC chain, the Ed25519 witness.

Follows RFC 2104 / FIPS 198-1 (HMAC-SHA256) and RFC 8032 (Ed25519). Every MAC and
signature input starts with its own label, so no value made for one purpose can be
replayed as another. Variable fields are fixed-format (decimal, hex, base64) and the
event JSON comes last, so the NUL-separated encoding is unambiguous.

- An event is canonical JSON (sorted keys, no spaces, UTF-8), stored byte for byte.
- The witness signs each event when it is recorded, inside the mutation's
  transaction; a witness that cannot sign stops the mutation.
- When sealed, row n gets mac_n = HMAC(FF_AUDIT_SECRET, label, n, mac_{n-1},
  key ids, signature, event): editing, dropping, inserting or reordering rows
  breaks the chain at the first row touched.
- A checkpoint is the witness's signature over (row count, head MAC, time), kept
  outside the database so that a cut-off tail shows.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

EVENT_LABEL = b"weco/audit/event/v1\x00"
CHAIN_LABEL = b"weco/audit/chain/v1\x00"
CHECKPOINT_LABEL = b"weco/audit/checkpoint/v1\x00"
KEY_ID_LABEL = b"weco/audit/mac-key-id/v1\x00"
GENESIS_MAC = "0" * 64


class AuditCryptoError(Exception):
    """A key is unusable, or a signature or MAC does not hold; str() says which."""


def canonical_json(value: dict) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class ChainKey:
    """FF_AUDIT_SECRET: computes the chain MACs. Its id is a hash, not the secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise AuditCryptoError("the audit secret must be at least 32 bytes")
        self._secret = secret
        self.key_id = hashlib.sha256(KEY_ID_LABEL + secret).hexdigest()[:16]

    def mac(self, seq: int, prev_mac: str, witness_key_id: str, signature: str, event_json: str) -> str:
        header = f"{seq}\x00{prev_mac}\x00{self.key_id}\x00{witness_key_id}\x00{signature}\x00"
        message = CHAIN_LABEL + header.encode("ascii") + event_json.encode("utf-8")
        return hmac.digest(self._secret, message, "sha256").hex()  # one-shot: the verifier's hot path


def _key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _event_message(key_id: str, event_json: str) -> bytes:
    return EVENT_LABEL + key_id.encode("ascii") + b"\x00" + event_json.encode("utf-8")


def _checkpoint_message(count: int, head_mac: str, time: str) -> bytes:
    return CHECKPOINT_LABEL + f"{count}\x00{head_mac}\x00{time}".encode("ascii")


class Witness:
    """The Ed25519 witness key: signs events and checkpoints."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = WitnessPublic(private.public_key())
        self.key_id = self.public.key_id

    @classmethod
    def from_pem(cls, pem: bytes) -> Witness:
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise AuditCryptoError(f"the witness key is not a readable PEM private key: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise AuditCryptoError("the witness key must be an Ed25519 private key")
        return cls(key)

    def sign_event(self, event_json: str) -> str:
        return _b64(self._private.sign(_event_message(self.key_id, event_json)))

    def sign_checkpoint(self, count: int, head_mac: str, time: str) -> str:
        return _b64(self._private.sign(_checkpoint_message(count, head_mac, time)))

    def private_pem(self) -> bytes:
        return self._private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


class WitnessPublic:
    """The public half, all a verifier needs to check signatures offline."""

    def __init__(self, public: Ed25519PublicKey) -> None:
        self._public = public
        self.key_id = _key_id(public)

    @classmethod
    def from_pem(cls, pem: bytes) -> WitnessPublic:
        try:
            key = serialization.load_pem_public_key(pem)
        except (ValueError, TypeError) as exc:
            raise AuditCryptoError(f"not a readable PEM public key: {exc}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise AuditCryptoError("the witness public key must be an Ed25519 key")
        return cls(key)

    def pem(self) -> bytes:
        return self._public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def _verify(self, signature: str, message: bytes) -> bool:
        try:
            self._public.verify(base64.b64decode(signature, validate=True), message)
        except (InvalidSignature, ValueError):
            return False
        return True

    def verify_event(self, signature: str, event_json: str) -> bool:
        return self._verify(signature, _event_message(self.key_id, event_json))

    def verify_checkpoint(self, signature: str, count: int, head_mac: str, time: str) -> bool:
        return self._verify(signature, _checkpoint_message(count, head_mac, time))


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
