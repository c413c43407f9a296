"""Who may mint an API token through the API, and for how long.

A token is a long-lived credential that skips the login, so minting one must need at
least what a login needs:

- a cookie session: a token cannot mint tokens (that would extend its own life past
  FF_TOKEN_MAX_DAYS, and outlive the credential changes that revoke it);
- when the account has a second factor, a session whose login passed one;
- under sealed mode, an account with TOTP and a session that passed TOTP (or one of
  its recovery codes): a password-only login in the grace period cannot mint one;
- with FF_REQUIRE_STEP_UP=1, a step-up token for scope token.create (checked by the
  route, like every step-up scope);
- with FF_SSO_ONLY=1, a session opened by SAML, OIDC or a passkey (see sso_only.py).

An account with no second factor at all, outside sealed mode, may mint tokens from a
password session: the password is all it has, and its tokens are revoked when that
password changes. The operator on the machine may still mint tokens for any account
with `weco token create` (it holds the store already), within FF_TOKEN_MAX_DAYS.
"""

from __future__ import annotations

import datetime as dt

from control_api.audit.log import Actor
from control_api.auth.credentials import CredentialService, Principal, TokenNameTaken
from control_api.auth.sealed import STRONG_METHODS, TOTP_FACTORS, SealedMode
from control_api.auth.second_factor import SecondFactors
from control_api.errors import ApiError
from control_api.models import ApiToken


class TokenRefused(ApiError):
    status = 403
    title = "Token refused"


class TokenIssuer:
    def __init__(self, credentials: CredentialService, second: SecondFactors, sealed: SealedMode) -> None:
        self.credentials, self.second, self.sealed = credentials, second, sealed

    def check_may_mint(self, principal: Principal) -> None:
        if principal.via != "session":
            raise TokenRefused("API tokens are minted from a login session, not from another token")
        methods, _ = self.sealed.narrow(self.second.methods(principal.user))
        if self.sealed.enabled and not any(m in STRONG_METHODS for m in methods):
            raise TokenRefused("sealed mode: minting an API token needs TOTP; enrol it at POST /api/me/totp")
        if self.sealed.enabled and principal.second_factor not in TOTP_FACTORS:
            raise TokenRefused("sealed mode: minting an API token needs a session that passed TOTP")
        if methods and principal.second_factor is None:
            raise TokenRefused("this account has a second factor: log in with it to mint an API token")
        refused = self.credentials.sso_only.refuses_token(principal.login_method)
        if refused is not None:
            raise TokenRefused(refused)

    def mint(self, principal: Principal, name: str, days: int | None, actor: Actor) -> tuple[str, ApiToken]:
        """A new token for the caller; `days` None means FF_TOKEN_MAX_DAYS."""
        self.check_may_mint(principal)
        longest = self.credentials.token_max_days
        days = longest if days is None else days
        if not 1 <= days <= longest:
            raise ApiError(f"'expires_days' must be an integer from 1 to {longest} (FF_TOKEN_MAX_DAYS)",
                           title="Invalid request")
        expires = self.credentials.clock.now() + dt.timedelta(days=days)
        try:
            # The session is checked again in the insert's transaction: a logout or a
            # credential change that lands after check_may_mint still stops the mint.
            return self.credentials.create_token(principal.user, name, expires, actor,
                                                 session_id=principal.credential_id)
        except TokenNameTaken as exc:  # only this: other errors' text is not for the client
            raise ApiError(str(exc), status=409, title="Token name taken") from None
