"""A user's own API tokens: list, create (value shown once), revoke."""

from __future__ import annotations

import datetime as dt

import falcon

from control_api.auth.credentials import CredentialService
from control_api.auth.stepup import StepUp
from control_api.authz import authenticated, destructive
from control_api.body import read_json, require_str
from control_api.models import ApiToken
from control_api.resources.common import actor_of, iso


def token_json(token: ApiToken) -> dict:
    return {"id": token.id, "name": token.name, "created_at": iso(token.created_at),
            "expires_at": iso(token.expires_at), "revoked": token.revoked_at is not None,
            "last_used_at": iso(token.last_used_at)}


class Tokens:
    def __init__(self, credentials: CredentialService) -> None:
        self.credentials = credentials

    @authenticated
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        user = req.context.principal.user
        tokens = ApiToken.select().where(ApiToken.user == user).order_by(ApiToken.id)
        resp.media = {"tokens": [token_json(t) for t in tokens]}

    @authenticated
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = read_json(req)
        name = require_str(data, "name", 100)
        days = data.get("expires_days", 90)
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 3650:
            raise falcon.HTTPBadRequest(title="Invalid request",
                                        description="'expires_days' must be an integer from 1 to 3650")
        expires = self.credentials.clock.now() + dt.timedelta(days=days)
        try:
            value, token = self.credentials.create_token(req.context.principal.user, name, expires,
                                                         actor_of(req))
        except ValueError as exc:
            raise falcon.HTTPConflict(title="Token name taken", description=str(exc)) from None
        resp.status = falcon.HTTP_201
        resp.media = {"token": token_json(token), "value": value}


class Token:
    def __init__(self, credentials: CredentialService, step_up: StepUp) -> None:
        self.credentials, self.step_up = credentials, step_up

    @authenticated
    @destructive("token.revoke")
    def on_delete(self, req: falcon.Request, resp: falcon.Response, token_id: int) -> None:
        principal = req.context.principal
        if not self.credentials.revoke_token(token_id, actor_of(req), owner=principal.user):
            raise falcon.HTTPNotFound(title="No such token",
                                      description="you have no active token with this id")
        resp.status = falcon.HTTP_204
