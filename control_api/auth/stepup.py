"""Step-up for destructive routes (FF_REQUIRE_STEP_UP=1): a token minted from a fresh
TOTP code, valid 5 minutes, bound to the user, the session and one scope."""

from __future__ import annotations

import datetime as dt

import falcon

from control_api.auth.credentials import Principal, digest
from control_api.auth.totp import TotpService
from control_api.clock import SecretTokens, SystemClock, unix_seconds
from control_api.models import StepUpToken

LIFETIME = dt.timedelta(minutes=5)
HEADER = "X-Step-Up-Token"
SCOPES = ("token.revoke", "session.revoke", "2fa.remove", "site.delete", "host.delete")


class StepUp:
    def __init__(self, required: bool, totp: TotpService, clock: SystemClock, tokens: SecretTokens) -> None:
        self.required, self.totp, self.clock, self.tokens = required, totp, clock, tokens

    def mint(self, principal: Principal, scope: str, code: str) -> tuple[str, dt.datetime] | None:
        if principal.via != "session" or scope not in SCOPES:
            return None
        now = self.clock.now()
        if not self.totp.check(principal.user, code, unix_seconds(now)):
            return None
        value = self.tokens.token(32)
        StepUpToken.create(token_hash=digest(value), user=principal.user, session=principal.credential_id,
                           scope=scope, expires_at=now + LIFETIME)
        return value, now + LIFETIME

    def check(self, req: falcon.Request, scope: str) -> None:
        """Raise 403 unless step-up is off or the request carries a live token for `scope`."""
        if not self.required:
            return
        principal, value = req.context.principal, req.get_header(HEADER) or ""
        token = StepUpToken.get_or_none(StepUpToken.token_hash == digest(value)) if value else None
        if (token is None or principal is None or principal.via != "session"
                or token.user_id != principal.user.id or token.session_id != principal.credential_id
                or token.scope != scope or token.expires_at <= self.clock.now()):
            raise falcon.HTTPForbidden(
                title="Step-up required",
                description=f"this action needs a fresh step-up token for scope '{scope}' in {HEADER} "
                            "(POST /api/auth/step-up with a TOTP code)")
