"""Login throttling: a per-IP limit and a per-account lockout, decided before any
bcrypt work, in the store so that every gunicorn worker and every restart sees the
same counts.

- Per IP: at most IP_LIMIT attempts per IP_WINDOW (fixed window), whatever their
  outcome.
- Per account: each attempt is reserved before the password is checked, so at most
  ACCOUNT_LIMIT passwords are tried concurrently or in a row; the failure that
  reaches the limit locks the account for LOCK_SECONDS. Unknown emails are counted
  and locked exactly like real accounts, so the answers reveal nothing.

Each count moves in one atomic INSERT .. ON CONFLICT DO UPDATE .. RETURNING
statement (SQLite 3.35+ and PostgreSQL alike).
"""

from __future__ import annotations

import dataclasses

import peewee

from control_api.clock import SystemClock, unix_seconds

IP_LIMIT, IP_WINDOW = 10, 15 * 60
ACCOUNT_LIMIT, LOCK_SECONDS = 5, 15 * 60


@dataclasses.dataclass(frozen=True)
class Refusal:
    reason: str  # "ip" | "account"
    retry_after: int


class LoginThrottle:
    def __init__(self, db: peewee.Database, clock: SystemClock) -> None:
        self.db, self.clock = db, clock
        p = db.param
        self._count = (  # placeholders only
            f"INSERT INTO auth_throttle (kind, key, window_start, attempts) VALUES ({p}, {p}, {p}, 1) "
            "ON CONFLICT (kind, key) DO UPDATE SET "
            f"attempts = CASE WHEN auth_throttle.window_start <= {p} THEN 1 "
            "ELSE auth_throttle.attempts + 1 END, "
            f"window_start = CASE WHEN auth_throttle.window_start <= {p} THEN {p} "
            "ELSE auth_throttle.window_start END "
            "RETURNING attempts, window_start, locked_until"
        )

    def _bump(self, kind: str, key: str, window: int) -> tuple[int, float, float | None]:
        now = unix_seconds(self.clock.now())
        with self.db.atomic():
            return self.db.execute_sql(self._count, (kind, key, now, now - window, now - window, now)
                                       ).fetchone()

    def admit(self, ip: str, account: str) -> Refusal | None:
        """Count this attempt; a Refusal if it must not reach the password check."""
        now = unix_seconds(self.clock.now())
        attempts, start, _ = self._bump("ip", ip, IP_WINDOW)
        if attempts > IP_LIMIT:
            return Refusal("ip", max(1, int(start + IP_WINDOW - now)))
        attempts, _, locked_until = self._bump("account", account, LOCK_SECONDS)
        if locked_until is not None and locked_until > now:
            return Refusal("account", max(1, int(locked_until - now)))
        if attempts > ACCOUNT_LIMIT:
            return Refusal("account", LOCK_SECONDS)
        return None

    def failed(self, account: str) -> bool:
        """After a wrong password: lock the account if this was the last allowed try."""
        now = unix_seconds(self.clock.now())
        p = self.db.param
        with self.db.atomic():
            locked = self.db.execute_sql(  # placeholders only
                f"UPDATE auth_throttle SET locked_until = {p}, attempts = 0, window_start = {p} "
                f"WHERE kind = 'account' AND key = {p} AND attempts >= {ACCOUNT_LIMIT} "
                f"AND (locked_until IS NULL OR locked_until <= {p})",
                (now + LOCK_SECONDS, now, account, now)).rowcount
        return locked == 1

    def locked(self, account: str) -> Refusal | None:
        """A Refusal while the account is locked; counts nothing."""
        now = unix_seconds(self.clock.now())
        row = self.db.execute_sql(
            f"SELECT locked_until FROM auth_throttle WHERE kind = 'account' AND key = {self.db.param}",
            (account,)).fetchone()
        if row and row[0] is not None and row[0] > now:
            return Refusal("account", max(1, int(row[0] - now)))
        return None

    def release(self, account: str) -> None:
        """Give back this attempt's reservation: the password was right, a code is pending."""
        p = self.db.param
        with self.db.atomic():
            self.db.execute_sql(f"UPDATE auth_throttle SET attempts = attempts - 1 "
                                f"WHERE kind = 'account' AND key = {p} AND attempts > 0", (account,))

    def code_failed(self, account: str) -> bool:
        """A wrong second-factor code counts as a failed attempt; True if it locked."""
        self._bump("account", account, LOCK_SECONDS)
        return self.failed(account)

    def succeeded(self, account: str) -> None:
        p = self.db.param
        with self.db.atomic():
            self.db.execute_sql(f"DELETE FROM auth_throttle WHERE kind = 'account' AND key = {p}",
                                (account,))
