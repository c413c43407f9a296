"""Where a passkey is used: as the second step of a password login, as a passwordless
login (a discoverable credential, W3C WebAuthn §5.4.6 residentKey; the response's user
handle must be its owner's), and to mint a step-up token.

Each assertion is a credential check like a password or a TOTP code: throttled before
any verification (the per-address limit and the account lock, control_api/auth/guard.py),
and audited when it fails (`auth.login_failed`, `auth.second_factor_failed` or
`auth.step_up_failed`, with method `webauthn` and the reason). The challenge is taken
before verification, so a failed attempt spends it too. A credential of another user
than the one the ceremony is for does not verify.
"""

from __future__ import annotations

import hashlib

from control_api.audit.log import Actor
from control_api.auth.credentials import Principal
from control_api.auth.guard import Check, CredentialGuard
from control_api.auth.login import LoginFailed, LoginResult, LoginService
from control_api.auth.second_factor import SecondFactorError
from control_api.auth.stepup import SCOPES, StepUp, StepUpRefused
from control_api.auth.users import email_key
from control_api.webauthn.ceremonies import Ceremonies, NotVerified, client_challenge
from control_api.webauthn.models import WebauthnUser
from control_api.webauthn.service import Passkeys

_SPENT = "the login challenge is unknown, used up or expired: log in again"


class PasskeyLoginFailed(LoginFailed):
    def __init__(self) -> None:
        super(LoginFailed, self).__init__("the passkey was not accepted")


class PasskeyFlows:
    def __init__(self, passkeys: Passkeys, logins: LoginService, guard: CredentialGuard,
                 step_up: StepUp) -> None:
        self.passkeys, self.logins, self.guard, self.step_up = passkeys, logins, guard, step_up
        self.ceremonies: Ceremonies = passkeys.ceremonies

    def _allowed(self, user) -> list[str]:
        return [c.credential_id for c in self.passkeys.of(user)]

    # -- second factor after a password -------------------------------------------

    def second_factor_options(self, challenge_value: str, actor: Actor) -> dict:
        self.ceremonies.require()
        challenge = self.logins.second.challenge(challenge_value)
        user = challenge.user
        if user.disabled_at is not None or "webauthn" not in self.logins.factors(user)[0]:
            raise SecondFactorError("this account has no passkey for this login")
        issued = self.ceremonies.issue("second_factor", actor.source_ip, user=user,
                                       login_challenge_id=challenge.id)
        return self.ceremonies.request_options(issued, self._allowed(user))

    def second_factor(self, challenge_value: str, credential: object, actor: Actor,
                      previous: Principal | None) -> LoginResult:
        self.ceremonies.require()
        asserted = client_challenge(credential)
        challenge = self.logins.second.challenge(challenge_value)
        user = challenge.user
        if user.disabled_at is not None:
            raise SecondFactorError(_SPENT)
        check = Check("second_factor", email_key(user.email), f"user:{user.id}")
        self.guard.admit(check, actor)
        if not self.logins.second.reserve(challenge):
            self.guard.withdraw(check, actor)
            raise SecondFactorError(_SPENT)
        try:
            if "webauthn" not in self.logins.factors(user)[0]:
                raise NotVerified("this account has no passkey")
            issued = self.ceremonies.consume(asserted, "second_factor")
            if issued is None or issued.login_challenge_id != challenge.id:
                raise NotVerified("the passkey challenge is unknown, used, expired or another login's")
            row = self.passkeys.credential_of(credential)
            if row is None or row.user_id != user.id:
                raise NotVerified("this passkey is not registered to this account")
            self.passkeys.judge(row, credential, asserted, actor)
            if not self.logins.second.close(challenge):
                raise NotVerified("the login challenge was answered meanwhile")
        except NotVerified as exc:
            self.guard.failed(check, actor, {"method": "webauthn", "reason": str(exc)})
            raise SecondFactorError(f"the passkey was not accepted: {exc}") from None
        self.guard.passed(check, actor, proves_account=True)
        value = self.logins.issue_session(user, actor, previous, "webauthn", challenge.credential_epoch)
        return LoginResult(user, session_value=value)

    # -- passwordless -------------------------------------------------------------

    def passwordless_options(self, actor: Actor) -> dict:
        self.ceremonies.require()
        issued = self.ceremonies.issue("passwordless", actor.source_ip)
        return self.ceremonies.request_options(issued, [])

    def passwordless(self, credential: object, actor: Actor, previous: Principal | None) -> LoginResult:
        self.ceremonies.require()
        asserted = client_challenge(credential)
        row = self.passkeys.credential_of(credential)
        # Throttled per account as a password would be; an unknown credential per its id.
        account = (email_key(row.user.email) if row is not None
                   else "webauthn:" + hashlib.sha256(credential["rawId"].encode()).hexdigest()[:32])
        target = f"user:{row.user_id}" if row is not None else "webauthn:unknown"
        check = Check("login", account, target)
        self.guard.admit(check, actor)
        try:
            issued = self.ceremonies.consume(asserted, "passwordless")
            if issued is None:
                raise NotVerified("the passkey challenge is unknown, used or expired")
            if row is None or row.user.disabled_at is not None or not self.passkeys.enabled:
                raise NotVerified("no account has this passkey")
            handle = credential["response"].get("userHandle")
            owner = WebauthnUser.get_or_none(WebauthnUser.user == row.user_id)
            if owner is None or not isinstance(handle, str) or handle != owner.user_handle:
                raise NotVerified("the user handle is not the passkey owner's")
            epoch = row.user.credential_epoch
            self.passkeys.judge(row, credential, asserted, actor)
        except NotVerified as exc:
            self.guard.failed(check, actor, {"method": "webauthn", "reason": str(exc)})
            raise PasskeyLoginFailed from None
        self.guard.passed(check, actor, proves_account=True)
        value = self.logins.issue_session(row.user, actor, previous, "passkey", epoch)
        return LoginResult(row.user, session_value=value)

    # -- step-up ------------------------------------------------------------------

    def step_up_options(self, principal: Principal, scope: str, actor: Actor) -> dict:
        self.ceremonies.require()
        if principal.via != "session" or scope not in SCOPES:
            raise StepUpRefused("step-up needs a cookie session and one of the scopes: " + ", ".join(SCOPES))
        allowed = self._allowed(principal.user)
        if not allowed:
            raise StepUpRefused("you have no passkey: register one at POST /api/me/webauthn/registration")
        issued = self.ceremonies.issue("step_up", actor.source_ip, user=principal.user,
                                       session_id=principal.credential_id, scope=scope)
        return self.ceremonies.request_options(issued, allowed)

    def step_up_with(self, principal: Principal, credential: object, actor: Actor) -> tuple[str, str, object]:
        """(token, scope, expiry) for a verified passkey assertion of the session's user."""
        self.ceremonies.require()
        asserted = client_challenge(credential)
        user = principal.user
        if principal.via != "session":
            raise StepUpRefused("step-up needs a cookie session")
        check = Check("step_up", email_key(user.email), f"user:{user.id}")
        self.guard.admit(check, actor)
        scope = None
        try:
            issued = self.ceremonies.consume(asserted, "step_up")
            if issued is None or issued.user_id != user.id or issued.session_id != principal.credential_id:
                raise NotVerified("the step-up challenge is unknown, used, expired or another session's")
            scope = issued.scope
            row = self.passkeys.credential_of(credential)
            if row is None or row.user_id != user.id:
                raise NotVerified("this passkey is not registered to this account")
            self.passkeys.judge(row, credential, asserted, actor)
        except NotVerified as exc:
            self.guard.failed(check, actor, {"method": "webauthn", "reason": str(exc), "scope": scope})
            raise StepUpRefused(f"the passkey was not accepted: {exc}") from None
        self.guard.passed(check, actor, proves_account=True)
        value, expires = self.step_up.issue(principal, scope, actor, "webauthn")
        return value, scope, expires

