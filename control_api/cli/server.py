"""`weco serve`."""

from __future__ import annotations

from control_api.cli.common import open_deps
from control_api.settings import Settings


def cmd_serve(settings: Settings, args) -> None:
    from control_api.serve import serve

    deps = open_deps(settings)
    deps.keys.keyring()  # fails here, before forking, on a bad store, key or provider
    deps.db.close()
    serve(settings, bind=args.bind or settings.bind, workers=args.workers or settings.workers)


def register(groups) -> None:
    serve = groups.add_parser("serve", help="serve the API with gunicorn")
    serve.add_argument("--bind", help="HOST:PORT (default FF_BIND)")
    serve.add_argument("--workers", type=int, help="worker processes (default FF_WORKERS)")
    serve.set_defaults(fn=cmd_serve)
