"""A user's own security settings: password, TOTP, email codes. Each change asks for
the current password again, is audited, and ends every session of the user."""

from __future__ import annotations

from control_api.audit.log import Actor, AuditLog
from control_api.auth.credentials import CredentialService
from control_api.auth.passwords import PasswordHasher, PasswordPolicyError, check_strength
from control_api.auth.totp import TotpService
from control_api.clock import SystemClock, unix_seconds
from control_api.models import User


class AccountError(Exception):
    """Refused; str() says why. `status` is the HTTP status that fits."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class AccountService:
    def __init__(self, audit: AuditLog, hasher: PasswordHasher, credentials: CredentialService,
                 totp: TotpService, clock: SystemClock, totp_only: bool, sealed: bool) -> None:
        self.audit, self.hasher, self.credentials = audit, hasher, credentials
        self.totp, self.clock, self.totp_only, self.sealed = totp, clock, totp_only, sealed

    def _reauth(self, user: User, password: str) -> None:
        if not self.hasher.verify(password, user.password_hash):
            raise AccountError("the current password is not right", 403)

    def change_password(self, user: User, current: str, new: str, actor: Actor) -> None:
        self._reauth(user, current)
        try:
            check_strength(new, (user.email, user.email.split("@")[0]))
        except PasswordPolicyError as exc:
            raise AccountError(str(exc)) from None
        with self.audit.mutation():
            User.update(password_hash=self.hasher.hash(new)).where(User.id == user.id).execute()
            self.audit.record(actor, "auth.password_changed", f"user:{user.id}")
        self.credentials.end_all_sessions(user, actor, "password changed")

    def begin_totp(self, user: User, password: str, actor: Actor) -> tuple[str, str]:
        self._reauth(user, password)
        if self.totp.credential(user) is not None:
            raise AccountError("TOTP is already set up: remove it first", 409)
        with self.audit.mutation():
            seed, uri = self.totp.begin(user, self.clock.now())
            self.audit.record(actor, "auth.2fa_enrolment_started", f"user:{user.id}", {"method": "totp"})
        return seed, uri

    def confirm_totp(self, user: User, code: str, actor: Actor) -> list[str]:
        now = self.clock.now()
        if self.totp.credential(user, confirmed=False) is None or self.totp.credential(user) is not None:
            raise AccountError("no TOTP enrolment is waiting for confirmation", 409)
        if not self.totp.check(user, code, unix_seconds(now), confirmed=False):
            raise AccountError("the code is not right", 403)
        with self.audit.mutation():
            codes = self.totp.confirm(user, now)
            self.audit.record(actor, "auth.2fa_enrolled", f"user:{user.id}", {"method": "totp"})
        self.credentials.end_all_sessions(user, actor, "second factor enrolled")
        return codes

    def remove_totp(self, user: User, password: str, code: str, actor: Actor) -> None:
        self._reauth(user, password)
        if self.sealed:
            raise AccountError("sealed mode requires TOTP: it cannot be removed", 409)
        now = self.clock.now()
        if not self.totp.check(user, code, unix_seconds(now)):
            raise AccountError("the code is not right", 403)
        with self.audit.mutation():
            self.totp.remove(user)
            self.audit.record(actor, "auth.2fa_removed", f"user:{user.id}", {"method": "totp"})
        self.credentials.end_all_sessions(user, actor, "second factor removed")

    def set_email_codes(self, user: User, password: str, enabled: bool, actor: Actor) -> None:
        self._reauth(user, password)
        if enabled and self.totp_only:
            raise AccountError("FF_TOTP_ONLY=1: email codes cannot be enrolled; set up TOTP", 409)
        with self.audit.mutation():
            enabled_at = self.clock.now() if enabled else None
            User.update(email_2fa_at=enabled_at).where(User.id == user.id).execute()
            action = "auth.2fa_enrolled" if enabled else "auth.2fa_removed"
            self.audit.record(actor, action, f"user:{user.id}", {"method": "email_code"})
        self.credentials.end_all_sessions(user, actor, "second factor changed")
