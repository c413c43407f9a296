"""The OpenID Connect relying party (OpenID Connect Core 1.0 §3.1, the authorization code
flow; RFC 7636 PKCE with S256; OpenID Connect Discovery 1.0), on authlib's OAuth 2.0
client and joserfc's JWS/JWT.

- Discovery from FF_OIDC_DISCOVERY_FILE (air-gapped) or ISSUER/.well-known/
  openid-configuration; its "issuer" must be FF_OIDC_ISSUER exactly (Discovery §4.3).
- Login: state, nonce and the PKCE verifier all derive from a random cookie that only
  this browser holds, whose login is used once within ten minutes (pending.py).
- Callback: the state must be the cookie's; the code is exchanged with the verifier; the
  ID token's signature is checked with the provider's JWKS under FF_OIDC_ALGORITHMS
  (asymmetric algorithms only: never "none", never an HMAC keyed with a public key),
  then iss, aud, azp (Core §3.1.3.7), exp, iat and nonce, with CLOCK_SKEW. A kid the
  cached JWKS does not hold fetches the JWKS once more (the provider rotated its keys);
  still unknown, the token is refused.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import logging
import threading
from pathlib import Path

import requests
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry, extract_compact

from control_api.audit.log import Actor, AuditLog
from control_api.auth.credentials import Principal
from control_api.clock import SystemClock
from control_api.errors import ApiError
from control_api.models import User
from control_api.sso.accounts import IdpIdentity, SsoAccounts
from control_api.sso.groups import GroupMapError, clean_groups
from control_api.sso.pending import PendingLogins, derive

log = logging.getLogger(__name__)

CALLBACK_PATH = "/api/auth/oidc/callback"
CLOCK_SKEW_SECONDS = 60
HTTP_TIMEOUT = 10
ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                        "ES256", "ES384", "ES512", "EdDSA", "Ed25519"})
_MAX_DOCUMENT = 1 << 20


class OidcFailed(ApiError):
    """The callback was refused; the reason is audited and told (it names no secret)."""

    status = 401
    title = "OpenID Connect login failed"


class ProviderUnavailable(ApiError):
    status = 502
    title = "Identity provider unavailable"


@dataclasses.dataclass(frozen=True)
class OidcSettings:
    issuer: str
    discovery_file: str
    client_id: str
    client_secret: str = dataclasses.field(repr=False)
    scopes: str
    groups_claim: str
    algorithms: tuple[str, ...]
    base_url: str
    ca_file: str

    @property
    def redirect_uri(self) -> str:
        return self.base_url + CALLBACK_PATH


class OidcRelyingParty:
    def __init__(self, settings: OidcSettings, accounts: SsoAccounts, pending: PendingLogins,
                 audit: AuditLog, clock: SystemClock) -> None:
        if not set(settings.algorithms) <= ASYMMETRIC:
            raise ValueError("FF_OIDC_ALGORITHMS may name asymmetric algorithms only")
        self.settings, self.accounts, self.pending = settings, accounts, pending
        self.audit, self.clock = audit, clock
        self._lock = threading.Lock()
        self._discovery: dict | None = None
        self._keys: KeySet | None = None
        self.registry = JWSRegistry(algorithms=list(settings.algorithms))

    # -- the provider's documents ----------------------------------------------------

    def _get_json(self, url: str) -> dict:
        try:
            answer = requests.get(url, timeout=HTTP_TIMEOUT, verify=self.settings.ca_file or True,
                                  allow_redirects=False)
            answer.raise_for_status()
            if len(answer.content) > _MAX_DOCUMENT:
                raise ValueError("document too large")
            data = answer.json()
        except (requests.RequestException, ValueError) as exc:
            log.warning("OIDC provider document %s unavailable: %s", url, exc)
            raise ProviderUnavailable("the identity provider could not be reached; try again later") from None
        if not isinstance(data, dict):
            raise ProviderUnavailable("the identity provider answered something that is not a JSON object")
        return data

    def discovery(self) -> dict:
        with self._lock:
            if self._discovery is None:
                if self.settings.discovery_file:
                    data = json.loads(Path(self.settings.discovery_file).read_text(encoding="utf-8"))
                else:
                    data = self._get_json(self.settings.issuer.rstrip("/")
                                          + "/.well-known/openid-configuration")
                if data.get("issuer") != self.settings.issuer:
                    raise ProviderUnavailable("the provider's discovery document names another issuer")
                for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                    if not isinstance(data.get(field), str):
                        raise ProviderUnavailable(f"the provider's discovery document has no {field}")
                self._discovery = data
            return self._discovery

    def _key_set(self, kid: str | None) -> KeySet:
        """The provider's keys; fetched again once when `kid` is not among them."""
        with self._lock:
            keys = self._keys
        if keys is not None and (kid is None or any(k.kid == kid for k in keys.keys)):
            return keys
        fresh = self._get_json(self.discovery()["jwks_uri"])
        try:
            keys = KeySet.import_key_set(fresh)
        except (JoseError, ValueError, TypeError, KeyError):
            raise ProviderUnavailable("the provider's JWKS is not a valid key set") from None
        with self._lock:
            self._keys = keys
        return keys

    def _session(self, **extra) -> OAuth2Session:
        session = OAuth2Session(self.settings.client_id, self.settings.client_secret or None,
                                scope=self.settings.scopes, redirect_uri=self.settings.redirect_uri,
                                code_challenge_method="S256", **extra)
        session.verify = self.settings.ca_file or True
        return session

    # -- the flow --------------------------------------------------------------------

    def login(self) -> tuple[str, str]:
        """(the provider URL to redirect the browser to, the value of the binding cookie)."""
        endpoint = self.discovery()["authorization_endpoint"]
        cookie = self.pending.start("oidc", "")
        url, _ = self._session().create_authorization_url(
            endpoint, state=derive(cookie, "state"), nonce=derive(cookie, "nonce"),
            code_verifier=derive(cookie, "verifier"))
        return url, cookie

    def callback(self, params: dict, cookie: str | None, actor: Actor,
                 previous: Principal | None) -> tuple[str, User]:
        state = params.get("state") or ""
        if not cookie or not hmac.compare_digest(state.encode(), derive(cookie, "state").encode()):
            self._refuse(actor, "the state is not the one this browser's login cookie holds")
        if "error" in params:
            self.pending.use("oidc", cookie)
            self._refuse(actor, f"the provider answered error={params['error'][:64]}")
        if not self.pending.use("oidc", cookie):
            self._refuse(actor, "this login is unknown, expired or already completed")
        code = params.get("code") or ""
        if not code:
            self._refuse(actor, "the callback carries no code")
        token = self._exchange(code, derive(cookie, "verifier"), actor)
        claims = self._verified_claims(token, derive(cookie, "nonce"), actor)
        who = self._identity(claims, actor)
        jti = claims.get("jti") or hashlib.sha256(token.encode()).hexdigest()
        until = dt.datetime.utcfromtimestamp(int(claims["exp"])) + dt.timedelta(seconds=CLOCK_SKEW_SECONDS)
        with self.audit.db.atomic():
            first = self.pending.first_use("oidc", who.issuer, str(jti), until)
        if not first:
            self._refuse(actor, "this ID token was already used (replay)")
        return self.accounts.sign_in(who, actor, previous)

    def _exchange(self, code: str, verifier: str, actor: Actor) -> str:
        try:
            answer = self._session().fetch_token(self.discovery()["token_endpoint"], code=code,
                                                 code_verifier=verifier, timeout=HTTP_TIMEOUT)
        except ProviderUnavailable:
            raise
        except Exception as exc:  # authlib's OAuthError (invalid_grant...) or a transport error
            error = getattr(exc, "error", None) or type(exc).__name__
            self._refuse(actor, f"the provider refused the code ({str(error)[:64]})")
        id_token = answer.get("id_token")
        if not isinstance(id_token, str):
            self._refuse(actor, "the provider's answer has no ID token")
        return id_token

    def _verified_claims(self, token: str, nonce: str, actor: Actor) -> dict:
        try:
            header = extract_compact(token.encode()).protected
        except (JoseError, ValueError):
            self._refuse(actor, "the ID token is not a compact JWS")
        alg = header.get("alg")
        if alg not in self.settings.algorithms:
            self._refuse(actor, f"the ID token's algorithm {str(alg)[:16]!r} is not allowed")
        keys = self._key_set(header.get("kid") if isinstance(header.get("kid"), str) else None)
        try:
            claims = jwt.decode(token, keys, algorithms=list(self.settings.algorithms),
                                registry=self.registry).claims
        except JoseError as exc:
            self._refuse(actor, f"the ID token's signature did not verify ({exc.error})")
        checks = jwt.JWTClaimsRegistry(
            leeway=CLOCK_SKEW_SECONDS,
            iss={"essential": True, "value": self.settings.issuer},
            aud={"essential": True, "value": self.settings.client_id},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            checks.validate(claims)
        except JoseError as exc:
            self._refuse(actor, f"the ID token's claims are not valid ({exc.error}: "
                                f"{exc.description or ''})"[:200])
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        azp = claims.get("azp")
        if (len(audiences) > 1 or azp is not None) and azp != self.settings.client_id:
            self._refuse(actor, "the ID token's authorized party (azp) is not this client")
        return claims

    def _identity(self, claims: dict, actor: Actor) -> IdpIdentity:
        subject = claims.get("sub")
        if not isinstance(subject, str) or not 0 < len(subject) <= 255:
            self._refuse(actor, "the ID token's sub must be 1 to 255 characters")
        email = claims.get("email")
        if not isinstance(email, str) or claims.get("email_verified") is False:
            email = None
        try:
            groups = clean_groups(claims.get(self.settings.groups_claim))
        except GroupMapError as exc:
            self._refuse(actor, str(exc))
        return IdpIdentity("oidc", self.settings.issuer, subject, email, tuple(groups),
                           {"jti": str(claims.get("jti", ""))[:128]})

    def _refuse(self, actor: Actor, reason: str):
        self.audit.record_alone(actor, "sso.token_refused", f"oidc:{self.settings.issuer}",
                                {"reason": reason})
        raise OidcFailed(reason)
