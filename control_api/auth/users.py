"""Admin accounts: creation with the password policy, lookup by email, login check."""

from __future__ import annotations

import re

import peewee

from control_api.audit.log import Actor, AuditLog
from control_api.auth.credentials import CredentialService
from control_api.auth.passwords import PasswordHasher, check_strength
from control_api.clock import SystemClock
from control_api.license.caps import LicenseCaps, audit_cap_refusals
from control_api.models import ROLES, User

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class UserError(ValueError):
    """A user cannot be created or changed as asked; str() says why."""


def email_key(email: str) -> str:
    """The form emails are compared in: unique case-insensitively."""
    return email.strip().casefold()


def validate_email(email: str) -> str:
    email = email.strip()
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        raise UserError("email must look like name@domain.tld (at most 254 characters)")
    return email


def find_by_email(email: str) -> User | None:
    return User.get_or_none(User.email_key == email_key(email))


def all_users() -> list[User]:
    return list(User.select().order_by(User.id))


class UserService:
    def __init__(self, audit: AuditLog, hasher: PasswordHasher, clock: SystemClock,
                 caps: LicenseCaps) -> None:
        self.audit = audit
        self.hasher = hasher
        self.clock = clock
        self.caps = caps

    @audit_cap_refusals
    def create(self, email: str, role: str, password: str, actor: Actor, break_glass: bool = False) -> User:
        email = validate_email(email)
        if role not in ROLES:
            raise UserError(f"role must be one of: {', '.join(ROLES)}")
        check_strength(password, (email, email.split("@")[0]))
        password_hash = self.hasher.hash(password)
        try:
            with self.audit.mutation():
                self.caps.reserve("admins", actor)
                user = User.create(
                    email=email,
                    email_key=email_key(email),
                    role=role,
                    password_hash=password_hash,
                    created_at=self.clock.now(),
                    break_glass=break_glass,
                )
                self.audit.record(actor, "user.create", f"user:{user.id}",
                                  {"email": email, "role": role, "break_glass": break_glass})
        except peewee.IntegrityError:
            raise UserError("a user with this email already exists") from None
        return user

    def disable(self, user: User, actor: Actor, credentials: CredentialService) -> None:
        """Disable the account: it cannot log in, and its sessions and tokens end with it
        (revoked, so re-enabling the account would not bring them back)."""
        if user.disabled_at is not None:
            raise UserError("this account is already disabled")
        with self.audit.mutation():
            User.update(disabled_at=self.clock.now()).where(User.id == user.id).execute()
            self.audit.record(actor, "user.disable", f"user:{user.id}", {"email": user.email})
            credentials.end_all_access(user, actor, "account disabled")

    def authenticate(self, email: str, password: str) -> User | None:
        """The active user whose password this is, or None; same cost either way."""
        user = find_by_email(email)
        usable = user is not None and user.disabled_at is None
        stored = user.password_hash if usable else None
        return user if self.hasher.verify(password, stored) and usable else None
