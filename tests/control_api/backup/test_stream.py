"""The backup stream format (control_api/backup/stream.py) against the vectors kept in
tests/control_api/backup/vectors: the valid one decrypts to its plaintext and is
reproduced byte for byte (the format has not drifted), and every negative vector is
refused with its own diagnostic before any of its plaintext is released."""

from __future__ import annotations

import io
import json

import pytest

from control_api.backup.stream import BackupCryptoError, EncryptingWriter, decrypt_stream
from tests.control_api.backup.vectors.make_vectors import (
    HERE,
    NEGATIVE,
    OPTIONS,
    PASSPHRASE,
    PLAINTEXT,
    vectors,
)


def test_the_valid_vector_decrypts_and_the_format_has_not_drifted():
    stored = (HERE / "valid.wecobak").read_bytes()
    assert b"".join(decrypt_stream(io.BytesIO(stored), PASSPHRASE)) == PLAINTEXT
    assert vectors()["valid"] == stored
    recorded = json.loads((HERE / "vectors.json").read_text())
    assert recorded["negative"] == NEGATIVE and recorded["options"] == OPTIONS


@pytest.mark.parametrize("name", sorted(NEGATIVE))
def test_negative_vectors_are_refused_with_their_diagnostic(name):
    released = []
    with pytest.raises(BackupCryptoError) as refused:
        for chunk in decrypt_stream(io.BytesIO((HERE / f"{name}.wecobak").read_bytes()), PASSPHRASE):
            released.append(chunk)
    assert NEGATIVE[name] in str(refused.value)
    # Only chunks before the bad one were released, each verified, each a prefix of the truth.
    assert PLAINTEXT.startswith(b"".join(released))
    assert PASSPHRASE.decode() not in str(refused.value)


def test_a_wrong_passphrase_is_told_apart_from_damage():
    with pytest.raises(BackupCryptoError, match="the passphrase does not open this backup"):
        list(decrypt_stream(io.BytesIO((HERE / "valid.wecobak").read_bytes()), b"another passphrase"))


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 3 * 4096])
def test_round_trip_at_chunk_boundaries(size):
    data = bytes(i % 251 for i in range(size))
    out = io.BytesIO()
    writer = EncryptingWriter(out, PASSPHRASE, **OPTIONS)
    for start in range(0, size, 1000):  # written in pieces that straddle chunks
        writer.write(data[start:start + 1000])
    writer.close()
    assert b"".join(decrypt_stream(io.BytesIO(out.getvalue()), PASSPHRASE)) == data
    # Cut at every chunk boundary: never accepted as a complete backup.
    body = len(out.getvalue()) - 62
    for blocks in range(body // 4112 + 1):
        cut = out.getvalue()[:62 + blocks * 4112]
        if len(cut) < len(out.getvalue()):
            with pytest.raises(BackupCryptoError):
                list(decrypt_stream(io.BytesIO(cut), PASSPHRASE))


def test_two_backups_of_the_same_data_share_no_ciphertext():
    sealed = []
    for _ in range(2):
        out = io.BytesIO()
        writer = EncryptingWriter(out, PASSPHRASE, **OPTIONS)
        writer.write(PLAINTEXT)
        writer.close()
        sealed.append(out.getvalue())
    # The same parameters, a new salt, so nothing after the header in common.
    assert sealed[0][:14] == sealed[1][:14] and sealed[0][14:30] != sealed[1][14:30]
    assert sealed[0][62:] != sealed[1][62:]


def test_writing_after_close_and_empty_passphrases_are_refused():
    writer = EncryptingWriter(io.BytesIO(), PASSPHRASE, **OPTIONS)
    writer.close()
    with pytest.raises(BackupCryptoError, match="after the final chunk"):
        writer.write(b"x")
    with pytest.raises(BackupCryptoError, match="empty"):
        EncryptingWriter(io.BytesIO(), b"", **OPTIONS)
