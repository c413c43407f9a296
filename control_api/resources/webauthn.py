"""Passkeys over HTTP: registering and managing the caller's own, and logging in or
stepping up with one. Each ceremony is two calls: `.../options` answers the
PublicKeyCredential options to hand to navigator.credentials.create() or .get() (as
their JSON, `publicKey`), and the next call sends back the credential the browser
returned (its toJSON()). The work is in control_api/webauthn."""

from __future__ import annotations

import falcon

from control_api.authz import authenticated, destructive, public
from control_api.body import read_json, require_str
from control_api.resources.auth import CookiePolicy, Login
from control_api.resources.common import actor_of
from control_api.webauthn.flows import PasskeyFlows
from control_api.webauthn.service import Passkeys, credential_json

REMOVE_SCOPE = "2fa.remove"


def _credential(data: dict) -> object:
    """The credential as sent; control_api/webauthn checks its shape (400 if wrong)."""
    return data.get("credential")


class Registration:
    def __init__(self, passkeys: Passkeys) -> None:
        self.passkeys = passkeys

    @authenticated
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = read_json(req, ("credential", "name"))
        principal = req.context.principal
        row = self.passkeys.register(principal, _credential(data), data.get("name"), actor_of(req))
        resp.status = falcon.HTTP_201
        resp.media = {"credential": credential_json(row)}


class RegistrationOptions:
    def __init__(self, passkeys: Passkeys) -> None:
        self.passkeys = passkeys

    @authenticated
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = read_json(req, ("password",))
        password = require_str(data, "password", 4096) if "password" in data else None
        options = self.passkeys.registration_options(req.context.principal, password, actor_of(req))
        resp.media = {"publicKey": options}


class Credentials:
    def __init__(self, passkeys: Passkeys) -> None:
        self.passkeys = passkeys

    @authenticated
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        rows = self.passkeys.of(req.context.principal.user)
        resp.media = {"credentials": [credential_json(c) for c in rows]}


class CredentialItem:
    def __init__(self, passkeys: Passkeys, step_up) -> None:
        self.passkeys, self.step_up = passkeys, step_up

    @authenticated
    def on_patch(self, req: falcon.Request, resp: falcon.Response, credential_id: int) -> None:
        data = read_json(req, ("name",))
        row = self.passkeys.rename(req.context.principal.user, credential_id, data.get("name"), actor_of(req))
        resp.media = {"credential": credential_json(row)}

    @authenticated
    @destructive(REMOVE_SCOPE)
    def on_delete(self, req: falcon.Request, resp: falcon.Response, credential_id: int) -> None:
        # A passkey logs in on its own: removing one always needs a step-up token, even
        # with FF_REQUIRE_STEP_UP=0.
        self.step_up.check(req, REMOVE_SCOPE, always=True)
        self.passkeys.remove(req.context.principal.user, credential_id, actor_of(req))
        resp.status = falcon.HTTP_204


class SecondFactorOptions:
    def __init__(self, flows: PasskeyFlows) -> None:
        self.flows = flows

    @public
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        challenge = require_str(read_json(req, ("challenge",)), "challenge", 100)
        resp.media = {"publicKey": self.flows.second_factor_options(challenge, actor_of(req))}


class SecondFactor(Login):
    def __init__(self, flows: PasskeyFlows, cookie: CookiePolicy) -> None:
        self.flows, self.cookie = flows, cookie

    @public
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = read_json(req, ("challenge", "credential"))
        challenge = require_str(data, "challenge", 100)
        result = self.flows.second_factor(challenge, _credential(data), actor_of(req), req.context.principal)
        self._session(resp, result)


class PasswordlessOptions:
    def __init__(self, flows: PasskeyFlows) -> None:
        self.flows = flows

    @public
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"publicKey": self.flows.passwordless_options(actor_of(req))}


class Passwordless(Login):
    def __init__(self, flows: PasskeyFlows, cookie: CookiePolicy) -> None:
        self.flows, self.cookie = flows, cookie

    @public
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = read_json(req, ("credential",))
        result = self.flows.passwordless(_credential(data), actor_of(req), req.context.principal)
        self._session(resp, result)


class StepUpOptions:
    def __init__(self, flows: PasskeyFlows) -> None:
        self.flows = flows

    @authenticated
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        scope = require_str(read_json(req, ("scope",)), "scope", 40)
        resp.media = {"publicKey": self.flows.step_up_options(req.context.principal, scope, actor_of(req))}


class StepUp:
    def __init__(self, flows: PasskeyFlows) -> None:
        self.flows = flows

    @authenticated
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = read_json(req, ("credential",))
        principal = req.context.principal
        value, scope, expires = self.flows.step_up_with(principal, _credential(data), actor_of(req))
        resp.status = falcon.HTTP_201
        resp.media = {"step_up_token": value, "scope": scope, "expires_at": expires.isoformat() + "Z"}
