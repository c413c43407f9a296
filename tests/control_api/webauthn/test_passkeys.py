"""Passkeys through the real API, with a software authenticator (tests/peers/authenticator.py)
as the peer: registration, several credentials (list, rename, delete with step-up), use as
a second factor, for step-up and as passwordless login, and the refusals: no user
verification, another origin or RP id, a replayed challenge, a cloned authenticator's
counter, a backup-flag change, another user's credential."""

from __future__ import annotations

import falcon.testing
import pytest

from control_api.app import create_app
from control_api.models import AuditEvent
from control_api.settings import load_settings
from control_api.webauthn.models import WebauthnChallenge, WebauthnCredential
from control_api.wiring import build_deps
from tests.conftest import PASSWORD
from tests.peers.authenticator import SoftAuthenticator

RP_ID = "weco.test"
ORIGIN = "https://admin.weco.test"
WEBAUTHN = {"FF_WEBAUTHN_RP_ID": RP_ID, "FF_WEBAUTHN_ORIGINS": f"{ORIGIN},https://weco.test:8443"}


def make_client(env, db, clock, fast_hasher, **extra):
    settings = load_settings({**env, **WEBAUTHN, **extra})
    return falcon.testing.TestClient(create_app(build_deps(settings, db, clock=clock, hasher=fast_hasher)))


@pytest.fixture
def client(env, db, clock, fast_hasher):
    return make_client(env, db, clock, fast_hasher)


def login(client, email="admin@example.test", password=PASSWORD):
    return client.simulate_post("/api/auth/login", json={"email": email, "password": password})


def cookie_of(result) -> dict:
    assert result.status_code == 200, result.text
    return {"Cookie": f"weco_session={result.cookies['weco_session'].value}",
            "X-CSRF-Token": result.json["csrf_token"]}


def actions() -> list[str]:
    return [row.action for row in AuditEvent.select().order_by(AuditEvent.seq)]


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.select().where(AuditEvent.action == action).order_by(AuditEvent.seq))


def register(client, headers, key: SoftAuthenticator, name="key", **kwargs):
    options = client.simulate_post("/api/me/webauthn/registration/options", json={"password": PASSWORD},
                                   headers=headers)
    assert options.status_code == 200, options.text
    made = key.create(options.json["publicKey"], **kwargs)
    return client.simulate_post("/api/me/webauthn/registration", json={"credential": made, "name": name},
                                headers=headers)


def passkey_login(client, key: SoftAuthenticator, **kwargs):
    options = client.simulate_post("/api/auth/passkey/options")
    assert options.status_code == 200, options.text
    return client.simulate_post("/api/auth/passkey", json={"credential": key.get(options.json["publicKey"],
                                                                                 **kwargs)})


def spend(client, path, body, headers=None):
    return client.simulate_post(path, json=body, headers=headers or {})


def test_several_passkeys_registered_listed_renamed_and_used_without_a_password(client, clock, admin, deps):
    key, other = SoftAuthenticator(ORIGIN), SoftAuthenticator("https://weco.test:8443", backup_eligible=True,
                                                               backed_up=True, counter_step=0)
    headers = cookie_of(login(client))
    first = register(client, headers, key, "yubikey")
    assert first.status_code == 201, first.text
    assert first.json["credential"]["backup_eligible"] is False
    # The first passkey of an account without a second factor ends its sessions and tokens.
    assert client.simulate_get("/api/me", headers=headers).status_code == 401
    assert {"auth.webauthn_registered", "auth.sessions_ended", "auth.tokens_revoked"} <= set(actions())
    done = passkey_login(client, key)
    assert done.status_code == 200, done.text
    assert done.json["user"]["email"] == "admin@example.test"
    headers = cookie_of(done)
    # A fresh session may add one without the password; a second one does not end sessions.
    options = client.simulate_post("/api/me/webauthn/registration/options", json={}, headers=headers)
    assert options.status_code == 200, options.text
    publickey = options.json["publicKey"]
    assert publickey["authenticatorSelection"]["userVerification"] == "required"
    assert publickey["rp"] == {"id": RP_ID, "name": "WECO"}
    assert [c["id"] for c in publickey["excludeCredentials"]] == [first.json["credential"] and
                                                                  next(iter(key.credentials)) and
                                                                  WebauthnCredential.get().credential_id]
    assert publickey["user"]["name"] == "admin@example.test" and "admin" not in publickey["user"]["id"]
    made = other.create(publickey, fmt="none")
    second = spend(client, "/api/me/webauthn/registration", {"credential": made, "name": "phone"}, headers)
    assert second.status_code == 201, second.text
    assert second.json["credential"]["backup_eligible"] is True
    assert client.simulate_get("/api/me", headers=headers).status_code == 200
    listed = client.simulate_get("/api/me/webauthn/credentials", headers=headers).json["credentials"]
    assert [(c["name"], c["backed_up"], c["transports"]) for c in listed] == [
        ("yubikey", False, ["usb"]), ("phone", True, ["usb"])]
    renamed = client.simulate_patch(f"/api/me/webauthn/credentials/{listed[1]['id']}", json={"name": "pixel"},
                                    headers=headers)
    assert renamed.status_code == 200 and renamed.json["credential"]["name"] == "pixel"
    taken = client.simulate_patch(f"/api/me/webauthn/credentials/{listed[1]['id']}", json={"name": "yubikey"},
                                  headers=headers)
    assert taken.status_code == 409
    bad = client.simulate_patch(f"/api/me/webauthn/credentials/{listed[1]['id']}", json={"name": "a\nb"},
                                headers=headers)
    assert bad.status_code == 400
    names = [c.name for c in WebauthnCredential.select().order_by(WebauthnCredential.id)]
    assert names == ["yubikey", "pixel"]
    # A synced passkey without a counter (always 0) logs in, again and again.
    for _ in range(2):
        assert passkey_login(client, other).status_code == 200
    # Past the re-authentication window a session needs the password again.
    clock.advance(minutes=5)
    stale = client.simulate_post("/api/me/webauthn/registration/options", json={}, headers=headers)
    assert stale.status_code == 403 and stale.json["title"] == "Re-authentication required"
    wrong = client.simulate_post("/api/me/webauthn/registration/options", json={"password": "not it at all"},
                                 headers=headers)
    assert wrong.status_code == 403 and events("auth.reauth_failed")
    # An API token cannot add a login credential.
    from control_api.wiring import build_credentials
    from tests.conftest import ACTOR

    token = build_credentials(deps).create_token(admin, "bot", None, ACTOR)[0]
    by_token = client.simulate_post("/api/me/webauthn/registration/options", json={"password": PASSWORD},
                                    headers={"Authorization": f"Bearer {token}"})
    assert by_token.status_code == 403
    logins = events("auth.login")
    assert '"method":"passkey"' in logins[-1].event_json


def test_refused_without_user_verification_from_another_origin_or_rp_id_and_replayed(client, clock, admin):
    key = SoftAuthenticator(ORIGIN)
    headers = cookie_of(login(client))
    for kwargs, reason in (({"uv": False}, "User verification is required"),
                           ({"origin": "https://evil.test"}, "Unexpected client data origin"),
                           ({"origin": "https://admin.weco.test:444"}, "Unexpected client data origin"),
                           ({"rp_id": "evil.test"}, "Unexpected RP ID hash")):
        refused = register(client, headers, key, **kwargs)
        assert refused.status_code == 400 and reason in refused.json["description"], (kwargs, refused.text)
    assert len(events("auth.webauthn_registration_refused")) == 4
    assert WebauthnCredential.select().count() == 0
    # A registration response sent again finds its challenge used.
    key = SoftAuthenticator(ORIGIN)  # holding only the one the server keeps
    options = spend(client, "/api/me/webauthn/registration/options", {"password": PASSWORD}, headers)
    made = key.create(options.json["publicKey"])
    assert spend(client, "/api/me/webauthn/registration", {"credential": made, "name": "k"},
                 headers).status_code == 201
    headers = cookie_of(passkey_login(client, key))
    again = spend(client, "/api/me/webauthn/registration", {"credential": made, "name": "k2"}, headers)
    assert again.status_code == 400 and "challenge" in again.json["description"]
    failures = len(events("auth.login_failed"))
    for kwargs in ({"uv": False}, {"origin": "https://evil.test"}, {"rp_id": "evil.test"}):
        refused = passkey_login(client, key, **kwargs)
        assert refused.status_code == 401, (kwargs, refused.text)
        assert refused.json == {"title": "Login failed", "description": "the passkey was not accepted"}
    reasons = [e.event_json for e in events("auth.login_failed")[failures:]]
    assert ["User verification" in reasons[0], "origin" in reasons[1], "RP ID" in reasons[2]] == [True] * 3
    # Replayed: the same signed assertion twice; and one answered after its challenge expired.
    options = client.simulate_post("/api/auth/passkey/options").json["publicKey"]
    assertion = key.get(options)
    assert spend(client, "/api/auth/passkey", {"credential": assertion}).status_code == 200
    assert spend(client, "/api/auth/passkey", {"credential": assertion}).status_code == 401
    late = key.get(client.simulate_post("/api/auth/passkey/options").json["publicKey"])
    clock.advance(minutes=5)
    assert spend(client, "/api/auth/passkey", {"credential": late}).status_code == 401
    assert "challenge is unknown, used or expired" in events("auth.login_failed")[-1].event_json
    # Garbage is a 400 that checks nothing.
    for body in ({"credential": "x"}, {"credential": {"response": {}}},
                 {"credential": {"rawId": "AA", "id": "AA", "response": {"clientDataJSON": "bm90IGpzb24"}}}):
        assert spend(client, "/api/auth/passkey", body).status_code == 400, body
    # Challenges are kept as digests only, and spent ones stay spent.
    assert all(len(c.challenge_hash) == 64 for c in WebauthnChallenge.select())


def test_a_cloned_authenticator_is_refused_and_alerted(client, admin):
    key = SoftAuthenticator(ORIGIN)
    assert register(client, cookie_of(login(client)), key).status_code == 201
    clone = key.clone()
    assert passkey_login(client, key).status_code == 200  # counter 2
    stolen = passkey_login(client, clone)  # the clone also says 2
    assert stolen.status_code == 401
    alert = events("auth.webauthn_sign_count_regression")
    assert len(alert) == 1 and '"severity":"critical"' in alert[0].event_json
    assert '"stored":2' in alert[0].event_json and '"asserted":2' in alert[0].event_json
    assert WebauthnCredential.get().sign_count == 2
    assert passkey_login(client, clone, sign_count=1).status_code == 401
    assert passkey_login(client, key).status_code == 200  # the real one goes on (3)
    assert WebauthnCredential.get().sign_count == 3


def test_backup_flags_must_match_the_registered_credential(client, admin):
    bound = SoftAuthenticator(ORIGIN)
    synced = SoftAuthenticator(ORIGIN, backup_eligible=True, backed_up=False)
    headers = cookie_of(login(client))
    assert register(client, headers, bound, "bound").status_code == 201
    headers = cookie_of(passkey_login(client, bound))
    assert register(client, headers, synced, "synced").status_code == 201
    # Registered device-bound, now claiming to be synced (BE and BS set): refused.
    refused = passkey_login(client, bound, backup_eligible=True, backed_up=True)
    assert refused.status_code == 401
    assert passkey_login(client, bound, backup_eligible=True).status_code == 401
    flagged = events("auth.webauthn_flags_refused")
    assert len(flagged) == 2 and '"severity":"critical"' in flagged[0].event_json
    assert "device-bound" in flagged[0].event_json
    # A backup-eligible one may change its backed-up state, never its eligibility.
    assert passkey_login(client, synced, backed_up=True).status_code == 200
    assert WebauthnCredential.get(WebauthnCredential.name == "synced").backed_up is True
    assert passkey_login(client, synced, backup_eligible=False, backed_up=False).status_code == 401
    assert len(events("auth.webauthn_flags_refused")) == 3
    assert passkey_login(client, bound).status_code == 200


def test_second_factor_step_up_and_removal_with_another_users_credential_refused(client, admin, superadmin):
    mine, theirs = SoftAuthenticator(ORIGIN), SoftAuthenticator(ORIGIN)
    assert register(client, cookie_of(login(client)), mine, "mine").status_code == 201
    root = cookie_of(login(client, "root@example.test"))
    assert register(client, root, theirs, "theirs").status_code == 201
    their_id = WebauthnCredential.get(WebauthnCredential.name == "theirs").id
    # The password step now asks for the passkey.
    first = login(client)
    assert first.json["second_factor_required"] is True and first.json["methods"] == ["webauthn"]
    challenge = first.json["challenge"]
    options = spend(client, "/api/auth/login/webauthn/options", {"challenge": challenge}).json["publicKey"]
    assert [c["id"] for c in options["allowCredentials"]] == [WebauthnCredential.get(
        WebauthnCredential.name == "mine").credential_id]
    # Not with a code, not with another user's passkey.
    assert spend(client, "/api/auth/login/second-factor",
                 {"challenge": challenge, "method": "webauthn", "code": "123456"}).status_code == 401
    cross = theirs.get({**options, "allowCredentials": []})
    refused = spend(client, "/api/auth/login/webauthn", {"challenge": challenge, "credential": cross})
    assert refused.status_code == 401 and "not registered to this account" in refused.json["description"]
    options = spend(client, "/api/auth/login/webauthn/options", {"challenge": challenge}).json["publicKey"]
    done = spend(client, "/api/auth/login/webauthn",
                 {"challenge": challenge, "credential": mine.get(options)})
    assert done.status_code == 200, done.text
    headers = cookie_of(done)
    assert spend(client, "/api/auth/login/webauthn/options", {"challenge": challenge}).status_code == 401
    # Passwordless with the owner's credential but another user's handle: refused.
    options = client.simulate_post("/api/auth/passkey/options").json["publicKey"]
    forged = mine.get(options)
    forged["response"]["userHandle"] = theirs.get(client.simulate_post(
        "/api/auth/passkey/options").json["publicKey"])["response"]["userHandle"]
    assert spend(client, "/api/auth/passkey", {"credential": forged}).status_code == 401
    # Removing a passkey always needs a step-up token, minted here from a passkey.
    listed = client.simulate_get("/api/me/webauthn/credentials", headers=headers).json["credentials"]
    path = f"/api/me/webauthn/credentials/{listed[0]['id']}"
    refused = client.simulate_delete(path, headers=headers)
    assert refused.status_code == 403 and refused.json["title"] == "Step-up required"
    options = spend(client, "/api/auth/step-up/webauthn/options", {"scope": "2fa.remove"}, headers).json
    with_theirs = spend(client, "/api/auth/step-up/webauthn",
                        {"credential": theirs.get({**options["publicKey"], "allowCredentials": []})}, headers)
    assert with_theirs.status_code == 403 and events("auth.step_up_failed")
    options = spend(client, "/api/auth/step-up/webauthn/options", {"scope": "2fa.remove"}, headers).json
    stepped = spend(client, "/api/auth/step-up/webauthn", {"credential": mine.get(options["publicKey"])},
                    headers)
    assert stepped.status_code == 201 and stepped.json["scope"] == "2fa.remove"
    token = {**headers, "X-Step-Up-Token": stepped.json["step_up_token"]}
    theirs_path = f"/api/me/webauthn/credentials/{their_id}"
    assert client.simulate_delete(theirs_path, headers=token).status_code == 404
    assert client.simulate_delete(path, headers=token).status_code == 204
    assert client.simulate_get("/api/me", headers=headers).status_code == 401  # every session ended
    assert "auth.webauthn_removed" in actions()
    assert WebauthnCredential.select().where(WebauthnCredential.name == "mine").count() == 0
    assert login(client).json.get("second_factor_required") is None  # back to the password alone


def test_sealed_mode_counts_a_passkey_like_totp(env, db, clock, fast_hasher, admin):
    client = make_client(env, db, clock, fast_hasher, FF_TOTP_ONLY="1", FF_SEALED_MODE="1",
                         FF_SEALED_MODE_GRACE_DAYS="1")
    key = SoftAuthenticator(ORIGIN)
    assert register(client, cookie_of(login(client)), key).status_code == 201
    clock.advance(days=2)
    assert login(client).json["methods"] == ["webauthn"]  # no 403: the passkey is its strong factor
    headers = cookie_of(passkey_login(client, key))
    assert client.simulate_get("/api/me", headers=headers).status_code == 200
    minted = client.simulate_post("/api/tokens", json={"name": "ci"}, headers=headers)
    assert minted.status_code == 201, minted.text
    bearer = {"Authorization": f"Bearer {minted.json['value']}"}
    assert client.simulate_get("/api/me", headers=bearer).status_code == 200
    # The last strong factor cannot be removed under sealed mode.
    options = spend(client, "/api/auth/step-up/webauthn/options", {"scope": "2fa.remove"}, headers).json
    stepped = spend(client, "/api/auth/step-up/webauthn", {"credential": key.get(options["publicKey"])},
                    headers)
    only = WebauthnCredential.get().id
    kept = client.simulate_delete(f"/api/me/webauthn/credentials/{only}",
                                  headers={**headers, "X-Step-Up-Token": stepped.json["step_up_token"]})
    assert kept.status_code == 409


def test_off_without_settings(env, db, clock, fast_hasher, admin):
    settings = load_settings(env)
    client = falcon.testing.TestClient(create_app(build_deps(settings, db, clock=clock, hasher=fast_hasher)))
    off = client.simulate_post("/api/auth/passkey/options")
    assert off.status_code == 409 and off.json["title"] == "WebAuthn not configured"


@pytest.mark.parametrize("extra,message", [
    ({"FF_WEBAUTHN_RP_ID": "weco.test"}, "go together"),
    ({"FF_WEBAUTHN_ORIGINS": "https://weco.test"}, "go together"),
    ({"FF_WEBAUTHN_RP_ID": "WECO.test", "FF_WEBAUTHN_ORIGINS": "https://weco.test"}, "FF_WEBAUTHN_RP_ID="),
    ({"FF_WEBAUTHN_RP_ID": "10.0.0.1", "FF_WEBAUTHN_ORIGINS": "https://10.0.0.1"}, "FF_WEBAUTHN_RP_ID="),
    ({"FF_WEBAUTHN_RP_ID": "weco.test", "FF_WEBAUTHN_ORIGINS": "https://evil.test"}, "is not on"),
    ({"FF_WEBAUTHN_RP_ID": "weco.test", "FF_WEBAUTHN_ORIGINS": "https://notweco.test"}, "is not on"),
    ({"FF_WEBAUTHN_RP_ID": "weco.test", "FF_WEBAUTHN_ORIGINS": "http://weco.test"}, "FF_WEBAUTHN_ORIGINS="),
    ({"FF_WEBAUTHN_RP_ID": "weco.test", "FF_WEBAUTHN_ORIGINS": "https://weco.test/x"}, "_ORIGINS="),
    ({"FF_WEBAUTHN_RP_ID": "weco.test", "FF_WEBAUTHN_ORIGINS": "https://u@weco.test"}, "_ORIGINS="),
    ({"FF_SSO_ONLY": "yes"}, "FF_SSO_ONLY="),
])
def test_settings_refuse_what_webauthn_cannot_use(extra, message):
    from control_api.settings import SettingsError

    with pytest.raises(SettingsError, match=message):
        load_settings({"FF_ENV": "dev", **extra})
    good = load_settings({"FF_ENV": "dev", "FF_WEBAUTHN_RP_ID": "weco.test",
                          "FF_WEBAUTHN_ORIGINS": "https://admin.weco.test:443, http://localhost:8080"[:0]
                          + "https://admin.weco.test:443,https://weco.test:8443"})
    assert good.webauthn_origins == ("https://admin.weco.test", "https://weco.test:8443")
