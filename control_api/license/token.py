"""License and revocation-list tokens: compact JWS (RFC 7515) JSON Web Tokens (RFC 7519)
signed with Ed25519 (EdDSA, RFC 8032), through joserfc.

The JOSE algorithm is `Ed25519`, RFC 9864's fully specified name for EdDSA over Ed25519
(RFC 8037's polymorphic `EdDSA` is deprecated by it). Verification allows that one
algorithm and nothing else, so `none`, HS256 keyed with the public key, or any other
algorithm confusion is refused before a signature is even looked at; the key is a fixed
Ed25519 public key, never taken from the token. The header names the key by its RFC 7638
thumbprint (`kid`) only so a refusal can say which key signed; it chooses nothing.
The `typ` header tells a license from a revocation list, so one is never read as the
other (RFC 8725 section 3.11, explicit typing).

Signing happens on the issuer's offline machine (`weco license keypair`, `weco license
issue`, `weco license revoke`); the admin VM only ever holds the public key.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import re
import secrets

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

ALG = "Ed25519"
LICENSE_TYP = "weco-license+jwt"
REVOCATIONS_TYP = "weco-revocations+jwt"
ISSUER = "weco-license"
CAP_KINDS = ("sites", "hosts", "admins")
MAX_CAP = 1_000_000
MAX_LICENSE_BYTES = 8192
MAX_REVOCATIONS_BYTES = 1 << 20
_JTI = re.compile(r"[A-Za-z0-9_-]{8,64}")
_TIER = re.compile(r"[a-z][a-z0-9-]{0,31}")
_EPOCH = dt.datetime(1970, 1, 1)


class TokenError(ValueError):
    """A token is not a valid license or revocation list under the trusted key; str() says why."""


@dataclasses.dataclass(frozen=True)
class Caps:
    sites: int
    hosts: int
    admins: int

    def of(self, kind: str) -> int:
        return getattr(self, kind)

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class License:
    customer: str
    tier: str
    caps: Caps
    issued_at: dt.datetime  # naive UTC, as everywhere in the store
    expires_at: dt.datetime
    jti: str
    key_id: str


@dataclasses.dataclass(frozen=True)
class RevocationList:
    issued_at: dt.datetime
    jti: str
    revoked: frozenset[str]
    key_id: str


# -- keys ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PublicKey:
    """The key every license must be signed by."""

    jwk: OKPKey

    @property
    def key_id(self) -> str:
        return self.jwk.thumbprint()

    @classmethod
    def from_pem(cls, pem: bytes, where: str = "the public key") -> PublicKey:
        try:
            key = serialization.load_pem_public_key(pem)
        except ValueError:
            raise TokenError(f"{where} is not a PEM public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise TokenError(f"{where} is not an Ed25519 public key")
        return cls(OKPKey.import_key(pem))


@dataclasses.dataclass(frozen=True)
class SigningKey:
    jwk: OKPKey

    @property
    def key_id(self) -> str:
        return self.jwk.thumbprint()

    @classmethod
    def from_pem(cls, pem: bytes, where: str = "the signing key") -> SigningKey:
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError):
            raise TokenError(f"{where} is not an unencrypted PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise TokenError(f"{where} is not an Ed25519 private key")
        return cls(OKPKey.import_key(pem))

    def public_pem(self) -> bytes:
        return self.jwk.as_pem(private=False)


def generate_keypair() -> tuple[bytes, bytes]:
    """(private PKCS#8 PEM, public SubjectPublicKeyInfo PEM) of a new Ed25519 key."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


# -- signing (the issuer's machine) -----------------------------------------------------


def _seconds(moment: dt.datetime) -> int:
    return int((moment - _EPOCH).total_seconds())


def _moment(seconds: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(seconds=seconds)


def _sign(key: SigningKey, typ: str, claims: dict) -> str:
    header = {"alg": ALG, "typ": typ, "kid": key.key_id}
    return jwt.encode(header, claims, key.jwk, algorithms=[ALG], default_type=None)


def sign_license(key: SigningKey, customer: str, tier: str, caps: Caps, issued_at: dt.datetime,
                 expires_at: dt.datetime, jti: str | None = None) -> str:
    claims = {"iss": ISSUER, "customer": customer, "tier": tier, "caps": caps.as_dict(),
              "iat": _seconds(issued_at), "exp": _seconds(expires_at), "jti": jti or secrets.token_hex(16)}
    _license_from(claims, key.key_id)  # the issuer never signs what a verifier would refuse
    return _sign(key, LICENSE_TYP, claims)


def sign_revocations(key: SigningKey, revoked: set[str], issued_at: dt.datetime) -> str:
    claims = {"iss": ISSUER, "iat": _seconds(issued_at), "jti": secrets.token_hex(16),
              "revoked": sorted(revoked)}
    _revocations_from(claims, key.key_id)
    return _sign(key, REVOCATIONS_TYP, claims)


# -- verifying (the admin VM) -----------------------------------------------------------


def peek_typ(token: str) -> str:
    """The unverified `typ` header, only to choose which reader to hand the token to
    (that reader verifies everything, the typ included)."""
    header = _header(token)
    if not header:
        raise TokenError("not a JWT (expected three base64url parts separated by dots)")
    typ = header.get("typ")
    return typ if isinstance(typ, str) else ""


def _verify(token: str, key: PublicKey, typ: str, limit: int) -> tuple[dict, str]:
    token = token.strip()
    if len(token) > limit:
        raise TokenError(f"the token is larger than {limit} bytes")
    header = _header(token)
    if token.count(".") != 2 or not header:
        raise TokenError("not a JWT (expected three base64url parts separated by dots)")
    alg = header.get("alg")
    if alg != ALG:
        # joserfc refuses it too (algorithms=[ALG]); this only words the refusal.
        raise TokenError(f"algorithm {alg!r} is refused: only {ALG} signatures are accepted")
    try:
        decoded = jwt.decode(token, key.jwk, algorithms=[ALG])
    except JoseError as exc:
        signer = header.get("kid")
        if isinstance(signer, str) and signer != key.key_id:
            raise TokenError(f"signed by another key (kid {signer}); this release trusts kid {key.key_id}") \
                from None
        raise TokenError(f"refused: {exc.error}: {exc.description or 'the signature does not verify'}") \
            from None
    except (ValueError, TypeError, UnicodeDecodeError):
        raise TokenError("not a JWT (expected three base64url parts separated by dots)") from None
    header = decoded.header  # now verified
    if header.get("typ") != typ:
        raise TokenError(f"this token is a {header.get('typ')!r}, not a {typ!r}")
    if header.get("crit"):
        raise TokenError("the token has critical header parameters this release does not understand")
    return decoded.claims, key.key_id


def _header(token: str) -> dict:
    """The unverified header, to word refusals and choose a reader; {} if unreadable."""
    try:
        segment = token.strip().split(".")[0]
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, UnicodeDecodeError):
        return {}
    return header if isinstance(header, dict) else {}


def read_license(token: str, key: PublicKey) -> License:
    """The license in `token`, if `key` signed it; TokenError otherwise. Expiry is not
    judged here (see entitlement.py): an expired license is still the license it was."""
    claims, kid = _verify(token, key, LICENSE_TYP, MAX_LICENSE_BYTES)
    return _license_from(claims, kid)


def read_revocations(token: str, key: PublicKey) -> RevocationList:
    claims, kid = _verify(token, key, REVOCATIONS_TYP, MAX_REVOCATIONS_BYTES)
    return _revocations_from(claims, kid)


def _int_claim(claims: dict, name: str, low: int = 0, high: int = 1 << 40) -> int:
    value = claims.get(name)
    # bool is an int in Python; JSON true is not a number.
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise TokenError(f"claim {name!r} must be an integer between {low} and {high}")
    return value


def _common(claims: dict) -> tuple[dt.datetime, str]:
    if claims.get("iss") != ISSUER:
        raise TokenError(f"claim 'iss' must be {ISSUER!r}")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not _JTI.fullmatch(jti):
        raise TokenError("claim 'jti' must be 8-64 letters, digits, '-' or '_'")
    return _moment(_int_claim(claims, "iat")), jti


def _license_from(claims: dict, kid: str) -> License:
    issued_at, jti = _common(claims)
    expires_at = _moment(_int_claim(claims, "exp"))
    if expires_at <= issued_at:
        raise TokenError("claim 'exp' must be after 'iat'")
    customer = claims.get("customer")
    if not isinstance(customer, str) or not 1 <= len(customer) <= 200 or not customer.isprintable():
        raise TokenError("claim 'customer' must be 1-200 printable characters")
    tier = claims.get("tier")
    if not isinstance(tier, str) or not _TIER.fullmatch(tier):
        raise TokenError("claim 'tier' must be 1-32 lowercase letters, digits or '-', starting with a letter")
    caps = claims.get("caps")
    if not isinstance(caps, dict) or set(caps) != set(CAP_KINDS):
        raise TokenError(f"claim 'caps' must be an object with exactly {', '.join(CAP_KINDS)}")
    values = {kind: _int_claim(caps, kind, 0, MAX_CAP) for kind in CAP_KINDS}
    return License(customer, tier, Caps(**values), issued_at, expires_at, jti, kid)


def _revocations_from(claims: dict, kid: str) -> RevocationList:
    issued_at, jti = _common(claims)
    revoked = claims.get("revoked")
    if not isinstance(revoked, list) or not all(isinstance(j, str) and _JTI.fullmatch(j) for j in revoked):
        raise TokenError("claim 'revoked' must be a list of license ids")
    return RevocationList(issued_at, jti, frozenset(revoked), kid)
