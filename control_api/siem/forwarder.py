"""Forwarding the sealed audit chain to the SIEM, at least once, in order.

The chain is the queue: nothing is copied out of it. The forwarder reads the rows
after its cursor (control_api/siem/cursor.py), sends them as one batch, and moves the
cursor only once the receiver acknowledged the batch (see transport.py). A crash
anywhere before that move (SIGKILL mid-batch included) sends the batch again: rows
may arrive twice, never not at all, and each carries its sequence number and MAC so
the receiver (or `weco siem check`) sees duplicates for what they are.

A receiver that fails costs only delay: each failure doubles the wait before the next
try (BACKOFF_FIRST up to BACKOFF_MAX, with jitter so that a fleet does not retry in
step), and the first success resets it.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Callable

import peewee

from control_api.clock import SystemClock
from control_api.siem import cursor
from control_api.siem.transport import DeliveryError, Transport

log = logging.getLogger(__name__)

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0


@dataclasses.dataclass
class Backoff:
    first: float = BACKOFF_FIRST
    most: float = BACKOFF_MAX
    failures: int = 0
    not_before: float = 0.0

    def failed(self, now: float) -> float:
        self.failures += 1
        delay = min(self.most, self.first * 2 ** (self.failures - 1))
        delay *= random.uniform(0.8, 1.0)  # noqa: S311 (jitter, not a secret)
        self.not_before = now + delay
        return delay

    def succeeded(self) -> None:
        self.failures, self.not_before = 0, 0.0


@dataclasses.dataclass(frozen=True)
class Outcome:
    sent: int  # rows acknowledged in this call
    position: cursor.Position
    error: str | None = None


class Forwarder:
    def __init__(self, db: peewee.Database, transport: Transport, batch: int = 500,
                 clock: SystemClock | None = None, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self.transport = transport
        self.batch = batch
        self.clock = clock or SystemClock()
        self.monotonic = monotonic
        self.cursor_name = cursor_name(transport.name)
        self.backoff = Backoff()

    def due(self) -> bool:
        return self.monotonic() >= self.backoff.not_before

    def forward_once(self) -> Outcome:
        """Send the next batch after the cursor, if any; move the cursor if it was acknowledged."""
        position = cursor.read(self.db, self.cursor_name)
        rows = cursor.rows_after(self.db, position.seq, self.batch)  # no transaction stays open
        if not rows:
            return Outcome(0, position)
        try:
            self.transport.send(rows)
        except DeliveryError as exc:
            delay = self.backoff.failed(self.monotonic())
            log.warning("SIEM delivery of rows %s..%s failed (%s, %s in a row); retrying in %.1f s",
                        rows[0].seq, rows[-1].seq, exc, self.backoff.failures, delay)
            return Outcome(0, position, str(exc))
        if self.backoff.failures:
            log.info("SIEM delivery resumed after %s failure(s)", self.backoff.failures)
        self.backoff.succeeded()
        new = cursor.Position(rows[-1].seq, rows[-1].mac)
        cursor.advance(self.db, self.cursor_name, position, new, self.clock.now())
        return Outcome(len(rows), new)


def cursor_name(transport_name: str) -> str:
    return f"siem:{transport_name}"
