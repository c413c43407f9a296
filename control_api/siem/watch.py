"""The watcher (`weco siem watch`, started by `weco serve` or its own systemd unit): one
process that, while it holds the watch lock (cursor.py), runs the anomaly rules over
newly sealed rows and forwards the chain to the SIEM when FF_AUDIT_SIEM_URL is set.

Any number may run: the others wait for the lock, retrying every LOCK_RETRY seconds,
and take over within that time when the holder dies (PostgreSQL releases a dead
session's lock; the kernel a dead process's flock). A store error drops the lock
and the connection and starts over: nothing is lost, since both cursors are in the store.
"""

from __future__ import annotations

import contextlib
import logging

import peewee

from control_api.anomaly.detector import AnomalyDetector
from control_api.runs.worker import StopFlag
from control_api.siem.cursor import CursorMoved, WatchLock
from control_api.siem.forwarder import Forwarder

log = logging.getLogger(__name__)

POLL = 0.2  # seconds between looks at the chain when there was nothing to do
LOCK_RETRY = 2.0


class Watcher:
    def __init__(self, lock: WatchLock, detector: AnomalyDetector, forwarder: Forwarder | None,
                 poll: float = POLL, lock_retry: float = LOCK_RETRY) -> None:
        self.lock, self.detector, self.forwarder = lock, detector, forwarder
        self.poll, self.lock_retry = poll, lock_retry
        self.stopping = StopFlag()
        self.holding: bool | None = False  # as last logged; None: waiting

    def step(self) -> bool:
        """One round under the lock; True if there may be more to do at once."""
        busy = self.detector.scan_once().read >= self.detector.batch
        if self.forwarder is not None and self.forwarder.due():
            outcome = self.forwarder.forward_once()
            busy = busy or (outcome.error is None and outcome.sent >= self.forwarder.batch)
        return busy

    def run_forever(self) -> None:
        try:
            while not self.stopping.is_set():
                try:
                    if not self.lock.try_acquire():
                        if self.holding is not None:
                            log.info("another watcher holds the watch lock; waiting for it")
                            self.holding = None
                        self.stopping.wait(self.lock_retry)
                        continue
                    if not self.holding:
                        log.info("watcher holds the watch lock%s", self._forwarding())
                        self.holding = True
                    if not self.step():
                        self.stopping.wait(self.poll)
                except CursorMoved as exc:
                    log.error("%s; releasing the watch lock", exc)
                    self.lock.release()
                    self.holding = False
                    self.stopping.wait(self.lock_retry)
                except (peewee.OperationalError, peewee.InterfaceError) as exc:
                    log.warning("the store failed (%s); dropping the watch lock and retrying", exc)
                    self.lock.lost()
                    self.holding = False
                    self.stopping.wait(self.lock_retry)
                except Exception:
                    # Anything else (the audit log refusing a finding, say): keep the
                    # cursors where they are and try again, rather than die.
                    log.exception("watcher round failed; retrying")
                    self.lock.lost()
                    self.holding = False
                    self.stopping.wait(self.lock_retry)
        finally:
            with contextlib.suppress(peewee.DatabaseError):
                self.lock.release()

    def _forwarding(self) -> str:
        if self.forwarder is None:
            return "; no SIEM configured"
        return f"; forwarding to {self.forwarder.transport.name}"
