"""`weco worker`: run queued playbook runs until stopped (SIGTERM/SIGINT)."""

from __future__ import annotations

import fcntl
import logging
import signal

from control_api.cli.common import CommandError, open_deps
from control_api.db import dialect
from control_api.settings import Settings
from control_api.wiring import build_worker

log = logging.getLogger(__name__)


def cmd_worker(settings: Settings, args) -> None:
    deps = open_deps(settings)
    deps.keys.keyring()  # a bad key or provider stops the worker here, not mid-run
    lock = None
    if dialect(deps.db) == "sqlite":
        # SQLite serialises writers anyway; one worker at a time keeps leases meaningful.
        lock = (settings.data_dir / "worker.lock").open("w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CommandError("another worker already serves this SQLite store") from None
    worker = build_worker(deps)

    def stop(signum, frame) -> None:
        worker.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("worker %s started", worker.name)
    if args.once:
        while worker.run_once():
            pass
    else:
        worker.run_forever()
    log.info("worker %s stopped", worker.name)


def register(groups) -> None:
    worker = groups.add_parser("worker", help="run queued playbook runs")
    worker.add_argument("--once", action="store_true", help="run what is queued now, then exit")
    worker.set_defaults(fn=cmd_worker)
