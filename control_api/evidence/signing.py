"""The evidence pack's own Ed25519 signing key (RFC 8032), apart from the audit witness.

The signature covers the pack's checksum list under a domain-separation label, so a
signature made for anything else (an audit event, a checkpoint) never verifies as a
pack's, and the reverse. A verifier pins the public key it was given out of band; the
copy inside a pack is informative only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE_LABEL = b"weco/evidence-pack/v1\x00"
_KEY_ID_LABEL = b"weco/evidence-key-id/v1\x00"


class EvidenceError(Exception):
    """An evidence pack or its key cannot be made or does not verify; str() says why."""


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(_KEY_ID_LABEL + raw).hexdigest()[:16]


def public_pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


class PackSigner:
    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = private.public_key()
        self.key_id = key_id(self.public)

    @classmethod
    def from_file(cls, path: Path) -> PackSigner:
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise EvidenceError(f"evidence signing key {path} does not exist") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise EvidenceError(f"evidence signing key {path} is readable by group or others: chmod 600 it")
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError):
            raise EvidenceError(f"evidence signing key {path} is not a PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise EvidenceError(f"evidence signing key {path} is not an Ed25519 key")
        return cls(key)

    def sign(self, sums: bytes) -> str:
        return base64.b64encode(self._private.sign(SIGNATURE_LABEL + sums)).decode("ascii")


def load_public(pem: bytes, where: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise EvidenceError(f"{where} is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise EvidenceError(f"{where} is not an Ed25519 public key")
    return key


def check_signature(public: Ed25519PublicKey, sums: bytes, signature: str) -> None:
    try:
        public.verify(base64.b64decode(signature, validate=True), SIGNATURE_LABEL + sums)
    except (InvalidSignature, binascii.Error, ValueError):
        raise EvidenceError("the signature over SHA256SUMS does not verify under the given "
                            "public key") from None


def write_key_pair(private_path: Path, public_path: Path) -> PackSigner:
    """A new key: the private half 0600 (never overwritten), the public half beside it."""
    for path in (private_path, public_path):
        if path.exists():
            raise EvidenceError(f"{path} already exists; refusing to overwrite a signing key")
    private_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    signer = PackSigner(Ed25519PrivateKey.generate())
    pem = signer._private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    with os.fdopen(os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        out.write(pem)
    public_path.write_bytes(public_pem(signer.public))
    return signer
