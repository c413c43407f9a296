"""The login and logout flows, audited. Lockout, rate limits and second factors
(a later issue) slot in here, before any password work."""

from __future__ import annotations

from control_api.audit.log import Actor, AuditLog
from control_api.auth.credentials import CredentialService, Principal
from control_api.auth.throttle import LOCK_SECONDS, LoginThrottle
from control_api.auth.users import UserService, email_key
from control_api.models import Session, User


class LoginFailed(Exception):
    """Unknown account, disabled account or wrong password: deliberately one error."""


class LoginThrottled(Exception):
    """Too many attempts from this address or on this account; no password was checked."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


class LoginService:
    def __init__(self, users: UserService, credentials: CredentialService, audit: AuditLog,
                 throttle: LoginThrottle) -> None:
        self.users = users
        self.credentials = credentials
        self.audit = audit
        self.throttle = throttle

    def login(self, email: str, password: str, actor: Actor, previous: Principal | None) -> tuple[User, str]:
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
        self.throttle.succeeded(account)
        # A fresh session id at every login; a session the browser still held ends.
        if previous is not None and previous.via == "session":
            self.credentials.end_session(previous.credential_id, actor, "auth.session_replaced")
        value, _ = self.credentials.start_session(user, Actor(f"user:{user.id}", actor.source_ip,
                                                              actor.user_agent))
        return user, value

    def logout(self, principal: Principal, actor: Actor) -> Session | None:
        self.credentials.end_session(principal.credential_id, actor)
