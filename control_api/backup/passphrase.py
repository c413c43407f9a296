"""The backup passphrase: read from FF_BACKUP_PASSPHRASE_FILE (owner-only), long enough,
and never one of the secrets it is meant to be independent of.

A backup holds the store, whose sensitive columns are under MASTER_SECRET, and the
audit chain, whose MACs are under FF_AUDIT_SECRET. If the backup passphrase were either
of them, one leaked secret would open both the live store and every backup, so such a
passphrase is refused, in whatever encoding the secret is usually written (raw, base64
as the file: provider stores it, hex). Secrets are compared through their public key
ids (HMAC/SHA-256 under or over the candidate), never printed.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import stat
from collections.abc import Iterable
from pathlib import Path

from control_api.audit.chain import ChainKey
from control_api.crypto import master_key_id

MIN_BYTES = 16


class PassphraseError(Exception):
    """The backup passphrase is missing, unsafe or shared with another secret."""


def load_passphrase(path_setting: str) -> bytes:
    if not path_setting:
        raise PassphraseError("FF_BACKUP_PASSPHRASE_FILE is not set: backups need a passphrase of their own")
    path = Path(path_setting)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise PassphraseError(f"FF_BACKUP_PASSPHRASE_FILE {path} does not exist") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PassphraseError(f"FF_BACKUP_PASSPHRASE_FILE {path} is readable by group or others: "
                              "chmod 600 it")
    passphrase = path.read_bytes().strip()
    if len(passphrase) < MIN_BYTES:
        raise PassphraseError(f"the backup passphrase in {path} is shorter than {MIN_BYTES} bytes")
    return passphrase


def _readings(passphrase: bytes) -> list[bytes]:
    """The passphrase as written, and the bytes it encodes if it is base64 or hex."""
    readings = [passphrase]
    for decode in (lambda v: base64.b64decode(v, validate=True), bytes.fromhex):
        with contextlib.suppress(binascii.Error, ValueError):
            readings.append(decode(passphrase.decode("ascii")))
    return readings


def refuse_shared(passphrase: bytes, master_key_ids: Iterable[str], audit_key: ChainKey | None) -> None:
    """PassphraseError if the passphrase is a master secret or the audit secret."""
    ids = set(master_key_ids)
    for reading in _readings(passphrase):
        if master_key_id(reading) in ids:
            raise PassphraseError("the backup passphrase is the master secret: choose a separate one, so "
                                  "one leaked secret cannot open both the store and its backups")
        if audit_key is not None and len(reading) >= 32 and ChainKey(reading).key_id == audit_key.key_id:
            raise PassphraseError("the backup passphrase is the audit secret (FF_AUDIT_SECRET): choose a "
                                  "separate one")
