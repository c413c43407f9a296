"""The API's OpenAPI 3.1 document, served as JSON."""

from __future__ import annotations

import functools
import json
import re
from importlib import resources

import falcon
import yaml

from control_api import authz
from control_api.authz import public

# Answers any operation can get, whatever it does, so the YAML lists only each
# operation's own: gunicorn's and the middleware's refusals (malformed or oversized
# requests, a bad Bearer token, a foreign origin or a missing CSRF token, a token
# refused under sealed mode) and the server's own failures.
COMMON_RESPONSES = {
    "400": "Malformed request: bad JSON, a query or header value out of range, or text "
           "holding NUL or a lone surrogate",
    "401": "Credentials sent that do not verify (an unknown, expired or revoked token), or "
           "none where the operation needs them",
    "403": "Refused: a cross-site or cross-origin request, a missing or wrong CSRF token, "
           "a token refused under sealed mode, or a caller without the access it needs",
    "413": "A body over FF_MAX_BODY_BYTES",
    "414": "A request line over 4094 bytes (answered by gunicorn, as JSON)",
    "417": "An Expect header other than 100-continue (answered by gunicorn, as JSON)",
    "431": "More than 100 header fields, or one over 8190 bytes (answered by gunicorn, as JSON)",
    "500": "Internal error; the description names only the request id",
    "501": "A Transfer-Encoding other than chunked (answered by gunicorn, as JSON)",
    "503": "The store is unreachable or the audit log unavailable; nothing was changed",
}
# Operations that read a body; and a path that names no row, or an id out of range.
BODY_RESPONSES = {"415": "The body is not application/json in UTF-8"}
PATH_RESPONSES = {"404": "Nothing at this path the caller may see"}


def _error(description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def with_common_responses(document: dict) -> dict:
    """Every operation declares the statuses every operation can answer (the YAML's
    own entries, with their descriptions, stay as they are)."""
    for item in document.get("paths", {}).values():
        for method, operation in item.items():
            if method.upper() not in _HTTP_METHODS:
                continue
            responses = operation.setdefault("responses", {})
            extra = dict(COMMON_RESPONSES)
            if "requestBody" in operation:
                extra.update(BODY_RESPONSES)
            if any(p.get("in") == "path" for p in operation.get("parameters", ())):
                extra.update(PATH_RESPONSES)
            for status, description in extra.items():
                responses.setdefault(status, _error(description))
    return document


@functools.cache
def _document_json() -> str:
    # Parsed once a process: PyYAML's pure-Python loader took 0.4 s for it, paid by every
    # create_app (libyaml's, where present, takes a tenth of that).
    text = resources.files("control_api").joinpath("openapi.yaml").read_text("utf-8")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return json.dumps(with_common_responses(yaml.load(text, Loader=loader)))  # noqa: S506 (a safe loader)


def load_document() -> dict:
    """The document, a fresh copy on each call (callers may change theirs)."""
    return json.loads(_document_json())


class OpenApi:
    def __init__(self, document: dict) -> None:
        self.document = document

    @public
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.document


_CONVERTER = re.compile(r"\{(\w+):[^}]*\}")


def openapi_path(template: str) -> str:
    """Falcon's /x/{id:int} is OpenAPI's /x/{id}."""
    return _CONVERTER.sub(r"{\1}", template)


# /scim/v2 is not the admin API: RFC 7644 describes it (its discovery endpoints publish
# its schemas), IdPs call it with a SCIM token, and it answers in SCIM's own error schema.
NOT_DOCUMENTED = ("/scim/v2/",)


def admin_api_routes(app: falcon.App) -> list[tuple[str, str, object]]:
    """The routes this document describes: every route but NOT_DOCUMENTED's."""
    return [r for r in authz.iter_routes(app) if not r[0].startswith(NOT_DOCUMENTED)]


def route_mismatches(app: falcon.App, document: dict) -> tuple[list[str], list[str]]:
    """(routes the document lacks, operations the document names that no route serves)."""
    routed = {
        f"{method} {openapi_path(template)}"
        for template, method, _ in admin_api_routes(app)
    }
    documented = {
        f"{method.upper()} {path}"
        for path, item in document.get("paths", {}).items()
        for method in item
        if method.upper() in _HTTP_METHODS
    }
    return sorted(routed - documented), sorted(documented - routed)


_HTTP_METHODS = {"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"}
