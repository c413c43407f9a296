"""`weco serve` (and, in the embedded setup, its worker: see control_api/embedded_worker.py)."""

from __future__ import annotations

from control_api.cli.args import like_setting
from control_api.cli.common import open_deps
from control_api.db import dialect
from control_api.settings import Settings


def wants_worker(settings: Settings, store_dialect: str) -> bool:
    if settings.embedded_worker == "auto":
        return store_dialect == "sqlite"
    return settings.embedded_worker == "1"


def cmd_serve(settings: Settings, args) -> None:
    from control_api.serve import serve

    deps = open_deps(settings)
    deps.keys.keyring()  # fails here, before forking, on a bad store, key or provider
    embedded = wants_worker(settings, dialect(deps.db))
    # Every connection, pooled ones too: none may be inherited by gunicorn's workers.
    deps.db.close_all() if hasattr(deps.db, "close_all") else deps.db.close()
    serve(settings, bind=args.bind or settings.bind, workers=args.workers or settings.workers,
          threads=args.threads or settings.threads, embedded_worker=embedded)


def register(groups) -> None:
    serve = groups.add_parser("serve", help="serve the API with gunicorn")
    serve.add_argument("--bind", type=like_setting("FF_BIND"), help="HOST:PORT (default FF_BIND)")
    serve.add_argument("--workers", type=like_setting("FF_WORKERS"),
                       help="worker processes (default FF_WORKERS)")
    serve.add_argument("--threads", type=like_setting("FF_THREADS"),
                       help="threads per worker process (default FF_THREADS)")
    serve.set_defaults(fn=cmd_serve)
