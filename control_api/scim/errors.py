"""SCIM errors (RFC 7644 section 3.12): the error schema, its status and its scimType.

SCIM clients read `scimType` and `detail`, not the admin API's {"title", "description"},
so /scim/v2 answers its refusals in this shape through one handler of its own."""

from __future__ import annotations

import json

import falcon

from control_api import errors
from control_api.errors import ApiError

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_JSON = "application/scim+json"


class ScimError(Exception):
    def __init__(self, status: int, detail: str, scim_type: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.scim_type = status, detail, scim_type
        self.headers = headers or {}

    def body(self) -> dict:
        out = {"schemas": [ERROR_SCHEMA], "status": str(self.status), "detail": self.detail}
        if self.scim_type:
            out["scimType"] = self.scim_type
        return out


def names_schema(body: object, urn: str) -> bool:
    """Whether `body` is an object whose `schemas` is a list naming `urn`."""
    schemas = body.get("schemas") if isinstance(body, dict) else None
    return isinstance(schemas, list) and urn in schemas


def invalid_filter(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidFilter")


def invalid_path(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidPath")


def invalid_value(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidValue")


def invalid_syntax(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidSyntax")


def no_target(detail: str) -> ScimError:
    return ScimError(400, detail, "noTarget")


def mutability(detail: str) -> ScimError:
    return ScimError(400, detail, "mutability")


def uniqueness(detail: str) -> ScimError:
    return ScimError(409, detail, "uniqueness")


def not_found(detail: str) -> ScimError:
    return ScimError(404, detail)


def handle_api_error(req: falcon.Request, resp: falcon.Response, ex: ApiError, params: dict) -> None:
    """The one ApiError handler (it replaces errors.handle_api_error's registration): under
    /scim/v2 a shared service's refusal (a license cap, a throttle) in SCIM's schema,
    anywhere else exactly as errors.handle_api_error answers."""
    if req.path.startswith("/scim/v2/"):
        handle(req, resp, ScimError(ex.status, ex.description, headers=ex.headers), params)
    else:
        errors.handle_api_error(req, resp, ex, params)


def handle(req: falcon.Request, resp: falcon.Response, ex: ScimError, params: dict) -> None:
    resp.status = falcon.code_to_http_status(ex.status)
    resp.content_type = SCIM_JSON
    resp.text = json.dumps(ex.body())
    for name, value in ex.headers.items():
        resp.set_header(name, value)
