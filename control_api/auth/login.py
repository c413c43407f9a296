"""The login and logout flows, audited. Lockout, rate limits and second factors
(a later issue) slot in here, before any password work."""

from __future__ import annotations

from control_api.audit.log import Actor, AuditLog
from control_api.auth.credentials import CredentialService, Principal
from control_api.auth.users import UserService, email_key
from control_api.models import Session, User


class LoginFailed(Exception):
    """Unknown account, disabled account or wrong password: deliberately one error."""


class LoginService:
    def __init__(self, users: UserService, credentials: CredentialService, audit: AuditLog) -> None:
        self.users = users
        self.credentials = credentials
        self.audit = audit

    def login(self, email: str, password: str, actor: Actor, previous: Principal | None) -> tuple[User, str]:
        user = self.users.authenticate(email, password)
        if user is None:
            # The attempted email is recorded (spraying shows up); the password never is.
            self.audit.record_alone(actor, "auth.login_failed", f"email:{email_key(email)[:254]}")
            raise LoginFailed
        # A fresh session id at every login; a session the browser still held ends.
        if previous is not None and previous.via == "session":
            self.credentials.end_session(previous.credential_id, actor, "auth.session_replaced")
        value, _ = self.credentials.start_session(user, Actor(f"user:{user.id}", actor.source_ip,
                                                              actor.user_agent))
        return user, value

    def logout(self, principal: Principal, actor: Actor) -> Session | None:
        self.credentials.end_session(principal.credential_id, actor)
