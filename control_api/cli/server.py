"""`weco serve` (and, in the embedded setup, its worker)."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading

from control_api.cli.common import open_deps
from control_api.db import dialect
from control_api.settings import Settings

log = logging.getLogger(__name__)


def wants_worker(settings: Settings, store_dialect: str) -> bool:
    if settings.embedded_worker == "auto":
        return store_dialect == "sqlite"
    return settings.embedded_worker == "1"


class EmbeddedWorker:
    """`weco worker` as a child of `weco serve`, restarted if it dies. It is its own
    process: a long playbook never holds an API worker, and the API's gunicorn workers
    never hold ssh-agents or decrypted host keys."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.process: subprocess.Popen | None = None
        self.thread = threading.Thread(target=self._supervise, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _supervise(self) -> None:
        while not self.stopping.is_set():
            self.process = subprocess.Popen([sys.executable, "-m", "control_api.cli", "worker"])
            code = self.process.wait()
            if not self.stopping.is_set():
                log.warning("the embedded worker exited with %s; restarting it", code)
                self.stopping.wait(1.0)

    def stop(self) -> None:
        self.stopping.set()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def cmd_serve(settings: Settings, args) -> None:
    from control_api.serve import serve

    deps = open_deps(settings)
    deps.keys.keyring()  # fails here, before forking, on a bad store, key or provider
    worker = EmbeddedWorker() if wants_worker(settings, dialect(deps.db)) else None
    deps.db.close()
    if worker is not None:
        worker.start()
    try:
        serve(settings, bind=args.bind or settings.bind, workers=args.workers or settings.workers,
              threads=args.threads or settings.threads)
    finally:
        if worker is not None:
            worker.stop()


def register(groups) -> None:
    serve = groups.add_parser("serve", help="serve the API with gunicorn")
    serve.add_argument("--bind", help="HOST:PORT (default FF_BIND)")
    serve.add_argument("--workers", type=int, help="worker processes (default FF_WORKERS)")
    serve.add_argument("--threads", type=int, help="threads per worker process (default FF_THREADS)")
    serve.set_defaults(fn=cmd_serve)
