"""SCIM 2.0 over HTTP (RFC 7644) under /scim/v2: discovery, Users and Groups. Every
responder is declared `authz.scim` (the provisioning token, never a user's credential);
bodies are application/scim+json (or application/json), answers application/scim+json,
and refusals the SCIM error schema (control_api/scim/errors.py)."""

from __future__ import annotations

import json

import falcon

from control_api import authz
from control_api.audit.log import Actor
from control_api.errors import ApiError
from control_api.scim import body, schemas
from control_api.scim.errors import (
    SCIM_JSON,
    ScimError,
    handle,
    handle_api_error,
    invalid_syntax,
    names_schema,
    not_found,
)
from control_api.scim.service import ScimService
from control_api.scim.tokens import ScimTokens

PREFIX = "/scim/v2"


def _base(req: falcon.Request) -> str:
    return req.prefix + PREFIX


def _actor(req: falcon.Request) -> Actor:
    return Actor(f"scim_token:{req.context.scim_token.id}", req.context.client_ip, req.user_agent or "")


def _respond(resp: falcon.Response, doc: dict, status: int = 200) -> None:
    resp.status = falcon.code_to_http_status(status)
    resp.content_type = SCIM_JSON
    resp.text = json.dumps(doc)


def _body(req: falcon.Request) -> object:
    return body.read(req.content_type, req.bounded_stream)


def _project(doc: dict, query: dict) -> dict:
    """`attributes` / `excludedAttributes` (RFC 7644 section 3.9), top-level names."""
    wanted = query.get("attributes")
    dropped = query.get("excludedAttributes")
    keep = {"schemas", "id"}
    if wanted:
        names = {n.strip().rsplit(":", 1)[-1].split(".")[0].lower() for n in wanted.split(",")}
        return {k: v for k, v in doc.items() if k.lower() in names | keep}
    if dropped:
        names = {n.strip().rsplit(":", 1)[-1].split(".")[0].lower() for n in dropped.split(",")} - keep
        return {k: v for k, v in doc.items() if k.lower() not in names}
    return doc


class _Scim:
    def __init__(self, service: ScimService, scim_tokens: ScimTokens) -> None:
        self.service, self.scim_tokens = service, scim_tokens


class ServiceProviderConfig(_Scim):
    @authz.scim
    def on_get(self, req, resp):
        _respond(resp, schemas.service_provider_config(_base(req)))


def _listing(items: list[dict]) -> dict:
    return {"schemas": [schemas.LIST], "totalResults": len(items), "startIndex": 1,
            "itemsPerPage": len(items), "Resources": items}


class ResourceTypes(_Scim):
    @authz.scim
    def on_get(self, req, resp):
        _respond(resp, _listing(schemas.resource_types(_base(req))))


class ResourceType(_Scim):
    @authz.scim
    def on_get(self, req, resp, name):
        found = [r for r in schemas.resource_types(_base(req)) if r["id"] == name]
        if not found:
            raise not_found(f"there is no resource type {name[:64]!r}")
        _respond(resp, found[0])


class Schemas(_Scim):
    @authz.scim
    def on_get(self, req, resp):
        _respond(resp, _listing(schemas.schemas(_base(req))))


class Schema(_Scim):
    @authz.scim
    def on_get(self, req, resp, urn):
        found = [s for s in schemas.schemas(_base(req)) if s["id"] == urn]
        if not found:
            raise not_found(f"there is no schema {urn[:100]!r}")
        _respond(resp, found[0])


def _search(service: ScimService, kind: str, req: falcon.Request, query: dict | None = None) -> dict:
    query = query if query is not None else req.params
    listing = service.search(kind, query.get("filter"), query.get("startIndex"), query.get("count"),
                             _base(req))
    listing["Resources"] = [_project(r, query) for r in listing["Resources"]]
    return listing


def _search_request(req: falcon.Request) -> dict:
    """A POST .search body (RFC 7644 section 3.4.3) as the query parameters it stands for."""
    body = _body(req)
    if not names_schema(body, schemas.SEARCH):
        raise invalid_syntax(f"a search request must name the schema {schemas.SEARCH}")
    query = {}
    for name in ("filter", "startIndex", "count", "attributes", "excludedAttributes"):
        value = body.get(name)
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        if value is not None:
            if not isinstance(value, str | int) or isinstance(value, bool):
                raise invalid_syntax(f"'{name}' has the wrong type")
            query[name] = str(value)
    return query


class Users(_Scim):
    @authz.scim
    def on_get(self, req, resp):
        _respond(resp, _search(self.service, "User", req))

    @authz.scim
    def on_post(self, req, resp):
        row = self.service.create_user(_body(req), _actor(req))
        doc = self.service.user_json(row, _base(req))
        resp.set_header("Location", doc["meta"]["location"])
        _respond(resp, doc, 201)


class Search(_Scim):
    kind = "User"

    @authz.scim
    def on_post(self, req, resp):
        _respond(resp, _search(self.service, self.kind, req, _search_request(req)))


class GroupSearch(Search):
    kind = "Group"


class RootSearch(_Scim):
    @authz.scim
    def on_post(self, req, resp):
        """Across Users and Groups (RFC 7644 section 3.4.3)."""
        query = _search_request(req)
        listing = self.service.search_all(query.get("filter"), query.get("startIndex"), query.get("count"),
                                          _base(req))
        listing["Resources"] = [_project(r, query) for r in listing["Resources"]]
        _respond(resp, listing)


class UserItem(_Scim):
    @authz.scim
    def on_get(self, req, resp, scim_id):
        _respond(resp, _project(self.service.user_json(self.service.user(scim_id), _base(req)), req.params))

    @authz.scim
    def on_put(self, req, resp, scim_id):
        row = self.service.replace_user(scim_id, _body(req), _actor(req))
        _respond(resp, self.service.user_json(row, _base(req)))

    @authz.scim
    def on_patch(self, req, resp, scim_id):
        row = self.service.patch_user(scim_id, _body(req), _actor(req), _base(req))
        _respond(resp, self.service.user_json(row, _base(req)))

    @authz.scim
    def on_delete(self, req, resp, scim_id):
        self.service.delete_user(scim_id, _actor(req))
        resp.status = falcon.HTTP_204


class Groups(_Scim):
    @authz.scim
    def on_get(self, req, resp):
        _respond(resp, _search(self.service, "Group", req))

    @authz.scim
    def on_post(self, req, resp):
        row = self.service.create_group(_body(req), _actor(req))
        doc = self.service.group_json(row, _base(req))
        resp.set_header("Location", doc["meta"]["location"])
        _respond(resp, doc, 201)


class GroupItem(_Scim):
    @authz.scim
    def on_get(self, req, resp, scim_id):
        _respond(resp, _project(self.service.group_json(self.service.group(scim_id), _base(req)), req.params))

    @authz.scim
    def on_put(self, req, resp, scim_id):
        row = self.service.replace_group(scim_id, _body(req), _actor(req))
        _respond(resp, self.service.group_json(row, _base(req)))

    @authz.scim
    def on_patch(self, req, resp, scim_id):
        row = self.service.patch_group(scim_id, _body(req), _actor(req), _base(req))
        _respond(resp, self.service.group_json(row, _base(req)))

    @authz.scim
    def on_delete(self, req, resp, scim_id):
        self.service.delete_group(scim_id, _actor(req))
        resp.status = falcon.HTTP_204


def add_routes(app: falcon.App, service: ScimService, scim_tokens: ScimTokens) -> None:
    app.add_error_handler(ScimError, handle)
    app.add_error_handler(ApiError, handle_api_error)
    for path, resource in (
        ("/ServiceProviderConfig", ServiceProviderConfig), ("/ResourceTypes", ResourceTypes),
        ("/ResourceTypes/{name}", ResourceType), ("/Schemas", Schemas), ("/Schemas/{urn}", Schema),
        ("/.search", RootSearch),
        ("/Users", Users), ("/Users/.search", Search), ("/Users/{scim_id}", UserItem),
        ("/Groups", Groups), ("/Groups/.search", GroupSearch), ("/Groups/{scim_id}", GroupItem),
    ):
        app.add_route(PREFIX + path, resource(service, scim_tokens))
    app.add_sink(_no_such_path, PREFIX + "/")


def _no_such_path(req: falcon.Request, resp: falcon.Response, **params) -> None:
    """Any other path under /scim/v2 (routes match before sinks): a SCIM 404."""
    raise not_found("no SCIM resource exists at this path")

