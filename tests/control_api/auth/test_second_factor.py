"""TOTP (RFC 6238), recovery codes, email codes over real SMTP, sealed mode, step-up,
session management and break-glass."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import subprocess
import sys

import falcon.testing
import pytest

from control_api.app import create_app
from control_api.auth.totp import code_at
from control_api.models import AuditEvent
from control_api.settings import load_settings
from control_api.wiring import build_deps
from tests.conftest import PASSWORD
from tests.peers.smtp import SmtpServer

EPOCH = dt.datetime(1970, 1, 1)

# RFC 6238 appendix B: (time, SHA-1, SHA-256, SHA-512), 8 digits.
RFC6238 = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]


@pytest.mark.parametrize("when,sha1,sha256,sha512", RFC6238)
def test_rfc6238_appendix_b(when, sha1, sha256, sha512):
    import base64

    step = when // 30
    seeds = {hashlib.sha1: b"12345678901234567890",
             hashlib.sha256: b"12345678901234567890123456789012",
             hashlib.sha512: b"1234567890123456789012345678901234567890123456789012345678901234"}
    for digest, expected in ((hashlib.sha1, sha1), (hashlib.sha256, sha256), (hashlib.sha512, sha512)):
        seed = base64.b32encode(seeds[digest]).decode()
        assert code_at(seed, step, digits=8, digest=digest) == expected


def now_code(clock, seed, offset=0):
    return code_at(seed, int((clock.now() - EPOCH).total_seconds() // 30) + offset)


def login(client, email="admin@example.test", password=PASSWORD):
    return client.simulate_post("/api/auth/login", json={"email": email, "password": password})


def cookie_of(result) -> dict:
    return {"Cookie": f"weco_session={result.cookies['weco_session'].value}",
            "X-CSRF-Token": result.json["csrf_token"]}


def enrol(client, clock, headers) -> tuple[str, list[str]]:
    begun = client.simulate_post("/api/me/totp", json={"password": PASSWORD}, headers=headers)
    assert begun.status_code == 201, begun.text
    seed = begun.json["secret"]
    assert begun.json["otpauth_uri"].startswith("otpauth://totp/WECO:")
    done = client.simulate_post("/api/me/totp/confirm", json={"code": now_code(clock, seed)}, headers=headers)
    assert done.status_code == 200, done.text
    return seed, done.json["recovery_codes"]


def actions() -> list[str]:
    return [row.action for row in AuditEvent.select().order_by(AuditEvent.seq)]


@pytest.fixture
def enrolled(client, clock, admin):
    headers = cookie_of(login(client))
    wrong = client.simulate_post("/api/me/totp", json={"password": "not my password"}, headers=headers)
    assert wrong.status_code == 403
    seed, codes = enrol(client, clock, headers)
    # Enrolling ended every session, this one too.
    assert client.simulate_get("/api/me", headers=headers).status_code == 401
    # Past the throttle window of the wrong password above, which counted as a failure.
    clock.advance(minutes=15)
    return seed, codes


def second(client, challenge, method, code):
    return client.simulate_post("/api/auth/login/second-factor",
                                json={"challenge": challenge, "method": method, "code": code})


def test_totp_login_and_replay(client, clock, enrolled):
    seed, codes = enrolled
    assert len(codes) == 10 and len(set(codes)) == 10
    first = login(client)
    assert first.json["second_factor_required"] and first.json["methods"] == ["totp", "recovery_code"]
    assert "weco_session" not in first.cookies
    assert second(client, first.json["challenge"], "totp", "000000").status_code == 401
    code = now_code(clock, seed)
    done = second(client, first.json["challenge"], "totp", code)
    assert done.status_code == 200 and "weco_session" in done.cookies
    # The same code (same time step) is refused on a new challenge: accepted once only.
    again = login(client)
    assert second(client, again.json["challenge"], "totp", code).status_code == 401
    clock.advance(seconds=30)
    assert second(client, again.json["challenge"], "totp", now_code(clock, seed)).status_code == 200
    assert {"auth.2fa_enrolled", "auth.password_ok", "auth.second_factor_failed"} <= set(actions())


def test_previous_and_next_steps_are_tolerated_but_not_further(client, clock, enrolled):
    seed, _ = enrolled
    clock.advance(seconds=30)  # the step before now was not used by the enrolment
    for offset, status in ((-2, 401), (2, 401), (-1, 200)):
        challenge = login(client).json["challenge"]
        assert second(client, challenge, "totp", now_code(clock, seed, offset)).status_code == status


def test_wrong_codes_count_towards_the_account_lockout(client, clock, enrolled):
    seed, _ = enrolled
    challenge = login(client).json["challenge"]
    for _ in range(4):
        assert second(client, challenge, "totp", "000000").status_code == 401
    assert "auth.lockout" not in actions()
    challenge = login(client).json["challenge"]
    assert second(client, challenge, "totp", "000000").status_code == 401  # the fifth wrong code
    assert "auth.lockout" in actions()
    locked = login(client)
    assert locked.status_code == 429
    clock.advance(minutes=15, seconds=1)
    challenge = login(client).json["challenge"]
    assert second(client, challenge, "totp", now_code(clock, seed)).status_code == 200


def test_recovery_codes_work_once(client, enrolled):
    _, codes = enrolled
    challenge = login(client).json["challenge"]
    assert second(client, challenge, "recovery_code", codes[3]).status_code == 200
    challenge = login(client).json["challenge"]
    assert second(client, challenge, "recovery_code", codes[3]).status_code == 401
    assert "auth.recovery_code_used" in actions()


def test_challenges_expire_and_allow_five_tries(client, clock, enrolled):
    seed, _ = enrolled
    challenge = login(client).json["challenge"]
    clock.advance(minutes=5)
    assert second(client, challenge, "totp", now_code(clock, seed)).status_code == 401
    challenge = login(client).json["challenge"]
    for _ in range(5):
        second(client, challenge, "totp", "123456")
    refused = second(client, challenge, "totp", now_code(clock, seed))
    assert refused.status_code == 401 and "log in again" in refused.json["description"]


def test_removing_totp_needs_password_and_code_and_ends_sessions(client, clock, enrolled):
    seed, _ = enrolled
    done = second(client, login(client).json["challenge"], "totp", now_code(clock, seed))
    headers = cookie_of(done)
    clock.advance(seconds=30)
    bad = client.simulate_delete("/api/me/totp", json={"password": PASSWORD, "code": "111111"},
                                 headers=headers)
    assert bad.status_code == 403
    ok = client.simulate_delete("/api/me/totp", json={"password": PASSWORD, "code": now_code(clock, seed)},
                                headers=headers)
    assert ok.status_code == 204
    assert client.simulate_get("/api/me", headers=headers).status_code == 401
    assert "weco_session" in login(client).cookies  # password alone again
    assert "auth.2fa_removed" in actions()


# -- email codes over real SMTP ---------------------------------------------------------------


@pytest.fixture
def smtp():
    server = SmtpServer().start()
    yield server
    server.stop()


def make_client(env, db, clock, fast_hasher, **extra):
    settings = load_settings({**env, **extra})
    return falcon.testing.TestClient(create_app(build_deps(settings, db, clock=clock, hasher=fast_hasher)))


def test_email_codes_delivered_by_smtp_expire_and_are_single_use(env, db, clock, fast_hasher, admin, smtp):
    client = make_client(env, db, clock, fast_hasher, FF_SMTP_URL=smtp.url)
    headers = cookie_of(login(client))
    assert client.simulate_post("/api/me/email-codes", json={"password": PASSWORD},
                                headers=headers).status_code == 204
    first = login(client).json
    assert first["methods"] == ["email_code"]
    sent = client.simulate_post("/api/auth/login/email-code", json={"challenge": first["challenge"]})
    assert sent.status_code == 202
    assert smtp.inbox.messages[-1]["To"] == "admin@example.test"
    code = smtp.inbox.last_code()
    from control_api.models import LoginChallenge

    stored = LoginChallenge.get(LoginChallenge.email_code_hash.is_null(False)).email_code_hash
    assert code not in stored and hashlib.sha256(code.encode()).hexdigest() != stored
    resent = client.simulate_post("/api/auth/login/email-code", json={"challenge": first["challenge"]})
    assert resent.status_code == 401 and "less than 60 seconds ago" in resent.json["description"]
    assert len(smtp.inbox.messages) == 1
    assert second(client, first["challenge"], "email_code", code).status_code == 200
    # Reused: the challenge is spent, and a new challenge has no code until one is sent.
    again = login(client).json
    assert second(client, again["challenge"], "email_code", code).status_code == 401
    # Ten minutes of life: 9:59 is in time, 10:01 is not.
    for wait, status in ((599, 200), (601, 401)):
        challenge = login(client).json["challenge"]
        client.simulate_post("/api/auth/login/email-code", json={"challenge": challenge})
        clock.advance(seconds=wait)
        assert second(client, challenge, "email_code", smtp.inbox.last_code()).status_code == status
    assert "auth.email_code_sent" in actions()


def test_totp_only_refuses_email_enrolment(env, db, clock, fast_hasher, admin, smtp):
    client = make_client(env, db, clock, fast_hasher, FF_SMTP_URL=smtp.url, FF_TOTP_ONLY="1")
    headers = cookie_of(login(client))
    refused = client.simulate_post("/api/me/email-codes", json={"password": PASSWORD}, headers=headers)
    assert refused.status_code == 409 and "FF_TOTP_ONLY=1" in refused.json["description"]


# -- sealed mode -------------------------------------------------------------------------------


def test_sealed_mode_grace_then_refusal(env, db, clock, fast_hasher, admin, superadmin):
    client = make_client(env, db, clock, fast_hasher, FF_SEALED_MODE="1", FF_TOTP_ONLY="1",
                         FF_SEALED_MODE_GRACE_DAYS="7")
    graced = login(client)
    assert graced.status_code == 200
    assert graced.json["totp_required_by"] == "2026-12-06T12:00:00Z"
    seed, _ = enrol(client, clock, cookie_of(login(client, "root@example.test")))
    clock.advance(days=7)
    refused = login(client)
    assert refused.status_code == 403 and refused.json["title"] == "TOTP required"
    assert "auth.login_refused_sealed" in actions()
    challenge = login(client, "root@example.test").json
    assert challenge["methods"] == ["totp", "recovery_code"]
    assert second(client, challenge["challenge"], "totp", now_code(clock, seed)).status_code == 200


def test_sealed_mode_needs_totp_only():
    from control_api.settings import SettingsError

    with pytest.raises(SettingsError, match="not allowed without FF_TOTP_ONLY=1"):
        load_settings({"FF_SEALED_MODE": "1"})


# -- step-up -----------------------------------------------------------------------------------


def test_step_up_is_scoped_and_expires(env, db, clock, fast_hasher, admin):
    client = make_client(env, db, clock, fast_hasher, FF_REQUIRE_STEP_UP="1")
    seed, _ = enrol(client, clock, cookie_of(login(client)))
    clock.advance(seconds=30)
    done = second(client, login(client).json["challenge"], "totp", now_code(clock, seed))
    headers = cookie_of(done)
    clock.advance(seconds=30)
    minting = client.simulate_post("/api/auth/step-up", json={"scope": "token.create",
                                                              "code": now_code(clock, seed)}, headers=headers)
    created = client.simulate_post("/api/tokens", json={"name": "ci"},
                                   headers={**headers, "X-Step-Up-Token": minting.json["step_up_token"]})
    token = created.json["token"]["id"]
    refused = client.simulate_delete(f"/api/tokens/{token}", headers=headers)
    assert refused.status_code == 403 and refused.json["title"] == "Step-up required"
    clock.advance(seconds=30)
    other = client.simulate_post("/api/auth/step-up", json={"scope": "session.revoke",
                                                            "code": now_code(clock, seed)}, headers=headers)
    assert other.status_code == 201
    wrong_scope = {**headers, "X-Step-Up-Token": other.json["step_up_token"]}
    assert client.simulate_delete(f"/api/tokens/{token}", headers=wrong_scope).status_code == 403
    clock.advance(seconds=30)
    right = client.simulate_post("/api/auth/step-up", json={"scope": "token.revoke",
                                                            "code": now_code(clock, seed)}, headers=headers)
    stepped = {**headers, "X-Step-Up-Token": right.json["step_up_token"]}
    clock.advance(minutes=5, seconds=1)
    assert client.simulate_delete(f"/api/tokens/{token}", headers=stepped).status_code == 403
    clock.advance(seconds=29)
    fresh = client.simulate_post("/api/auth/step-up", json={"scope": "token.revoke",
                                                            "code": now_code(clock, seed)}, headers=headers)
    stepped = {**headers, "X-Step-Up-Token": fresh.json["step_up_token"]}
    assert client.simulate_delete(f"/api/tokens/{token}", headers=stepped).status_code == 204


# -- sessions and password change --------------------------------------------------------------


def test_sessions_listed_and_revoked_and_password_change_ends_all(client, admin, superadmin):
    one, two = cookie_of(login(client)), cookie_of(login(client))
    listed = client.simulate_get("/api/me/sessions", headers=one).json["sessions"]
    assert len(listed) == 2 and sum(s["current"] for s in listed) == 1
    other_id = next(s["id"] for s in listed if not s["current"])
    assert client.simulate_delete(f"/api/me/sessions/{other_id}", headers=one).status_code == 204
    assert client.simulate_get("/api/me", headers=two).status_code == 401
    root = cookie_of(login(client, "root@example.test"))
    mine = client.simulate_get("/api/me/sessions", headers=one).json["sessions"][0]["id"]
    assert client.simulate_delete(f"/api/sessions/{mine}", headers=one).status_code == 403
    assert client.simulate_delete(f"/api/sessions/{mine}", headers=root).status_code == 204
    assert client.simulate_get("/api/me", headers=one).status_code == 401
    three, four = cookie_of(login(client)), cookie_of(login(client))
    weak = client.simulate_post("/api/me/password", json={"current_password": PASSWORD,
                                                          "new_password": "password1234"}, headers=three)
    assert weak.status_code == 400 and "common" in weak.json["description"]
    changed = client.simulate_post("/api/me/password", json={"current_password": PASSWORD,
                                                             "new_password": "a brand new passphrase 42"},
                                   headers=three)
    assert changed.status_code == 204
    assert client.simulate_get("/api/me", headers=three).status_code == 401
    assert client.simulate_get("/api/me", headers=four).status_code == 401
    assert login(client, password="a brand new passphrase 42").status_code == 200
    assert {"auth.session_revoked", "auth.password_changed", "auth.sessions_ended"} <= set(actions())


# -- break-glass -------------------------------------------------------------------------------


def test_break_glass_output_logs_in_and_is_audited(env, client, clock):
    weco = [sys.executable, "-m", "control_api.cli"]
    full = {"PATH": "/usr/bin:/bin", **env}
    result = subprocess.run([*weco, "break-glass", "create"], env=full, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    password = re.search(r"password: +(\S+)", out).group(1)
    seed = re.search(r"TOTP secret: +(\S+)", out).group(1)
    codes = re.search(r"recovery codes: (.+)", out).group(1).split()
    assert len(codes) == 10
    first = login(client, "break-glass@weco.invalid", password)
    done = second(client, first.json["challenge"], "totp", now_code(clock, seed))
    assert done.status_code == 200 and done.json["user"]["role"] == "superadmin"
    glass = AuditEvent.get(AuditEvent.action == "auth.break_glass_login")
    assert '"severity":"critical"' in glass.event_json
    assert AuditEvent.select().where(AuditEvent.action == "user.break_glass_created").count() == 1
    # A recovery code from the envelope works too, once.
    challenge = login(client, "break-glass@weco.invalid", password).json["challenge"]
    assert second(client, challenge, "recovery_code", codes[0]).status_code == 200


def test_seeds_are_stored_encrypted_and_bound_to_their_user(client, clock, enrolled, admin, deps):
    from control_api.crypto import Aad, CryptoError
    from control_api.models import TotpCredential

    seed, _ = enrolled
    stored = TotpCredential.get(TotpCredential.user == admin).seed
    assert stored.startswith("v1.") and seed not in stored
    assert deps.keys.decrypt(stored, aad=Aad("totp_credentials", "seed", admin.id)).decode() == seed
    with pytest.raises(CryptoError):
        deps.keys.decrypt(stored, aad=Aad("totp_credentials", "seed", admin.id + 1))


def test_api_tokens_cannot_step_up(client, deps, admin):
    from control_api.wiring import build_credentials
    from tests.conftest import ACTOR

    value, _ = build_credentials(deps).create_token(admin, "bot", None, ACTOR)
    refused = client.simulate_post("/api/auth/step-up", json={"scope": "token.revoke", "code": "123456"},
                                   headers={"Authorization": f"Bearer {value}"})
    assert refused.status_code == 403 and refused.json["title"] == "Step-up refused"


def test_destructive_routes_declare_their_step_up_scope(app):
    from control_api import authz

    scopes = {f"{method} {template}": getattr(responder, "__weco_scope__", None)
              for template, method, responder in authz.iter_routes(app)}
    assert scopes["DELETE /api/tokens/{token_id:id}"] == "token.revoke"
    assert scopes["DELETE /api/sessions/{session_id:id}"] == "session.revoke"
    assert scopes["DELETE /api/me/totp"] == "2fa.remove"
    assert scopes["DELETE /api/me/email-codes"] == "2fa.remove"
    assert scopes["POST /api/tokens"] == "token.create"
    assert scopes["DELETE /api/sites/{slug}"] == "site.delete"
    assert scopes["DELETE /api/hosts/{host_id:id}"] == "host.delete"
    assert scopes["POST /api/releases/{release_id:id}/apply"] == "release.apply"
    # A scope no step-up token can be minted for would make its route unusable.
    from control_api.auth.stepup import SCOPES

    assert {scope for scope in scopes.values() if scope} <= set(SCOPES)
