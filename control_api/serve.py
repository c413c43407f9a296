"""Running the app under gunicorn; each worker builds its own app and store pool."""

from __future__ import annotations

from gunicorn.app.base import BaseApplication

from control_api.app import build_deps, create_app
from control_api.db import open_database
from control_api.logs import GUNICORN_LOGCONFIG, configure_logging
from control_api.settings import Settings


class _Gunicorn(BaseApplication):
    def __init__(self, settings: Settings, options: dict) -> None:
        self.settings = settings
        self.options = options
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
        return create_app(deps)


def serve(settings: Settings, bind: str, workers: int, threads: int) -> None:
    _Gunicorn(
        settings,
        {
            "bind": bind,
            "workers": workers,
            # With threads > 1 gunicorn uses its gthread worker: a client following a
            # run's event stream then holds one thread, not a whole worker process.
            # FF_THREADS=1 keeps plain sync workers (one request per process).
            "worker_class": "sync",
            "threads": threads,
            "timeout": 60,
            "graceful_timeout": 20,
            "logconfig_dict": GUNICORN_LOGCONFIG,
            "accesslog": None,
            # Client addresses come from the socket; no forwarded header is trusted.
            "forwarded_allow_ips": "",
            "proc_name": "weco",
        },
    ).run()
