"""Reading the admin accounts (superadmin only)."""

from __future__ import annotations

import falcon

from control_api.authz import superadmin
from control_api.models import User


class Users:
    @superadmin
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        users = User.select().order_by(User.id)
        resp.media = {
            "users": [
                dict(u.public(), created_at=u.created_at.isoformat() + "Z",
                     disabled=u.disabled_at is not None)
                for u in users
            ]
        }
