"""GET /api/authz/explain (superadmin): which rule allows or denies a user an action on
a site or host, answered by the same function the guards call."""

from __future__ import annotations

import falcon

from control_api import authz
from control_api.approvals import COVERED
from control_api.body import STORE_INT_MAX, InvalidRequest, query_int, require_param


class Explain:
    def __init__(self, four_eyes_required: bool) -> None:
        self.four_eyes_required = four_eyes_required

    @authz.superadmin
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        user_id = query_int(req, "user", None, 1, STORE_INT_MAX)
        if user_id is None:
            raise InvalidRequest("'user' (a user id) is required", title="Invalid parameter")
        action, target = require_param(req, "action", 64), require_param(req, "target", 256)
        decision = authz.explain(user_id, action, target)
        resp.media = {"user": user_id, "action": action, "target": target, "allowed": decision.allowed,
                      "rule": decision.rule, "reason": decision.reason,
                      "four_eyes": self.four_eyes_required and action in COVERED}
