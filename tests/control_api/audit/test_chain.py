"""The audit cryptography alone: MAC inputs, witness signatures, domain separation."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from control_api.audit.chain import AuditCryptoError, ChainKey, Witness, WitnessPublic, canonical_json

EVENT = canonical_json({"id": "e1", "time": "2026-11-29T12:00:00.000000Z", "actor": "user:1",
                        "action": "user.create", "target": "user:2", "metadata": {"role": "admin"}})


@pytest.fixture(scope="module")
def witness():
    return Witness(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))


def test_canonical_json_is_order_independent_and_compact():
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'


def test_short_audit_secret_is_refused():
    with pytest.raises(AuditCryptoError, match="at least 32 bytes"):
        ChainKey(b"x" * 31)


def test_mac_key_id_does_not_reveal_the_secret():
    key = ChainKey(b"k" * 32)
    assert len(key.key_id) == 16 and "kkkk" not in key.key_id


def test_every_mac_input_matters(witness):
    key = ChainKey(b"k" * 32)
    base = (5, "a" * 64, witness.key_id, "sig", EVENT)
    reference = key.mac(*base)
    variants = [
        (6, *base[1:]),
        (5, "b" * 64, *base[2:]),
        (5, "a" * 64, "other-key-id", *base[3:]),
        (*base[:3], "sig2", EVENT),
        (*base[:4], EVENT.replace("user:2", "user:3")),
    ]
    assert len({reference, *(key.mac(*v) for v in variants)}) == len(variants) + 1
    assert ChainKey(b"j" * 32).mac(*base) != reference


def test_witness_signature_round_trip_and_tamper(witness):
    signature = witness.sign_event(EVENT)
    assert witness.public.verify_event(signature, EVENT)
    assert not witness.public.verify_event(signature, EVENT.replace("admin", "superadmin"))
    other = Witness(Ed25519PrivateKey.generate())
    assert not other.public.verify_event(signature, EVENT)


def test_an_event_signature_is_not_a_checkpoint_signature(witness):
    # Domain separation: a signature made for one purpose never verifies for another.
    signature = witness.sign_checkpoint(10, "a" * 64, "2026-11-29T12:00:00.000000Z")
    assert witness.public.verify_checkpoint(signature, 10, "a" * 64, "2026-11-29T12:00:00.000000Z")
    assert not witness.public.verify_checkpoint(signature, 11, "a" * 64, "2026-11-29T12:00:00.000000Z")
    assert not witness.public.verify_event(signature, f"10\x00{'a' * 64}\x002026-11-29T12:00:00.000000Z")


@pytest.mark.parametrize("signature", ["", "not base64!", base64.b64encode(b"short").decode()])
def test_malformed_signatures_do_not_verify(witness, signature):
    assert not witness.public.verify_event(signature, EVENT)


def test_pem_round_trip(witness):
    again = Witness.from_pem(witness.private_pem())
    assert again.key_id == witness.key_id
    assert WitnessPublic.from_pem(witness.public.pem()).key_id == witness.key_id


def test_non_ed25519_keys_are_refused():
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(AuditCryptoError, match="must be an Ed25519 private key"):
        Witness.from_pem(pem)
    with pytest.raises(AuditCryptoError, match="not a readable PEM private key"):
        Witness.from_pem(b"-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n")
