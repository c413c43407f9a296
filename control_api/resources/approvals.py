"""Four-eyes approvals (superadmins): ask, approve with a TOTP code, withdraw, cancel,
read. The action itself is sent to its own route with the request's id in X-Approval."""

from __future__ import annotations

import json

import falcon

from control_api.approvals import Approvals
from control_api.authz import superadmin
from control_api.body import query_int, read_json
from control_api.models import ApprovalRequest
from control_api.resources.common import actor_of, iso

PAGE_MAX = 200


def request_json(approvals: Approvals, request: ApprovalRequest) -> dict:
    return {"id": request.id, "action": request.action, "params": json.loads(request.params_json),
            "digest": request.digest, "reason": request.reason, "requested_by": request.requested_by_id,
            "approvals_needed": request.approvals_needed, "state": approvals.state(request),
            "created_at": iso(request.created_at), "expires_at": iso(request.expires_at),
            "canceled_at": iso(request.canceled_at), "consumed_at": iso(request.consumed_at),
            "votes": [{"approver": v.approver_id, "approved_at": iso(v.approved_at),
                       "withdrawn_at": iso(v.withdrawn_at)} for v in approvals.votes(request)]}


class ApprovalRequests:
    def __init__(self, approvals: Approvals) -> None:
        self.approvals = approvals

    @superadmin
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        limit = query_int(req, "limit", 50, 1, PAGE_MAX)
        resp.media = {"requests": [request_json(self.approvals, r) for r in self.approvals.recent(limit)]}

    @superadmin
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = read_json(req, ("action", "params", "reason"))
        request = self.approvals.request(req.context.principal.user, data.get("action"), data.get("params"),
                                         data.get("reason"), actor_of(req))
        resp.status = falcon.HTTP_201
        resp.location = f"/api/approvals/{request.id}"
        resp.media = request_json(self.approvals, request)


class ApprovalRequestItem:
    def __init__(self, approvals: Approvals) -> None:
        self.approvals = approvals

    @superadmin
    def on_get(self, req: falcon.Request, resp: falcon.Response, approval_id: int) -> None:
        resp.media = request_json(self.approvals, self.approvals.find(approval_id))

    @superadmin
    def on_delete(self, req: falcon.Request, resp: falcon.Response, approval_id: int) -> None:
        self.approvals.cancel(req.context.principal.user, approval_id, actor_of(req))
        resp.status = falcon.HTTP_204


class ApprovalVotes:
    def __init__(self, approvals: Approvals) -> None:
        self.approvals = approvals

    @superadmin
    def on_post(self, req: falcon.Request, resp: falcon.Response, approval_id: int) -> None:
        code = read_json(req, ("code",)).get("code")
        request = self.approvals.approve(req.context.principal.user, approval_id, code, actor_of(req))
        resp.media = request_json(self.approvals, request)

    @superadmin
    def on_delete(self, req: falcon.Request, resp: falcon.Response, approval_id: int) -> None:
        self.approvals.withdraw(req.context.principal.user, approval_id, actor_of(req))
        resp.status = falcon.HTTP_204
