"""What the API records, and reading it back through GET /api/audit."""

from __future__ import annotations

import datetime as dt

import pytest

from control_api.models import AuditEvent
from control_api.wiring import build_credentials
from tests.conftest import ACTOR, PASSWORD


def bearer(value: str) -> dict:
    return {"Authorization": f"Bearer {value}"}


@pytest.fixture
def root_token(deps, superadmin):
    value, _ = build_credentials(deps).create_token(superadmin, "root", None, ACTOR)
    return value


@pytest.fixture
def root_session(client, superadmin):
    """A superadmin's cookie session: API tokens are minted from a login, not from a token."""
    ok = client.simulate_post("/api/auth/login", json={"email": "root@example.test", "password": PASSWORD})
    cookie = ok.cookies["weco_session"].value
    return {"Cookie": f"weco_session={cookie}", "X-CSRF-Token": ok.json["csrf_token"]}


def events(action: str | None = None) -> list[dict]:
    import json

    query = AuditEvent.select().order_by(AuditEvent.seq)
    if action:
        query = query.where(AuditEvent.action == action)
    return [json.loads(row.event_json) for row in query]


def test_login_success_failure_and_logout_are_recorded_without_secrets(client, admin):
    agent = {"User-Agent": "curl/8"}
    client.simulate_post("/api/auth/login", json={"email": "admin@example.test", "password": "not it at all"},
                         headers=agent)
    client.simulate_post("/api/auth/login", json={"email": "ghost@example.test", "password": PASSWORD})
    ok = client.simulate_post("/api/auth/login", json={"email": "ADMIN@example.test", "password": PASSWORD},
                              headers=agent)
    cookie = ok.cookies["weco_session"].value
    client.simulate_post("/api/auth/logout", headers={"Cookie": f"weco_session={cookie}",
                                                       "X-CSRF-Token": ok.json["csrf_token"]})
    failed = events("auth.login_failed")
    assert [e["target"] for e in failed] == ["email:admin@example.test", "email:ghost@example.test"]
    assert failed[0]["actor"] == "anonymous" and failed[0]["user_agent"] == "curl/8"
    assert failed[0]["source_ip"]
    login = events("auth.login")[0]
    assert login["actor"] == login["target"] == f"user:{admin.id}"
    assert events("auth.logout")[0]["target"].startswith("session:")
    everything = "".join(row.event_json for row in AuditEvent.select())
    for secret in ("not it at all", PASSWORD, cookie, ok.json["csrf_token"]):
        assert secret not in everything


def test_token_create_and_revoke_through_the_api_are_recorded(client, root_token, root_session, superadmin):
    created = client.simulate_post("/api/tokens", json={"name": "deploy", "expires_days": 7},
                                   headers=root_session)
    assert created.status_code == 201
    token_id, value = created.json["token"]["id"], created.json["value"]
    assert client.simulate_delete(f"/api/tokens/{token_id}", headers=bearer(root_token)).status_code == 204
    assert client.simulate_delete(f"/api/tokens/{token_id}", headers=bearer(root_token)).status_code == 404
    create = events("token.create")[-1]
    assert create["target"] == f"token:{token_id}" and create["actor"] == f"user:{superadmin.id}"
    assert create["metadata"]["name"] == "deploy"
    assert events("token.revoke")[-1]["target"] == f"token:{token_id}"
    assert value not in "".join(row.event_json for row in AuditEvent.select())


def test_a_user_cannot_revoke_someone_elses_token(client, deps, admin, root_token):
    other, token = build_credentials(deps).create_token(admin, "mine", None, ACTOR)
    assert client.simulate_delete(f"/api/tokens/{token.id}", headers=bearer(root_token)).status_code == 404
    assert client.simulate_get("/api/me", headers=bearer(other)).status_code == 200


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "x", "expires_days": 0},
                                  {"name": "x", "expires_days": "7"}, {"name": "x", "expires_days": True}])
def test_bad_token_requests_change_nothing(client, root_session, body):
    before = AuditEvent.select().count()
    assert client.simulate_post("/api/tokens", json=body, headers=root_session).status_code == 400
    assert AuditEvent.select().count() == before


def test_audit_reading_is_for_superadmins(client, deps, admin, root_token):
    value, _ = build_credentials(deps).create_token(admin, "a", None, ACTOR)
    assert client.simulate_get("/api/audit").status_code == 401
    assert client.simulate_get("/api/audit", headers=bearer(value)).status_code == 403
    assert client.simulate_get("/api/audit", headers=bearer(root_token)).status_code == 200


def test_filters_and_cursor_pagination(client, deps, clock, root_token):
    for number in range(7):
        clock.advance(minutes=1)
        deps.audit.record_alone(ACTOR, "thing.poke" if number % 2 else "thing.prod", f"thing:{number}")
    headers = bearer(root_token)
    pokes = client.simulate_get("/api/audit", params={"action": "thing.poke"}, headers=headers).json
    assert [e["target"] for e in pokes["events"]] == ["thing:5", "thing:3", "thing:1"]
    seen, cursor = [], None
    while True:
        params = {"actor": "test", "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.simulate_get("/api/audit", params=params, headers=headers).json
        seen += [e["seq"] for e in page["events"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    expected = [row.seq for row in AuditEvent.select().where(AuditEvent.actor == "test")
                .order_by(AuditEvent.seq.desc())]
    assert seen == expected and len(seen) == 7 + 2  # + the superadmin and its token, by ACTOR
    start = (clock.now() - dt.timedelta(minutes=2, seconds=30)).isoformat() + "Z"
    recent = client.simulate_get("/api/audit", params={"since": start, "target": "thing:6"},
                                 headers=headers).json
    assert [e["target"] for e in recent["events"]] == ["thing:6"]


@pytest.mark.parametrize("params", [{"since": "yesterday"}, {"limit": "0"}, {"limit": "501"},
                                    {"cursor": "abc"}])
def test_bad_audit_queries_are_400(client, root_token, params):
    result = client.simulate_get("/api/audit", params=params, headers=bearer(root_token))
    assert result.status_code == 400 and set(result.json) == {"title", "description"}
