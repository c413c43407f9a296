"""Running the app under gunicorn; each worker builds its own app and store pool.

With the embedded worker, gunicorn's master owns it too: it starts it once listening,
restarts it if it dies, and on SIGTERM/SIGINT/SIGQUIT stops it in the same moment as
its own workers, so a stop takes as long as the slowest of them (idle: well under a
second), bounded by the graceful timeout.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter

from control_api.app import create_app
from control_api.db import open_database
from control_api.embedded_worker import EmbeddedGroup, EmbeddedWorker, watcher
from control_api.gunicorn_workers import Logger, worker_class
from control_api.logs import GUNICORN_LOGCONFIG, configure_logging
from control_api.metrics import instrument, prepare_multiprocess_dir, worker_exited
from control_api.settings import Settings
from control_api.wiring import build_deps

# How long a stop waits for requests in flight and for the embedded worker to cancel
# and record a run in progress; past it, what is left is killed.
GRACEFUL_TIMEOUT = 20


class _Arbiter(Arbiter):
    """gunicorn's master, which also starts, restarts and stops the embedded worker,
    all from its one loop thread (the hooks below run nowhere else)."""

    def __init__(self, app: BaseApplication, embedded: EmbeddedWorker | None) -> None:
        super().__init__(app)
        self.embedded = embedded

    def _ours(self) -> EmbeddedWorker | None:
        # gunicorn's workers are forks of the master: they must not touch its child.
        return self.embedded if os.getpid() == self.pid else None

    def start(self) -> None:
        super().start()
        if self.embedded is not None:
            self.embedded.start()

    def reap_workers(self) -> None:
        if embedded := self._ours():
            embedded.reap()
        super().reap_workers()

    def manage_workers(self) -> None:
        super().manage_workers()
        if embedded := self._ours():
            embedded.maintain()

    def stop(self, graceful: bool = True) -> None:
        embedded = self._ours()
        deadline = time.monotonic() + self.cfg.graceful_timeout
        if embedded:
            embedded.stop()
        super().stop(graceful)
        if embedded:
            embedded.wait(deadline)
        # Everything is stopped: one more stop signal (Ctrl-C reaches a wrapping script
        # too, which may pass on a SIGTERM) must not kill the exit half-way, as it would
        # once Python restores the default handlers on its way out.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
            signal.signal(sig, signal.SIG_IGN)


def quit_once(worker) -> None:
    """gunicorn's post_worker_init hook. A quick stop reaches a worker twice: Ctrl-C's
    SIGINT goes to the whole process group, and the master, stopping on it, sends SIGQUIT
    too. gunicorn's handler is not reentrant (the second call, run inside the first,
    waits forever on a lock the first holds, and the master kills the worker after the
    graceful timeout), so only the first signal runs it."""
    handle_quit = worker.handle_quit
    quitting = False  # a plain flag: a lock here could deadlock the same way

    def once(signum, frame) -> None:
        nonlocal quitting
        if not quitting:
            quitting = True
            handle_quit(signum, frame)

    signal.signal(signal.SIGINT, once)
    signal.signal(signal.SIGQUIT, once)


class _Gunicorn(BaseApplication):
    def __init__(self, settings: Settings, options: dict, embedded: EmbeddedWorker | None) -> None:
        self.settings = settings
        self.options = options
        self.embedded = embedded
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        # Runs in each worker after fork: no connection is shared across processes.
        configure_logging(self.settings.log_level)
        db = open_database(self.settings.effective_database_url)
        deps = build_deps(self.settings, db, seal_after_commit=False)
        deps.audit.start_background_sealer()
        app = create_app(deps)
        return instrument(app) if self.settings.metrics_bind else app

    def run(self) -> None:
        _Arbiter(self, self.embedded).run()


def serve(settings: Settings, bind: str, workers: int, threads: int, embedded_worker: bool = False) -> None:
    metrics_dir = None
    if settings.metrics_bind:
        metrics_dir = str(settings.data_dir.resolve() / "metrics")
        prepare_multiprocess_dir(Path(metrics_dir))
    # The audit watcher always runs (the anomaly rules; the SIEM forwarder when configured).
    children = [EmbeddedWorker()] if embedded_worker else []
    _Gunicorn(
        settings,
        {
            "bind": bind,
            "workers": workers,
            # With threads > 1, gunicorn's gthread worker: a client following a run's
            # event stream then holds one thread, not a whole worker process. FF_THREADS=1
            # keeps plain sync workers (one request per process). Either answers what
            # gunicorn refuses by itself (long URL, large headers) in JSON.
            "worker_class": worker_class(threads),
            "threads": threads,
            "timeout": 60,
            "graceful_timeout": GRACEFUL_TIMEOUT,
            "logconfig_dict": GUNICORN_LOGCONFIG,
            "logger_class": Logger,
            "accesslog": None,
            # Client addresses come from the socket; no forwarded header is trusted.
            "forwarded_allow_ips": "",
            "proc_name": "weco",
            # gunicorn's control socket (for gunicornc) is one path per user, so two
            # instances on a machine took each other's; nothing here uses it, and it
            # would add a way to reload or resize the server beside its signals.
            "control_socket_disable": True,
            "post_worker_init": quit_once,
            "child_exit": worker_exited,
        },
        EmbeddedGroup([*children, watcher(metrics_dir)]),
    ).run()
