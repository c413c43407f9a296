"""Every credential check runs through here: the password at login, a second-factor
code, a step-up code, and the current password (or code) asked again before a change.
Each is throttled before it runs (the same per-address limit and account lock for
all of them), and each failure is audited, so no kind of check is a side door for
guessing.

A check that succeeds gives its reservations back; only a proof of the account's
strongest factor (a login completed, a step-up code) clears its failures. So a right
password cannot reset the count of wrong TOTP codes guessed in between.

The break-glass account: failed *password* checks never count against it, so nobody
who lacks its envelope can lock it out by trying its well-known address. Its
password is 144 random bits: the per-address limit and a critical audit event for
every failure are enough. Wrong codes still lock it, since trying a code needs the
password first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from control_api.audit.log import Actor, AuditLog
from control_api.auth.refusals import RefusalLog
from control_api.auth.throttle import LOCK_SECONDS, LoginThrottle, address_key
from control_api.errors import ApiError

KINDS = ("login", "second_factor", "step_up", "reauth")


class TooManyAttempts(ApiError):
    """Too many checks from this address or on this account; nothing was checked."""

    status = 429
    title = "Too many attempts"

    def __init__(self, retry_after: int) -> None:
        # The same answer for an address over its limit and a locked account, known or not.
        super().__init__(f"too many attempts; try again in {retry_after} seconds",
                         headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


@dataclasses.dataclass(frozen=True)
class Check:
    """One credential check about to run."""

    kind: str  # one of KINDS: names the audit event of a failure, auth.<kind>_failed
    account: str  # the throttle key: the account's email key
    target: str  # the audit target
    counts_against_account: bool = True  # False: a break-glass password check


def password_check(kind: str, account: str, target: str, break_glass: bool) -> Check:
    return Check(kind, account, target, counts_against_account=not break_glass)


class CredentialGuard:
    def __init__(self, throttle: LoginThrottle, refusals: RefusalLog, audit: AuditLog) -> None:
        self.throttle, self.refusals, self.audit = throttle, refusals, audit

    def admit(self, check: Check, actor: Actor) -> None:
        """Reserve the check, or raise TooManyAttempts (counted, audited per window)."""
        self.refusals.close_finished()
        address = address_key(actor.source_ip)
        refusal = self.throttle.admit(address, check.account, check.counts_against_account)
        if refusal is not None:
            self.refusals.record(actor, address, refusal, check.kind, check.target)
            raise TooManyAttempts(refusal.retry_after)

    def failed(self, check: Check, actor: Actor, metadata: dict | None = None) -> None:
        """The check failed: it keeps its reservations, may lock the account, is audited."""
        locked = check.counts_against_account and self.throttle.failed(check.account)
        if not check.counts_against_account:
            metadata = {**(metadata or {}), "severity": "critical", "break_glass": True}
        with self.audit.mutation():
            self.audit.record(actor, f"auth.{check.kind}_failed", check.target, metadata)
            if locked:
                self.audit.record(actor, "auth.lockout", check.target, {"minutes": LOCK_SECONDS // 60})

    def passed(self, check: Check, actor: Actor, proves_account: bool) -> None:
        """The check succeeded: give its reservations back; `proves_account` clears the
        account's failures too."""
        self.throttle.release_address(address_key(actor.source_ip))
        if proves_account:
            self.throttle.succeeded(check.account)
        elif check.counts_against_account:
            self.throttle.release(check.account)

    def withdraw(self, check: Check, actor: Actor) -> None:
        """Nothing was checked after all (the challenge was spent meanwhile)."""
        self.passed(check, actor, proves_account=False)

    def run(self, check: Check, actor: Actor, verify: Callable[[], bool], proves_account: bool,
            metadata: dict | None = None) -> bool:
        """Admit, verify, then account for the outcome; True if `verify` said yes."""
        self.admit(check, actor)
        if not verify():
            self.failed(check, actor, metadata)
            return False
        self.passed(check, actor, proves_account)
        return True
