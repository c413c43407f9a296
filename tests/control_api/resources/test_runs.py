"""POST /api/runs and reading runs back: the playbook allowlist, accepted variables,
grants, idempotent retries, paginated and streamed events, cancelling."""

from __future__ import annotations

import json

import pytest

from control_api.models import AuditEvent, AuditQueue, Run, Site
from control_api.wiring import build_queue


@pytest.fixture
def site(client, root):
    client.simulate_post("/api/sites", json={"slug": "acme", "domain": "acme.example.com"}, headers=root)
    return Site.get(Site.slug == "acme")


def audit_rows() -> int:
    return AuditQueue.select().count() + AuditEvent.select().count()


def test_a_deploy_is_queued_with_its_audit_event(client, root, site):
    before = audit_rows()
    result = client.simulate_post("/api/runs", json={"playbook": "deploy_site", "site": "acme",
                                                     "extra_vars": {"keep_releases": 3}}, headers=root)
    assert result.status_code == 201, result.json
    assert result.headers["location"] == f"/api/runs/{result.json['id']}"
    assert result.json["status"] == "queued" and result.json["target"] == {"site": "acme"}
    assert audit_rows() == before + 1
    got = client.simulate_get(f"/api/runs/{result.json['id']}", headers=root).json
    assert got["extra_vars"] == {"keep_releases": 3}


@pytest.mark.parametrize("body, message", [
    ({"playbook": "rm_rf", "site": "acme"}, "'playbook' must be one of"),
    ({"playbook": "../playbooks/deploy_site", "site": "acme"}, "'playbook' must be one of"),
    ({"playbook": "deploy_site", "site": "acme", "extra_vars": {"site_source_dir": "/etc"}},
     "not accepted by deploy_site"),
    ({"playbook": "deploy_site", "site": "acme", "extra_vars": {"keep_releases": 1}}, "from 2 to 50"),
    ({"playbook": "deploy_site", "site": "acme", "extra_vars": {"keep_releases": "3"}}, "from 2 to 50"),
    ({"playbook": "rollback_site", "site": "acme", "extra_vars": {"release_id": "../x"}}, "release id"),
    ({"playbook": "deploy_site", "site": "Not A Slug"}, "no site 'Not A Slug'"),
    ({"playbook": "deploy_site", "site": "ghost"}, "no site 'ghost'"),
    ({"playbook": "deploy_site", "hosts": [1]}, "runs on a site"),
    ({"playbook": "check_hosts", "site": "acme"}, "runs on hosts"),
    ({"playbook": "check_hosts", "hosts": [999]}, "no such host"),
    ({"playbook": "check_hosts", "hosts": ["1"]}, "runs on hosts"),
    ({"playbook": "deploy_site", "site": "acme", "become": True}, "unknown field"),
])
def test_bad_run_requests_are_refused_and_create_nothing(client, root, site, body, message, deps):
    deps.audit.seal()
    before = audit_rows()
    result = client.simulate_post("/api/runs", json=body, headers=root)
    assert result.status_code == 400 and message in result.json["description"], result.json
    assert Run.select().count() == 0 and audit_rows() == before


def test_a_retry_with_the_same_key_returns_the_first_run(client, root, site):
    body = {"playbook": "deploy_site", "site": "acme"}
    headers = dict(root, **{"Idempotency-Key": "deploy-2026-11-29"})
    first = client.simulate_post("/api/runs", json=body, headers=headers)
    second = client.simulate_post("/api/runs", json=body, headers=headers)
    assert first.status_code == 201 and second.status_code == 200
    assert second.headers["idempotent-replayed"] == "true" and second.json["id"] == first.json["id"]
    changed = client.simulate_post("/api/runs", json=dict(body, extra_vars={"keep_releases": 4}),
                                   headers=headers)
    assert changed.status_code == 422
    bad_key = client.simulate_post("/api/runs", json=body, headers=dict(root, **{"Idempotency-Key": "a b"}))
    assert bad_key.status_code == 400
    assert Run.select().count() == 1


def test_admins_need_a_grant_on_the_site_or_on_every_host(client, root, adm, admin, site):
    body = {"playbook": "deploy_site", "site": "acme"}
    denied = client.simulate_post("/api/runs", json=body, headers=adm)
    assert denied.status_code == 400 and "you may deploy" in denied.json["description"]
    client.simulate_put(f"/api/sites/acme/grants/{admin.id}", headers=root)
    run = client.simulate_post("/api/runs", json=body, headers=adm)
    assert run.status_code == 201
    host, other = (client.simulate_post("/api/hosts", json={"name": name, "connection": "local"},
                                        headers=root).json for name in ("here", "there"))
    on_hosts = {"playbook": "check_hosts", "hosts": [host["id"]]}
    hosts = client.simulate_post("/api/runs", json=on_hosts, headers=adm)
    # A host without a grant is answered as one that does not exist.
    assert hosts.status_code == 400 and "no such host(s) you may use" in hosts.json["description"]
    assert client.simulate_put(f"/api/hosts/{host['id']}/grants/{admin.id}", headers=root).status_code == 201
    both = client.simulate_post("/api/runs", json=dict(on_hosts, hosts=[host["id"], other["id"]]),
                                headers=adm)
    assert both.status_code == 400 and both.json["description"].endswith(f": {other['id']}")
    own = client.simulate_post("/api/runs", json=on_hosts, headers=adm)
    assert own.status_code == 201
    root_run = client.simulate_post("/api/runs", json={"playbook": "check_hosts", "hosts": [host["id"]]},
                                    headers=root).json
    # The admin sees the granted site's run and their own, not the superadmin's on hosts.
    seen = [r["id"] for r in client.simulate_get("/api/runs", headers=adm).json["runs"]]
    assert seen == [own.json["id"], run.json["id"]]
    assert client.simulate_get(f"/api/runs/{root_run['id']}", headers=adm).status_code == 404
    assert client.simulate_post(f"/api/runs/{root_run['id']}/cancel", headers=adm).status_code == 404


def test_runs_list_pages_newest_first(client, root, site):
    ids = [client.simulate_post("/api/runs", json={"playbook": "deploy_site", "site": "acme"},
                                headers=root).json["id"] for _ in range(5)]
    page = client.simulate_get("/api/runs", params={"limit": "2"}, headers=root).json
    assert [r["id"] for r in page["runs"]] == ids[:-3:-1]
    rest = client.simulate_get("/api/runs", params={"before": str(page["next_before"])}, headers=root).json
    assert [r["id"] for r in rest["runs"]] == ids[-3::-1] and rest["next_before"] is None
    assert client.simulate_get("/api/runs", params={"status": "nope"}, headers=root).status_code == 400
    assert client.simulate_get("/api/runs", params={"limit": "0"}, headers=root).status_code == 400


def test_events_page_and_stream_then_cancel_rules(client, root, site, deps):
    queue = build_queue(deps)
    run_id = client.simulate_post("/api/runs", json={"playbook": "deploy_site", "site": "acme"},
                                  headers=root).json["id"]
    assert client.simulate_post(f"/api/runs/{run_id}/cancel", headers=root).status_code == 202
    assert client.simulate_post(f"/api/runs/{run_id}/cancel", headers=root).status_code == 409
    queue.append_events(run_id, [{"seq": n, "event": "runner_on_ok", "host": "h", "task": f"t{n}",
                                  "stdout": f"line {n}", "data_json": "{}"} for n in range(1, 6)])
    first = client.simulate_get(f"/api/runs/{run_id}/events", params={"limit": "2"}, headers=root).json
    assert [e["seq"] for e in first["events"]] == [1, 2] and first["finished"]
    rest = client.simulate_get(f"/api/runs/{run_id}/events", params={"after": str(first["next_after"])},
                               headers=root).json
    assert [e["task"] for e in rest["events"]] == ["t3", "t4", "t5"]
    stream = client.simulate_get(f"/api/runs/{run_id}/events/stream",
                                 headers=dict(root, **{"Last-Event-ID": "3"}))
    assert stream.headers["content-type"] == "text/event-stream"
    text = stream.text
    assert [line for line in text.splitlines() if line.startswith("id:")] == ["id: 4", "id: 5"]
    assert text.rstrip().endswith('event: end\ndata: {"status": "canceled"}')
    assert json.loads(text.split("data: ", 1)[1].split("\n", 1)[0])["stdout"] == "line 4"


def test_a_stream_of_a_run_no_worker_takes_ends_after_its_maximum(client, root, site, deps):
    """FF_EVENT_STREAM_MAX_SECONDS bounds a stream whatever its run does; the client
    reconnects with Last-Event-ID (here 1 s, set on the resource as the app does)."""
    import time

    from control_api.resources.runs import RunEventStream

    run_id = client.simulate_post("/api/runs", json={"playbook": "deploy_site", "site": "acme"},
                                  headers=root).json["id"]
    build_queue(deps).append_events(run_id, [{"seq": 1, "event": "runner_on_ok", "host": "h",
                                              "task": "t1", "stdout": "", "data_json": "{}"}])
    stream = RunEventStream(deps.db, max_seconds=1)
    started = time.monotonic()
    chunks = list(stream._follow(run_id, 0))
    assert time.monotonic() - started < 5
    assert len(chunks) == 1 and chunks[0].startswith(b"id: 1\n")  # no `end`: the run is still queued
    assert deps.settings.event_stream_max_seconds == 3600
