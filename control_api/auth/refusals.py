"""Throttled attempts in the audit log: one event per client address and window, with
the count, so that anonymous clients cannot grow the log by retrying.

For each address (an IPv6 /64) and fixed 15-minute window (aligned to the epoch):

1. The first refused check writes `auth.login_throttled`: the address, which limit
   refused it, what kind of check, the account it was for, and the window. Later
   refusals in that window write no event; each adds one to the window's row in
   auth_throttle_refusals, in one atomic upsert, so none goes uncounted.
2. Once the window is over, `auth.throttle_window_closed` records its final count
   (in all, and by limit). The row is deleted in the same transaction that records
   the event, so no refusal is written twice or lost, even when several workers close
   windows at the same time. (An attempt that races the window's end may land in a
   row made after the window was closed: a second closing event for that window then
   carries it.) Windows are closed by the next credential check after they end, from
   any address; until then the count is in the row.

So an auditor sees every throttled address at the moment it was first refused, and
how many attempts were refused in each window: the sum of `refused` over an
address's closing events (plus any open row) is the number it sent.
"""

from __future__ import annotations

import datetime as dt

import peewee

from control_api.audit.log import Actor, AuditLog
from control_api.auth.throttle import ADDRESS_WINDOW, Refusal
from control_api.clock import SystemClock, unix_seconds

WINDOW = ADDRESS_WINDOW
CLOSE_AT_MOST = 100  # windows closed per check, so one request never does unbounded work
CLOSER = Actor("system:throttle")


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).replace(tzinfo=None).isoformat() + "Z"


class RefusalLog:
    def __init__(self, db: peewee.Database, audit: AuditLog, clock: SystemClock) -> None:
        self.db, self.audit, self.clock = db, audit, clock
        # Only constant names and placeholders are formatted into these statements.
        p = db.param
        self._count = (
            "INSERT INTO auth_throttle_refusals (address, window_start, refused, by_address, by_account) "  # noqa: S608
            f"VALUES ({p}, {p}, 1, {p}, {p}) ON CONFLICT (address, window_start) DO UPDATE SET "
            "refused = auth_throttle_refusals.refused + 1, "
            "by_address = auth_throttle_refusals.by_address + excluded.by_address, "
            "by_account = auth_throttle_refusals.by_account + excluded.by_account "
            "RETURNING refused"
        )
        self._take = (f"DELETE FROM auth_throttle_refusals WHERE address = {p} AND window_start = {p} "  # noqa: S608
                      "RETURNING refused, by_address, by_account")
        self._closed = ("SELECT address, window_start FROM auth_throttle_refusals "  # noqa: S608
                        f"WHERE window_start < {p} ORDER BY window_start LIMIT {CLOSE_AT_MOST}")

    def _window(self) -> float:
        now = unix_seconds(self.clock.now())
        return float(now // WINDOW * WINDOW)

    def record(self, actor: Actor, address: str, refusal: Refusal, check: str, account_target: str) -> None:
        """Count one refused check; audit it if it is the first of its address and window."""
        start = self._window()
        by_address = int(refusal.reason == "address")
        with self.audit.mutation():
            refused = self.db.execute_sql(self._count, (address, start, by_address, 1 - by_address)
                                          ).fetchone()[0]
            if refused == 1:
                self.audit.record(actor, "auth.login_throttled", f"address:{address}", {
                    "limit": refusal.reason, "check": check, "account": account_target,
                    "window_start": _iso(start), "window_end": _iso(start + WINDOW),
                    "further_refusals": "counted in auth.throttle_window_closed"})

    def close_finished(self) -> int:
        """Audit the final count of every window that is over; return how many."""
        closed = 0
        for address, start in self.db.execute_sql(self._closed, (self._window(),)).fetchall():
            with self.audit.mutation():
                row = self.db.execute_sql(self._take, (address, start)).fetchone()
                if row is None:
                    continue  # another worker closed it
                refused, by_address, by_account = row
                self.audit.record(
                    Actor(CLOSER.id, address), "auth.throttle_window_closed", f"address:{address}",
                    {"window_start": _iso(start), "window_end": _iso(start + WINDOW), "refused": refused,
                     "by_limit": {"address": by_address, "account": by_account}})
                closed += 1
        return closed
