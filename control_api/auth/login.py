"""The login flows, audited: password step (throttled before any bcrypt work), then,
when the account has a second factor or sealed mode demands one, a challenge that a
TOTP code, a recovery code or an email code answers. Only then is a session made."""

from __future__ import annotations

import dataclasses
import datetime as dt

from control_api.audit.log import Actor, AuditLog
from control_api.auth.credentials import CredentialService, Principal
from control_api.auth.guard import Check, CredentialGuard, TooManyAttempts, password_check
from control_api.auth.sealed import SealedMode
from control_api.auth.second_factor import SecondFactorError, SecondFactors
from control_api.auth.sso_only import SsoOnlyRefused
from control_api.auth.users import UserService, email_key, find_by_email
from control_api.errors import ApiError
from control_api.models import User


class LoginFailed(ApiError):
    """Unknown account, disabled account or wrong password: deliberately one error."""

    status = 401
    title = "Login failed"

    def __init__(self) -> None:
        super().__init__("the email or password is incorrect")


class SealedModeRefused(ApiError):
    """Sealed mode: this account has no TOTP and its grace period is over."""

    status = 403
    title = "TOTP required"

    def __init__(self, deadline: dt.datetime) -> None:
        super().__init__(f"sealed mode: accounts without TOTP could log in until "
                         f"{deadline.isoformat()}Z; ask a superadmin for help")
        self.deadline = deadline


@dataclasses.dataclass
class LoginResult:
    user: User
    session_value: str | None = None
    challenge: str | None = None
    methods: list[str] = dataclasses.field(default_factory=list)
    totp_required_by: dt.datetime | None = None


class LoginService:
    def __init__(self, users: UserService, credentials: CredentialService, audit: AuditLog,
                 guard: CredentialGuard, second: SecondFactors, sealed: SealedMode) -> None:
        self.users, self.credentials, self.audit = users, credentials, audit
        self.guard, self.second, self.sealed = guard, second, sealed

    def login(self, email: str, password: str, actor: Actor, previous: Principal | None) -> LoginResult:
        account = email_key(email)[:254]
        known = find_by_email(email)
        break_glass = known is not None and known.break_glass and known.disabled_at is None
        check = password_check("login", account, f"email:{account}", break_glass)
        try:
            held = self.guard.admit(check, actor)
        except TooManyAttempts as refused:
            if refused.reason == "account":
                # As long as a checked password takes: see guard.py (the break-glass account).
                self.users.hasher.verify(password, None)
            raise
        user = self.users.authenticate(email, password)
        if user is None:
            # The attempted email is recorded (spraying shows up); the password never is.
            self.guard.failed(check, actor, held=held)
            raise LoginFailed
        methods, deadline = self.factors(user)
        # The password was right; when the account has a second factor, only that proves its holder.
        self.guard.passed(check, actor, proves_account=not methods)
        # FF_SSO_ONLY=1: said only to whoever knows the password; break-glass goes on to its factor.
        refused = self.credentials.sso_only.refuses_login(user, "password", methods[0] if methods else None)
        if refused is not None:
            self.audit.record_alone(actor, "auth.login_refused_sso_only", f"user:{user.id}",
                                    {"login_method": "password", "break_glass": user.break_glass})
            raise SsoOnlyRefused(refused)
        if deadline is not None and self.sealed.clock.now() >= deadline:
            self.audit.record_alone(actor, "auth.login_refused_sealed", f"user:{user.id}")
            raise SealedModeRefused(deadline)
        if methods:
            with self.audit.mutation():
                challenge = self.second.open_challenge(user)
                self.audit.record(actor, "auth.password_ok", f"user:{user.id}", {"second_factor": methods})
            return LoginResult(user, challenge=challenge, methods=methods)
        value = self._session(user, actor, previous, "password", user.credential_epoch)
        return LoginResult(user, session_value=value, totp_required_by=deadline)

    def send_email_code(self, challenge_value: str, actor: Actor) -> None:
        challenge = self.second.challenge(challenge_value)
        if "email_code" not in self.factors(challenge.user)[0]:
            raise SecondFactorError("email codes are not available for this account")
        self.second.send_email_code(challenge)
        self.audit.record_alone(actor, "auth.email_code_sent", f"user:{challenge.user.id}")

    def complete(self, challenge_value: str, method: str, code: str, actor: Actor,
                 previous: Principal | None) -> LoginResult:
        challenge = self.second.challenge(challenge_value)
        user = challenge.user
        if user.disabled_at is not None:
            raise SecondFactorError("the login challenge is unknown, used up or expired: log in again")
        # Codes count against the account and the address like passwords do.
        check = Check("second_factor", email_key(user.email), f"user:{user.id}")
        self.guard.admit(check, actor)
        if not self.second.reserve(challenge):
            self.guard.withdraw(check, actor)
            raise SecondFactorError("the login challenge is unknown, used up or expired: log in again")
        if method not in self.factors(user)[0] or not self.second.answer(challenge, method, code):
            self.guard.failed(check, actor, {"method": method})
            raise SecondFactorError("the code is not right")
        self.guard.passed(check, actor, proves_account=True)
        if method == "recovery_code":
            self.audit.record_alone(actor, "auth.recovery_code_used", f"user:{user.id}")
        return LoginResult(user, session_value=self._session(user, actor, previous, method,
                                                             challenge.credential_epoch))

    def logout(self, principal: Principal, actor: Actor) -> None:
        self.credentials.end_session(principal.credential_id, actor)

    def factors(self, user: User) -> tuple[list[str], dt.datetime | None]:
        """The factors this login may use, and the sealed-mode deadline for enrolling TOTP."""
        return self.sealed.narrow(self.second.methods(user))

    def _session(self, user: User, actor: Actor, previous: Principal | None, method: str, epoch: int) -> str:
        """A session, unless a credential changed since the password was checked (`epoch`)."""
        # A fresh session id at every login; a session the browser still held ends.
        if previous is not None and previous.via == "session":
            self.credentials.end_session(previous.credential_id, actor, "auth.session_replaced")
        user_actor = Actor(f"user:{user.id}", actor.source_ip, actor.user_agent)
        # A passkey login is its own strong factor (sealed mode counts it like TOTP).
        second_factor = {"password": None, "passkey": "webauthn"}.get(method, method)
        value, _ = self.credentials.start_session(user, user_actor, {"method": method}, second_factor, epoch)
        if user.break_glass:
            self.audit.record_alone(user_actor, "auth.break_glass_login", f"user:{user.id}",
                                    {"severity": "critical", "notice": "break-glass account used",
                                     "sso_only": self.credentials.sso_only.enabled})
        return value

    def issue_session(self, user: User, actor: Actor, previous: Principal | None, method: str,
                      epoch: int) -> str:
        """A session for a login another module verified (a passkey): see _session."""
        return self._session(user, actor, previous, method, epoch)
