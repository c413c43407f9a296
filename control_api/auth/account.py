"""A user's own security settings: password, TOTP, email codes. Each change asks for
the current password again (a throttled, audited credential check), is audited, and
ends every session and revokes every API token of the user, in the change's own
transaction: credentials proven under the old settings do not outlive them."""

from __future__ import annotations

from control_api.audit.log import Actor, AuditLog
from control_api.auth.credentials import CredentialService
from control_api.auth.guard import Check, CredentialGuard, password_check
from control_api.auth.passwords import PasswordHasher, PasswordPolicyError, check_strength
from control_api.auth.totp import TotpService
from control_api.auth.users import email_key
from control_api.clock import SystemClock, unix_seconds
from control_api.errors import ApiError
from control_api.models import User


class AccountError(ApiError):
    """Refused; str() says why. `status` is the HTTP status that fits."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message, status=status)


class AccountService:
    def __init__(self, audit: AuditLog, hasher: PasswordHasher, credentials: CredentialService,
                 totp: TotpService, guard: CredentialGuard, clock: SystemClock, totp_only: bool,
                 sealed: bool) -> None:
        self.audit, self.hasher, self.credentials = audit, hasher, credentials
        self.totp, self.guard, self.clock = totp, guard, clock
        self.totp_only, self.sealed = totp_only, sealed

    def _reauth(self, user: User, password: str, actor: Actor) -> None:
        # A right password alone does not clear failed codes: proves_account=False.
        check = password_check("reauth", email_key(user.email), f"user:{user.id}", user.break_glass)
        if not self.guard.run(check, actor, lambda: self.hasher.verify(password, user.password_hash),
                              proves_account=False, metadata={"factor": "password"}):
            raise AccountError("the current password is not right", 403)

    def _recheck_totp(self, user: User, code: str, actor: Actor) -> None:
        check = Check("reauth", email_key(user.email), f"user:{user.id}")
        now = unix_seconds(self.clock.now())
        if not self.guard.run(check, actor, lambda: self.totp.check(user, code, now), proves_account=True,
                              metadata={"factor": "totp"}):
            raise AccountError("the code is not right", 403)

    def change_password(self, user: User, current: str, new: str, actor: Actor) -> None:
        self._reauth(user, current, actor)
        try:
            check_strength(new, (user.email, user.email.split("@")[0]))
        except PasswordPolicyError as exc:
            raise AccountError(str(exc)) from None
        with self.audit.mutation():
            User.update(password_hash=self.hasher.hash(new)).where(User.id == user.id).execute()
            self.audit.record(actor, "auth.password_changed", f"user:{user.id}")
            self.credentials.end_all_access(user, actor, "password changed")

    def begin_totp(self, user: User, password: str, actor: Actor) -> tuple[str, str]:
        self._reauth(user, password, actor)
        if self.totp.credential(user) is not None:
            raise AccountError("TOTP is already set up: remove it first", 409)
        with self.audit.mutation():
            seed, uri = self.totp.begin(user, self.clock.now())
            self.audit.record(actor, "auth.2fa_enrolment_started", f"user:{user.id}", {"method": "totp"})
        return seed, uri

    def confirm_totp(self, user: User, code: str, actor: Actor) -> list[str]:
        # Not throttled: the code proves the caller read the seed just shown to it, not
        # that it holds an existing credential, so guessing it would gain nothing.
        now = self.clock.now()
        if self.totp.credential(user, confirmed=False) is None or self.totp.credential(user) is not None:
            raise AccountError("no TOTP enrolment is waiting for confirmation", 409)
        if not self.totp.check(user, code, unix_seconds(now), confirmed=False):
            raise AccountError("the code is not right", 403)
        with self.audit.mutation():
            codes = self.totp.confirm(user, now)
            self.audit.record(actor, "auth.2fa_enrolled", f"user:{user.id}", {"method": "totp"})
            # Tokens minted before the account had a second factor do not inherit it.
            self.credentials.end_all_access(user, actor, "second factor enrolled")
        return codes

    def remove_totp(self, user: User, password: str, code: str, actor: Actor) -> None:
        self._reauth(user, password, actor)
        if self.sealed:
            raise AccountError("sealed mode requires TOTP: it cannot be removed", 409)
        self._recheck_totp(user, code, actor)
        with self.audit.mutation():
            self.totp.remove(user)
            self.audit.record(actor, "auth.2fa_removed", f"user:{user.id}", {"method": "totp"})
            self.credentials.end_all_access(user, actor, "second factor removed")

    def set_email_codes(self, user: User, password: str, enabled: bool, actor: Actor) -> None:
        self._reauth(user, password, actor)
        if enabled and self.totp_only:
            raise AccountError("FF_TOTP_ONLY=1: email codes cannot be enrolled; set up TOTP", 409)
        with self.audit.mutation():
            enabled_at = self.clock.now() if enabled else None
            User.update(email_2fa_at=enabled_at).where(User.id == user.id).execute()
            action = "auth.2fa_enrolled" if enabled else "auth.2fa_removed"
            self.audit.record(actor, action, f"user:{user.id}", {"method": "email_code"})
            reason = "second factor enrolled" if enabled else "second factor removed"
            self.credentials.end_all_access(user, actor, reason)
