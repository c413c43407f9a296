"""One host's SSH trust (superadmin only): its pinned host key (read, scan, confirm a
scanned key, re-pin) and the rotation of the key the control plane logs in with."""

from __future__ import annotations

import falcon

from control_api.approvals import Approvals
from control_api.auth.stepup import StepUp
from control_api.authz import destructive, four_eyes, host_guard, superadmin
from control_api.body import read_json
from control_api.hosts.pinning import HostKeys, key_json
from control_api.hosts.rotation import RotationRequests
from control_api.resources.common import actor_of
from control_api.resources.runs import run_json


def _keys(host_id: int, host) -> dict:
    return {"host_id": host_id, **key_json(host)}


class HostKey:
    def __init__(self, host_keys: HostKeys, step_up: StepUp, approvals: Approvals) -> None:
        self.host_keys, self.step_up, self.approvals = host_keys, step_up, approvals

    @superadmin
    @host_guard
    def on_get(self, req: falcon.Request, resp: falcon.Response, host_id: int) -> None:
        resp.media = _keys(host_id, req.context.host)

    @superadmin
    @host_guard
    @destructive("host.repin_key")
    @four_eyes("host.repin_key", lambda req, params: {
        "host_id": params["host_id"], "ssh_host_key": read_json(req, ("ssh_host_key",)).get("ssh_host_key")})
    def on_put(self, req: falcon.Request, resp: falcon.Response, host_id: int) -> None:
        data = read_json(req, ("ssh_host_key",))
        self.host_keys.repin(req.context.host, data.get("ssh_host_key"), actor_of(req))
        resp.media = _keys(host_id, req.context.host)


class HostKeyScan:
    def __init__(self, host_keys: HostKeys) -> None:
        self.host_keys = host_keys

    @superadmin
    @host_guard
    def on_post(self, req: falcon.Request, resp: falcon.Response, host_id: int) -> None:
        self.host_keys.scan(req.context.host, actor_of(req))
        resp.media = _keys(host_id, req.context.host)


class HostKeyConfirm:
    def __init__(self, host_keys: HostKeys) -> None:
        self.host_keys = host_keys

    @superadmin
    @host_guard
    def on_post(self, req: falcon.Request, resp: falcon.Response, host_id: int) -> None:
        data = read_json(req, ("fingerprint",))
        self.host_keys.confirm(req.context.host, data.get("fingerprint"), actor_of(req))
        resp.media = _keys(host_id, req.context.host)


class HostCredentialRotation:
    def __init__(self, rotations: RotationRequests, step_up: StepUp, approvals: Approvals) -> None:
        self.rotations, self.step_up, self.approvals = rotations, step_up, approvals

    @superadmin
    @host_guard
    @destructive("host.rotate_credentials")
    @four_eyes("host.rotate_credentials", lambda req, params: {"host_id": params["host_id"]})
    def on_post(self, req: falcon.Request, resp: falcon.Response, host_id: int) -> None:
        run = self.rotations.request(req.context.host, req.context.principal.user, actor_of(req))
        resp.status = falcon.HTTP_202
        resp.location = f"/api/runs/{run.id}"
        resp.media = run_json(run)
