"""Reading the audit log (superadmin only): filters and a keyset cursor, newest first."""

from __future__ import annotations

import falcon

from control_api.audit.search import AuditQuery, search
from control_api.authz import superadmin
from control_api.body import STORE_INT_MAX, query_int, query_time

MAX_LIMIT = 500


class Audit:
    @superadmin
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        query = AuditQuery(
            limit=query_int(req, "limit", 100, 1, MAX_LIMIT),
            cursor=query_int(req, "cursor", None, 1, STORE_INT_MAX),
            actor=req.get_param("actor"), action=req.get_param("action"), target=req.get_param("target"),
            since=query_time(req, "since"), until=query_time(req, "until"),
        )
        events, next_cursor = search(query)
        resp.media = {"events": events, "next_cursor": next_cursor}
