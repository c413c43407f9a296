"""Logins a browser started at the IdP and has not finished: each bound to a short-lived
cookie that only this browser holds (its SHA-256 in the store), used at most once, within
LOGIN_TTL. SAML keeps the AuthnRequest id here (the response's InResponseTo must be it);
OIDC derives its state, nonce and PKCE verifier from the cookie (RFC 7636, OpenID Connect
Core §3.1.2.1), so nothing secret is stored. Also the replay ledger: an assertion id, or
an ID token, accepted once per issuer until it could not be valid anyway."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac

import peewee

from control_api.clock import SecretTokens, SystemClock
from control_api.sso.models import SsoLogin, SsoSeen

LOGIN_TTL = dt.timedelta(minutes=10)
_KEEP_USED = dt.timedelta(days=1)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def derive(cookie: str, label: str) -> str:
    """A value bound to the cookie (state, nonce, verifier): 43 URL-safe characters."""
    mac = hmac.new(cookie.encode("utf-8"), f"weco/sso/{label}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


class PendingLogins:
    def __init__(self, clock: SystemClock, tokens: SecretTokens) -> None:
        self.clock, self.tokens = clock, tokens

    def start(self, protocol: str, request_id: str) -> str:
        """A new cookie value for a login whose request is `request_id`."""
        value = self.tokens.token(32)
        now = self.clock.now()
        SsoLogin.delete().where(SsoLogin.expires_at < now - _KEEP_USED).execute()
        SsoLogin.create(binding_hash=_digest(value), protocol=protocol, request_id=request_id,
                        created_at=now, expires_at=now + LOGIN_TTL)
        return value

    def peek(self, protocol: str, cookie: str | None) -> str | None:
        """The request id of this cookie's live, unused login, or None."""
        if not cookie:
            return None
        row = SsoLogin.get_or_none((SsoLogin.binding_hash == _digest(cookie))
                                   & (SsoLogin.protocol == protocol))
        if row is None or row.used_at is not None or self.clock.now() >= row.expires_at:
            return None
        return row.request_id

    def use(self, protocol: str, cookie: str) -> bool:
        """Mark the cookie's login used; False if it was used (or expired) meanwhile."""
        now = self.clock.now()
        return SsoLogin.update(used_at=now).where(
            (SsoLogin.binding_hash == _digest(cookie)) & (SsoLogin.protocol == protocol)
            & SsoLogin.used_at.is_null() & (SsoLogin.expires_at > now)).execute() == 1

    def first_use(self, protocol: str, issuer: str, item: str, until: dt.datetime) -> bool:
        """Record `item` (an assertion id) as accepted; False if it was accepted before.
        Inside the caller's transaction: the record commits with the session or not at all."""
        now = self.clock.now()
        SsoSeen.delete().where(SsoSeen.expires_at < now).execute()
        try:
            with SsoSeen._meta.database.atomic():
                SsoSeen.create(protocol=protocol, issuer=issuer, item=item[:512], expires_at=until)
        except peewee.IntegrityError:
            return False
        return True
