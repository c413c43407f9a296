"""Writes the backup format's test vectors (run from the repository root:
`.venv/bin/python -m tests.control_api.backup.vectors.make_vectors`). Deterministic: fixed
salts and plaintext, so test_stream.py also checks that the format has not drifted.
Small scrypt parameters (N = 2^10) keep the tests fast; the format allows them."""

from __future__ import annotations

import io
import json
from pathlib import Path

from control_api.backup.stream import HEADER_BYTES, EncryptingWriter

HERE = Path(__file__).parent
PASSPHRASE = b"vector passphrase, not a secret"
PLAINTEXT = bytes(range(256)) * 39 + b"end"  # 9987 bytes: chunks of 4096, 4096, 1795
OPTIONS = {"log2_n": 10, "r": 1, "p": 1, "log2_chunk": 12}
BLOCK = 4096 + 16

# name -> the diagnostic's distinctive words
NEGATIVE = {
    "flipped-byte": "chunk 1 does not authenticate",
    "dropped-last-chunk": "truncated: it ends after chunk 1",
    "reordered-chunks": "chunk 0 does not authenticate",
    "spliced-chunk": "chunk 1 does not authenticate",
    "wrong-version": "format version 2 is not supported",
    "changed-parameter": "the passphrase does not open this backup (or its header was altered)",
    "truncated-header": "truncated inside its header",
    "not-a-backup": "not a WECO backup",
    "cut-inside-a-chunk": "chunk 2 does not authenticate",
    "huge-scrypt": "log2 N = 30 is outside",
}


def sealed(salt: bytes, plaintext: bytes = PLAINTEXT) -> bytes:
    out = io.BytesIO()
    writer = EncryptingWriter(out, PASSPHRASE, salt=salt, **OPTIONS)
    writer.write(plaintext)
    writer.close()
    return out.getvalue()


def vectors() -> dict[str, bytes]:
    valid = sealed(bytes(16))
    other = sealed(bytes([1]) * 16)
    head, body = valid[:HEADER_BYTES], valid[HEADER_BYTES:]
    chunks = [body[i:i + BLOCK] for i in range(0, len(body), BLOCK)]
    flipped = bytearray(valid)
    flipped[HEADER_BYTES + BLOCK + 100] ^= 0x01
    wrong_version = bytearray(valid)
    wrong_version[8] = 2
    changed = bytearray(valid)
    changed[13] = 13  # log2 chunk size
    huge = bytearray(valid)
    huge[10] = 30
    other_chunks = other[HEADER_BYTES:]
    return {
        "valid": valid,
        "flipped-byte": bytes(flipped),
        "dropped-last-chunk": head + chunks[0] + chunks[1],
        "reordered-chunks": head + chunks[1] + chunks[0] + chunks[2],
        "spliced-chunk": head + chunks[0] + other_chunks[BLOCK:2 * BLOCK] + chunks[2],
        "wrong-version": bytes(wrong_version),
        "changed-parameter": bytes(changed),
        "truncated-header": valid[:40],
        "not-a-backup": b"PK\x03\x04" + valid[4:200],
        "cut-inside-a-chunk": valid[:-500],
        "huge-scrypt": bytes(huge),
    }


def main() -> None:
    for name, data in vectors().items():
        (HERE / f"{name}.wecobak").write_bytes(data)
    recorded = {"passphrase": PASSPHRASE.decode(), "options": OPTIONS, "negative": NEGATIVE}
    (HERE / "vectors.json").write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
