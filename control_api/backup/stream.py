"""The backup file format: a versioned header, then the plaintext encrypted as a stream
of authenticated chunks under a key derived from the backup passphrase.

Follows the STREAM construction of Hoang, Reyhanitabar, Rogaway and Vizár ("Online
Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance", CRYPTO 2015) with
AES-256-GCM (NIST SP 800-38D), scrypt (RFC 7914) for the passphrase and HKDF-SHA256
(RFC 5869) for the subkeys:

- header (62 bytes): magic `WECOBAK\\0`, format version, KDF id (1 = scrypt), log2 N,
  r, p, log2 of the chunk size, a 16-byte random salt, and a 32-byte key check (an
  HMAC over the preceding header bytes under a subkey), so a wrong passphrase is told
  apart from a damaged chunk, and a header whose parameters were changed is refused.
- root = scrypt(passphrase, salt, N, r, p); stream key and check key = HKDF(root,
  label). The salt is random per file, so every file has its own key.
- chunk i (every chunk but the last holds exactly the chunk size of plaintext) is
  AES-256-GCM with nonce = i (11 bytes, big-endian) | final flag (1 byte), and AAD =
  label | header | i (8 bytes) | final flag. Reordering changes i, truncation at a chunk
  boundary leaves a last chunk sealed as not-final, splicing in a chunk of another
  file fails under that file's key and header, and a flipped bit fails its tag.

Every failure raises BackupCryptoError whose message says what is wrong and where
(never key material); nothing is yielded from a chunk before its tag verified.
"""

from __future__ import annotations

import functools
import hmac
import os
import struct
from collections.abc import Iterator
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

MAGIC = b"WECOBAK\x00"
FORMAT_VERSION = 1
KDF_SCRYPT = 1
SALT_BYTES = 16
CHECK_BYTES = 32
TAG_BYTES = 16
_FIXED = struct.Struct(">8sBBBBBB")  # magic, version, kdf, log2 N, r, p, log2 chunk
HEADER_BYTES = _FIXED.size + SALT_BYTES + CHECK_BYTES

_STREAM_KEY_LABEL = b"weco/backup-stream-key/v1"
_CHECK_KEY_LABEL = b"weco/backup-key-check/v1"
_CHUNK_AAD_LABEL = b"weco/backup-chunk/v1\x00"

# OWASP's scrypt minimum (N = 2^17, r = 8, p = 1): 128 MiB and about 0.3 s a derivation.
DEFAULT_LOG2_N, DEFAULT_R, DEFAULT_P = 17, 8, 1
DEFAULT_LOG2_CHUNK = 16  # 64 KiB of plaintext a chunk
# What a header may ask for: a hostile file must not make the reader allocate without
# bound (scrypt needs 128 * r * N bytes) nor loop for ever.
_LOG2_N_RANGE, _R_RANGE, _P_RANGE, _LOG2_CHUNK_RANGE = (10, 20), (1, 16), (1, 4), (12, 22)
_SCRYPT_MAX_MEMORY = 1 << 30


class BackupCryptoError(Exception):
    """A backup cannot be encrypted or decrypted; str() says why and where, never a key."""


@functools.lru_cache(maxsize=4)
def _root(passphrase: bytes, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    # A restore reads a backup twice (verify, then restore): one scrypt run, not two.
    return Scrypt(salt=salt, length=32, n=1 << log2_n, r=r, p=p).derive(passphrase)


class _Keys:
    def __init__(self, passphrase: bytes, header_fixed: bytes, salt: bytes, log2_n: int, r: int, p: int):
        if not passphrase:
            raise BackupCryptoError("the backup passphrase is empty")
        root = _root(passphrase, salt, log2_n, r, p)
        self.stream = AESGCM(_hkdf(root, _STREAM_KEY_LABEL))
        self.check = hmac.digest(_hkdf(root, _CHECK_KEY_LABEL), header_fixed + salt, "sha256")


def _hkdf(root: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(root)


def _nonce(index: int, final: bool) -> bytes:
    if index >= 1 << 88:
        raise BackupCryptoError("the backup has more chunks than the format allows")
    return index.to_bytes(11, "big") + (b"\x01" if final else b"\x00")


def _aad(header: bytes, index: int, final: bool) -> bytes:
    return _CHUNK_AAD_LABEL + header + index.to_bytes(8, "big") + (b"\x01" if final else b"\x00")


class EncryptingWriter:
    """A file-like sink: plaintext written to it leaves as header and sealed chunks.

    Holds at most one chunk of plaintext, so memory does not grow with the backup.
    `close()` seals the final chunk (possibly empty); without it the file is truncated
    and every reader refuses it.
    """

    def __init__(self, out: BinaryIO, passphrase: bytes, *, log2_n: int = DEFAULT_LOG2_N,
                 r: int = DEFAULT_R, p: int = DEFAULT_P, log2_chunk: int = DEFAULT_LOG2_CHUNK,
                 salt: bytes | None = None) -> None:
        _check_parameters(log2_n, r, p, log2_chunk)
        salt = os.urandom(SALT_BYTES) if salt is None else salt
        fixed = _FIXED.pack(MAGIC, FORMAT_VERSION, KDF_SCRYPT, log2_n, r, p, log2_chunk)
        keys = _Keys(passphrase, fixed, salt, log2_n, r, p)
        self.header = fixed + salt + keys.check
        self._aead = keys.stream
        self._out = out
        self._chunk = 1 << log2_chunk
        self._buffer = bytearray()
        self._index = 0
        self._closed = False
        self.bytes_in = 0
        self.bytes_out = len(self.header)
        out.write(self.header)

    def write(self, data: bytes) -> int:
        if self._closed:
            raise BackupCryptoError("write after the final chunk was sealed")
        self._buffer += data
        self.bytes_in += len(data)
        # A full chunk is sealed as not-final only once more data follows it.
        while len(self._buffer) > self._chunk:
            self._seal(bytes(self._buffer[:self._chunk]), final=False)
            del self._buffer[:self._chunk]
        return len(data)

    def close(self) -> None:
        if not self._closed:
            self._seal(bytes(self._buffer), final=True)
            self._buffer.clear()
            self._closed = True

    def _seal(self, plaintext: bytes, final: bool) -> None:
        sealed = self._aead.encrypt(_nonce(self._index, final), plaintext,
                                    _aad(self.header, self._index, final))
        self._out.write(sealed)
        self.bytes_out += len(sealed)
        self._index += 1


def _check_parameters(log2_n: int, r: int, p: int, log2_chunk: int) -> None:
    for name, value, (low, high) in (("log2 N", log2_n, _LOG2_N_RANGE), ("r", r, _R_RANGE),
                                     ("p", p, _P_RANGE), ("log2 chunk size", log2_chunk, _LOG2_CHUNK_RANGE)):
        if not low <= value <= high:
            raise BackupCryptoError(f"scrypt/stream parameter {name} = {value} is outside {low}..{high}")
    if 128 * r * (1 << log2_n) > _SCRYPT_MAX_MEMORY:
        raise BackupCryptoError("the header asks scrypt for more than 1 GiB of memory")


def _read_exactly(source: BinaryIO, size: int) -> bytes:
    parts, got = [], 0
    while got < size:
        part = source.read(size - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def read_header(source: BinaryIO) -> tuple[bytes, tuple[int, int, int, int]]:
    """The header and its (log2 N, r, p, log2 chunk); BackupCryptoError if it is not one."""
    header = _read_exactly(source, HEADER_BYTES)
    if len(header) < _FIXED.size or header[:len(MAGIC)] != MAGIC:
        raise BackupCryptoError("not a WECO backup (no WECOBAK header)")
    if len(header) < HEADER_BYTES:
        raise BackupCryptoError("the backup is truncated inside its header")
    _, version, kdf, log2_n, r, p, log2_chunk = _FIXED.unpack(header[:_FIXED.size])
    if version != FORMAT_VERSION:
        raise BackupCryptoError(f"backup format version {version} is not supported (this release reads "
                                f"{FORMAT_VERSION})")
    if kdf != KDF_SCRYPT:
        raise BackupCryptoError(f"backup key derivation {kdf} is not supported")
    _check_parameters(log2_n, r, p, log2_chunk)
    return header, (log2_n, r, p, log2_chunk)


def decrypt_stream(source: BinaryIO, passphrase: bytes) -> Iterator[bytes]:
    """The plaintext, one verified chunk at a time; raises BackupCryptoError at the first
    chunk that does not authenticate, before yielding anything of it."""
    header, (log2_n, r, p, log2_chunk) = read_header(source)
    fixed, salt, check = header[:_FIXED.size], header[_FIXED.size:-CHECK_BYTES], header[-CHECK_BYTES:]
    keys = _Keys(passphrase, fixed, salt, log2_n, r, p)
    if not hmac.compare_digest(keys.check, check):
        raise BackupCryptoError("the passphrase does not open this backup (or its header was altered)")
    block = (1 << log2_chunk) + TAG_BYTES
    index = 0
    current = _read_exactly(source, block)
    while True:
        following = _read_exactly(source, block) if len(current) == block else b""
        final = not following
        if len(current) < TAG_BYTES:
            raise BackupCryptoError(f"the backup is truncated: chunk {index} is cut short")
        try:
            yield keys.stream.decrypt(_nonce(index, final), current, _aad(header, index, final))
        except InvalidTag:
            raise BackupCryptoError(_why(keys.stream, header, index, current, final)) from None
        if final:
            return
        current, index = following, index + 1


def _why(aead: AESGCM, header: bytes, index: int, sealed: bytes, final: bool) -> str:
    if final:
        try:
            aead.decrypt(_nonce(index, False), sealed, _aad(header, index, False))
            return (f"the backup is truncated: it ends after chunk {index}, which is not its final chunk "
                    "(chunks were dropped from the end)")
        except InvalidTag:
            pass
    return (f"chunk {index} does not authenticate: the backup was altered, its chunks reordered or "
            "spliced from another backup")
