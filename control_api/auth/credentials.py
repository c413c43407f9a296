"""Login sessions (cookie) and API tokens (Bearer): issued once, stored hashed.

Both are 256-bit random values; the store keeps only their SHA-256, which is enough
for values of that entropy and means a copy of the database logs nobody in. The
CSRF token of a session is an HMAC of the session value under a fixed label, so it
needs no storage and is bound to exactly one session.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac

import peewee

from control_api.audit.log import Actor, AuditLog
from control_api.clock import SecretTokens, SystemClock
from control_api.models import ApiToken, Session, User

TOKEN_PREFIX = "weco_"  # noqa: S105 (a public marker for secret scanners)
_CSRF_LABEL = b"weco/csrf/v1"
# last_seen / last_used are written at most this often, not on every request.
_TOUCH_EVERY = dt.timedelta(seconds=60)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def csrf_token_for(session_value: str) -> str:
    return hmac.new(session_value.encode("utf-8"), _CSRF_LABEL, hashlib.sha256).hexdigest()


@dataclasses.dataclass(frozen=True)
class Principal:
    """Who is calling: the user, and through which credential."""

    user: User
    via: str  # "session" | "token"
    credential_id: int
    csrf_token: str | None = None


class CredentialService:
    def __init__(
        self,
        audit: AuditLog,
        clock: SystemClock,
        tokens: SecretTokens,
        idle: dt.timedelta,
        lifetime: dt.timedelta,
    ) -> None:
        self.audit = audit
        self.clock = clock
        self.tokens = tokens
        self.idle = idle
        self.lifetime = lifetime

    # -- sessions -----------------------------------------------------------------

    def start_session(self, user: User, actor: Actor, metadata: dict | None = None) -> tuple[str, Session]:
        value = self.tokens.token(32)
        now = self.clock.now()
        with self.audit.mutation():
            session = Session.create(
                token_hash=digest(value),
                user=user,
                created_at=now,
                last_seen_at=now,
                expires_at=now + self.lifetime,
                source_ip=actor.source_ip,
                user_agent=actor.user_agent[:512],
            )
            self.audit.record(actor, "auth.login", f"user:{user.id}",
                              {"session": session.id, **(metadata or {})})
        return value, session

    def session_principal(self, value: str) -> Principal | None:
        session = (
            Session.select(Session, User)
            .join(User)
            .where(Session.token_hash == digest(value))
            .first()
        )
        now = self.clock.now()
        if session is None or session.revoked_at is not None or session.user.disabled_at:
            return None
        if now >= session.expires_at or now - session.last_seen_at >= self.idle:
            return None
        if now - session.last_seen_at >= _TOUCH_EVERY:
            Session.update(last_seen_at=now).where(Session.id == session.id).execute()
        return Principal(session.user, "session", session.id, csrf_token_for(value))

    def end_all_sessions(self, user: User, actor: Actor, reason: str) -> int:
        """Every session of `user` ends (a password or second factor changed)."""
        with self.audit.mutation():
            ended = Session.update(revoked_at=self.clock.now()).where(
                (Session.user == user) & Session.revoked_at.is_null()).execute()
            self.audit.record(actor, "auth.sessions_ended", f"user:{user.id}",
                              {"reason": reason, "count": ended})
        return ended

    def end_session(self, session_id: int, actor: Actor, action: str = "auth.logout") -> None:
        with self.audit.mutation():
            ended = Session.update(revoked_at=self.clock.now()).where(
                (Session.id == session_id) & Session.revoked_at.is_null()
            ).execute()
            if ended:
                self.audit.record(actor, action, f"session:{session_id}")

    # -- API tokens ---------------------------------------------------------------

    def create_token(
        self, user: User, name: str, expires_at: dt.datetime | None, actor: Actor
    ) -> tuple[str, ApiToken]:
        value = TOKEN_PREFIX + self.tokens.token(32)
        try:
            with self.audit.mutation():
                token = ApiToken.create(
                    token_hash=digest(value),
                    user=user,
                    name=name,
                    created_at=self.clock.now(),
                    expires_at=expires_at,
                )
                expires = expires_at.isoformat() + "Z" if expires_at else None
                self.audit.record(actor, "token.create", f"token:{token.id}",
                                  {"user": user.id, "name": name, "expires_at": expires})
        except peewee.IntegrityError:
            raise ValueError(f"this user already has a token named {name!r}") from None
        return value, token

    def token_principal(self, value: str) -> Principal | None:
        token = (
            ApiToken.select(ApiToken, User)
            .join(User)
            .where(ApiToken.token_hash == digest(value))
            .first()
        )
        now = self.clock.now()
        if token is None or token.revoked_at is not None or token.user.disabled_at:
            return None
        if token.expires_at is not None and now >= token.expires_at:
            return None
        if token.last_used_at is None or now - token.last_used_at >= _TOUCH_EVERY:
            ApiToken.update(last_used_at=now).where(ApiToken.id == token.id).execute()
        return Principal(token.user, "token", token.id)

    def revoke_token(self, token_id: int, actor: Actor, owner: User | None = None) -> bool:
        """Revoke an active token (only `owner`'s, when given); False if there is none."""
        condition = (ApiToken.id == token_id) & ApiToken.revoked_at.is_null()
        if owner is not None:
            condition &= ApiToken.user == owner
        with self.audit.mutation():
            changed = ApiToken.update(revoked_at=self.clock.now()).where(condition).execute()
            if changed:
                self.audit.record(actor, "token.revoke", f"token:{token_id}")
        return changed == 1
