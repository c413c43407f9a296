"""Pinned host keys and credential rotation through the API: who may call what, what is
stored and audited, and that hostile or wrong input changes nothing. (Scanning a real
host, runs against pinned keys and rotations on real hosts: tests/control_api/hosts/.)"""

from __future__ import annotations

import json

import falcon.testing
import pytest

from control_api.app import create_app
from control_api.errors import ApiError
from control_api.hosts import hostkeys
from control_api.hosts.pinning import HostKeys
from control_api.models import AuditEvent, Host, Run
from control_api.settings import load_settings
from control_api.wiring import build_deps
from tests.conftest import ACTOR
from tests.control_api.hosts.test_hostkeys import EC, ED, HOSTILE, RSA
from tests.control_api.sites.keys import openssh_key
from tests.peers.postgres import free_port


def audited(deps, prefix: str = "host.") -> list[tuple[str, dict]]:
    deps.audit.seal()
    rows = (json.loads(row.event_json) for row in AuditEvent.select().order_by(AuditEvent.seq))
    return [(e["action"], e["metadata"]) for e in rows if e["action"].startswith(prefix)]


def register(client, root, name="web-1", **extra):
    body = {"name": name, "address": "127.0.0.1", "port": free_port(), "ssh_private_key": openssh_key(),
            **extra}
    return client.simulate_post("/api/hosts", json=body, headers=root)


def test_a_host_registered_with_its_key_has_it_pinned_and_the_fingerprint_audited(client, root, deps):
    made = register(client, root, ssh_host_key=ED + " root@web-1")
    assert made.status_code == 201, made.json
    pinned = made.json["ssh_host_key"]
    assert pinned == {"key": ED, "fingerprint": hostkeys.parse(ED).fingerprint}
    assert made.json["ssh_host_key_pending"] is None
    shown = client.simulate_get(f"/api/hosts/{made.json['id']}/host-key", headers=root).json
    assert shown == {"host_id": made.json["id"], "ssh_host_key": pinned, "ssh_host_key_pending": None}
    assert Host.get_by_id(made.json["id"]).ssh_host_key == ED  # the comment is dropped
    [(_, created)] = audited(deps)
    assert created["ssh_host_key_fingerprint"] == pinned["fingerprint"]
    # Without a key, the host is registered unpinned.
    assert register(client, root, "web-2").json["ssh_host_key"] is None


def test_hostile_host_keys_are_refused_at_registration_and_repin_and_change_nothing(client, root, deps):
    for value in HOSTILE:
        assert register(client, root, ssh_host_key=value).status_code == 400, value
    assert not Host.select().exists()
    host = register(client, root, ssh_host_key=RSA).json
    for value in HOSTILE:
        put = client.simulate_put(f"/api/hosts/{host['id']}/host-key", json={"ssh_host_key": value},
                                  headers=root)
        assert put.status_code == 400, (value, put.json)
    assert Host.get_by_id(host["id"]).ssh_host_key == RSA
    assert [a for a, _ in audited(deps)] == ["host.create"]


def test_repin_replaces_the_key_clears_a_pending_one_and_audits_both_fingerprints(client, root, deps):
    host = register(client, root, ssh_host_key=ED).json
    Host.update(ssh_host_key_pending=EC).where(Host.id == host["id"]).execute()
    put = client.simulate_put(f"/api/hosts/{host['id']}/host-key", json={"ssh_host_key": RSA}, headers=root)
    assert put.status_code == 200
    assert put.json["ssh_host_key"]["key"] == RSA and put.json["ssh_host_key_pending"] is None
    assert audited(deps)[-1] == ("host.host_key_repin", {"fingerprint": hostkeys.parse(RSA).fingerprint,
                                                         "previous": hostkeys.parse(ED).fingerprint})
    for body in ({}, {"ssh_host_key": RSA, "other": 1}, {"fingerprint": "x"}):
        assert client.simulate_put(f"/api/hosts/{host['id']}/host-key", json=body,
                                   headers=root).status_code == 400


def test_a_scanned_key_stays_pending_until_its_fingerprint_confirms_it(deps):
    ed = hostkeys.parse(ED)
    host = Host.create(name="web-1", address="10.0.0.5", port=22, ssh_user="root", connection="ssh",
                       ssh_private_key="", ssh_key_fingerprint="", vars_json="{}",
                       created_at=deps.clock.now())
    keys = HostKeys(deps.audit, scanner=lambda address, port: ed)
    keys.scan(host, ACTOR)
    row = Host.get_by_id(host.id)
    assert (row.ssh_host_key, row.ssh_host_key_pending) == ("", ED)
    for wrong in ("SHA256:" + "A" * 43, ed.fingerprint.lower(), None, 5):
        with pytest.raises(ApiError) as refused:
            keys.confirm(host, wrong, ACTOR)
        assert refused.value.status in (400, 409)
        assert Host.get_by_id(host.id).ssh_host_key == ""
    keys.confirm(host, ed.fingerprint, ACTOR)
    row = Host.get_by_id(host.id)
    assert (row.ssh_host_key, row.ssh_host_key_pending) == (ED, "")
    # Once pinned, a new scan is only pending again, and confirming never replaces the pin.
    keys.scanner = lambda address, port: hostkeys.parse(EC)
    keys.scan(host, ACTOR)
    with pytest.raises(ApiError) as refused:
        keys.confirm(host, hostkeys.parse(EC).fingerprint, ACTOR)
    assert refused.value.status == 409 and Host.get_by_id(host.id).ssh_host_key == ED
    assert [(a, m.get("fingerprint")) for a, m in audited(deps)] == [
        ("host.host_key_scan", ed.fingerprint), ("host.host_key_pin", ed.fingerprint),
        ("host.host_key_scan", hostkeys.parse(EC).fingerprint)]


def test_a_scan_nobody_answers_is_a_502_that_changes_nothing(client, root, deps):
    host = register(client, root).json  # 127.0.0.1 on a port nothing listens on
    scanned = client.simulate_post(f"/api/hosts/{host['id']}/host-key/scan", headers=root)
    assert scanned.status_code == 502 and "nothing was changed" in scanned.json["description"]
    assert Host.get_by_id(host["id"]).ssh_host_key_pending == ""
    assert [a for a, _ in audited(deps)] == ["host.create"]


def test_a_local_host_has_no_host_key_and_no_credentials_to_rotate(client, root, deps):
    given = {"name": "here", "connection": "local", "ssh_host_key": ED}
    assert client.simulate_post("/api/hosts", json=given, headers=root).status_code == 400
    local = client.simulate_post("/api/hosts", json={"name": "here", "connection": "local"},
                                 headers=root).json
    base = f"/api/hosts/{local['id']}"
    assert client.simulate_post(f"{base}/host-key/scan", headers=root).status_code == 409
    assert client.simulate_post(f"{base}/host-key/confirm", json={"fingerprint": "x"},
                                headers=root).status_code == 409
    assert client.simulate_put(f"{base}/host-key", json={"ssh_host_key": ED}, headers=root).status_code == 409
    assert client.simulate_post(f"{base}/rotate-credentials", headers=root).status_code == 409
    assert not Run.select().exists()


def test_rotation_is_queued_as_an_audited_run_of_a_pinned_ssh_host_only(client, root, deps):
    unpinned = register(client, root, "web-1").json
    refused = client.simulate_post(f"/api/hosts/{unpinned['id']}/rotate-credentials", headers=root)
    assert refused.status_code == 409 and "pin it" in refused.json["description"]
    pinned = register(client, root, "web-2", ssh_host_key=ED).json
    queued = client.simulate_post(f"/api/hosts/{pinned['id']}/rotate-credentials", headers=root)
    assert queued.status_code == 202 and queued.headers["location"] == f"/api/runs/{queued.json['id']}"
    assert (queued.json["playbook"], queued.json["target"], queued.json["status"]) == (
        "rotate_credentials", {"hosts": [pinned["id"]]}, "queued")
    assert Run.get_by_id(queued.json["id"]).lock_slug == f"host:{pinned['id']}"
    assert audited(deps, "run.") == [("run.request", {"playbook": "rotate_credentials",
                                                      "target": {"hosts": [pinned["id"]]}, "extra_vars": {}})]
    # Only its own route queues it: POST /api/runs does not know the playbook.
    generic = client.simulate_post("/api/runs", json={"playbook": "rotate_credentials",
                                                      "hosts": [pinned["id"]]}, headers=root)
    assert generic.status_code == 400 and Run.select().count() == 1


def test_an_admin_may_not_touch_host_keys_or_credentials_even_on_a_granted_host(client, root, adm, admin):
    host = register(client, root, ssh_host_key=ED).json
    assert client.simulate_put(f"/api/hosts/{host['id']}/grants/{admin.id}", headers=root).status_code == 201
    base = f"/api/hosts/{host['id']}"
    calls = [("GET", f"{base}/host-key", None), ("PUT", f"{base}/host-key", {"ssh_host_key": RSA}),
             ("POST", f"{base}/host-key/scan", None),
             ("POST", f"{base}/host-key/confirm", {"fingerprint": "x"}),
             ("POST", f"{base}/rotate-credentials", None)]
    for method, path, body in calls:
        assert client.simulate_request(method, path, json=body, headers=adm).status_code == 403, path
    assert Host.get_by_id(host["id"]).ssh_host_key == ED and not Run.select().exists()
    # A host that does not exist is a 404 for a superadmin too.
    assert client.simulate_put("/api/hosts/999/host-key", json={"ssh_host_key": RSA},
                               headers=root).status_code == 404


def test_repin_and_rotation_need_a_step_up_when_required(env, db, clock, fast_hasher, root):
    settings = load_settings({**env, "FF_REQUIRE_STEP_UP": "1"})
    client = falcon.testing.TestClient(create_app(build_deps(settings, db, clock=clock, hasher=fast_hasher)))
    host = register(client, root, ssh_host_key=ED).json
    put = client.simulate_put(f"/api/hosts/{host['id']}/host-key", json={"ssh_host_key": RSA}, headers=root)
    rotate = client.simulate_post(f"/api/hosts/{host['id']}/rotate-credentials", headers=root)
    assert (put.status_code, put.json["title"]) == (403, "Step-up required")
    assert (rotate.status_code, rotate.json["title"]) == (403, "Step-up required")
    assert Host.get_by_id(host["id"]).ssh_host_key == ED and not Run.select().exists()
