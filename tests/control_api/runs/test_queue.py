"""The run queue on both backends: idempotent requests, claiming in order, one run
per slug at a time, leases that lapse into `lost`, cancelling."""

from __future__ import annotations

import threading

import peewee
import pytest

from control_api.models import Run, Site, SlugLock
from control_api.runs.queue import IdempotencyMismatch, RunConflict, RunRequest
from control_api.wiring import build_queue
from tests.conftest import ACTOR


@pytest.fixture
def queue(deps):
    return build_queue(deps)


@pytest.fixture
def sites(deps):
    now = deps.clock.now()
    return {slug: Site.create(slug=slug, domain=f"{slug}.example.com", created_at=now) for slug in ("a", "b")}


def deploy(site: Site, **extra_vars) -> RunRequest:
    return RunRequest("deploy_site", {"site": site.slug}, extra_vars, site.id, site.slug)


def test_an_idempotency_key_returns_the_same_run_and_refuses_a_different_request(queue, superadmin, sites):
    run, created = queue.request(superadmin, deploy(sites["a"]), "key-1", ACTOR)
    again, created_again = queue.request(superadmin, deploy(sites["a"]), "key-1", ACTOR)
    assert created and not created_again and again.id == run.id
    with pytest.raises(IdempotencyMismatch):
        queue.request(superadmin, deploy(sites["a"], keep_releases=3), "key-1", ACTOR)
    assert Run.select().count() == 1
    other, created_other = queue.request(superadmin, deploy(sites["a"]), None, ACTOR)
    assert created_other and other.id != run.id


def test_claims_go_in_order_and_a_busy_slug_waits(queue, superadmin, sites):
    first, _ = queue.request(superadmin, deploy(sites["a"]), None, ACTOR)
    second, _ = queue.request(superadmin, deploy(sites["a"]), None, ACTOR)
    other, _ = queue.request(superadmin, deploy(sites["b"]), None, ACTOR)
    assert queue.claim("w1", ACTOR).id == first.id
    # `a` is busy: the next claim skips its second run and takes `b`.
    assert queue.claim("w2", ACTOR).id == other.id
    assert queue.claim("w3", ACTOR) is None
    assert queue.finish(first.id, "w1", "successful", 0, {}, None, ACTOR)
    assert queue.claim("w3", ACTOR).id == second.id
    assert [lock.run_id for lock in SlugLock.select().order_by(SlugLock.slug)] == [second.id, other.id]


def test_a_finish_by_another_worker_changes_nothing(queue, superadmin, sites):
    run, _ = queue.request(superadmin, deploy(sites["a"]), None, ACTOR)
    queue.claim("w1", ACTOR)
    assert not queue.finish(run.id, "intruder", "failed", 1, {}, None, ACTOR)
    assert Run.get_by_id(run.id).status == "running"


def test_an_expired_lease_is_marked_lost_and_frees_the_slug(queue, superadmin, sites, clock):
    run, _ = queue.request(superadmin, deploy(sites["a"]), None, ACTOR)
    waiting, _ = queue.request(superadmin, deploy(sites["a"]), None, ACTOR)
    queue.claim("w1", ACTOR)
    clock.advance(seconds=10)
    assert queue.heartbeat(run.id, "w1")
    assert queue.sweep_lost(ACTOR) == []
    clock.advance(seconds=31)
    assert queue.sweep_lost(ACTOR) == [run.id]
    lost = Run.get_by_id(run.id)
    assert lost.status == "lost" and "w1" in lost.error
    assert not queue.heartbeat(run.id, "w1")  # the old worker learns it lost the run
    assert not queue.finish(run.id, "w1", "successful", 0, {}, None, ACTOR)
    assert queue.claim("w2", ACTOR).id == waiting.id


def test_cancel_a_queued_run_a_running_run_and_not_a_finished_one(queue, superadmin, sites):
    queued, _ = queue.request(superadmin, deploy(sites["b"]), None, ACTOR)
    running, _ = queue.request(superadmin, deploy(sites["a"]), None, ACTOR)
    queue.cancel(queued.id, ACTOR)
    assert Run.get_by_id(queued.id).status == "canceled"
    assert queue.claim("w1", ACTOR).id == running.id
    assert not queue.cancel_requested(running.id)
    queue.cancel(running.id, ACTOR)
    assert queue.cancel_requested(running.id) and Run.get_by_id(running.id).status == "running"
    queue.finish(running.id, "w1", "canceled", -1, {}, None, ACTOR)
    with pytest.raises(RunConflict, match="already finished"):
        queue.cancel(running.id, ACTOR)


@pytest.mark.postgres_only
def test_concurrent_workers_never_take_the_same_run_or_slug(deps, superadmin, sites, database_url):
    """Eight threads, each with its own connection, claim from one PostgreSQL queue."""
    queue = build_queue(deps)
    for _ in range(5):
        queue.request(superadmin, deploy(sites["a"]), None, ACTOR)
        queue.request(superadmin, deploy(sites["b"]), None, ACTOR)
    claimed: list[int] = []
    errors: list[Exception] = []
    start = threading.Barrier(8)

    def claim(name: str) -> None:
        try:
            start.wait()
            run = queue.claim(name, ACTOR)
            if run is not None:
                claimed.append(run.id)
            deps.db.close()
        except (peewee.PeeweeException, threading.BrokenBarrierError) as exc:
            errors.append(exc)

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    # One run per slug, whatever the interleaving: the rest wait for their slug.
    running = Run.select().where(Run.status == "running")
    assert sorted(r.lock_slug for r in running) == ["a", "b"] and len(claimed) == 2



def test_every_step_of_a_run_is_audited(queue, superadmin, sites, deps, clock):
    import json

    from control_api.models import AuditEvent

    done, _ = queue.request(superadmin, deploy(sites["a"]), None, ACTOR)
    queue.claim("w1", ACTOR)
    queue.finish(done.id, "w1", "failed", 2, {}, None, ACTOR)
    lost, _ = queue.request(superadmin, deploy(sites["b"]), None, ACTOR)
    queue.claim("w1", ACTOR)
    clock.advance(seconds=60)
    queue.sweep_lost(ACTOR)
    deps.audit.seal()
    events = [json.loads(row.event_json) for row in AuditEvent.select().order_by(AuditEvent.seq)]
    trail = [(e["action"], e["target"]) for e in events if e["action"].startswith("run.")]
    assert trail == [("run.request", f"run:{done.id}"), ("run.start", f"run:{done.id}"),
                     ("run.finish", f"run:{done.id}"), ("run.request", f"run:{lost.id}"),
                     ("run.start", f"run:{lost.id}"), ("run.lost", f"run:{lost.id}")]
    finish = next(e for e in events if e["action"] == "run.finish")
    assert finish["metadata"] == {"status": "failed", "rc": 2, "error": None}
