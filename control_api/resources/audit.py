"""Reading the audit log (superadmin only): filters and a keyset cursor, newest first."""

from __future__ import annotations

import datetime as dt
import json

import falcon

from control_api.authz import superadmin
from control_api.body import STORE_INT_MAX, InvalidRequest, query_int
from control_api.models import AuditEvent

MAX_LIMIT = 500


def _time_param(req: falcon.Request, name: str) -> dt.datetime | None:
    raw = req.get_param(name)
    if raw is None:
        return None
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if value.tzinfo is not None:
            # Year 1 or 9999 with an offset falls off the calendar here: OverflowError.
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        raise InvalidRequest(f"'{name}' must be an ISO 8601 time", title="Invalid parameter") from None
    return value


class Audit:
    @superadmin
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        limit = query_int(req, "limit", 100, 1, MAX_LIMIT)
        cursor = query_int(req, "cursor", None, 1, STORE_INT_MAX)
        query = AuditEvent.select().order_by(AuditEvent.seq.desc()).limit(limit)
        for name in ("actor", "action", "target"):
            value = req.get_param(name)
            if value is not None:
                query = query.where(getattr(AuditEvent, name) == value)
        since, until = _time_param(req, "since"), _time_param(req, "until")
        if since is not None:
            query = query.where(AuditEvent.occurred_at >= since)
        if until is not None:
            query = query.where(AuditEvent.occurred_at < until)
        if cursor is not None:
            query = query.where(AuditEvent.seq < cursor)
        rows = list(query)
        events = [dict(json.loads(row.event_json), seq=row.seq)
                  for row in rows]
        next_cursor = rows[-1].seq if len(rows) == limit else None
        resp.media = {"events": events, "next_cursor": next_cursor}
