"""FF_SSO_ONLY=1 (control_api/auth/sso_only.py): password logins and tokens minted from
password sessions are refused; a passkey (and SAML/OIDC) still mints sessions; the
break-glass account may log in with its password and its TOTP, always alerted, and
mints no API token."""

from __future__ import annotations

import datetime as dt

from control_api.auth.totp import code_at
from control_api.models import AuditEvent
from control_api.wiring import build_credentials
from tests.conftest import ACTOR, PASSWORD
from tests.control_api.webauthn.test_passkeys import (
    ORIGIN,
    cookie_of,
    events,
    login,
    make_client,
    passkey_login,
    register,
)
from tests.peers.authenticator import SoftAuthenticator

EPOCH = dt.datetime(1970, 1, 1)


def totp_now(clock, seed):
    return code_at(seed, int((clock.now() - EPOCH).total_seconds() // 30))


def test_password_logins_and_their_tokens_are_refused_passkeys_are_not(env, db, clock, fast_hasher, admin,
                                                                        deps):
    before = make_client(env, db, clock, fast_hasher)
    key = SoftAuthenticator(ORIGIN)
    assert register(before, cookie_of(login(before)), key).status_code == 201
    # A password login with the passkey as its second factor: still a password session.
    challenge = login(before).json["challenge"]
    options = before.simulate_post("/api/auth/login/webauthn/options", json={"challenge": challenge})
    done = before.simulate_post("/api/auth/login/webauthn", json={
        "challenge": challenge, "credential": key.get(options.json["publicKey"])})
    password_session = cookie_of(done)
    minted = before.simulate_post("/api/tokens", json={"name": "from-password"}, headers=password_session)
    assert minted.status_code == 201, minted.text
    password_token = {"Authorization": f"Bearer {minted.json['value']}"}
    operator_token = {"Authorization": "Bearer " + build_credentials(deps).create_token(admin, "cli", None,
                                                                                        ACTOR)[0]}

    client = make_client(env, db, clock, fast_hasher, FF_SSO_ONLY="1")
    # Wrong passwords answer as ever (nothing told); a right one is refused and audited.
    assert login(client, password="not the password").status_code == 401
    refused = login(client)
    assert refused.status_code == 403 and refused.json["title"] == "Single sign-on only"
    assert "password logins are off" in refused.json["description"]
    assert events("auth.login_refused_sso_only")
    assert client.simulate_get("/api/me", headers=password_session).status_code == 401
    assert client.simulate_get("/api/me", headers=password_token).status_code == 403
    assert client.simulate_get("/api/me", headers=operator_token).status_code == 200  # weco token create
    # A passkey login mints a session, and tokens from it work.
    done = passkey_login(client, key)
    assert done.status_code == 200, done.text
    headers = cookie_of(done)
    made = client.simulate_post("/api/tokens", json={"name": "from-passkey"}, headers=headers)
    assert made.status_code == 201, made.text
    assert client.simulate_get("/api/me", headers={"Authorization": f"Bearer {made.json['value']}"}
                               ).status_code == 200
    # Switched back off, the password token works again: nothing was destroyed.
    assert before.simulate_get("/api/me", headers=password_token).status_code == 200


def test_a_password_session_from_before_the_switch_stops_working(env, db, clock, fast_hasher, admin):
    before = make_client(env, db, clock, fast_hasher)
    headers = cookie_of(login(before))
    assert before.simulate_get("/api/me", headers=headers).status_code == 200
    after = make_client(env, db, clock, fast_hasher, FF_SSO_ONLY="1")
    assert after.simulate_get("/api/me", headers=headers).status_code == 401


def test_break_glass_logs_in_with_password_and_totp_only_and_is_alerted(env, db, clock, fast_hasher, users):
    glass = users.create("break-glass@weco.invalid", "superadmin", PASSWORD, ACTOR, break_glass=True)
    before = make_client(env, db, clock, fast_hasher)
    client = make_client(env, db, clock, fast_hasher, FF_SSO_ONLY="1")
    # Without its second factor, its password alone gets nothing.
    alone = login(client, glass.email)
    assert alone.status_code == 403 and "second factor" in alone.json["description"]
    headers = cookie_of(login(before, glass.email))
    begun = before.simulate_post("/api/me/totp", json={"password": PASSWORD}, headers=headers)
    seed = begun.json["secret"]
    assert before.simulate_post("/api/me/totp/confirm", json={"code": totp_now(clock, seed)},
                                headers=headers).status_code == 200
    clock.advance(seconds=30)
    challenge = login(client, glass.email).json["challenge"]
    done = client.simulate_post("/api/auth/login/second-factor",
                                json={"challenge": challenge, "method": "totp",
                                      "code": totp_now(clock, seed)})
    assert done.status_code == 200, done.text
    session = cookie_of(done)
    assert client.simulate_get("/api/users", headers=session).status_code == 200  # a superadmin session
    alert = AuditEvent.select().where(AuditEvent.action == "auth.break_glass_login").order_by(
        AuditEvent.seq.desc()).first()
    assert '"severity":"critical"' in alert.event_json and '"sso_only":true' in alert.event_json
    token = client.simulate_post("/api/tokens", json={"name": "glass"}, headers=session)
    assert token.status_code == 403 and "FF_SSO_ONLY" in token.json["description"]
