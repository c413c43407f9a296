"""Every credential check runs through here: the password at login, a second-factor
code, a step-up code, and the current password (or code) asked again before a change.
Each is throttled before it runs (the same per-address limit and account lock for
all of them), and each failure is audited, so no kind of check is a side door for
guessing.

A check that succeeds gives its reservations back; only a proof of the account's
strongest factor (a login completed, a step-up code) clears its failures. So a right
password cannot reset the count of wrong TOTP codes guessed in between.

The break-glass account must be neither lockable nor recognisable:

- Not lockable: its wrong passwords never lock it, so whoever lacks the envelope
  cannot keep it locked by trying its address. Its password is 144 random bits: the
  per-address limit and a critical audit event for every failure are enough. Wrong
  codes do lock it (the real account lock), since trying a code needs the password.
- Not recognisable: were its wrong passwords simply not counted, the 6th wrong
  password for it from one address would get 401 where every other email, known or
  not, gets 429, and so would name the account. So its password checks are counted
  in a row of their own (throttle.APPARENT_LOCK) by exactly the rules of an account
  lock, and while that row is "locked" a wrong password is answered 429 with the
  Retry-After a locked account would give, from any address. Unlike a real lock, the
  check still runs: a right password gets in (and gives its reservation back), so
  the envelope's holder is never kept out, and every wrong one is audited as
  `auth.login_failed` (critical). The per-address limit applies as to anyone.
- Not recognisable by time either: that apparent lock must check the password
  (bcrypt), so a login refused by an account lock (of any account, or of an unknown
  email) burns the same bcrypt work before answering (LoginService). That work is no
  new lever for an attacker: a refusal by account lock still uses up one of the
  address's ADDRESS_LIMIT reservations, so an address gets at most ADDRESS_LIMIT
  bcrypt checks per window whatever it tries; over the address limit the answer
  costs nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from control_api.audit.log import Actor, AuditLog
from control_api.auth.refusals import RefusalLog
from control_api.auth.throttle import (
    ACCOUNT,
    APPARENT_LOCK,
    LOCK_SECONDS,
    LoginThrottle,
    Refusal,
    address_key,
)
from control_api.errors import ApiError

KINDS = ("login", "second_factor", "step_up", "reauth")


class TooManyAttempts(ApiError):
    """Too many checks from this address or on this account; nothing was checked (or, for
    the break-glass account's apparent lock, the password checked was wrong)."""

    status = 429
    title = "Too many attempts"

    def __init__(self, retry_after: int, reason: str = "address") -> None:
        # The same answer for an address over its limit and a locked account, known or not.
        super().__init__(f"too many attempts; try again in {retry_after} seconds",
                         headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after
        self.reason = reason  # "address" | "account": for this process only, never shown


@dataclasses.dataclass(frozen=True)
class Check:
    """One credential check about to run."""

    kind: str  # one of KINDS: names the audit event of a failure, auth.<kind>_failed
    account: str  # the throttle key: the account's email key
    target: str  # the audit target
    break_glass: bool = False  # a password check of the break-glass account: see the module doc

    @property
    def counted_as(self) -> str:
        """The kind of per-account row this check is counted in."""
        return APPARENT_LOCK if self.break_glass else ACCOUNT


def password_check(kind: str, account: str, target: str, break_glass: bool) -> Check:
    return Check(kind, account, target, break_glass=break_glass)


class CredentialGuard:
    def __init__(self, throttle: LoginThrottle, refusals: RefusalLog, audit: AuditLog) -> None:
        self.throttle, self.refusals, self.audit = throttle, refusals, audit

    def admit(self, check: Check, actor: Actor) -> Refusal | None:
        """Reserve the check, or raise TooManyAttempts (counted, audited per window).

        For a break-glass password check, returns the refusal held back by its apparent
        lock (None if there is none): pass it to `failed`, which answers with it."""
        self.refusals.close_finished()
        address = address_key(actor.source_ip)
        refusal = self.throttle.admit(address, check.account, lock=not check.break_glass)
        held = None
        if refusal is None and check.break_glass:
            held = self.throttle.reserve(check.account, APPARENT_LOCK)
        if refusal is not None:
            self.refusals.record(actor, address, refusal, check.kind, check.target)
            raise TooManyAttempts(refusal.retry_after, refusal.reason)
        return held

    def failed(self, check: Check, actor: Actor, metadata: dict | None = None,
               held: Refusal | None = None) -> None:
        """The check failed: it keeps its reservations, may lock the account, is audited.
        With `held` (see admit), raise the TooManyAttempts a locked account would get."""
        locked = self.throttle.failed(check.account, check.counted_as)
        if check.break_glass:
            metadata = {**(metadata or {}), "severity": "critical", "break_glass": True}
            if held is not None:
                metadata["answered"] = "429 (apparent lock)"
        with self.audit.mutation():
            self.audit.record(actor, f"auth.{check.kind}_failed", check.target, metadata)
            if locked and not check.break_glass:
                self.audit.record(actor, "auth.lockout", check.target, {"minutes": LOCK_SECONDS // 60})
        if held is not None:
            self.refusals.record(actor, address_key(actor.source_ip), held, check.kind, check.target)
            raise TooManyAttempts(held.retry_after, held.reason)

    def passed(self, check: Check, actor: Actor, proves_account: bool) -> None:
        """The check succeeded: give its reservations back; `proves_account` clears the
        account's failures too."""
        self.throttle.release_address(address_key(actor.source_ip))
        if proves_account:
            self.throttle.succeeded(check.account)
        else:
            self.throttle.release(check.account, check.counted_as)

    def withdraw(self, check: Check, actor: Actor) -> None:
        """Nothing was checked after all (the challenge was spent meanwhile)."""
        self.passed(check, actor, proves_account=False)

    def run(self, check: Check, actor: Actor, verify: Callable[[], bool], proves_account: bool,
            metadata: dict | None = None) -> bool:
        """Admit, verify, then account for the outcome; True if `verify` said yes."""
        held = self.admit(check, actor)
        if not verify():
            self.failed(check, actor, metadata, held)
            return False
        self.passed(check, actor, proves_account)
        return True
