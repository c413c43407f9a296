"""The baseline of bench.request_path: a Falcon app that answers one small JSON
document, with no middleware, no store and no authentication."""

from __future__ import annotations

import falcon


class Hello:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"user": {"id": 1, "email": "root@example.test", "role": "superadmin"}, "via": "token"}


app = falcon.App()
app.add_route("/", Hello())
