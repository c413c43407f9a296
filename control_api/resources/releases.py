"""Self-update over HTTP (superadmins): upload a signed release bundle, list what was
received, and ask for one to be applied (step-up with FF_REQUIRE_STEP_UP=1, four-eyes
with FF_JIT_REQUIRED=1). The work is the service's (control_api/release/updates.py);
the upgrade itself runs as root."""

from __future__ import annotations

import falcon

from control_api.approvals import Approvals
from control_api.auth.stepup import StepUp
from control_api.authz import destructive, four_eyes, superadmin
from control_api.body import query_int
from control_api.release.models import Release
from control_api.release.updates import SIGNATURE_HEADER, ReleaseUpdates, approval_params
from control_api.resources.common import actor_of, iso
from control_api.upload import body_stream

PAGE_MAX = 200


def release_json(row: Release) -> dict:
    return {"id": row.id, "version": row.version, "sha256": row.sha256, "tag": row.tag or None,
            "state": row.state, "received_by": row.received_by_id, "received_at": iso(row.received_at),
            "apply_requested_by": row.apply_requested_by_id,
            "apply_requested_at": iso(row.apply_requested_at),
            "finished_at": iso(row.finished_at), "error": row.error}


class Releases:
    def __init__(self, updates: ReleaseUpdates) -> None:
        self.updates = updates
        # Read by middleware.BodyLimit instead of FF_MAX_BODY_BYTES, for an upload's body only.
        self.upload_body_limit = updates.max_bytes

    @superadmin
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        limit = query_int(req, "limit", 50, 1, PAGE_MAX)
        resp.media = {"releases": [release_json(r) for r in self.updates.recent(limit)]}

    @superadmin
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        media_type = (req.content_type or "").partition(";")[0].strip().lower()
        row = self.updates.receive(body_stream(req), media_type, req.get_header(SIGNATURE_HEADER),
                                   req.context.principal.user, actor_of(req))
        resp.status = falcon.HTTP_201
        resp.location = f"/api/releases/{row.id}"
        resp.media = release_json(row)


class ReleaseApply:
    def __init__(self, updates: ReleaseUpdates, step_up: StepUp, approvals: Approvals) -> None:
        self.updates, self.step_up, self.approvals = updates, step_up, approvals

    @superadmin
    @destructive("release.apply")  # root installs what this asks for
    @four_eyes("release.apply", lambda req, params: approval_params(params["release_id"]))
    def on_post(self, req: falcon.Request, resp: falcon.Response, release_id: int) -> None:
        row = self.updates.request_apply(release_id, req.context.principal.user, actor_of(req))
        resp.status = falcon.HTTP_202
        resp.media = release_json(row)
