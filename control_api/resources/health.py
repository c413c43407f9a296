"""Liveness and readiness probes."""

from __future__ import annotations

import logging

import falcon
import peewee

from control_api import migrations
from control_api.authz import public
from control_api.db import ping

log = logging.getLogger(__name__)


class Health:
    @public
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok"}


class Ready:
    """Ready when the store answers and its schema is current."""

    def __init__(self, db: peewee.Database) -> None:
        self.db = db

    @public
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            ping(self.db)
            behind = migrations.pending(self.db)
        except peewee.DatabaseError:
            log.warning("store unreachable", exc_info=True)
            raise falcon.HTTPServiceUnavailable(
                title="Not ready", description="the store is unreachable"
            ) from None
        if behind:
            raise falcon.HTTPServiceUnavailable(
                title="Not ready",
                description=f"{len(behind)} migration(s) pending: run `weco db upgrade`",
            )
        resp.media = {"status": "ready"}
