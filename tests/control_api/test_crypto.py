"""Column encryption: round trips, and every kind of bad input refused with CryptoError."""

from __future__ import annotations

import base64

import pytest

from control_api.crypto import Aad, CryptoError, Keyring, key_id_of, master_key_id

OLD, NEW = bytes(range(32)), bytes(range(1, 33))
AAD = Aad("hosts", "ssh_key", 7)


@pytest.fixture
def keyring():
    return Keyring(OLD)


def test_round_trip_and_format(keyring):
    token = keyring.encrypt(b"-----BEGIN OPENSSH PRIVATE KEY-----", aad=AAD)
    version, key_id, body = token.split(".")
    assert version == "v1" and key_id == master_key_id(OLD) == key_id_of(token)
    assert len(base64.urlsafe_b64decode(body)) == 12 + 35 + 16
    assert keyring.decrypt(token, aad=AAD) == b"-----BEGIN OPENSSH PRIVATE KEY-----"


def test_nonces_are_random(keyring):
    assert keyring.encrypt(b"same", aad=AAD) != keyring.encrypt(b"same", aad=AAD)


@pytest.mark.parametrize("other", [Aad("hosts", "ssh_key", 8), Aad("hosts", "bearer", 7),
                                   Aad("users", "ssh_key", 7), Aad("hosts", "ssh_key", "7 ")])
def test_wrong_aad_is_refused(keyring, other):
    token = keyring.encrypt(b"secret", aad=AAD)
    with pytest.raises(CryptoError, match="does not authenticate"):
        keyring.decrypt(token, aad=other)


def test_tampered_ciphertext_is_refused(keyring):
    token = keyring.encrypt(b"secret value", aad=AAD)
    prefix, body = token.rsplit(".", 1)
    raw = bytearray(base64.urlsafe_b64decode(body))
    raw[14] ^= 0x01
    with pytest.raises(CryptoError, match="does not authenticate"):
        keyring.decrypt(f"{prefix}.{base64.urlsafe_b64encode(bytes(raw)).decode()}", aad=AAD)


@pytest.mark.parametrize("cut", [1, 16, 20])
def test_truncated_ciphertext_is_refused(keyring, cut):
    token = keyring.encrypt(b"secret value", aad=AAD)
    prefix, body = token.rsplit(".", 1)
    short = base64.urlsafe_b64encode(base64.urlsafe_b64decode(body)[:-cut]).decode()
    with pytest.raises(CryptoError, match=r"does not authenticate|truncated"):
        keyring.decrypt(f"{prefix}.{short}", aad=AAD)


def test_unknown_key_id_is_refused(keyring):
    token = Keyring(NEW).encrypt(b"secret", aad=AAD)
    with pytest.raises(CryptoError, match=f"made with master key {master_key_id(NEW)}, which is not loaded"):
        keyring.decrypt(token, aad=AAD)


def test_a_swapped_key_id_is_refused():
    both = Keyring(NEW, (OLD,))
    token = both.encrypt(b"secret", aad=AAD)
    relabelled = token.replace(master_key_id(NEW), master_key_id(OLD))
    with pytest.raises(CryptoError, match="does not authenticate"):
        both.decrypt(relabelled, aad=AAD)


@pytest.mark.parametrize("token,message", [
    ("", "not a ciphertext"), ("v1.abc", "not a ciphertext"),
    ("v2.abc.AAAA", "unsupported ciphertext version"),
    ("v1.abc.!!!", "not base64url"), (None, "not a ciphertext"),
])
def test_malformed_tokens_are_refused(keyring, token, message):
    with pytest.raises(CryptoError, match=message):
        keyring.decrypt(token, aad=AAD)


def test_a_keyring_reads_old_and_writes_new():
    old_token = Keyring(OLD).encrypt(b"old", aad=AAD)
    both = Keyring(NEW, (OLD,))
    assert both.decrypt(old_token, aad=AAD) == b"old"
    assert key_id_of(both.encrypt(b"new", aad=AAD)) == master_key_id(NEW)


def test_columns_get_separate_subkeys():
    # The same plaintext and row under two columns: neither decrypts as the other.
    keyring = Keyring(OLD)
    token = keyring.encrypt(b"x", aad=Aad("a", "b", 1))
    with pytest.raises(CryptoError):
        keyring.decrypt(token, aad=Aad("a", "c", 1))


def test_errors_never_contain_key_material():
    with pytest.raises(CryptoError) as error:
        Keyring(b"short")
    assert "short" not in str(error.value)
    token = Keyring(OLD).encrypt(b"plaintext-marker", aad=AAD)
    with pytest.raises(CryptoError) as error:
        Keyring(OLD).decrypt(token, aad=Aad("x", "y", 1))
    assert OLD.hex() not in str(error.value) and "plaintext-marker" not in str(error.value)
