"""Sites, hosts, their links and grants through the API: who may do what, what is
stored (keys encrypted and bound to their row), what is audited, and that bad input
changes nothing."""

from __future__ import annotations

import json

import pytest

from control_api.crypto import Aad
from control_api.models import AuditEvent, Host, Site
from control_api.wiring import build_catalog
from tests.conftest import ACTOR
from tests.control_api.sites.keys import key_body, openssh_key


def actions() -> list[str]:
    return [json.loads(row.event_json)["action"] for row in AuditEvent.select().order_by(AuditEvent.seq)]


def sealed(deps) -> None:
    deps.audit.seal()


def make_host(client, root, name="web-1", **extra):
    body = {"name": name, "address": "10.200.1.2", "ssh_user": "root", "ssh_private_key": openssh_key(),
            **extra}
    result = client.simulate_post("/api/hosts", json=body, headers=root)
    assert result.status_code == 201, result.json
    return result.json, body["ssh_private_key"]


def test_superadmin_builds_a_site_with_hosts_and_everything_is_audited(client, root, deps, db):
    site = client.simulate_post("/api/sites", json={"slug": "acme", "domain": "acme.example.com"},
                                headers=root)
    assert site.status_code == 201 and site.json["hosts"] == []
    host, _ = make_host(client, root)
    assert host["ssh_key_fingerprint"].startswith("SHA256:") and "ssh_private_key" not in host
    linked = client.simulate_put(f"/api/sites/acme/hosts/{host['id']}", headers=root)
    assert linked.status_code == 201 and [h["name"] for h in linked.json["hosts"]] == ["web-1"]
    assert client.simulate_put(f"/api/sites/acme/hosts/{host['id']}", headers=root).status_code == 200
    listed = client.simulate_get("/api/sites", headers=root).json["sites"]
    assert [(s["slug"], len(s["hosts"])) for s in listed] == [("acme", 1)]
    assert client.simulate_delete(f"/api/sites/acme/hosts/{host['id']}", headers=root).status_code == 204
    assert client.simulate_delete(f"/api/sites/acme/hosts/{host['id']}", headers=root).status_code == 404
    assert client.simulate_delete("/api/sites/acme", headers=root).status_code == 204
    assert client.simulate_delete(f"/api/hosts/{host['id']}", headers=root).status_code == 204
    sealed(deps)
    assert [a for a in actions() if a.startswith(("site.", "host."))] == [
        "site.create", "host.create", "site.host_attach", "site.host_detach", "site.delete", "host.delete"]


def test_the_ssh_key_is_stored_encrypted_and_bound_to_its_row(client, root, deps, db):
    first, pem = make_host(client, root, "web-1")
    second, _ = make_host(client, root, "web-2")
    dump = "\n".join(str(row) for table in ("hosts", "audit_queue", "audit_events")
                     for row in db.execute_sql(f"SELECT * FROM {table}").fetchall())
    assert key_body(pem) not in dump
    catalog = build_catalog(deps)
    row = Host.get_by_id(first["id"])
    assert catalog.private_key(row).decode().strip() == pem.strip()
    # The same ciphertext moved to another row does not decrypt: the AAD names the row.
    moved = Host.get_by_id(second["id"])
    moved.ssh_private_key = row.ssh_private_key
    with pytest.raises(Exception):  # noqa: B017 (the crypto module's error type is its own)
        catalog.private_key(moved)
    assert deps.keys.decrypt(row.ssh_private_key, aad=Aad("hosts", "ssh_private_key", first["id"]))


@pytest.mark.parametrize("body, message", [
    ({"slug": "Bad_Slug", "domain": "a.example.com"}, "'slug'"),
    ({"slug": "../x", "domain": "a.example.com"}, "'slug'"),
    ({"slug": "ok", "domain": "not a domain"}, "'domain'"),
    ({"slug": "ok"}, "'domain'"),
])
def test_a_bad_site_is_refused_and_creates_nothing(client, root, deps, body, message):
    before = len(actions())
    result = client.simulate_post("/api/sites", json=body, headers=root)
    assert result.status_code == 400 and message in result.json["description"]
    assert Site.select().count() == 0
    sealed(deps)
    assert len(actions()) == before


@pytest.mark.parametrize("change, message", [
    ({"name": "Bad Name"}, "'name'"),
    ({"address": "-oProxyCommand=sh"}, "'address'"),
    ({"port": 70000}, "'port'"),
    ({"ssh_user": "root; rm"}, "'ssh_user'"),
    ({"ssh_private_key": "nope"}, "ssh_private_key"),
    ({"vars": {"ansible_ssh_pass": "x"}}, "not a host variable"),
    ({"connection": "winrm"}, "'connection'"),
])
def test_a_bad_host_is_refused_and_creates_nothing(client, root, change, message):
    body = {"name": "web-1", "address": "10.0.0.1", "ssh_private_key": openssh_key(), **change}
    result = client.simulate_post("/api/hosts", json=body, headers=root)
    assert result.status_code == 400 and message in result.json["description"]
    assert Host.select().count() == 0


def test_duplicates_conflict(client, root):
    client.simulate_post("/api/sites", json={"slug": "acme", "domain": "acme.example.com"}, headers=root)
    again = client.simulate_post("/api/sites", json={"slug": "acme", "domain": "b.example.com"}, headers=root)
    assert again.status_code == 409
    make_host(client, root)
    body = {"name": "web-1", "address": "10.0.0.9", "ssh_private_key": openssh_key()}
    assert client.simulate_post("/api/hosts", json=body, headers=root).status_code == 409


def test_an_admin_sees_only_granted_sites_and_manages_nothing(client, root, adm, admin, deps):
    for slug in ("acme", "other"):
        client.simulate_post("/api/sites", json={"slug": slug, "domain": f"{slug}.example.com"}, headers=root)
    assert client.simulate_get("/api/sites", headers=adm).json["sites"] == []
    assert client.simulate_get("/api/sites/acme", headers=adm).status_code == 404
    assert client.simulate_put(f"/api/sites/acme/grants/{admin.id}", headers=root).status_code == 201
    assert [s["slug"] for s in client.simulate_get("/api/sites", headers=adm).json["sites"]] == ["acme"]
    assert client.simulate_get("/api/sites/acme", headers=adm).status_code == 200
    assert client.simulate_get("/api/sites/other", headers=adm).status_code == 404
    assert client.simulate_get("/api/hosts", headers=adm).json["hosts"] == []  # none granted
    for method, path in (("post", "/api/sites"), ("post", "/api/hosts"),
                         ("delete", "/api/sites/acme"), ("put", f"/api/sites/acme/grants/{admin.id}")):
        result = getattr(client, f"simulate_{method}")(path, json={}, headers=adm)
        assert result.status_code == 403, (method, path)
    assert client.simulate_delete(f"/api/sites/acme/grants/{admin.id}", headers=root).status_code == 204
    assert client.simulate_get("/api/sites", headers=adm).json["sites"] == []
    sealed(deps)
    assert "site.grant" in actions() and "site.revoke" in actions()


def test_local_connection_hosts_need_development(client, root, deps, settings):
    assert settings.is_dev
    local = client.simulate_post("/api/hosts", json={"name": "here", "connection": "local"}, headers=root)
    assert local.status_code == 201 and local.json["ssh_key_fingerprint"] is None
    catalog = build_catalog(deps)
    catalog.development = False
    from control_api.sites.validate import InvalidInput

    with pytest.raises(InvalidInput, match="FF_ENV=dev"):
        catalog.create_host({"name": "there", "connection": "local"}, ACTOR)
