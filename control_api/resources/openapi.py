"""The API's OpenAPI 3.1 document, served as JSON."""

from __future__ import annotations

from importlib import resources

import falcon
import yaml

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
