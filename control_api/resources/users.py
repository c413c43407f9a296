"""Reading the admin accounts (superadmin only)."""

from __future__ import annotations

import falcon

from control_api.auth.users import all_users
from control_api.authz import superadmin


class Users:
    @superadmin
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {
            "users": [
                dict(u.public(), created_at=u.created_at.isoformat() + "Z",
                     disabled=u.disabled_at is not None)
                for u in all_users()
            ]
        }
