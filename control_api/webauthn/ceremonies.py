"""The two WebAuthn ceremonies as the relying party runs them (W3C Web Authentication
Level 3: §7.1 registering a new credential, §7.2 verifying an authentication assertion),
with py_webauthn doing the verification, and the challenges they answer.

- The RP id and the allowed origins come from settings (FF_WEBAUTHN_RP_ID,
  FF_WEBAUTHN_ORIGINS); a response from any other origin, or signed for another RP id
  hash, does not verify.
- User verification is required in both ceremonies (the UV flag, §6.1): a key that was
  only touched is refused.
- A challenge is 32 random bytes (§13.4.3), kept in the store as its SHA-256 only,
  bound to what it was issued for (a purpose, and the user, session, login challenge or
  step-up scope), valid CHALLENGE_LIFETIME, and taken atomically before any
  verification: a replayed response finds its challenge used.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import secrets

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, options_to_json_dict, parse_client_data_json
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from control_api.errors import ApiError, InvalidInput
from control_api.webauthn.models import WebauthnChallenge

CHALLENGE_LIFETIME = dt.timedelta(minutes=5)
TIMEOUT_MS = 300_000  # what the browser is told; the store's CHALLENGE_LIFETIME decides
PASSWORDLESS_PER_ADDRESS = 20  # live anonymous challenges one address may hold
# ES256 first (every authenticator has it), then EdDSA and RS256 (Windows Hello).
ALGORITHMS = [COSEAlgorithmIdentifier.ECDSA_SHA_256, COSEAlgorithmIdentifier.EDDSA,
              COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256]
PURPOSES = ("register", "second_factor", "passwordless", "step_up")
_KNOWN_TRANSPORTS = {t.value for t in AuthenticatorTransport}


class WebauthnOff(ApiError):
    status = 409
    title = "WebAuthn not configured"

    def __init__(self) -> None:
        super().__init__("passkeys are off on this server: FF_WEBAUTHN_RP_ID and FF_WEBAUTHN_ORIGINS "
                         "set them up")


class TooManyCeremonies(ApiError):
    status = 429
    title = "Too many attempts"


class NotVerified(Exception):
    """A response that does not verify; str() says why (safe to show and to audit)."""


@dataclasses.dataclass(frozen=True)
class RelyingParty:
    rp_id: str  # empty: WebAuthn is off
    origins: tuple[str, ...]
    name: str = "WECO"

    @property
    def enabled(self) -> bool:
        return bool(self.rp_id)


def _digest(challenge: bytes) -> str:
    return hashlib.sha256(challenge).hexdigest()


def _b64(value: object, field: str) -> bytes:
    if not isinstance(value, str) or not value or len(value) > 65536:
        raise InvalidInput(f"'{field}' must be a base64url string")
    try:
        return base64url_to_bytes(value)
    except ValueError:
        raise InvalidInput(f"'{field}' must be a base64url string") from None


def client_challenge(credential: object) -> bytes:
    """The challenge a response's clientDataJSON answers (checked again by py_webauthn);
    InvalidInput when the response is not shaped like a PublicKeyCredential's JSON."""
    if not isinstance(credential, dict) or not isinstance(credential.get("response"), dict):
        raise InvalidInput("'credential' must be a PublicKeyCredential as JSON (with 'id', 'rawId', "
                           "'type' and 'response')")
    raw = _b64(credential["response"].get("clientDataJSON"), "credential.response.clientDataJSON")
    try:
        return parse_client_data_json(raw).challenge
    except (WebAuthnException, ValueError, TypeError, KeyError, AttributeError):
        raise InvalidInput("'credential.response.clientDataJSON' is not WebAuthn client data") from None


def raw_credential_id(credential: dict) -> str:
    """The credential's id (base64url, as stored): 'rawId', which must equal 'id'."""
    raw, shown = credential.get("rawId"), credential.get("id")
    _b64(raw, "credential.rawId")
    if raw != shown:
        raise InvalidInput("'credential.id' and 'credential.rawId' differ")
    return raw


def transports_of(credential: dict) -> list[str]:
    found = credential.get("response", {}).get("transports") or []
    if not isinstance(found, list):
        return []
    return [t for t in found if isinstance(t, str) and t in _KNOWN_TRANSPORTS][:8]


class Ceremonies:
    def __init__(self, rp: RelyingParty, clock) -> None:
        self.rp, self.clock = rp, clock

    def require(self) -> None:
        if not self.rp.enabled:
            raise WebauthnOff

    # -- challenges ---------------------------------------------------------------

    def issue(self, purpose: str, source_ip: str, *, user=None, session_id: int | None = None,
              login_challenge_id: int | None = None, scope: str | None = None) -> bytes:
        """A fresh challenge for one ceremony, stored as its digest with what it is for."""
        now = self.clock.now()
        # Expired challenges are of no use to anyone: each new one sweeps them.
        WebauthnChallenge.delete().where(WebauthnChallenge.expires_at <= now).execute()
        if purpose == "passwordless":
            live = WebauthnChallenge.select().where(
                (WebauthnChallenge.purpose == "passwordless") & (WebauthnChallenge.source_ip == source_ip)
                & WebauthnChallenge.used_at.is_null()).count()
            if live >= PASSWORDLESS_PER_ADDRESS:
                seconds = int(CHALLENGE_LIFETIME.total_seconds())
                raise TooManyCeremonies(f"too many passkey logins started from this address; try again in "
                                        f"{seconds} seconds", headers={"Retry-After": str(seconds)})
        challenge = secrets.token_bytes(32)
        WebauthnChallenge.create(challenge_hash=_digest(challenge), purpose=purpose, user=user,
                                 session=session_id, login_challenge=login_challenge_id, scope=scope,
                                 source_ip=source_ip, created_at=now, expires_at=now + CHALLENGE_LIFETIME)
        return challenge

    def consume(self, challenge: bytes, purpose: str) -> WebauthnChallenge | None:
        """Take the live, unused challenge of this purpose, once (of racing uses, one wins);
        None when there is none. The caller checks what it is bound to."""
        now = self.clock.now()
        digest = _digest(challenge)
        taken = WebauthnChallenge.update(used_at=now).where(
            (WebauthnChallenge.challenge_hash == digest) & (WebauthnChallenge.purpose == purpose)
            & WebauthnChallenge.used_at.is_null() & (WebauthnChallenge.expires_at > now)).execute()
        return WebauthnChallenge.get(WebauthnChallenge.challenge_hash == digest) if taken == 1 else None

    # -- options ------------------------------------------------------------------

    def creation_options(self, challenge: bytes, user_handle: bytes, email: str,
                         existing: list[str]) -> dict:
        options = generate_registration_options(
            rp_id=self.rp.rp_id, rp_name=self.rp.name, user_name=email, user_id=user_handle,
            user_display_name=email, challenge=challenge, timeout=TIMEOUT_MS,
            attestation=AttestationConveyancePreference.NONE,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.PREFERRED,
                user_verification=UserVerificationRequirement.REQUIRED),
            exclude_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(c)) for c in existing],
            supported_pub_key_algs=ALGORITHMS)
        return options_to_json_dict(options)

    def request_options(self, challenge: bytes, allowed: list[str]) -> dict:
        options = generate_authentication_options(
            rp_id=self.rp.rp_id, challenge=challenge, timeout=TIMEOUT_MS,
            allow_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(c)) for c in allowed],
            user_verification=UserVerificationRequirement.REQUIRED)
        return options_to_json_dict(options)

    # -- verification -------------------------------------------------------------

    def verify_registration(self, credential: dict, challenge: bytes):
        try:
            return verify_registration_response(
                credential=credential, expected_challenge=challenge, expected_rp_id=self.rp.rp_id,
                expected_origin=list(self.rp.origins), require_user_verification=True,
                supported_pub_key_algs=ALGORITHMS)
        except (WebAuthnException, ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
            raise NotVerified(_reason(exc)) from None

    def verify_assertion(self, credential: dict, challenge: bytes, public_key: bytes):
        """The verified assertion. The signature counter is not judged here (given 0, the
        library only reads it): the caller compares it with the stored one, so that a
        regression is told apart from any other failure and alerted."""
        try:
            return verify_authentication_response(
                credential=credential, expected_challenge=challenge, expected_rp_id=self.rp.rp_id,
                expected_origin=list(self.rp.origins), credential_public_key=public_key,
                credential_current_sign_count=0, require_user_verification=True)
        except (WebAuthnException, ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
            raise NotVerified(_reason(exc)) from None


def _reason(exc: Exception) -> str:
    text = str(exc) if isinstance(exc, WebAuthnException) else "the response is malformed"
    return (text or exc.__class__.__name__)[:300]
