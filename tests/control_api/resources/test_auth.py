"""Login, logout, /api/me, API tokens and CSRF, on both store backends."""

from __future__ import annotations

import datetime as dt

import falcon.testing
import pytest

from control_api.app import create_app
from control_api.audit.keys import write_witness_pair
from control_api.models import Session, User
from control_api.settings import load_settings
from control_api.wiring import build_credentials, build_deps
from tests.conftest import ACTOR, PASSWORD


def login(client, email="admin@example.test", password=PASSWORD, **kw):
    return client.simulate_post("/api/auth/login", json={"email": email, "password": password}, **kw)


def session_cookie(result) -> dict:
    cookie = result.cookies["weco_session"]
    return {"Cookie": f"weco_session={cookie.value}"}


def test_login_sets_a_hardened_session_cookie_and_returns_the_user(client, admin):
    result = login(client)
    assert result.status_code == 200
    assert result.json["user"] == {"id": admin.id, "email": admin.email, "role": "admin"}
    cookie = result.cookies["weco_session"]
    assert cookie.http_only and cookie.same_site == "Strict" and cookie.path == "/"
    assert len(cookie.value) >= 43  # 32 random bytes, base64url
    # The store keeps only a digest of the value.
    stored = Session.get()
    assert cookie.value not in (stored.token_hash,) and len(stored.token_hash) == 64


def test_outside_dev_the_cookie_is_secure_and_host_prefixed(env, db, clock, fast_hasher, admin, tmp_path):
    private, _ = write_witness_pair(tmp_path / "witness")
    settings = load_settings(dict(env, FF_ENV="production", FF_AUDIT_SECRET="s" * 32,
                                  FF_AUDIT_WITNESS_KEY=str(private)))
    client = falcon.testing.TestClient(create_app(build_deps(settings, db, clock=clock, hasher=fast_hasher)))
    result = login(client)
    cookie = result.cookies["__Host-weco_session"]
    assert cookie.secure and cookie.http_only and cookie.same_site == "Strict"


def test_login_email_is_case_insensitive(client, admin):
    assert login(client, email="ADMIN@Example.TEST").status_code == 200


@pytest.mark.parametrize("email,password", [
    ("admin@example.test", "wrong password here"),
    ("nobody@example.test", PASSWORD),
    ("nobody@example.test", "wrong password here"),
])
def test_login_failures_look_identical(client, admin, email, password):
    result = login(client, email=email, password=password)
    assert result.status_code == 401
    assert result.json == {"title": "Login failed", "description": "the email or password is incorrect"}
    assert "weco_session" not in result.cookies


def test_a_disabled_account_cannot_log_in(client, admin, clock):
    User.update(disabled_at=clock.now()).execute()
    assert login(client).status_code == 401


@pytest.mark.parametrize("body", [{}, {"email": "a@b.c"}, {"email": 1, "password": PASSWORD},
                                  {"email": "admin@example.test", "password": ""}])
def test_login_rejects_malformed_fields(client, admin, body):
    result = client.simulate_post("/api/auth/login", json=body)
    assert result.status_code == 400
    assert set(result.json) == {"title", "description"}


def test_me_with_the_session_cookie(client, admin):
    logged_in = login(client)
    me = client.simulate_get("/api/me", headers=session_cookie(logged_in))
    assert me.status_code == 200
    assert me.json["user"]["email"] == "admin@example.test"
    assert me.json["via"] == "session"
    assert me.json["csrf_token"] == logged_in.json["csrf_token"]


def test_me_without_credentials_is_401(client):
    result = client.simulate_get("/api/me")
    assert result.status_code == 401
    assert result.json["title"] == "Authentication required"


def test_logout_needs_the_csrf_token_and_then_ends_the_session(client, admin):
    logged_in = login(client)
    headers = session_cookie(logged_in)
    refused = client.simulate_post("/api/auth/logout", headers=headers)
    assert refused.status_code == 403
    assert refused.json["title"] == "CSRF token missing or wrong"
    wrong = client.simulate_post("/api/auth/logout", headers={**headers, "X-CSRF-Token": "0" * 64})
    assert wrong.status_code == 403
    # The refused attempts changed nothing: the session still works.
    assert client.simulate_get("/api/me", headers=headers).status_code == 200
    done = client.simulate_post(
        "/api/auth/logout", headers={**headers, "X-CSRF-Token": logged_in.json["csrf_token"]}
    )
    assert done.status_code == 204
    assert client.simulate_get("/api/me", headers=headers).status_code == 401


def test_a_csrf_token_of_another_session_does_not_work(client, admin):
    first, second = login(client), login(client)
    headers = {**session_cookie(first), "X-CSRF-Token": second.json["csrf_token"]}
    assert client.simulate_post("/api/auth/logout", headers=headers).status_code == 403


def test_cross_site_unsafe_requests_are_refused_even_for_login(client, admin):
    result = login(client, headers={"Sec-Fetch-Site": "cross-site"})
    assert result.status_code == 403
    assert Session.select().count() == 0


@pytest.mark.parametrize("origin", ["https://evil.example", "http://falconframework.org.evil.example",
                                    "http://falconframework.org:8080", "null"])
def test_a_cookie_mutation_from_another_origin_is_refused_without_sec_fetch_site(client, admin, origin):
    logged_in = login(client)
    headers = {**session_cookie(logged_in), "X-CSRF-Token": logged_in.json["csrf_token"], "Origin": origin}
    refused = client.simulate_post("/api/auth/logout", headers=headers)
    assert refused.status_code == 403 and refused.json["title"] == "Cross-origin request refused"
    assert client.simulate_get("/api/me", headers=session_cookie(logged_in)).status_code == 200
    # Login CSRF too: a foreign page cannot log a browser into an account.
    assert login(client, headers={"Origin": origin}).status_code == 403


@pytest.mark.parametrize("host, origin", [("falconframework.org", "http://falconframework.org"),
                                          ("127.0.0.1:8080", "http://127.0.0.1:8080"),
                                          ("weco.example", "https://WECO.example")])
def test_a_cookie_mutation_from_its_own_origin_is_allowed(client, admin, host, origin):
    logged_in = login(client, headers={"Host": host, "Origin": origin})
    headers = {**session_cookie(logged_in), "X-CSRF-Token": logged_in.json["csrf_token"],
               "Host": host, "Origin": origin}
    assert client.simulate_post("/api/auth/logout", headers=headers).status_code == 204


def test_each_login_issues_a_new_session(client, admin):
    first = login(client)
    second = login(client, headers={**session_cookie(first), "X-CSRF-Token": first.json["csrf_token"]})
    assert second.cookies["weco_session"].value != first.cookies["weco_session"].value
    # Logging in again from a browser that held a session ends the old one.
    assert client.simulate_get("/api/me", headers=session_cookie(first)).status_code == 401
    assert client.simulate_get("/api/me", headers=session_cookie(second)).status_code == 200


def test_session_ends_after_idle_timeout(client, admin, clock):
    headers = session_cookie(login(client))
    clock.advance(minutes=29)
    assert client.simulate_get("/api/me", headers=headers).status_code == 200
    clock.advance(minutes=29)  # used 29 minutes ago: still alive
    assert client.simulate_get("/api/me", headers=headers).status_code == 200
    clock.advance(minutes=31)
    assert client.simulate_get("/api/me", headers=headers).status_code == 401


def test_session_ends_at_absolute_lifetime_even_when_busy(client, admin, clock):
    headers = session_cookie(login(client))
    for _ in range(12 * 4):
        clock.advance(minutes=15)
        if clock.current - dt.datetime(2026, 11, 29, 12) >= dt.timedelta(hours=12):
            break
        assert client.simulate_get("/api/me", headers=headers).status_code == 200
    assert client.simulate_get("/api/me", headers=headers).status_code == 401


# -- API tokens ------------------------------------------------------------------------


@pytest.fixture
def credentials(deps):
    return build_credentials(deps)


def bearer(value: str) -> dict:
    return {"Authorization": f"Bearer {value}"}


def test_api_token_authenticates_without_csrf(client, admin, credentials):
    value, token = credentials.create_token(admin, "ci", None, ACTOR)
    assert value.startswith("weco_") and token.token_hash != value
    me = client.simulate_get("/api/me", headers=bearer(value))
    assert me.status_code == 200 and me.json["via"] == "token" and "csrf_token" not in me.json
    # Bearer requests carry no ambient credential, so no CSRF token is needed (and a
    # token cannot log out: that is for a session).
    logout = client.simulate_post("/api/auth/logout", headers=bearer(value))
    assert logout.status_code == 403 and logout.json["title"] == "Not a session"


def test_unknown_malformed_expired_and_revoked_tokens_are_401(client, admin, credentials, clock):
    expiring, _ = credentials.create_token(admin, "short", clock.now() + dt.timedelta(days=1), ACTOR)
    revoked, token = credentials.create_token(admin, "gone", None, ACTOR)
    assert client.simulate_get("/api/me", headers=bearer(expiring)).status_code == 200
    assert credentials.revoke_token(token.id, ACTOR)
    assert not credentials.revoke_token(token.id, ACTOR)  # already revoked: nothing to do
    clock.advance(days=1)
    for header in (bearer(expiring), bearer(revoked), bearer("weco_nonsense"),
                   {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}):
        result = client.simulate_get("/api/me", headers=header)
        assert result.status_code == 401, header
        assert result.json["title"] == "Invalid token"
        assert result.headers["WWW-Authenticate"] == "Bearer"


def test_a_bad_bearer_header_is_not_rescued_by_a_good_cookie(client, admin):
    headers = {**session_cookie(login(client)), "Authorization": "Bearer weco_nonsense"}
    assert client.simulate_get("/api/me", headers=headers).status_code == 401


def test_token_names_are_unique_per_user(admin, credentials):
    credentials.create_token(admin, "ci", None, ACTOR)
    with pytest.raises(ValueError, match="already has a token named 'ci'"):
        credentials.create_token(admin, "ci", None, ACTOR)


# -- roles -----------------------------------------------------------------------------


def test_user_list_is_for_superadmins_only(client, admin, superadmin, credentials):
    admin_token, _ = credentials.create_token(admin, "a", None, ACTOR)
    root_token, _ = credentials.create_token(superadmin, "r", None, ACTOR)
    assert client.simulate_get("/api/users").status_code == 401
    forbidden = client.simulate_get("/api/users", headers=bearer(admin_token))
    assert forbidden.status_code == 403 and forbidden.json["title"] == "Forbidden"
    listed = client.simulate_get("/api/users", headers=bearer(root_token))
    assert listed.status_code == 200
    assert [u["email"] for u in listed.json["users"]] == ["admin@example.test", "root@example.test"]
    assert all("password_hash" not in u for u in listed.json["users"])
