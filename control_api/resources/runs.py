"""Runs: request one (idempotently), list and read them, follow their events, cancel.

Who may act: a site run needs the site (superadmin, or an admin granted the site);
a run on listed hosts needs a superadmin. A run an admin may not see is a 404.
"""

from __future__ import annotations

import json
import re
import time

import falcon
import peewee

from control_api.authz import authenticated
from control_api.body import header_int, query_int, read_json
from control_api.errors import InvalidInput
from control_api.models import Run, RunEvent
from control_api.resources.common import actor_of, iso
from control_api.runs import history
from control_api.runs.queue import TERMINAL, RunQueue
from control_api.runs.requests import parse_request

IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,200}")
PAGE_MAX = 500
STREAM_POLL_SECONDS = 0.25
STREAM_MAX_SECONDS = 3600
LAST_EVENT_ID_MAX = 10**18 - 1  # 1 to 18 digits, as the document's pattern says


def run_json(run: Run) -> dict:
    return {"id": run.id, "playbook": run.playbook, "target": json.loads(run.target_json),
            "extra_vars": json.loads(run.extra_vars_json), "status": run.status,
            "requested_by": run.requested_by_id, "created_at": iso(run.created_at),
            "started_at": iso(run.started_at), "finished_at": iso(run.finished_at),
            "cancel_requested": run.cancel_requested_at is not None, "rc": run.rc,
            "stats": json.loads(run.stats_json) if run.stats_json else None, "error": run.error}


def event_json(event: RunEvent) -> dict:
    return {"seq": event.seq, "event": event.event, "host": event.host, "task": event.task,
            "stdout": event.stdout, "data": json.loads(event.data_json), "created_at": iso(event.created_at)}


class Runs:
    def __init__(self, queue: RunQueue) -> None:
        self.queue = queue

    @authenticated
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        user = req.context.principal.user
        key = req.get_header("Idempotency-Key")
        if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
            raise InvalidInput("'Idempotency-Key' must be 1-200 of letters, digits, '_', '.', ':' or '-'")
        request = parse_request(user, read_json(req))
        run, created = self.queue.request(user, request, key, actor_of(req))
        resp.status = falcon.HTTP_201 if created else falcon.HTTP_200
        if not created:
            resp.set_header("Idempotent-Replayed", "true")
        resp.location = f"/api/runs/{run.id}"
        resp.media = run_json(run)

    @authenticated
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        before = query_int(req, "before", 0, 0, 2**62)
        limit = query_int(req, "limit", 50, 1, PAGE_MAX)
        page = history.list_runs(req.context.principal.user, req.get_param("status"), before, limit)
        resp.media = {"runs": [run_json(r) for r in page],
                      "next_before": page[-1].id if len(page) == limit else None}


class RunItem:
    @authenticated
    def on_get(self, req: falcon.Request, resp: falcon.Response, run_id: int) -> None:
        resp.media = run_json(history.visible_run(req.context.principal.user, run_id))


class RunCancel:
    def __init__(self, queue: RunQueue) -> None:
        self.queue = queue

    @authenticated
    def on_post(self, req: falcon.Request, resp: falcon.Response, run_id: int) -> None:
        run = history.visible_run(req.context.principal.user, run_id)
        run = self.queue.cancel(run.id, actor_of(req))
        resp.status = falcon.HTTP_202
        resp.media = run_json(run)


class RunEvents:
    @authenticated
    def on_get(self, req: falcon.Request, resp: falcon.Response, run_id: int) -> None:
        run = history.visible_run(req.context.principal.user, run_id)
        after = query_int(req, "after", 0, 0, 2**31)
        limit = query_int(req, "limit", 100, 1, PAGE_MAX)
        events = history.events_after(run.id, after, limit)
        resp.media = {"events": [event_json(e) for e in events],
                      "next_after": events[-1].seq if events else after,
                      "finished": run.status in TERMINAL}


class RunEventStream:
    """Server-sent events: every stored event as it arrives, then `end` with the status.
    A client that reconnects sends Last-Event-ID (or ?after=) and misses nothing."""

    def __init__(self, db: peewee.Database, max_seconds: float = STREAM_MAX_SECONDS) -> None:
        self.db, self.max_seconds = db, max_seconds

    @authenticated
    def on_get(self, req: falcon.Request, resp: falcon.Response, run_id: int) -> None:
        run = history.visible_run(req.context.principal.user, run_id)
        after = query_int(req, "after", 0, 0, 2**31)  # checked even when the header wins
        last = header_int(req, "Last-Event-ID", 0, LAST_EVENT_ID_MAX)
        after = last if last is not None else after
        resp.content_type = "text/event-stream"
        resp.set_header("Cache-Control", "no-store")
        resp.set_header("X-Accel-Buffering", "no")
        resp.stream = self._follow(run.id, after)

    def _follow(self, run_id: int, after: int):
        deadline = time.monotonic() + self.max_seconds
        try:
            while time.monotonic() < deadline:
                finished = history.status_of(run_id) in TERMINAL  # read before the events
                for event in history.events_after(run_id, after, PAGE_MAX):
                    after = event.seq
                    data = json.dumps(event_json(event))
                    yield f"id: {event.seq}\nevent: ansible\ndata: {data}\n\n".encode()
                if finished and not history.events_after(run_id, after, 1):
                    status = history.status_of(run_id)
                    yield f"event: end\ndata: {json.dumps({'status': status})}\n\n".encode()
                    return
                self.db.close()  # do not hold a pooled connection while waiting
                time.sleep(STREAM_POLL_SECONDS)
        finally:
            if not self.db.is_closed():
                self.db.close()
