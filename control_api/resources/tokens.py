"""A user's own API tokens: list, create (value shown once), revoke."""

from __future__ import annotations

import falcon

from control_api.auth.credentials import CredentialService
from control_api.auth.stepup import StepUp
from control_api.auth.token_issuer import TokenIssuer
from control_api.authz import authenticated, destructive
from control_api.body import read_json, require_str
from control_api.errors import InvalidInput, NotFound
from control_api.models import ApiToken
from control_api.resources.common import actor_of, iso


def token_json(token: ApiToken, credentials: CredentialService) -> dict:
    return {"id": token.id, "name": token.name, "created_at": iso(token.created_at),
            "expires_at": iso(credentials.token_expiry(token)), "revoked": token.revoked_at is not None,
            "last_used_at": iso(token.last_used_at)}


class Tokens:
    def __init__(self, issuer: TokenIssuer, step_up: StepUp) -> None:
        self.issuer, self.step_up = issuer, step_up

    @authenticated
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        user = req.context.principal.user
        tokens = self.issuer.credentials.tokens_of(user)
        resp.media = {"tokens": [token_json(t, self.issuer.credentials) for t in tokens]}

    @authenticated
    @destructive("token.create")  # not destructive, but a new credential: step-up when required
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = read_json(req, ("name", "expires_days"))
        name = require_str(data, "name", 100)
        days = data.get("expires_days")
        if days is not None and (not isinstance(days, int) or isinstance(days, bool)):
            raise InvalidInput("'expires_days' must be an integer")
        value, token = self.issuer.mint(req.context.principal, name, days, actor_of(req))
        resp.status = falcon.HTTP_201
        resp.media = {"token": token_json(token, self.issuer.credentials), "value": value}


class Token:
    def __init__(self, credentials: CredentialService, step_up: StepUp) -> None:
        self.credentials, self.step_up = credentials, step_up

    @authenticated
    @destructive("token.revoke")
    def on_delete(self, req: falcon.Request, resp: falcon.Response, token_id: int) -> None:
        principal = req.context.principal
        if not self.credentials.revoke_token(token_id, actor_of(req), owner=principal.user):
            raise NotFound("you have no active token with this id", title="No such token")
        resp.status = falcon.HTTP_204
