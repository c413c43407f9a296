"""API tokens against sealed mode, second factors and credential changes (#11 item 3):
who may mint one, for how long, and when a minted one stops working."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from control_api.models import ApiToken, AuditEvent
from control_api.wiring import build_credentials
from tests.conftest import ACTOR, PASSWORD, run_weco
from tests.control_api.auth.test_second_factor import cookie_of, enrol, login, make_client, now_code, second

SEALED = {"FF_SEALED_MODE": "1", "FF_TOTP_ONLY": "1", "FF_SEALED_MODE_GRACE_DAYS": "7"}


def bearer(value: str) -> dict:
    return {"Authorization": f"Bearer {value}"}


def mint(client, headers, name="ci", **body):
    return client.simulate_post("/api/tokens", json={"name": name, **body}, headers=headers)


def totp_session(client, clock, seed, email="admin@example.test") -> dict:
    clock.advance(seconds=30)
    done = second(client, login(client, email).json["challenge"], "totp", now_code(clock, seed))
    assert done.status_code == 200, done.text
    return cookie_of(done)


def actions() -> list[str]:
    return [row.action for row in AuditEvent.select().order_by(AuditEvent.seq)]


# -- sealed mode ---------------------------------------------------------------------------------


def test_a_password_only_session_in_the_grace_period_cannot_mint_a_token(env, db, clock, fast_hasher, admin):
    client = make_client(env, db, clock, fast_hasher, **SEALED)
    graced = login(client)
    assert graced.status_code == 200 and "totp_required_by" in graced.json
    refused = mint(client, cookie_of(graced), expires_days=3650)
    assert refused.status_code == 403 and "TOTP" in refused.json["description"]
    assert ApiToken.select().count() == 0


def test_sealed_mode_refuses_the_tokens_of_accounts_without_totp_after_the_grace(
        env, db, clock, fast_hasher, deps, admin, superadmin):
    client = make_client(env, db, clock, fast_hasher, **SEALED)
    credentials = build_credentials(deps)
    old, _ = credentials.create_token(admin, "old", clock.now() + dt.timedelta(days=60), ACTOR)
    assert client.simulate_get("/api/me", headers=bearer(old)).status_code == 200  # in the grace period
    seed, _ = enrol(client, clock, cookie_of(login(client, "root@example.test")))
    root_token = mint(client, totp_session(client, clock, seed, "root@example.test")).json["value"]
    clock.advance(days=7)
    refused = client.simulate_get("/api/me", headers=bearer(old))
    assert refused.status_code == 403 and refused.json["title"] == "TOTP required"
    assert client.simulate_get("/api/me", headers=bearer(root_token)).status_code == 200


# -- a session that passed a second factor, and step-up -----------------------------------------


def test_tokens_cannot_mint_tokens(client, deps, admin):
    value, _ = build_credentials(deps).create_token(admin, "bot", None, ACTOR)
    refused = mint(client, bearer(value), "child")
    assert refused.status_code == 403 and "session" in refused.json["description"]


def test_an_account_with_a_factor_needs_a_session_that_passed_it(client, deps, clock, admin):
    seed, _ = enrol(client, clock, cookie_of(login(client)))
    # A session made without the second factor (none can be through the API; build one).
    value, _ = build_credentials(deps).start_session(admin, ACTOR)
    from control_api.auth.credentials import csrf_token_for

    bare = {"Cookie": f"weco_session={value}", "X-CSRF-Token": csrf_token_for(value)}
    refused = mint(client, bare)
    assert refused.status_code == 403 and "second factor" in refused.json["description"]
    assert mint(client, totp_session(client, clock, seed)).status_code == 201


def test_an_account_without_any_factor_may_mint_outside_sealed_mode(client, admin):
    assert mint(client, cookie_of(login(client))).status_code == 201


def test_with_step_up_required_minting_needs_a_token_create_step_up(env, db, clock, fast_hasher, admin):
    client = make_client(env, db, clock, fast_hasher, FF_REQUIRE_STEP_UP="1")
    seed, _ = enrol(client, clock, cookie_of(login(client)))
    headers = totp_session(client, clock, seed)
    refused = mint(client, headers)
    assert refused.status_code == 403 and refused.json["title"] == "Step-up required"
    clock.advance(seconds=30)
    stepped = client.simulate_post("/api/auth/step-up", json={"scope": "token.create",
                                                              "code": now_code(clock, seed)}, headers=headers)
    assert stepped.status_code == 201, stepped.text
    assert mint(client, {**headers, "X-Step-Up-Token": stepped.json["step_up_token"]}).status_code == 201


# -- credential changes revoke tokens -----------------------------------------------------------


def test_a_password_change_revokes_the_accounts_tokens(client, admin):
    headers = cookie_of(login(client))
    value = mint(client, headers).json["value"]
    changed = client.simulate_post("/api/me/password", json={"current_password": PASSWORD,
                                                             "new_password": "a brand new passphrase 42"},
                                   headers=headers)
    assert changed.status_code == 204
    assert client.simulate_get("/api/me", headers=bearer(value)).status_code == 401
    revoked = AuditEvent.get(AuditEvent.action == "auth.tokens_revoked")
    assert '"count":1' in revoked.event_json and "password changed" in revoked.event_json


def test_removing_a_second_factor_revokes_the_accounts_tokens(client, clock, admin):
    seed, _ = enrol(client, clock, cookie_of(login(client)))
    headers = totp_session(client, clock, seed)
    value = mint(client, headers).json["value"]
    clock.advance(seconds=30)
    body = {"password": PASSWORD, "code": now_code(clock, seed)}
    removed = client.simulate_delete("/api/me/totp", json=body, headers=headers)
    assert removed.status_code == 204
    assert client.simulate_get("/api/me", headers=bearer(value)).status_code == 401


def test_enrolling_a_second_factor_revokes_tokens_minted_without_it(client, clock, admin):
    headers = cookie_of(login(client))
    value = mint(client, headers).json["value"]
    enrol(client, clock, headers)
    assert client.simulate_get("/api/me", headers=bearer(value)).status_code == 401


def test_disabling_an_account_revokes_its_tokens_and_sessions(env, client, admin):
    headers = cookie_of(login(client))
    value = mint(client, headers).json["value"]
    result = run_weco(env, "user", "disable", "--email", "ADMIN@example.test")
    assert result.returncode == 0, result.stderr
    assert client.simulate_get("/api/me", headers=bearer(value)).status_code == 401
    assert client.simulate_get("/api/me", headers=headers).status_code == 401
    assert ApiToken.get().revoked_at is not None
    assert {"user.disable", "auth.tokens_revoked", "auth.sessions_ended"} <= set(actions())
    again = run_weco(env, "user", "disable", "--email", "admin@example.test")
    assert again.returncode == 1 and "already disabled" in again.stderr


# -- maximum lifetime ---------------------------------------------------------------------------


def test_tokens_live_ninety_days_at_most_by_default(client, clock, admin):
    headers = cookie_of(login(client))
    made = mint(client, headers)
    assert made.status_code == 201
    assert made.json["token"]["expires_at"] == (clock.now() + dt.timedelta(days=90)).isoformat() + "Z"
    too_long = mint(client, headers, "long", expires_days=91)
    assert too_long.status_code == 400 and "FF_TOKEN_MAX_DAYS" in too_long.json["description"]


def test_the_maximum_caps_tokens_minted_before_it(env, db, clock, fast_hasher, deps, admin):
    # A token minted with a 10-year (or no) expiry, say before this setting existed.
    ApiToken.create(token_hash="0" * 64, user=admin, name="legacy", created_at=clock.now(), expires_at=None)
    credentials = build_credentials(deps)
    value, token = credentials.create_token(admin, "ok", clock.now() + dt.timedelta(days=30), ACTOR)
    ApiToken.update(expires_at=clock.now() + dt.timedelta(days=3650)).where(ApiToken.id == token.id).execute()
    client = make_client(env, db, clock, fast_hasher, FF_TOKEN_MAX_DAYS="30")
    listed = client.simulate_get("/api/tokens", headers=bearer(value)).json["tokens"]
    assert {t["expires_at"] for t in listed} == {(clock.now() + dt.timedelta(days=30)).isoformat() + "Z"}
    clock.advance(days=30)
    assert client.simulate_get("/api/me", headers=bearer(value)).status_code == 401


def test_the_service_refuses_a_lifetime_over_the_maximum(deps, clock, admin):
    from control_api.auth.credentials import TokenLifetimeError

    credentials = build_credentials(deps)
    with pytest.raises(TokenLifetimeError, match="FF_TOKEN_MAX_DAYS"):
        credentials.create_token(admin, "x", clock.now() + dt.timedelta(days=91), ACTOR)
    _, token = credentials.create_token(admin, "y", None, ACTOR)
    assert token.expires_at == clock.now() + dt.timedelta(days=90)


def test_cli_token_create_respects_the_maximum(weco, store):
    weco("user", "create", "--email", "a@example.test", "--role", "admin")
    made = weco("token", "create", "--email", "a@example.test", "--name", "ci")
    assert made.returncode == 0, made.stderr
    assert re.search(r"expires \d{4}-", made.stdout)
    assert ApiToken.get().expires_at is not None
    over = weco("token", "create", "--email", "a@example.test", "--name", "x", "--expires-days", "31",
                FF_TOKEN_MAX_DAYS="30")
    assert over.returncode == 1 and "FF_TOKEN_MAX_DAYS" in over.stderr


def test_max_days_setting_is_validated():
    from control_api.settings import SettingsError, load_settings

    assert load_settings({}).token_max_days == 90
    for bad in ("0", "3651", "x"):
        with pytest.raises(SettingsError, match="FF_TOKEN_MAX_DAYS"):
            load_settings({"FF_TOKEN_MAX_DAYS": bad})


# -- what the store says ---------------------------------------------------------------------------

def test_a_taken_name_is_a_409_and_a_drivers_error_is_not(client, admin, monkeypatch):
    headers = cookie_of(login(client))
    assert mint(client, headers).status_code == 201
    taken = mint(client, headers)
    assert taken.status_code == 409 and taken.json["title"] == "Token name taken"

    def refuse(**fields):  # what psycopg2 raises for a NUL the reader would have caught
        raise ValueError("A string literal cannot contain NUL (0x00) characters.")

    monkeypatch.setattr(ApiToken, "create", refuse)
    failed = mint(client, headers, name="other")
    assert failed.status_code == 500 and "literal" not in failed.text
