"""Finding the audit keys: FF_AUDIT_SECRET for the chain, FF_AUDIT_WITNESS_KEY for the
witness. In dev, missing keys are created under FF_DATA_DIR/audit (0600); in
production they must be configured (a missing one is a SettingsError, naming the
variable), and a key file others can read is refused."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from control_api.audit.chain import AuditCryptoError, ChainKey, Witness
from control_api.audit.checkpoints import CheckpointFile
from control_api.settings import Settings, SettingsError


class AuditKeyError(Exception):
    """An audit key is missing or unsafe; str() tells the operator what to do."""


def _write_private(path: Path, data: bytes) -> None:
    """Create `path` (0600) whole or not at all; FileExistsError if it is already there.

    Written under a temporary name, then hard-linked into place: a process racing
    this one (gunicorn workers starting together) sees no file or a complete one.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temporary, path)
    finally:
        temporary.unlink()


def _read_private(path: Path, what: str) -> bytes:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise AuditKeyError(f"{what} {path} does not exist") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise AuditKeyError(f"{what} {path} is readable by group or others: chmod 600 it")
    return path.read_bytes()


def check_private_file(path: Path) -> None:
    """Raise AuditKeyError unless `path` exists and only its owner can read it."""
    _read_private(path, "key file")


def write_witness_pair(directory: Path) -> tuple[Path, Path]:
    """`weco audit witness-keygen`: witness.key (0600) and witness.pub; never overwrites."""
    private, public = directory / "witness.key", directory / "witness.pub"
    for path in (private, public):
        if path.exists():
            raise AuditKeyError(f"{path} already exists; refusing to overwrite a witness key")
    witness = Witness(Ed25519PrivateKey.generate())
    _write_private(private, witness.private_pem())
    public.write_bytes(witness.public.pem())
    return private, public


def audit_dir(settings: Settings) -> Path:
    return settings.data_dir / "audit"


def load_chain_key(settings: Settings) -> ChainKey:
    if settings.audit_secret:
        return ChainKey(settings.audit_secret.encode("utf-8"))
    if not settings.is_dev:
        raise SettingsError("FF_AUDIT_SECRET is required when FF_ENV=production")
    path = audit_dir(settings) / "chain.secret"
    with contextlib.suppress(FileExistsError):
        _write_private(path, secrets.token_hex(32).encode("ascii"))
    return ChainKey(_read_private(path, "audit secret file").strip())


def load_witness(settings: Settings) -> Witness:
    if settings.audit_witness_key:
        path = Path(settings.audit_witness_key)
    elif settings.is_dev:
        path = audit_dir(settings) / "witness.key"
        if not path.exists():
            with contextlib.suppress(AuditKeyError, FileExistsError):
                write_witness_pair(path.parent)
    else:
        raise SettingsError(
            "FF_AUDIT_WITNESS_KEY is required when FF_ENV=production "
            "(create one with `weco audit witness-keygen --out DIR`)"
        )
    try:
        return Witness.from_pem(_read_private(path, "witness key"))
    except AuditCryptoError as exc:
        raise AuditKeyError(f"witness key {path}: {exc}") from None


def checkpoint_file(settings: Settings) -> CheckpointFile:
    path = settings.audit_checkpoint_file or audit_dir(settings) / "checkpoints.jsonl"
    return CheckpointFile(Path(path))
