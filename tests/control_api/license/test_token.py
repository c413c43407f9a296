"""control_api/license/token.py: licenses verify under the trusted key only, with the one
algorithm allowed; forged, tampered, alg-confused, mistyped or malformed tokens are refused
with a clear reason."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json

import pytest

from control_api.license.store import SHIPPED_KEY
from control_api.license.token import (
    LICENSE_TYP,
    Caps,
    PublicKey,
    SigningKey,
    TokenError,
    generate_keypair,
    peek_typ,
    read_license,
    read_revocations,
    sign_license,
)
from tests.control_api.license.conftest import new_issuer

NOW = dt.datetime(2026, 11, 29, 12, 0, 0)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def part(obj: dict) -> str:
    return b64(json.dumps(obj).encode())


def unb64(text: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


@pytest.fixture(scope="module")
def trusted(issuer) -> PublicKey:
    return PublicKey.from_pem(issuer.public_pem)


def test_a_license_round_trips_with_every_claim(issuer, trusted):
    token = issuer.license(NOW, sites=3, hosts=7, admins=2, days=365, jti="lic-0001-acme")
    header = unb64(token.split(".")[0])
    assert header == {"alg": "Ed25519", "typ": LICENSE_TYP, "kid": trusted.key_id}
    lic = read_license(token, trusted)
    assert (lic.customer, lic.tier, lic.caps, lic.jti) == ("ACME Disclosures Ltd", "standard", Caps(3, 7, 2),
                                                         "lic-0001-acme")
    assert (lic.issued_at, lic.expires_at) == (NOW, NOW + dt.timedelta(days=365))
    claims = unb64(token.split(".")[1])
    assert set(claims) == {"iss", "customer", "tier", "caps", "iat", "exp", "jti"}


def test_a_license_signed_by_another_key_is_refused_naming_both_keys(issuer, trusted):
    forger = new_issuer()
    with pytest.raises(TokenError, match=f"signed by another key .*trusts kid {trusted.key_id}"):
        read_license(forger.license(NOW), trusted)


def test_a_forger_who_copies_the_kid_still_fails_the_signature(issuer, trusted):
    forger = new_issuer()
    token = forger.license(NOW)
    header, payload, signature = token.split(".")
    forged = ".".join([part({**unb64(header), "kid": trusted.key_id}), payload, signature])
    with pytest.raises(TokenError, match="bad_signature"):
        read_license(forged, trusted)


def test_a_tampered_payload_is_refused(issuer, trusted):
    header, payload, signature = issuer.license(NOW, sites=1).split(".")
    claims = unb64(payload)
    claims["caps"]["sites"] = 1000
    with pytest.raises(TokenError, match="bad_signature"):
        read_license(".".join([header, part(claims), signature]), trusted)


def test_alg_none_is_refused(issuer, trusted):
    payload = issuer.license(NOW).split(".")[1]
    for alg in ("none", "None", "NONE"):
        with pytest.raises(TokenError, match="is refused: only Ed25519"):
            read_license(f"{part({'alg': alg, 'typ': LICENSE_TYP})}.{payload}.", trusted)


def test_hs256_keyed_with_the_public_key_is_refused(issuer, trusted):
    """The classic confusion: an HMAC "signed" with the public key's bytes, which every
    customer has. Only Ed25519 is accepted, so the HMAC is never computed."""
    payload = issuer.license(NOW, sites=999).split(".")[1]
    for alg, digest in (("HS256", hashlib.sha256), ("HS512", hashlib.sha512)):
        header = part({"alg": alg, "typ": LICENSE_TYP, "kid": trusted.key_id})
        for secret in (issuer.public_pem, issuer.public_pem.strip(), trusted.jwk.as_bytes()):
            mac = hmac.new(secret, f"{header}.{payload}".encode(), digest).digest()
            with pytest.raises(TokenError, match="is refused: only Ed25519"):
                read_license(f"{header}.{payload}.{b64(mac)}", trusted)


def test_the_deprecated_polymorphic_eddsa_name_is_refused_too(issuer, trusted):
    header, payload, signature = issuer.license(NOW).split(".")
    renamed = part({**unb64(header), "alg": "EdDSA"})
    with pytest.raises(TokenError, match="is refused: only Ed25519"):
        read_license(f"{renamed}.{payload}.{signature}", trusted)


def test_a_revocation_list_is_not_a_license_nor_the_reverse(issuer, trusted):
    revocations = issuer.revocations(NOW, "lic-0001-acme")
    with pytest.raises(TokenError, match="not a 'weco-license\\+jwt'"):
        read_license(revocations, trusted)
    with pytest.raises(TokenError, match="not a 'weco-revocations\\+jwt'"):
        read_revocations(issuer.license(NOW), trusted)
    assert read_revocations(revocations, trusted).revoked == {"lic-0001-acme"}


@pytest.mark.parametrize("change, message", [
    (lambda c: c.pop("caps"), "'caps'"),
    (lambda c: c["caps"].pop("admins"), "'caps'"),
    (lambda c: c["caps"].update(extra=1), "'caps'"),
    (lambda c: c["caps"].update(sites=True), "'sites'"),
    (lambda c: c["caps"].update(sites=-1), "'sites'"),
    (lambda c: c["caps"].update(sites="10"), "'sites'"),
    (lambda c: c.update(exp=c["iat"]), "'exp' must be after 'iat'"),
    (lambda c: c.pop("exp"), "'exp'"),
    (lambda c: c.update(iss="someone"), "'iss'"),
    (lambda c: c.update(jti="a b"), "'jti'"),
    (lambda c: c.update(customer=""), "'customer'"),
    (lambda c: c.update(customer="x\n"), "'customer'"),
    (lambda c: c.update(tier="Gold Tier"), "'tier'"),
])
def test_a_validly_signed_but_malformed_license_is_refused(issuer, trusted, change, message):
    """Signed by the right key, so only the claim checks can catch it (an issuer's bug)."""
    token = issuer.license(NOW)
    claims = unb64(token.split(".")[1])
    change(claims)
    from joserfc import jwt
    resigned = jwt.encode({"alg": "Ed25519", "typ": LICENSE_TYP}, claims, issuer.key.jwk,
                          algorithms=["Ed25519"])
    with pytest.raises(TokenError, match=message):
        read_license(resigned, trusted)


@pytest.mark.parametrize("junk, message", [
    ("", "not a JWT"), ("abc", "not a JWT"), ("a.b.c", "not a JWT"), ("..", "not a JWT"),
    ("x" * 9000, "larger than 8192 bytes"), ("eyJ0eXAiOiJKV1QifQ.e30.", "algorithm None is refused"),
    ("eyJhbGciOiJFZDI1NTE5In0.e30.AAAA", "refused: "),
    ("eyJhbGciOiJFZDI1NTE5In0.%%%.AAAA", "refused|not a JWT"),
])
def test_junk_is_refused_with_a_clear_error(trusted, junk, message):
    with pytest.raises(TokenError, match=message):
        read_license(junk, trusted)


def test_peek_typ_refuses_non_jwts_and_only_chooses(issuer):
    assert peek_typ(issuer.license(NOW)) == LICENSE_TYP
    with pytest.raises(TokenError, match="not a JWT"):
        peek_typ("%%%")


def test_the_issuer_never_signs_a_license_a_verifier_would_refuse(issuer):
    with pytest.raises(TokenError, match="'sites'"):
        sign_license(issuer.key, "ACME", "standard", Caps(-1, 1, 1), NOW, NOW + dt.timedelta(days=1))
    with pytest.raises(TokenError, match="'exp' must be after"):
        sign_license(issuer.key, "ACME", "standard", Caps(1, 1, 1), NOW, NOW)


def test_keys_must_be_ed25519():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    other = ec.generate_private_key(ec.SECP256R1())
    pem = other.public_key().public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(TokenError, match="not an Ed25519 public key"):
        PublicKey.from_pem(pem)
    private = other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    with pytest.raises(TokenError, match="not an Ed25519 private key"):
        SigningKey.from_pem(private)
    with pytest.raises(TokenError, match="not a PEM public key"):
        PublicKey.from_pem(b"hello")


def test_the_release_ships_an_ed25519_public_key_and_no_private_one():
    key = PublicKey.from_pem(SHIPPED_KEY.read_bytes())
    assert len(key.key_id) == 43
    assert "PRIVATE" not in SHIPPED_KEY.read_text()
    private, public = generate_keypair()
    assert b"PRIVATE KEY" in private and PublicKey.from_pem(public).key_id != key.key_id
