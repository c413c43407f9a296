"""Credential-check throttling: a per-address limit and a per-account lockout, decided
before any bcrypt or TOTP work, in the store so that every gunicorn worker and every
restart sees the same counts.

- Per address: at most ADDRESS_LIMIT failed or unfinished checks per ADDRESS_WINDOW
  (fixed window). A check reserves its slot before it runs and gives it back only if
  it succeeded, so a client can never get more guesses than the limit, while people
  behind one NAT who type their credentials right are not throttled by each other.
  IPv4 clients are keyed by address; IPv6 clients by their /64, the smallest block a
  site is normally given, so one host cannot rotate through its own addresses.
- Per account: each check is reserved before it runs, so at most ACCOUNT_LIMIT are
  tried concurrently or in a row; the failure that reaches the limit locks the
  account for LOCK_SECONDS. Unknown emails are counted and locked exactly like real
  accounts, so the answers reveal nothing.
- The break-glass account's password checks are counted in a row of their own kind
  (APPARENT_LOCK) with the same rules; its "lock" only changes the answer to a wrong
  password, never refuses a check: see CredentialGuard.

Each count moves in one atomic INSERT .. ON CONFLICT DO UPDATE .. RETURNING
statement (SQLite 3.35+ and PostgreSQL alike).
"""

from __future__ import annotations

import dataclasses
import ipaddress

import peewee

from control_api.clock import SystemClock, unix_seconds

ADDRESS_LIMIT, ADDRESS_WINDOW = 10, 15 * 60
ACCOUNT_LIMIT, LOCK_SECONDS = 5, 15 * 60
IPV6_PREFIX = 64
ACCOUNT, APPARENT_LOCK = "account", "apparent_lock"  # the two kinds of per-account row


def address_key(address: str) -> str:
    """What the per-address limit counts: an IPv4 address, or an IPv6 address's /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/{IPV6_PREFIX}", strict=False))
    return str(ip)


@dataclasses.dataclass(frozen=True)
class Refusal:
    reason: str  # "address" | "account"
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

    def _give_back(self, kind: str, key: str) -> None:
        p = self.db.param
        with self.db.atomic():
            self.db.execute_sql(f"UPDATE auth_throttle SET attempts = attempts - 1 "
                                f"WHERE kind = {p} AND key = {p} AND attempts > 0", (kind, key))

    def admit(self, address: str, account: str, lock: bool = True) -> Refusal | None:
        """Reserve this check; a Refusal if it must not run. `address` is an address_key.
        With lock=False the check is not counted against the account (whose lock, if
        any, still applies): see CredentialGuard on the break-glass account."""
        now = unix_seconds(self.clock.now())
        attempts, start, _ = self._bump("ip", address, ADDRESS_WINDOW)
        if attempts > ADDRESS_LIMIT:
            return Refusal("address", max(1, int(start + ADDRESS_WINDOW - now)))
        if not lock:
            return self.locked(account)
        return self.reserve(account)

    def reserve(self, account: str, kind: str = ACCOUNT) -> Refusal | None:
        """Reserve one check in `account`'s row of `kind`; the Refusal a locked (or fully
        reserved) account gets, if any."""
        now = unix_seconds(self.clock.now())
        attempts, _, locked_until = self._bump(kind, account, LOCK_SECONDS)
        if locked_until is not None and locked_until > now:
            return Refusal("account", max(1, int(locked_until - now)))
        if attempts > ACCOUNT_LIMIT:
            return Refusal("account", LOCK_SECONDS)
        return None

    def failed(self, account: str, kind: str = ACCOUNT) -> bool:
        """After a failed check: lock the account if this was the last allowed try."""
        now = unix_seconds(self.clock.now())
        p = self.db.param
        with self.db.atomic():
            locked = self.db.execute_sql(  # placeholders only
                f"UPDATE auth_throttle SET locked_until = {p}, attempts = 0, window_start = {p} "
                f"WHERE kind = {p} AND key = {p} AND attempts >= {ACCOUNT_LIMIT} "
                f"AND (locked_until IS NULL OR locked_until <= {p})",
                (now + LOCK_SECONDS, now, kind, account, now)).rowcount
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

    def release(self, account: str, kind: str = ACCOUNT) -> None:
        """Give back the account reservation of a check that did not fail."""
        self._give_back(kind, account)

    def release_address(self, address: str) -> None:
        """Give back the address reservation of a check that succeeded."""
        self._give_back("ip", address)

    def succeeded(self, account: str) -> None:
        """Clear the account's failures, of both kinds (a login or a code proved the
        account's holder)."""
        p = self.db.param
        with self.db.atomic():
            self.db.execute_sql(f"DELETE FROM auth_throttle WHERE kind IN ({p}, {p}) AND key = {p}",
                                (ACCOUNT, APPARENT_LOCK, account))
