"""Step-up for destructive routes (FF_REQUIRE_STEP_UP=1): a token minted from a fresh
TOTP code or a passkey assertion (control_api/webauthn/flows.py), valid 5 minutes, bound
to the user, the session and one scope. The check is a credential check like any
other: throttled, and audited whether right or wrong. Removing a passkey needs a step-up
token whatever FF_REQUIRE_STEP_UP says (`check(..., always=True)`)."""

from __future__ import annotations

import datetime as dt

import falcon

from control_api.audit.log import Actor, AuditLog
from control_api.auth.credentials import Principal, digest
from control_api.auth.guard import Check, CredentialGuard
from control_api.auth.totp import TotpService
from control_api.auth.users import email_key
from control_api.clock import SecretTokens, SystemClock, unix_seconds
from control_api.errors import ApiError
from control_api.models import StepUpToken

LIFETIME = dt.timedelta(minutes=5)
HEADER = "X-Step-Up-Token"
SCOPES = ("token.create", "token.revoke", "session.revoke", "2fa.remove", "site.delete", "host.delete",
          "host.repin_key", "host.rotate_credentials", "document.delete", "release.apply")


class StepUpRefused(ApiError):
    status = 403
    title = "Step-up refused"


class StepUp:
    def __init__(self, required: bool, totp: TotpService, guard: CredentialGuard, audit: AuditLog,
                 clock: SystemClock, tokens: SecretTokens) -> None:
        self.required, self.totp, self.guard, self.audit = required, totp, guard, audit
        self.clock, self.tokens = clock, tokens

    def mint(self, principal: Principal, scope: str, code: str, actor: Actor) -> tuple[str, dt.datetime]:
        """A step-up token for `scope`, or StepUpRefused / TooManyAttempts."""
        user = principal.user
        if principal.via != "session" or scope not in SCOPES:
            raise StepUpRefused("step-up needs a cookie session and one of the scopes: " + ", ".join(SCOPES))
        if self.totp.credential(user) is None:
            raise StepUpRefused("step-up needs TOTP (enrol it at POST /api/me/totp) or a passkey "
                                "(POST /api/auth/step-up/webauthn/options)")
        check = Check("step_up", email_key(user.email), f"user:{user.id}")
        now = self.clock.now()
        if not self.guard.run(check, actor, lambda: self.totp.check(user, code, unix_seconds(now)),
                              proves_account=True, metadata={"scope": scope}):
            raise StepUpRefused("the code is not right")
        return self.issue(principal, scope, actor, "totp")

    def issue(self, principal: Principal, scope: str, actor: Actor, method: str) -> tuple[str, dt.datetime]:
        """The step-up token, once `method` proved the session's user (checked by the caller)."""
        now = self.clock.now()
        value = self.tokens.token(32)
        with self.audit.mutation():
            token = StepUpToken.create(token_hash=digest(value), user=principal.user,
                                       session=principal.credential_id, scope=scope,
                                       expires_at=now + LIFETIME)
            self.audit.record(actor, "auth.step_up", f"user:{principal.user.id}",
                              {"scope": scope, "step_up": token.id, "method": method})
        return value, now + LIFETIME

    def check(self, req: falcon.Request, scope: str, always: bool = False) -> None:
        """Raise 403 unless step-up is off (and not `always` needed) or the request carries a
        live token for `scope`."""
        if not (self.required or always):
            return
        principal, value = req.context.principal, req.get_header(HEADER) or ""
        token = StepUpToken.get_or_none(StepUpToken.token_hash == digest(value)) if value else None
        if (token is None or principal is None or principal.via != "session"
                or token.user_id != principal.user.id or token.session_id != principal.credential_id
                or token.scope != scope or token.expires_at <= self.clock.now()):
            raise falcon.HTTPForbidden(
                title="Step-up required",
                description=f"this action needs a fresh step-up token for scope '{scope}' in {HEADER} "
                            "(POST /api/auth/step-up with a TOTP code, or with a passkey at "
                            "/api/auth/step-up/webauthn)")
