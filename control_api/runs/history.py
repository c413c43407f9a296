"""Reading runs and their events, as the caller may see them (authz.visible_runs).
A run the caller may not see is answered exactly as one that does not exist."""

from __future__ import annotations

from control_api import authz
from control_api.errors import InvalidInput, NotFound
from control_api.models import Run, RunEvent, User
from control_api.runs.queue import TERMINAL

STATUSES = ("queued", "running", *TERMINAL)


def visible_run(user: User, run_id: int) -> Run:
    run = authz.visible_runs(user).where(Run.id == run_id).first()
    if run is None:
        raise NotFound(f"there is no run {run_id} you may see", title="No such run")
    return run


def list_runs(user: User, status: str | None, before: int, limit: int) -> list[Run]:
    """Newest first; `before` (a run id, 0 for none) pages back through older runs."""
    runs = authz.visible_runs(user)
    if status is not None:
        if status not in STATUSES:
            raise InvalidInput("'status' is not a run status")
        runs = runs.where(Run.status == status)
    if before:
        runs = runs.where(Run.id < before)
    return list(runs.order_by(Run.id.desc()).limit(limit))


def events_after(run_id: int, after: int, limit: int) -> list[RunEvent]:
    return list(RunEvent.select().where(RunEvent.run == run_id, RunEvent.seq > after)
                .order_by(RunEvent.seq).limit(limit))


def status_of(run_id: int) -> str:
    return Run.get_by_id(run_id).status
