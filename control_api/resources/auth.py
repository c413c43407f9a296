"""Login, logout and the caller's own identity."""

from __future__ import annotations

import falcon

from control_api.auth.credentials import csrf_token_for
from control_api.auth.login import LoginResult, LoginService
from control_api.authz import authenticated, public
from control_api.body import read_json, require_str
from control_api.errors import ApiError
from control_api.resources.common import actor_of


class CookiePolicy:
    """The session cookie's name and flags; __Host- pins it to this origin over TLS."""

    def __init__(self, secure: bool, max_age: int) -> None:
        self.secure = secure
        self.name = "__Host-weco_session" if secure else "weco_session"
        self.max_age = max_age

    def set(self, resp: falcon.Response, value: str) -> None:
        resp.set_cookie(
            self.name, value, max_age=self.max_age, path="/",
            secure=self.secure, http_only=True, same_site="Strict",
        )

    def clear(self, resp: falcon.Response) -> None:
        resp.unset_cookie(self.name, path="/", same_site="Strict")


class Login:
    def __init__(self, logins: LoginService, cookie: CookiePolicy):
        self.logins = logins
        self.cookie = cookie

    @public
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = read_json(req, ("email", "password"))
        email = require_str(data, "email", 254)
        password = require_str(data, "password", 4096)
        result = self.logins.login(email, password, actor_of(req), req.context.principal)
        if result.challenge is not None:
            resp.media = {"second_factor_required": True, "challenge": result.challenge,
                          "methods": result.methods}
            return
        self._session(resp, result)

    def _session(self, resp: falcon.Response, result: LoginResult) -> None:
        self.cookie.set(resp, result.session_value)
        body = {"user": result.user.public(), "csrf_token": csrf_token_for(result.session_value)}
        if result.totp_required_by is not None:
            body["totp_required_by"] = result.totp_required_by.isoformat() + "Z"
        resp.media = body


class SecondFactor(Login):
    @public
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = read_json(req, ("challenge", "method", "code"))
        challenge = require_str(data, "challenge", 100)
        method = require_str(data, "method", 20)
        code = require_str(data, "code", 40)
        result = self.logins.complete(challenge, method, code, actor_of(req), req.context.principal)
        self._session(resp, result)


class EmailCode:
    def __init__(self, logins: LoginService) -> None:
        self.logins = logins

    @public
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        challenge = require_str(read_json(req, ("challenge",)), "challenge", 100)
        self.logins.send_email_code(challenge, actor_of(req))
        resp.status = falcon.HTTP_202
        resp.media = {"sent": True}


class Logout:
    def __init__(self, logins: LoginService, cookie: CookiePolicy) -> None:
        self.logins = logins
        self.cookie = cookie

    @authenticated
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        principal = req.context.principal
        if principal.via != "session":
            raise ApiError("logout ends a cookie session; revoke an API token with DELETE /api/tokens/{id}",
                           status=403, title="Not a session")
        self.logins.logout(principal, actor_of(req))
        self.cookie.clear(resp)
        resp.status = falcon.HTTP_204


class Me:
    @authenticated
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        principal = req.context.principal
        body = {"user": principal.user.public(), "via": principal.via}
        if principal.csrf_token:
            body["csrf_token"] = principal.csrf_token
        resp.media = body
