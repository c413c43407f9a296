"""Every error leaves as JSON {"title", "description"} with its status; nothing else leaks."""

from __future__ import annotations

import json
import logging

import falcon
import peewee

from control_api.audit.log import AuditUnavailable
from control_api.logs import request_id_var

log = logging.getLogger("control_api.errors")


# Falcon raises these without a description; say what the client can do about it.
_DEFAULT_DESCRIPTIONS = {
    404: "no resource exists at this path; see /api/openapi.json",
    405: "this path does not accept this method; see the Allow header",
}


class ApiError(Exception):
    """A refusal the client may see: a status, a title and a description safe to show.
    Services raise subclasses; `handle_api_error` is the one place they become responses."""

    status = 400
    title = "Refused"

    def __init__(self, description: str, *, status: int | None = None, title: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.status = status or self.status
        self.title = title or self.title
        self.headers = headers or {}


class InvalidInput(ApiError, ValueError):
    """What the client sent cannot be accepted; the description names the field and
    what it must be. Also a ValueError, so checks can be shared with non-HTTP callers."""

    status = 400
    title = "Invalid request"


class Forbidden(ApiError):
    status = 403
    title = "Forbidden"


class NotFound(ApiError):
    status = 404
    title = "Not found"


class Conflict(ApiError):
    """The change clashes with what exists; the description says how."""

    status = 409
    title = "Conflict"


def serialize_error(req: falcon.Request, resp: falcon.Response, error: falcon.HTTPError) -> None:
    """Always JSON, whatever the client's Accept header says."""
    description = error.description or _DEFAULT_DESCRIPTIONS.get(error.status_code, error.title)
    body = {"title": error.title, "description": description}
    resp.content_type = falcon.MEDIA_JSON
    resp.text = json.dumps(body)


def handle_unexpected(req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict) -> None:
    """Last resort: log the trace for operators, tell the client only the request id."""
    log.error("unhandled error in %s %s", req.method, req.path, exc_info=ex)
    raise falcon.HTTPInternalServerError(
        title="Internal error",
        description=f"the server could not complete the request (request id {request_id_var.get()})",
    )


def handle_store_error(req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict) -> None:
    """The store refused a statement: the driver's text names tables, columns and
    values, so it goes to the operators' log only."""
    log.error("store error in %s %s", req.method, req.path, exc_info=ex)
    raise falcon.HTTPInternalServerError(
        title="Store error",
        description=f"the store could not complete the request (request id {request_id_var.get()})",
    )


def handle_store_down(req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict) -> None:
    log.error("store unavailable in %s %s: %s", req.method, req.path, ex)
    raise falcon.HTTPServiceUnavailable(
        title="Store unavailable", description="the store cannot be reached; try again shortly"
    )


def handle_audit_unavailable(req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict) -> None:
    # Fail closed: the mutation was rolled back with its event.
    raise falcon.HTTPServiceUnavailable(
        title="Audit log unavailable",
        description="the action could not be audited, so nothing was changed; try again shortly",
    )


def handle_api_error(req: falcon.Request, resp: falcon.Response, ex: ApiError, params: dict) -> None:
    raise falcon.HTTPError(falcon.code_to_http_status(ex.status), title=ex.title,
                           description=ex.description, headers=ex.headers)


def install(app: falcon.App) -> None:
    app.set_error_serializer(serialize_error)
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(peewee.PeeweeException, handle_store_error)
    app.add_error_handler((peewee.OperationalError, peewee.InterfaceError), handle_store_down)
    app.add_error_handler(AuditUnavailable, handle_audit_unavailable)
    app.add_error_handler(ApiError, handle_api_error)
