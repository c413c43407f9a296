"""The login flow's refusals are ApiErrors: the one error handler answers them, and the
login resources translate nothing themselves."""

from __future__ import annotations

import datetime as dt

from control_api.auth.login import LoginFailed, SealedModeRefused
from control_api.auth.second_factor import SecondFactorError
from control_api.errors import ApiError


def test_login_refusals_carry_their_status_and_title():
    failed = LoginFailed()
    assert isinstance(failed, ApiError)
    assert (failed.status, failed.title, failed.description) == (
        401, "Login failed", "the email or password is incorrect")
    sealed = SealedModeRefused(dt.datetime(2026, 12, 6, 12, 0))
    assert isinstance(sealed, ApiError) and (sealed.status, sealed.title) == (403, "TOTP required")
    assert "2026-12-06T12:00:00Z" in sealed.description and sealed.deadline == dt.datetime(2026, 12, 6, 12, 0)
    code = SecondFactorError("the code is not right")
    assert isinstance(code, ApiError)
    assert (code.status, code.title) == (401, "Second factor refused")
    assert code.description == "the code is not right"


def test_the_login_resources_translate_no_exception():
    from control_api.resources import auth

    assert not hasattr(auth, "_refusals") and not hasattr(auth, "login_failed")


def test_the_answers_are_unchanged(client, admin):
    wrong = client.simulate_post("/api/auth/login", json={"email": "admin@example.test",
                                                          "password": "not the password!"})
    assert wrong.status_code == 401
    assert wrong.json == {"title": "Login failed", "description": "the email or password is incorrect"}
    spent = client.simulate_post("/api/auth/login/second-factor",
                                 json={"challenge": "x" * 43, "method": "totp", "code": "123456"})
    assert spent.status_code == 401 and spent.json["title"] == "Second factor refused"
    assert "log in again" in spent.json["description"]
