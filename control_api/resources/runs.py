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
from control_api.models import Host, Run, RunEvent, SiteGrant, User
from control_api.resources.common import actor_of, invalid, iso
from control_api.runs import playbooks
from control_api.runs.queue import TERMINAL, IdempotencyMismatch, RunConflict, RunQueue, RunRequest
from control_api.sites.catalog import find_site, may_use_site
from control_api.sites.validate import InvalidInput

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


def visible_runs(user: User) -> peewee.ModelSelect:
    runs = Run.select()
    if user.role != "superadmin":
        granted = SiteGrant.select(SiteGrant.site).where(SiteGrant.user == user)
        runs = runs.where(Run.site.in_(granted) | (Run.requested_by == user))
    return runs


def run_or_404(user: User, run_id: int) -> Run:
    run = visible_runs(user).where(Run.id == run_id).first()
    if run is None:
        raise falcon.HTTPNotFound(title="No such run", description=f"there is no run {run_id} you may see")
    return run


def parse_request(user: User, data: dict) -> RunRequest:
    """The run asked for, checked against the playbook allowlist and the caller's grants."""
    unknown = set(data) - {"playbook", "site", "hosts", "extra_vars"}
    if unknown:
        raise InvalidInput(f"unknown field(s): {', '.join(sorted(unknown))}")
    playbook = playbooks.resolve(data.get("playbook"))
    # Checked now; stored in the API's own names, which the worker maps again.
    playbooks.extra_vars(playbook, data.get("extra_vars"))
    extra_vars = data.get("extra_vars") or {}
    if playbook.target == "site":
        if "hosts" in data or not isinstance(data.get("site"), str):
            raise InvalidInput(f"{playbook.name} runs on a site: send 'site' (a slug), not 'hosts'")
        site = find_site(data["site"])
        if site is None or not may_use_site(user, site):
            raise InvalidInput(f"there is no site '{data['site']}' you may deploy")
        return RunRequest(playbook.name, {"site": site.slug}, extra_vars, site.id, site.slug)
    hosts = data.get("hosts")
    if "site" in data or not isinstance(hosts, list) or not hosts or len(hosts) > 100 or \
            not all(isinstance(h, int) and not isinstance(h, bool) for h in hosts):
        raise InvalidInput(f"{playbook.name} runs on hosts: send 'hosts', a list of 1-100 host ids")
    if user.role != "superadmin":
        raise falcon.HTTPForbidden(title="Forbidden", description="runs on hosts need the superadmin role")
    found = {h.id for h in Host.select(Host.id).where(Host.id.in_(hosts))}
    missing = sorted(set(hosts) - found)
    if missing:
        raise InvalidInput(f"no such host(s): {', '.join(map(str, missing))}")
    return RunRequest(playbook.name, {"hosts": sorted(set(hosts))}, extra_vars, None, None)


class Runs:
    def __init__(self, queue: RunQueue) -> None:
        self.queue = queue

    @authenticated
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        user = req.context.principal.user
        key = req.get_header("Idempotency-Key")
        if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
            raise invalid("'Idempotency-Key' must be 1-200 of letters, digits, '_', '.', ':' or '-'")
        try:
            request = parse_request(user, read_json(req))
            run, created = self.queue.request(user, request, key, actor_of(req))
        except InvalidInput as exc:
            raise invalid(str(exc)) from None
        except IdempotencyMismatch as exc:
            raise falcon.HTTPUnprocessableEntity(title="Idempotency-Key reused",
                                                 description=str(exc)) from None
        resp.status = falcon.HTTP_201 if created else falcon.HTTP_200
        if not created:
            resp.set_header("Idempotent-Replayed", "true")
        resp.location = f"/api/runs/{run.id}"
        resp.media = run_json(run)

    @authenticated
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        runs = visible_runs(req.context.principal.user)
        status = req.get_param("status")
        if status is not None:
            if status not in ("queued", "running", *TERMINAL):
                raise invalid("'status' is not a run status")
            runs = runs.where(Run.status == status)
        before = query_int(req, "before", 0, 0, 2**62)
        if before:
            runs = runs.where(Run.id < before)
        limit = query_int(req, "limit", 50, 1, PAGE_MAX)
        page = list(runs.order_by(Run.id.desc()).limit(limit))
        resp.media = {"runs": [run_json(r) for r in page],
                      "next_before": page[-1].id if len(page) == limit else None}


class RunItem:
    @authenticated
    def on_get(self, req: falcon.Request, resp: falcon.Response, run_id: int) -> None:
        resp.media = run_json(run_or_404(req.context.principal.user, run_id))


class RunCancel:
    def __init__(self, queue: RunQueue) -> None:
        self.queue = queue

    @authenticated
    def on_post(self, req: falcon.Request, resp: falcon.Response, run_id: int) -> None:
        run = run_or_404(req.context.principal.user, run_id)
        try:
            run = self.queue.cancel(run.id, actor_of(req))
        except RunConflict as exc:
            raise falcon.HTTPConflict(title="Run finished", description=str(exc)) from None
        resp.status = falcon.HTTP_202
        resp.media = run_json(run)


def _events_after(run_id: int, after: int, limit: int) -> list[RunEvent]:
    return list(RunEvent.select().where(RunEvent.run == run_id, RunEvent.seq > after)
                .order_by(RunEvent.seq).limit(limit))


class RunEvents:
    @authenticated
    def on_get(self, req: falcon.Request, resp: falcon.Response, run_id: int) -> None:
        run = run_or_404(req.context.principal.user, run_id)
        after = query_int(req, "after", 0, 0, 2**31)
        limit = query_int(req, "limit", 100, 1, PAGE_MAX)
        events = _events_after(run.id, after, limit)
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
        run = run_or_404(req.context.principal.user, run_id)
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
                finished = Run.get_by_id(run_id).status in TERMINAL  # read before the events
                for event in _events_after(run_id, after, PAGE_MAX):
                    after = event.seq
                    data = json.dumps(event_json(event))
                    yield f"id: {event.seq}\nevent: ansible\ndata: {data}\n\n".encode()
                if finished and not _events_after(run_id, after, 1):
                    status = Run.get_by_id(run_id).status
                    yield f"event: end\ndata: {json.dumps({'status': status})}\n\n".encode()
                    return
                self.db.close()  # do not hold a pooled connection while waiting
                time.sleep(STREAM_POLL_SECONDS)
        finally:
            if not self.db.is_closed():
                self.db.close()
