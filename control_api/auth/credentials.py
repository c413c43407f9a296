"""Login sessions (cookie) and API tokens (Bearer): issued once, stored hashed.

Both are 256-bit random values; the store keeps only their SHA-256, which is enough
for values of that entropy and means a copy of the database logs nobody in. The
CSRF token of a session is an HMAC of the session value under a fixed label, so it
needs no storage and is bound to exactly one session.

A token lives FF_TOKEN_MAX_DAYS at most from its creation, checked at every use, so
lowering the setting also shortens tokens made before; under sealed mode a token of
an account without TOTP stops working when that account's grace period ends, and so
does a session whose login did not pass TOTP.

Each user has a credential epoch that every credential change (end_all_access) bumps.
A session and a login challenge record the epoch their password was checked under, and
the transaction that inserts a session or a token re-reads the account (share-locked on
PostgreSQL) and refuses if the epoch moved, the account was disabled or, for a mint, the
session ended: a change that commits while a login or a mint is in flight cuts it.

With FF_SSO_ONLY=1 (control_api/auth/sso_only.py) a session is also judged by how it
was opened and a token by what minted it, at creation and at every use.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import hmac

import peewee

from control_api.audit.log import Actor, AuditLog
from control_api.auth.sealed import SealedMode
from control_api.auth.sso_only import OPERATOR, SsoOnly, SsoOnlyRefused, login_method_of
from control_api.clock import SecretTokens, SystemClock
from control_api.db import PostgresPool, dialect
from control_api.errors import ApiError, NotFound
from control_api.models import ApiToken, LoginChallenge, Session, User

TOKEN_PREFIX = "weco_"  # noqa: S105 (a public marker for secret scanners)
_CSRF_LABEL = b"weco/csrf/v1"
# last_seen / last_used are written at most this often, not on every request.
_TOUCH_EVERY = dt.timedelta(seconds=60)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _by_hash(value: str) -> ApiToken | None:
    """The token whose digest `value` has, with its user, in one plain statement. Every
    API call starts here: peewee spends several times the database's time building a
    join's SQL and hydrating its rows (measured: 150 of 200 us a call), so the SQL is
    made once and the two models are filled from the row by their own fields. On
    PostgreSQL the statement is also prepared once per connection (db.execute_prepared)."""
    database = ApiToken._meta.database
    database = getattr(database, "obj", database)  # the store behind the models' proxy
    if isinstance(database, PostgresPool):
        cursor = database.execute_prepared("weco_token_by_hash", _token_sql("$1"), (digest(value),))
    else:
        cursor = database.execute_sql(_token_sql(database.param), (digest(value),))
    row = cursor.fetchone()
    if row is None:
        return None
    split = len(ApiToken._meta.sorted_fields)
    token, user = _model_of(ApiToken, row[:split]), _model_of(User, row[split:])
    token.user = user
    return token


@functools.cache
def _token_sql(param: str) -> str:
    columns = [f"t.{f.column_name}" for f in ApiToken._meta.sorted_fields]
    columns += [f"u.{f.column_name}" for f in User._meta.sorted_fields]
    # Only the models' own column names and a placeholder are formatted in.
    return (f"SELECT {', '.join(columns)} FROM api_tokens t JOIN users u ON u.id = t.user_id "  # noqa: S608
            f"WHERE t.token_hash = {param}")


def _model_of(model, values):
    """An instance filled from its columns as peewee fills a query's rows (nothing
    marked dirty), without a descriptor call per field."""
    instance = model(__no_default__=True)
    fields = model._meta.sorted_fields
    instance.__data__ = {f.name: f.python_value(v) for f, v in zip(fields, values, strict=True)}
    return instance


def csrf_token_for(session_value: str) -> str:
    return hmac.new(session_value.encode("utf-8"), _CSRF_LABEL, hashlib.sha256).hexdigest()


class TokenNameTaken(ValueError):
    """The user already has a token of that name (a ValueError, as the CLI expects)."""


class TokenLifetimeError(ApiError):
    """A token was asked to live longer than FF_TOKEN_MAX_DAYS."""


class AccessChanged(ApiError):
    """The session ended, the account was disabled or a credential of it changed after the
    check a login or a mint relied on: nothing was issued."""

    status = 401
    title = "Credentials changed"


class TokenSealed(ApiError):
    status = 403
    title = "TOTP required"


@dataclasses.dataclass(frozen=True)
class Principal:
    """Who is calling: the user, and through which credential."""

    user: User
    via: str  # "session" | "token"
    credential_id: int
    csrf_token: str | None = None
    second_factor: str | None = None  # for a session: the factor its login passed, if any
    login_method: str | None = None  # for a session: how it was opened (sso_only.login_method_of)


class CredentialService:
    def __init__(
        self,
        audit: AuditLog,
        clock: SystemClock,
        tokens: SecretTokens,
        idle: dt.timedelta,
        lifetime: dt.timedelta,
        token_lifetime: dt.timedelta,
        sealed: SealedMode,
        sso_only: SsoOnly | None = None,
    ) -> None:
        self.audit = audit
        self.clock = clock
        self.tokens = tokens
        self.idle = idle
        self.lifetime = lifetime
        self.token_lifetime = token_lifetime
        self.sealed = sealed
        self.sso_only = sso_only or SsoOnly(False)

    # -- sessions -----------------------------------------------------------------

    def start_session(self, user: User, actor: Actor, metadata: dict | None = None,
                      second_factor: str | None = None, epoch: int | None = None) -> tuple[str, Session]:
        """A new session. `epoch` is the user's credential epoch when the login checked the
        password: if a credential changed since (or the account was disabled), AccessChanged,
        decided in the insert's own transaction. None: the current epoch (the operator)."""
        value = self.tokens.token(32)
        now = self.clock.now()
        login_method = login_method_of((metadata or {}).get("method"))
        refused = self.sso_only.refuses_login(user, login_method, second_factor)
        if refused is not None:
            self.audit.record_alone(actor, "auth.login_refused_sso_only", f"user:{user.id}",
                                    {"login_method": login_method, "second_factor": second_factor})
            raise SsoOnlyRefused(refused)
        with self.audit.mutation():
            current = self._account_for_insert(user)
            if current is None or (epoch is not None and current.credential_epoch != epoch):
                raise AccessChanged("the account's credentials changed during this login: log in again")
            session = Session.create(
                token_hash=digest(value),
                user=user,
                created_at=now,
                last_seen_at=now,
                expires_at=now + self.lifetime,
                source_ip=actor.source_ip,
                user_agent=actor.user_agent[:512],
                second_factor=second_factor,
                credential_epoch=current.credential_epoch,
                login_method=login_method,
            )
            self.audit.record(actor, "auth.login", f"user:{user.id}",
                              {"session": session.id, **(metadata or {})})
        return value, session

    def _account_for_insert(self, user: User) -> User | None:
        """The user's row as it is now, if the account is active, read so that a credential
        change cannot commit between this read and the caller's insert: on PostgreSQL the
        row is share-locked (end_all_access bumps the epoch first, so it waits for us, or
        we wait for it and read its epoch); SQLite's write transactions are serial."""
        query = User.select().where((User.id == user.id) & User.disabled_at.is_null())
        if dialect(self.audit.db) == "postgresql":
            query = query.for_update("FOR SHARE")
        return query.first()

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
        if session.credential_epoch != session.user.credential_epoch:
            return None  # made before a credential change (end_all_access also revoked it)
        if now >= session.expires_at or now - session.last_seen_at >= self.idle:
            return None
        if self.sealed.refuses_session(session.second_factor) is not None:
            # Sealed mode's grace is over and this login did not pass TOTP: like a stale
            # cookie (anonymous, so logging in again still works and says why it is refused).
            return None
        if self.sso_only.refuses_login(session.user, session.login_method, session.second_factor):
            return None  # a password session under FF_SSO_ONLY=1, say one opened before the switch
        if now - session.last_seen_at >= _TOUCH_EVERY:
            Session.update(last_seen_at=now).where(Session.id == session.id).execute()
        return Principal(session.user, "session", session.id, csrf_token_for(value), session.second_factor,
                         session.login_method)

    def end_all_access(self, user: User, actor: Actor, reason: str) -> None:
        """Every session of `user` ends, every API token and pending login challenge is
        revoked, and the user's credential epoch moves on (a password or a second factor
        changed, or the account was disabled): a login or a mint that checked the old
        credentials, still in flight, is refused at its insert."""
        now = self.clock.now()
        with self.audit.mutation():
            # First: on PostgreSQL this row lock orders us against _account_for_insert.
            User.update(credential_epoch=User.credential_epoch + 1).where(User.id == user.id).execute()
            ended = Session.update(revoked_at=now).where(
                (Session.user == user) & Session.revoked_at.is_null()).execute()
            pending = LoginChallenge.delete().where(
                (LoginChallenge.user == user) & LoginChallenge.used_at.is_null()).execute()
            self.audit.record(actor, "auth.sessions_ended", f"user:{user.id}",
                              {"reason": reason, "count": ended, "pending_logins": pending})
            revoked = ApiToken.update(revoked_at=now).where(
                (ApiToken.user == user) & ApiToken.revoked_at.is_null()).execute()
            self.audit.record(actor, "auth.tokens_revoked", f"user:{user.id}",
                              {"reason": reason, "count": revoked})

    def end_session(self, session_id: int, actor: Actor, action: str = "auth.logout") -> None:
        with self.audit.mutation():
            ended = Session.update(revoked_at=self.clock.now()).where(
                (Session.id == session_id) & Session.revoked_at.is_null()
            ).execute()
            if ended:
                self.audit.record(actor, action, f"session:{session_id}")

    def live_sessions(self, user: User) -> list[Session]:
        return list(Session.select().where((Session.user == user) & Session.revoked_at.is_null())
                    .order_by(Session.id))

    def revoke_session(self, session_id: int, actor: Actor, owner: User | None = None) -> None:
        """End a live session (only `owner`'s, when given); NotFound when there is none."""
        condition = (Session.id == session_id) & Session.revoked_at.is_null()
        if owner is not None:
            condition &= Session.user == owner
        if not Session.select().where(condition).exists():
            why = "you have no live session with this id" if owner else "no live session has this id"
            raise NotFound(why, title="No such session")
        self.end_session(session_id, actor, "auth.session_revoked")

    # -- API tokens ---------------------------------------------------------------

    def tokens_of(self, user: User) -> list[ApiToken]:
        return list(ApiToken.select().where(ApiToken.user == user).order_by(ApiToken.id))

    @property
    def token_max_days(self) -> int:
        return self.token_lifetime.days

    def create_token(
        self, user: User, name: str, expires_at: dt.datetime | None, actor: Actor,
        session_id: int | None = None,
    ) -> tuple[str, ApiToken]:
        """A new token; expires_at=None means the longest allowed life. `session_id`: the
        session minting it, which must still be live, with no credential change since its
        login, in the insert's own transaction (else AccessChanged). None: the operator."""
        now = self.clock.now()
        longest = now + self.token_lifetime
        if expires_at is not None and expires_at > longest:
            raise TokenLifetimeError(
                f"a token may live {self.token_max_days} days at most (FF_TOKEN_MAX_DAYS)")
        expires_at = expires_at or longest
        value = TOKEN_PREFIX + self.tokens.token(32)
        try:
            with self.audit.mutation():
                current = self._account_for_insert(user)
                minted_via = OPERATOR
                if session_id is not None:
                    minted_via = login_method_of(self._check_minting_session(session_id, current, now))
                elif current is None:
                    raise ValueError("this account is disabled")
                refused = self.sso_only.refuses_token(minted_via)
                if refused is not None:
                    raise SsoOnlyRefused(refused)
                token = ApiToken.create(
                    token_hash=digest(value),
                    user=user,
                    name=name,
                    created_at=now,
                    expires_at=expires_at,
                    minted_via=minted_via,
                )
                expires = expires_at.isoformat() + "Z"
                self.audit.record(actor, "token.create", f"token:{token.id}",
                                  {"user": user.id, "name": name, "expires_at": expires})
        except peewee.IntegrityError:
            raise TokenNameTaken(f"this user already has a token named {name!r}") from None
        return value, token

    def _check_minting_session(self, session_id: int, account: User | None, now: dt.datetime) -> str | None:
        """The minting session's login method, if it may still mint (else AccessChanged)."""
        query = Session.select().where(Session.id == session_id)
        if dialect(self.audit.db) == "postgresql":
            query = query.for_update("FOR SHARE")  # a logout waits for the mint, or the mint sees it
        session = query.first()
        if (account is None or session is None or session.user_id != account.id
                or session.revoked_at is not None or now >= session.expires_at
                or session.credential_epoch != account.credential_epoch):
            raise AccessChanged("this session ended or the account's credentials changed: log in again")
        return session.login_method

    def token_expiry(self, token: ApiToken) -> dt.datetime:
        """When the token stops working: its own expiry, or FF_TOKEN_MAX_DAYS after its
        creation if that comes first (older tokens may have been made longer)."""
        longest = token.created_at + self.token_lifetime
        return min(token.expires_at, longest) if token.expires_at else longest

    def token_principal(self, value: str) -> Principal | None:
        """The caller of a live token, or None; TokenSealed under sealed mode past the
        grace period for an account without TOTP (the caller holds the token: telling it
        why is safe, and tells its owner what to do)."""
        token = _by_hash(value)
        now = self.clock.now()
        if token is None or token.revoked_at is not None or token.user.disabled_at:
            return None
        if now >= self.token_expiry(token):
            return None
        deadline = self.sealed.refuses_token_of(token.user)
        if deadline is not None:
            raise TokenSealed(f"sealed mode: API tokens of accounts without TOTP stopped working at "
                              f"{deadline.isoformat()}Z; enrol TOTP, then make a new token")
        refused = self.sso_only.refuses_token(token.minted_via)
        if refused is not None:
            raise SsoOnlyRefused(refused)
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
