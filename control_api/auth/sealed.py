"""Sealed mode (FF_SEALED_MODE=1): nobody gets in without TOTP, once the grace period
that began when sealed mode was first seen is over. It decides for logins (which
factors a login may use, and until when an account without TOTP may still log in
to enrol), for API tokens (a token of an account without TOTP stops working at that
same moment) and for sessions (one whose login did not pass TOTP stops then too, so a
password login made just before the deadline does not last its 12 hours past it).

A passkey (WebAuthn with user verification) counts like TOTP: it is the stronger factor."""

from __future__ import annotations

import dataclasses
import datetime as dt

from control_api.clock import SystemClock
from control_api.models import SystemState, TotpCredential, User
from control_api.webauthn.models import WebauthnCredential

SEALED_SINCE = "sealed_mode_first_seen"
TOTP_FACTORS = ("totp", "recovery_code", "webauthn")  # a recovery code is TOTP's own fallback
STRONG_METHODS = ("totp", "webauthn")  # what an account must have to get in under sealed mode


@dataclasses.dataclass(frozen=True)
class SealedPolicy:
    enabled: bool
    grace: dt.timedelta


class SealedMode:
    def __init__(self, policy: SealedPolicy, clock: SystemClock) -> None:
        self.policy, self.clock = policy, clock

    @property
    def enabled(self) -> bool:
        return self.policy.enabled

    def narrow(self, methods: list[str]) -> tuple[list[str], dt.datetime | None]:
        """The factors a login may use, and the deadline for enrolling TOTP (None: no deadline)."""
        if not self.policy.enabled:
            return methods, None
        methods = [m for m in methods if m != "email_code"]
        strong = any(m in STRONG_METHODS for m in methods)
        return methods, None if strong else self.since() + self.policy.grace

    def refuses_token_of(self, user: User) -> dt.datetime | None:
        """The deadline that has passed, if sealed mode refuses this user's API tokens now."""
        if not self.policy.enabled:
            return None
        confirmed = TotpCredential.select().where(
            (TotpCredential.user == user) & TotpCredential.confirmed_at.is_null(False))
        if confirmed.exists() or WebauthnCredential.select().where(WebauthnCredential.user == user).exists():
            return None
        deadline = self.since() + self.policy.grace
        return deadline if self.clock.now() >= deadline else None

    def refuses_session(self, second_factor: str | None) -> dt.datetime | None:
        """The deadline that has passed, if sealed mode refuses a session whose login passed
        `second_factor` (None: the password alone)."""
        if not self.policy.enabled or second_factor in TOTP_FACTORS:
            return None
        deadline = self.since() + self.policy.grace
        return deadline if self.clock.now() >= deadline else None

    def since(self) -> dt.datetime:
        """When sealed mode was first seen (recorded by the first caller that looks)."""
        row = SystemState.get_or_none(SystemState.name == SEALED_SINCE)
        if row is None:
            now = self.clock.now().isoformat()
            SystemState.insert(name=SEALED_SINCE, value=now).on_conflict_ignore().execute()
            row = SystemState.get_by_id(SEALED_SINCE)
        return dt.datetime.fromisoformat(row.value)
