"""The API's OpenAPI 3.1 document, served as JSON."""

from __future__ import annotations

import re
from importlib import resources

import falcon
import yaml

from control_api import authz
from control_api.authz import public


def load_document() -> dict:
    text = resources.files("control_api").joinpath("openapi.yaml").read_text("utf-8")
    return yaml.safe_load(text)


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


def route_mismatches(app: falcon.App, document: dict) -> tuple[list[str], list[str]]:
    """(routes the document lacks, operations the document names that no route serves)."""
    routed = {
        f"{method} {openapi_path(template)}"
        for template, method, _ in authz.iter_routes(app)
    }
    documented = {
        f"{method.upper()} {path}"
        for path, item in document.get("paths", {}).items()
        for method in item
        if method.upper() in _HTTP_METHODS
    }
    return sorted(routed - documented), sorted(documented - routed)


_HTTP_METHODS = {"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"}
