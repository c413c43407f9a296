"""FF_SSO_ONLY=1: only SAML, OIDC and passwordless WebAuthn (a passkey) mint sessions.

Every session records how it was opened (`sessions.login_method`) and every API token
what it was minted from (`api_tokens.minted_via`). With FF_SSO_ONLY=1:

- a password login (whatever second factor followed it) is refused at the session's
  insert, and a password session opened before the switch stops working (the request
  is anonymous, as with a stale cookie);
- an API token minted from a password session is refused at every use (403), and none
  can be minted from one; tokens made before migration 16 do not say where they came
  from and count as password-minted;
- `weco token create` still works: the operator on the machine holds the store anyway
  (minted_via `operator`);
- break-glass, the one exception: the break-glass account may still log in with its
  password AND a second factor (its TOTP from the envelope, or a passkey), never with
  the password alone. Its session works like any superadmin session and may step up,
  but mints no API token. Each such login is recorded as `auth.break_glass_login`
  (critical, with `sso_only: true`), which the anomaly rules forward as
  `anomaly.break_glass`.

Which login methods a session may have is decided here once; CredentialService and
TokenIssuer ask.
"""

from __future__ import annotations

import dataclasses

from control_api.errors import ApiError
from control_api.models import User

SSO_METHODS = ("saml", "oidc")
PASSKEY = "passkey"  # passwordless WebAuthn
# Methods that may mint a session (and API tokens, from it) under FF_SSO_ONLY=1.
SSO_ONLY_METHODS = (*SSO_METHODS, PASSKEY)
OPERATOR = "operator"  # `weco token create`


def login_method_of(method: str | None) -> str:
    """The primary login method behind a session opened with `method` (the `method` of
    its auth.login event): saml, oidc, passkey, or password (with or without a second
    factor)."""
    return method if method in SSO_ONLY_METHODS else "password"


class SsoOnlyRefused(ApiError):
    status = 403
    title = "Single sign-on only"


@dataclasses.dataclass(frozen=True)
class SsoOnly:
    enabled: bool

    def refuses_login(self, user: User, login_method: str | None, second_factor: str | None) -> str | None:
        """Why a session opened this way may not exist now (None: it may)."""
        if not self.enabled or login_method in SSO_ONLY_METHODS:
            return None
        if user.break_glass:
            if second_factor is None:
                return ("FF_SSO_ONLY=1: the break-glass account needs its second factor as well as its "
                        "password")
            return None
        return "FF_SSO_ONLY=1: password logins are off; log in with single sign-on or a passkey"

    def refuses_token(self, minted_via: str | None) -> str | None:
        """Why a token minted this way may not be used or minted now (None: it may)."""
        if not self.enabled or minted_via == OPERATOR or minted_via in SSO_ONLY_METHODS:
            return None
        return ("FF_SSO_ONLY=1: API tokens minted from password sessions are refused; mint one from a "
                "single sign-on or passkey session")
