"""Every credential check (password at login, second factor, step-up code, current-password
re-check) is throttled and audited the same way (#11 item 4)."""

from __future__ import annotations

import pytest

from control_api.models import AuditEvent
from tests.conftest import PASSWORD
from tests.control_api.auth.test_second_factor import cookie_of, enrol, login, make_client, now_code, second


def count(action: str) -> int:
    return AuditEvent.select().where(AuditEvent.action == action).count()


@pytest.fixture
def session(client, clock, admin):
    """A TOTP-enrolled admin's session, and the TOTP seed."""
    seed, _ = enrol(client, clock, cookie_of(login(client)))
    clock.advance(seconds=30)
    done = second(client, login(client).json["challenge"], "totp", now_code(clock, seed))
    clock.advance(seconds=30)
    return cookie_of(done), seed


def step_up(client, headers, code, ip="198.51.100.7"):
    return client.simulate_post("/api/auth/step-up", json={"scope": "token.revoke", "code": code},
                                headers=headers, remote_addr=ip)


def test_wrong_step_up_codes_lock_the_account_and_a_right_code_is_then_refused(client, clock, session):
    headers, seed = session
    statuses = [step_up(client, headers, f"{n:06d}").status_code for n in range(40)]
    assert statuses == [403] * 5 + [429] * 35
    assert count("auth.step_up_failed") == 5 and count("auth.lockout") == 1
    locked = step_up(client, headers, now_code(clock, seed))
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    assert login(client).status_code == 429  # the same account lock
    clock.advance(minutes=15, seconds=1)
    assert step_up(client, headers, now_code(clock, seed), ip="198.51.100.8").status_code == 201
    assert count("auth.step_up") == 1


def test_step_up_failures_count_toward_the_per_address_limit(client, session):
    headers, _ = session
    for n in range(4):
        assert step_up(client, headers, f"{n:06d}").status_code == 403
    bodies = [{"email": f"u{n}@example.test", "password": "x" * 12} for n in range(7)]
    spray = [client.simulate_post("/api/auth/login", json=body, remote_addr="198.51.100.7").status_code
             for body in bodies]
    assert spray == [401] * 6 + [429]


def test_wrong_current_passwords_lock_the_account_and_are_audited(client, admin):
    headers = cookie_of(login(client))

    def change(current):
        return client.simulate_post("/api/me/password", json={"current_password": current,
                                                              "new_password": "a brand new passphrase 42"},
                                    headers=headers)

    assert [change("not my password").status_code for _ in range(6)] == [403] * 5 + [429]
    assert change(PASSWORD).status_code == 429
    assert count("auth.reauth_failed") == 5 and count("auth.lockout") == 1
    assert login(client).status_code == 429


def test_a_right_password_does_not_clear_failed_codes(client, clock, session):
    headers, _ = session
    for n in range(4):
        assert step_up(client, headers, f"{n:06d}").status_code == 403
    # A right current password (the password alone) must not reset the count of wrong codes.
    assert client.simulate_post("/api/me/totp", json={"password": PASSWORD},
                                headers=headers).status_code == 409  # already set up: checked, then refused
    assert step_up(client, headers, "999999").status_code == 403
    assert step_up(client, headers, "999998").status_code == 429


def test_removing_email_codes_needs_step_up(env, db, clock, fast_hasher, admin):
    client = make_client(env, db, clock, fast_hasher, FF_REQUIRE_STEP_UP="1", FF_SMTP_URL="smtp://127.0.0.1:9")
    seed, _ = enrol(client, clock, cookie_of(login(client)))
    clock.advance(seconds=30)
    headers = cookie_of(second(client, login(client).json["challenge"], "totp", now_code(clock, seed)))
    assert client.simulate_post("/api/me/email-codes", json={"password": PASSWORD},
                                headers=headers).status_code == 204
    clock.advance(seconds=30)
    headers = cookie_of(second(client, login(client).json["challenge"], "totp", now_code(clock, seed)))
    refused = client.simulate_delete("/api/me/email-codes", json={"password": PASSWORD}, headers=headers)
    assert refused.status_code == 403 and refused.json["title"] == "Step-up required"
    clock.advance(seconds=30)
    body = {"scope": "2fa.remove", "code": now_code(clock, seed)}
    token = client.simulate_post("/api/auth/step-up", json=body, headers=headers).json["step_up_token"]
    removed = client.simulate_delete("/api/me/email-codes", json={"password": PASSWORD},
                                     headers={**headers, "X-Step-Up-Token": token})
    assert removed.status_code == 204
