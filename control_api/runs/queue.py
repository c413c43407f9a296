"""The run queue in the store: requesting, claiming, leases, finishing, losing.

A run is queued in the same transaction as its audit event. Workers claim the oldest
queued run whose site slug is free: on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so
workers on several machines share one queue without waiting on each other; on SQLite
the write lock taken at BEGIN serialises claims. A claimed site run holds its slug in
`slug_locks` (primary key: one holder) until it finishes or is declared lost, so two
runs of one slug never overlap. A worker renews its lease with a heartbeat; a run whose
lease has expired is marked lost by the next worker that looks, and its slug is freed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json

import peewee

from control_api.audit.log import Actor, AuditLog
from control_api.clock import SystemClock
from control_api.db import dialect
from control_api.errors import ApiError, Conflict
from control_api.models import Run, RunEvent, SlugLock, User

TERMINAL = ("successful", "failed", "canceled", "timeout", "lost", "error")


class RunConflict(Conflict):
    """The run is not in a state that allows this; the description says why."""

    title = "Run finished"


class IdempotencyMismatch(ApiError):
    """An Idempotency-Key was reused for a different request."""

    status = 422
    title = "Idempotency-Key reused"


@dataclasses.dataclass(frozen=True)
class RunRequest:
    playbook: str
    target: dict  # {"site": slug} or {"hosts": [id, ...]}
    extra_vars: dict
    site_id: int | None
    lock_slug: str | None

    def digest(self) -> str:
        body = json.dumps({"playbook": self.playbook, "target": self.target, "extra_vars": self.extra_vars},
                          sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()


class RunQueue:
    def __init__(self, db: peewee.Database, audit: AuditLog, clock: SystemClock,
                 lease: dt.timedelta = dt.timedelta(seconds=30)) -> None:
        self.db, self.audit, self.clock, self.lease = db, audit, clock, lease
        self.postgres = dialect(db) == "postgresql"

    # -- the API side -------------------------------------------------------------------

    def request(self, user: User, request: RunRequest, idempotency_key: str | None,
                actor: Actor) -> tuple[Run, bool]:
        """Queue a run, or return the one already queued under this key: (run, created)."""
        digest = request.digest()
        try:
            with self.audit.mutation():
                existing = self._by_key(user, idempotency_key)
                if existing is not None:
                    return self._replay(existing, digest), False
                run = Run.create(playbook=request.playbook, site=request.site_id,
                                 target_json=json.dumps(request.target, sort_keys=True),
                                 extra_vars_json=json.dumps(request.extra_vars, sort_keys=True),
                                 status="queued", requested_by=user, idempotency_key=idempotency_key,
                                 request_digest=digest, lock_slug=request.lock_slug,
                                 created_at=self.clock.now())
                self.audit.record(actor, "run.request", f"run:{run.id}",
                                  {"playbook": request.playbook, "target": request.target,
                                   "extra_vars": request.extra_vars})
            return run, True
        except peewee.IntegrityError:
            # The same key raced in from a concurrent retry: the other request won.
            existing = self._by_key(user, idempotency_key)
            if existing is None:
                raise
            return self._replay(existing, digest), False

    @staticmethod
    def _by_key(user: User, key: str | None) -> Run | None:
        if key is None:
            return None
        return Run.get_or_none(Run.requested_by == user, Run.idempotency_key == key)

    @staticmethod
    def _replay(run: Run, digest: str) -> Run:
        if run.request_digest != digest:
            raise IdempotencyMismatch("this Idempotency-Key was used for a different request")
        return run

    def cancel(self, run_id: int, actor: Actor) -> Run:
        """Cancel a queued run now; ask the worker to stop a running one."""
        with self.audit.mutation():
            run = self._locked(run_id)
            if run.status == "queued":
                run.status, run.finished_at = "canceled", self.clock.now()
                run.save(only=[Run.status, Run.finished_at])
                self.audit.record(actor, "run.cancel", f"run:{run.id}", {"was": "queued"})
            elif run.status == "running" and run.cancel_requested_at is None:
                run.cancel_requested_at = self.clock.now()
                run.save(only=[Run.cancel_requested_at])
                self.audit.record(actor, "run.cancel", f"run:{run.id}", {"was": "running"})
            elif run.status != "running":
                raise RunConflict(f"run {run.id} has already finished ({run.status})")
        return run

    def _locked(self, run_id: int) -> Run:
        query = Run.select().where(Run.id == run_id)
        if self.postgres:
            query = query.for_update()
        return query.get()

    # -- the worker side ----------------------------------------------------------------

    def anything_queued(self) -> bool:
        """A cheap read, so an idle worker can poll often without taking the write lock."""
        row = self.db.execute_sql("SELECT 1 FROM runs WHERE status = 'queued' LIMIT 1").fetchone()
        return row is not None

    def claim(self, worker: str, actor: Actor) -> Run | None:
        """Take the oldest queued run whose slug is free, or None."""
        sql = ("SELECT id, lock_slug FROM runs r WHERE status = 'queued' AND (lock_slug IS NULL OR "
               "NOT EXISTS (SELECT 1 FROM slug_locks l WHERE l.slug = r.lock_slug)) ORDER BY id LIMIT 1")
        if self.postgres:
            sql += " FOR UPDATE SKIP LOCKED"
        now = self.clock.now()
        with self.audit.mutation():
            row = self.db.execute_sql(sql).fetchone()
            if row is None:
                return None
            run_id, slug = row
            if slug is not None:
                try:
                    with self.db.atomic():  # a savepoint: losing the race undoes only this
                        SlugLock.insert(slug=slug, run=run_id, acquired_at=now).execute()
                except peewee.IntegrityError:
                    return None  # another worker took this slug for another run just now
            Run.update(status="running", started_at=now, worker=worker,
                       lease_expires_at=now + self.lease).where(Run.id == run_id).execute()
            self.audit.record(actor, "run.start", f"run:{run_id}", {"worker": worker})
        return Run.get_by_id(run_id)

    def heartbeat(self, run_id: int, worker: str) -> bool:
        """Renew the lease; False when the run is no longer ours (declared lost)."""
        changed = (Run.update(lease_expires_at=self.clock.now() + self.lease)
                   .where(Run.id == run_id, Run.worker == worker, Run.status == "running").execute())
        return changed == 1

    def cancel_requested(self, run_id: int) -> bool:
        run = Run.select(Run.cancel_requested_at, Run.status).where(Run.id == run_id).get()
        return run.cancel_requested_at is not None or run.status != "running"

    def append_events(self, run_id: int, events: list[dict]) -> None:
        if not events:
            return
        now = self.clock.now()
        with self.db.atomic():
            RunEvent.insert_many([dict(event, run=run_id, created_at=now) for event in events]).execute()

    def finish(self, run_id: int, worker: str, status: str, rc: int | None, stats: dict | None,
               error: str | None, actor: Actor) -> bool:
        """Record the outcome and free the slug; False if the run was declared lost meanwhile."""
        assert status in TERMINAL
        with self.audit.mutation():
            changed = (Run.update(status=status, finished_at=self.clock.now(), rc=rc, lease_expires_at=None,
                                  stats_json=json.dumps(stats or {}, sort_keys=True), error=error)
                       .where(Run.id == run_id, Run.worker == worker, Run.status == "running").execute())
            if changed:
                SlugLock.delete().where(SlugLock.run == run_id).execute()
                self.audit.record(actor, "run.finish", f"run:{run_id}",
                                  {"status": status, "rc": rc, "error": error})
        return changed == 1

    def sweep_lost(self, actor: Actor) -> list[int]:
        """Mark runs whose worker stopped renewing its lease as lost; free their slugs."""
        now = self.clock.now()
        query = Run.select(Run.id, Run.worker).where(Run.status == "running", Run.lease_expires_at < now)
        if self.postgres:
            query = query.for_update(skip_locked=True)
        with self.audit.mutation():
            lost = list(query)
            for run in lost:
                Run.update(status="lost", finished_at=now, lease_expires_at=None,
                           error=f"worker {run.worker} stopped renewing its lease").where(
                    Run.id == run.id).execute()
                SlugLock.delete().where(SlugLock.run == run.id).execute()
                self.audit.record(actor, "run.lost", f"run:{run.id}", {"worker": run.worker})
        return [run.id for run in lost]
