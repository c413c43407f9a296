"""The caller's own security settings and sessions; superadmins end anyone's session;
step-up tokens for destructive routes."""

from __future__ import annotations

import falcon

from control_api.auth.account import AccountService
from control_api.auth.credentials import CredentialService
from control_api.auth.stepup import StepUp
from control_api.authz import authenticated, destructive, superadmin
from control_api.body import read_json, require_str
from control_api.models import Session
from control_api.resources.common import actor_of


class Password:
    def __init__(self, accounts: AccountService, cookie) -> None:
        self.accounts, self.cookie = accounts, cookie

    @authenticated
    def on_post(self, req, resp) -> None:
        data = read_json(req, ("current_password", "new_password"))
        current, new = require_str(data, "current_password", 4096), require_str(data, "new_password", 4096)
        self.accounts.change_password(req.context.principal.user, current, new, actor_of(req))
        self.cookie.clear(resp)
        resp.status = falcon.HTTP_204


class Totp:
    def __init__(self, accounts: AccountService, step_up: StepUp, cookie) -> None:
        self.accounts, self.step_up, self.cookie = accounts, step_up, cookie

    @authenticated
    def on_post(self, req, resp) -> None:
        password = require_str(read_json(req, ("password",)), "password", 4096)
        seed, uri = self.accounts.begin_totp(req.context.principal.user, password, actor_of(req))
        resp.status = falcon.HTTP_201
        resp.media = {"secret": seed, "otpauth_uri": uri}

    @authenticated
    @destructive("2fa.remove")
    def on_delete(self, req, resp) -> None:
        data = read_json(req, ("password", "code"))
        password, code = require_str(data, "password", 4096), require_str(data, "code", 10)
        self.accounts.remove_totp(req.context.principal.user, password, code, actor_of(req))
        self.cookie.clear(resp)
        resp.status = falcon.HTTP_204


class TotpConfirm:
    def __init__(self, accounts: AccountService, cookie) -> None:
        self.accounts, self.cookie = accounts, cookie

    @authenticated
    def on_post(self, req, resp) -> None:
        code = require_str(read_json(req, ("code",)), "code", 10)
        codes = self.accounts.confirm_totp(req.context.principal.user, code, actor_of(req))
        self.cookie.clear(resp)  # every session ended: log in again, with TOTP
        resp.media = {"recovery_codes": codes}


class EmailCodes:
    def __init__(self, accounts: AccountService, step_up: StepUp, cookie) -> None:
        self.accounts, self.step_up, self.cookie = accounts, step_up, cookie

    def _set(self, req, resp, enabled: bool) -> None:
        password = require_str(read_json(req, ("password",)), "password", 4096)
        self.accounts.set_email_codes(req.context.principal.user, password, enabled, actor_of(req))
        self.cookie.clear(resp)
        resp.status = falcon.HTTP_204

    @authenticated
    def on_post(self, req, resp) -> None:
        self._set(req, resp, True)

    @authenticated
    @destructive("2fa.remove")
    def on_delete(self, req, resp) -> None:
        self._set(req, resp, False)


def session_json(session: Session, current_id: int | None) -> dict:
    return {"id": session.id, "created_at": session.created_at.isoformat() + "Z",
            "last_seen_at": session.last_seen_at.isoformat() + "Z", "source_ip": session.source_ip,
            "user_agent": session.user_agent, "current": session.id == current_id}


class MySessions:
    def __init__(self, credentials: CredentialService) -> None:
        self.credentials = credentials

    @authenticated
    def on_get(self, req, resp) -> None:
        principal = req.context.principal
        current = principal.credential_id if principal.via == "session" else None
        sessions = self.credentials.live_sessions(principal.user)
        resp.media = {"sessions": [session_json(s, current) for s in sessions]}


class MySession:
    def __init__(self, credentials: CredentialService) -> None:
        self.credentials = credentials

    @authenticated
    def on_delete(self, req, resp, session_id: int) -> None:
        self.credentials.revoke_session(session_id, actor_of(req), owner=req.context.principal.user)
        resp.status = falcon.HTTP_204


class AnySession:
    def __init__(self, credentials: CredentialService, step_up: StepUp) -> None:
        self.credentials, self.step_up = credentials, step_up

    @superadmin
    @destructive("session.revoke")
    def on_delete(self, req, resp, session_id: int) -> None:
        self.credentials.revoke_session(session_id, actor_of(req))
        resp.status = falcon.HTTP_204


class StepUpTokens:
    def __init__(self, step_up: StepUp) -> None:
        self.step_up = step_up

    @authenticated
    def on_post(self, req, resp) -> None:
        data = read_json(req, ("scope", "code"))
        scope, code = require_str(data, "scope", 40), require_str(data, "code", 10)
        minted = self.step_up.mint(req.context.principal, scope, code, actor_of(req))
        resp.status = falcon.HTTP_201
        resp.media = {"step_up_token": minted[0], "scope": scope, "expires_at": minted[1].isoformat() + "Z"}
