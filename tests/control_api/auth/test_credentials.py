"""Sessions and API tokens against credential changes and sealed mode: a change cuts
logins and mints already in progress (the check and the insert cannot be split by it),
a login challenge lives from its creation, and sealed mode ends password-only sessions
at the grace deadline like it ends tokens."""

from __future__ import annotations

import sqlite3
import threading
import time
from urllib.parse import urlsplit

import falcon.testing
import psycopg2
import pytest

from control_api.app import create_app
from control_api.auth.passwords import PasswordHasher
from control_api.auth.token_issuer import TokenIssuer
from control_api.models import ApiToken, LoginChallenge, Session, User
from control_api.wiring import build_credentials, build_deps, build_users
from tests.conftest import ACTOR, PASSWORD
from tests.control_api.auth.test_second_factor import cookie_of, enrol, login, make_client, now_code, second
from tests.control_api.auth.test_token_issuer import SEALED, bearer, mint, totp_session
from tests.peers.smtp import SmtpServer

NEW_PASSWORD = "a brand new passphrase 42"


def change_password(client, headers):
    return client.simulate_post("/api/me/password", json={"current_password": PASSWORD,
                                                          "new_password": NEW_PASSWORD}, headers=headers)


# -- a change ends logins in progress ------------------------------------------------------------


def test_a_password_change_ends_a_login_waiting_for_its_second_factor(client, clock, admin):
    seed, _ = enrol(client, clock, cookie_of(login(client)))
    other = totp_session(client, clock, seed)
    pending = login(client).json["challenge"]  # the old password, the code still to come
    assert change_password(client, other).status_code == 204
    clock.advance(seconds=30)
    late = second(client, pending, "totp", now_code(clock, seed))
    assert late.status_code == 401 and "log in again" in late.json["description"]
    assert Session.select().where(Session.revoked_at.is_null()).count() == 0
    # The new password, with the same factor, gets in.
    fresh = login(client, password=NEW_PASSWORD).json["challenge"]
    clock.advance(seconds=30)
    assert second(client, fresh, "totp", now_code(clock, seed)).status_code == 200


def test_a_credential_change_revokes_the_accounts_pending_challenges(deps, client, clock, admin):
    enrol(client, clock, cookie_of(login(client)))
    for _ in range(3):
        assert login(client).json["second_factor_required"]
    pending = LoginChallenge.select().where(LoginChallenge.used_at.is_null())
    assert pending.count() == 3
    build_credentials(deps).end_all_access(admin, ACTOR, "password changed")
    assert pending.count() == 0


class RacingHasher(PasswordHasher):
    """Runs `during` once, right after a password check: a change that commits while a
    login is between its check and its insert."""

    def __init__(self) -> None:
        super().__init__(cost=4)
        self.during = None

    def verify(self, password, stored):
        ok = super().verify(password, stored)
        if self.during is not None:
            during, self.during = self.during, None
            during()
        return ok


@pytest.mark.parametrize("change", ["password", "disable"])
def test_a_change_during_the_password_check_refuses_the_session(settings, db, clock, admin, change):
    hasher = RacingHasher()
    deps = build_deps(settings, db, clock=clock, hasher=hasher)
    client = falcon.testing.TestClient(create_app(deps))
    credentials = build_credentials(deps)
    if change == "password":
        hasher.during = lambda: credentials.end_all_access(admin, ACTOR, "password changed")
    else:
        hasher.during = lambda: build_users(deps).disable(admin, ACTOR, credentials)
    refused = login(client)
    assert refused.status_code == 401, refused.text
    assert "weco_session" not in refused.cookies
    assert Session.select().count() == 0


@pytest.mark.parametrize("change", ["password", "logout", "disable"])
def test_a_mint_rechecks_the_session_and_the_account_in_its_transaction(client, deps, monkeypatch, admin,
                                                                          change):
    headers = cookie_of(login(client))
    credentials = build_credentials(deps)
    session = Session.get()
    checked = TokenIssuer.check_may_mint

    def check_then_change(issuer, principal):
        checked(issuer, principal)  # the check passes; then, before the insert, the change commits
        if change == "password":
            credentials.end_all_access(admin, ACTOR, "password changed")
        elif change == "logout":
            credentials.end_session(session.id, ACTOR)
        else:
            build_users(deps).disable(admin, ACTOR, credentials)

    monkeypatch.setattr(TokenIssuer, "check_may_mint", check_then_change)
    refused = mint(client, headers)
    assert refused.status_code == 401, refused.text
    assert ApiToken.select().count() == 0


def _holding_an_epoch_bump(database_url: str, user_id: int):
    """Another connection, in a transaction that has bumped the user's credential epoch (the
    first statement of end_all_access) and not committed."""
    if database_url.startswith("sqlite"):
        conn = sqlite3.connect(urlsplit(database_url).path, isolation_level=None, timeout=10)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE users SET credential_epoch = credential_epoch + 1 WHERE id = ?", (user_id,))
    else:
        conn = psycopg2.connect(database_url)
        conn.cursor().execute("UPDATE users SET credential_epoch = credential_epoch + 1 WHERE id = %s",
                              (user_id,))
    return conn


@pytest.mark.parametrize("issue", ["session", "token"])
def test_an_insert_waits_for_a_change_in_flight_and_is_then_refused(database_url, deps, admin, issue):
    from control_api.auth.credentials import AccessChanged

    credentials = build_credentials(deps)
    _, session = credentials.start_session(admin, ACTOR)
    epoch = User.get_by_id(admin.id).credential_epoch
    outcome: dict = {}

    def issue_it():
        try:
            if issue == "session":
                outcome["made"] = credentials.start_session(admin, ACTOR, epoch=epoch)
            else:
                outcome["made"] = credentials.create_token(admin, "ci", None, ACTOR, session_id=session.id)
        except Exception as exc:  # the test reports what it was
            outcome["error"] = exc
        finally:
            deps.db.close()

    other = _holding_an_epoch_bump(database_url, admin.id)
    worker = threading.Thread(target=issue_it)
    try:
        worker.start()
        time.sleep(0.5)
        assert worker.is_alive(), f"the insert did not wait for the change in flight: {outcome}"
    finally:
        other.commit()
        other.close()
        worker.join(15)
    assert isinstance(outcome.get("error"), AccessChanged), outcome
    assert not ApiToken.select().exists()
    assert Session.select().count() == 1


def test_a_session_from_before_a_change_stays_dead_even_if_its_row_is_revived(deps, client, admin):
    headers = cookie_of(login(client))
    build_credentials(deps).end_all_access(admin, ACTOR, "password changed")
    Session.update(revoked_at=None).execute()
    assert client.simulate_get("/api/me", headers=headers).status_code == 401


# -- a challenge's lifetime runs from its creation ----------------------------------------------


@pytest.fixture
def smtp():
    server = SmtpServer().start()
    yield server
    server.stop()


def test_resending_email_codes_does_not_keep_a_challenge_alive(env, db, clock, fast_hasher, admin, smtp):
    client = make_client(env, db, clock, fast_hasher, FF_SMTP_URL=smtp.url)
    assert client.simulate_post("/api/me/email-codes", json={"password": PASSWORD},
                                headers=cookie_of(login(client))).status_code == 204
    challenge = login(client).json["challenge"]

    def send():
        return client.simulate_post("/api/auth/login/email-code", json={"challenge": challenge})

    for _ in range(9):  # a new code every minute, for nine minutes
        assert send().status_code == 202
        clock.advance(seconds=61)
    assert send().status_code == 202  # 9:09 after the challenge was made: the last code
    clock.advance(seconds=52)  # 10:01 after
    late = second(client, challenge, "email_code", smtp.inbox.last_code())
    assert late.status_code == 401 and "log in again" in late.json["description"]
    assert send().status_code == 401


# -- sealed mode ends password-only sessions at the deadline --------------------------------------


def test_sealed_mode_ends_a_password_only_session_at_the_grace_deadline(
        env, db, clock, fast_hasher, admin, superadmin):
    client = make_client(env, db, clock, fast_hasher, **SEALED)
    assert login(client).status_code == 200  # sealed mode is first seen now: 7 days of grace
    seed, _ = enrol(client, clock, cookie_of(login(client, "root@example.test")))
    clock.advance(days=7, seconds=-60)
    late = login(client)
    assert late.status_code == 200 and late.json["totp_required_by"] == "2026-12-06T12:00:00Z"
    password_only = cookie_of(late)
    with_totp = totp_session(client, clock, seed, "root@example.test")
    assert client.simulate_get("/api/me", headers=password_only).status_code == 200
    clock.advance(seconds=31)  # the deadline has passed
    assert client.simulate_get("/api/me", headers=password_only).status_code == 401
    assert client.simulate_get("/api/me", headers=with_totp).status_code == 200
    assert client.simulate_get("/api/tokens", headers=password_only).status_code == 401
    token = mint(client, with_totp).json["value"]
    assert client.simulate_get("/api/me", headers=bearer(token)).status_code == 200
