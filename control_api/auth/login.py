"""The login flows, audited: password step (throttled before any bcrypt work), then,
when the account has a second factor or sealed mode demands one, a challenge that a
TOTP code, a recovery code or an email code answers. Only then is a session made."""

from __future__ import annotations

import dataclasses
import datetime as dt

from control_api.audit.log import Actor, AuditLog
from control_api.auth.credentials import CredentialService, Principal
from control_api.auth.second_factor import SecondFactorError, SecondFactors
from control_api.auth.throttle import LOCK_SECONDS, LoginThrottle
from control_api.auth.users import UserService, email_key
from control_api.clock import SystemClock
from control_api.models import SystemState, User

SEALED_SINCE = "sealed_mode_first_seen"


class LoginFailed(Exception):
    """Unknown account, disabled account or wrong password: deliberately one error."""


class LoginThrottled(Exception):
    """Too many attempts from this address or on this account; no password was checked."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


class SealedModeRefused(Exception):
    """Sealed mode: this account has no TOTP and its grace period is over."""

    def __init__(self, deadline: dt.datetime) -> None:
        super().__init__(deadline)
        self.deadline = deadline


@dataclasses.dataclass
class LoginResult:
    user: User
    session_value: str | None = None
    challenge: str | None = None
    methods: list[str] = dataclasses.field(default_factory=list)
    totp_required_by: dt.datetime | None = None


@dataclasses.dataclass(frozen=True)
class SealedPolicy:
    enabled: bool
    grace: dt.timedelta


class LoginService:
    def __init__(self, users: UserService, credentials: CredentialService, audit: AuditLog,
                 throttle: LoginThrottle, second: SecondFactors, sealed: SealedPolicy,
                 clock: SystemClock) -> None:
        self.users, self.credentials, self.audit = users, credentials, audit
        self.throttle, self.second, self.sealed, self.clock = throttle, second, sealed, clock

    def login(self, email: str, password: str, actor: Actor, previous: Principal | None) -> LoginResult:
        account = email_key(email)[:254]
        target = f"email:{account}"
        refusal = self.throttle.admit(actor.source_ip, account)
        if refusal is not None:
            self.audit.record_alone(actor, "auth.login_throttled", target, {"limit": refusal.reason})
            raise LoginThrottled(refusal.retry_after)
        user = self.users.authenticate(email, password)
        if user is None:
            locked = self.throttle.failed(account)
            # The attempted email is recorded (spraying shows up); the password never is.
            with self.audit.mutation():
                self.audit.record(actor, "auth.login_failed", target)
                if locked:
                    self.audit.record(actor, "auth.lockout", target, {"minutes": LOCK_SECONDS // 60})
            raise LoginFailed
        methods, deadline = self._methods(user)
        if "totp" not in methods and deadline is not None and self.clock.now() >= deadline:
            self.audit.record_alone(actor, "auth.login_refused_sealed", f"user:{user.id}")
            raise SealedModeRefused(deadline)
        if methods:
            self.throttle.release(account)  # only wrong codes count from here
            with self.audit.mutation():
                challenge = self.second.open_challenge(user)
                self.audit.record(actor, "auth.password_ok", f"user:{user.id}", {"second_factor": methods})
            return LoginResult(user, challenge=challenge, methods=methods)
        self.throttle.succeeded(account)
        value = self._session(user, actor, previous, "password")
        return LoginResult(user, session_value=value, totp_required_by=deadline)

    def send_email_code(self, challenge_value: str, actor: Actor) -> None:
        challenge = self.second.challenge(challenge_value)
        if "email_code" not in self._methods(challenge.user)[0]:
            raise SecondFactorError("email codes are not available for this account")
        self.second.send_email_code(challenge)
        self.audit.record_alone(actor, "auth.email_code_sent", f"user:{challenge.user.id}")

    def complete(self, challenge_value: str, method: str, code: str, actor: Actor,
                 previous: Principal | None) -> LoginResult:
        challenge = self.second.challenge(challenge_value)
        user = challenge.user
        if user.disabled_at is not None:
            raise SecondFactorError("the login challenge is unknown, used up or expired: log in again")
        # Codes count against the account like passwords do: guessing them locks it too.
        account = email_key(user.email)
        refusal = self.throttle.locked(account)
        if refusal is not None:
            self.audit.record_alone(actor, "auth.login_throttled", f"user:{user.id}", {"limit": "account"})
            raise LoginThrottled(refusal.retry_after)
        if method not in self._methods(user)[0] or not self.second.answer(challenge, method, code):
            locked = self.throttle.code_failed(account)
            target = f"user:{user.id}"
            with self.audit.mutation():
                self.audit.record(actor, "auth.second_factor_failed", target, {"method": method})
                if locked:
                    self.audit.record(actor, "auth.lockout", target, {"minutes": LOCK_SECONDS // 60})
            raise SecondFactorError("the code is not right")
        self.throttle.succeeded(account)
        if method == "recovery_code":
            self.audit.record_alone(actor, "auth.recovery_code_used", f"user:{user.id}")
        return LoginResult(user, session_value=self._session(user, actor, previous, method))

    def logout(self, principal: Principal, actor: Actor) -> None:
        self.credentials.end_session(principal.credential_id, actor)

    def _methods(self, user: User) -> tuple[list[str], dt.datetime | None]:
        """The factors this login may use, and the sealed-mode deadline for enrolling TOTP."""
        methods = self.second.methods(user)
        if not self.sealed.enabled:
            return methods, None
        methods = [m for m in methods if m != "email_code"]
        return methods, None if "totp" in methods else self._sealed_since() + self.sealed.grace

    def _sealed_since(self) -> dt.datetime:
        now = self.clock.now().isoformat()
        SystemState.insert(name=SEALED_SINCE, value=now).on_conflict_ignore().execute()
        return dt.datetime.fromisoformat(SystemState.get_by_id(SEALED_SINCE).value)

    def _session(self, user: User, actor: Actor, previous: Principal | None, method: str) -> str:
        # A fresh session id at every login; a session the browser still held ends.
        if previous is not None and previous.via == "session":
            self.credentials.end_session(previous.credential_id, actor, "auth.session_replaced")
        user_actor = Actor(f"user:{user.id}", actor.source_ip, actor.user_agent)
        value, _ = self.credentials.start_session(user, user_actor, {"method": method})
        if user.break_glass:
            self.audit.record_alone(user_actor, "auth.break_glass_login", f"user:{user.id}",
                                    {"severity": "critical", "notice": "break-glass account used"})
        return value
