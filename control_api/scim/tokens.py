"""The SCIM provisioning credential: a bearer token of its own (never an admin token,
and never usable as one), made by `weco scim token create`, stored as its SHA-256 only
(256 random bits, as API tokens in control_api/auth/credentials.py), audited when made,
revoked and refused.

A wrong token is counted against the caller's address in the store-kept throttle of
control_api/auth/throttle.py (ADDRESS_LIMIT per ADDRESS_WINDOW, across workers and
restarts) and audited; over the limit the request is refused with 429 before any
lookup. There is no per-token lock, so no one can lock the IdP out by guessing."""

from __future__ import annotations

import hmac

import falcon
import peewee

from control_api.audit.log import Actor, AuditLog
from control_api.auth.credentials import digest
from control_api.auth.throttle import LoginThrottle, address_key
from control_api.clock import SecretTokens, SystemClock
from control_api.scim.errors import ScimError
from control_api.scim.models import ScimToken

TOKEN_PREFIX = "wecoscim_"  # noqa: S105 (a public marker for secret scanners)
THROTTLE_ACCOUNT = "scim-token"


class ScimTokenError(ValueError):
    """A token command cannot do what was asked (the CLI prints it)."""


class ScimTokens:
    def __init__(self, audit: AuditLog, clock: SystemClock, tokens: SecretTokens,
                 throttle: LoginThrottle) -> None:
        self.audit, self.clock, self.tokens, self.throttle = audit, clock, tokens, throttle

    def create(self, name: str, actor: Actor) -> tuple[str, ScimToken]:
        name = name.strip()
        if not name or len(name) > 100 or not name.isprintable():
            raise ScimTokenError("a SCIM token's name must be 1..100 printable characters")
        value = TOKEN_PREFIX + self.tokens.token(32)
        try:
            with self.audit.mutation():
                token = ScimToken.create(name=name, token_hash=digest(value), created_at=self.clock.now())
                self.audit.record(actor, "scim.token_created", f"scim_token:{token.id}", {"name": name})
        except peewee.IntegrityError:
            raise ScimTokenError(f"a SCIM token named {name!r} exists already") from None
        return value, token

    def revoke(self, token_id: int, actor: Actor) -> bool:
        with self.audit.mutation():
            done = ScimToken.update(revoked_at=self.clock.now()).where(
                (ScimToken.id == token_id) & ScimToken.revoked_at.is_null()).execute()
            if done:
                self.audit.record(actor, "scim.token_revoked", f"scim_token:{token_id}")
        return bool(done)

    def authenticate(self, req: falcon.Request) -> ScimToken:
        """The live token the request carries, or a SCIM 401 (429 when over the limit)."""
        actor = Actor("anonymous", req.context.client_ip, req.user_agent or "")
        address = address_key(actor.source_ip)
        refusal = self.throttle.admit(address, THROTTLE_ACCOUNT, lock=False)
        if refusal is not None:
            raise ScimError(429, "too many failed SCIM authentications from this address; try later",
                            headers={"Retry-After": str(refusal.retry_after)})
        scheme, _, value = (req.get_header("Authorization") or "").partition(" ")
        value = value.strip()
        token = None
        if scheme.lower() == "bearer" and value.startswith(TOKEN_PREFIX):
            token = ScimToken.get_or_none(ScimToken.token_hash == digest(value))
        if token is None or token.revoked_at is not None or not hmac.compare_digest(token.token_hash,
                                                                                    digest(value)):
            reason = "revoked" if token is not None else "unknown or missing token"
            self.audit.record_alone(actor, "scim.auth_failed", "scim", {"reason": reason})
            raise ScimError(401, "a SCIM bearer token is required ('Authorization: Bearer wecoscim_...')",
                            headers={"WWW-Authenticate": 'Bearer realm="scim"'})
        self.throttle.release_address(address)
        now = self.clock.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() >= 60:
            ScimToken.update(last_used_at=now).where(ScimToken.id == token.id).execute()
        return token
