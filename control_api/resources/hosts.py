"""Hosts: superadmins register, grant and remove them; an admin sees the hosts granted
to them (and may run host playbooks on those, see runs.py). The SSH private key goes in
once and never comes back out: responses carry its fingerprint."""

from __future__ import annotations

import json

import falcon

from control_api.approvals import Approvals
from control_api.auth.stepup import StepUp
from control_api.authz import authenticated, destructive, four_eyes, host_guard, superadmin
from control_api.body import read_json
from control_api.hosts.pinning import key_json
from control_api.models import Host
from control_api.resources.common import actor_of, iso
from control_api.sites.catalog import SiteCatalog, hosts_for, user_or_404

HOST_FIELDS = ("name", "connection", "address", "port", "ssh_user", "ssh_private_key", "ssh_host_key", "vars")


def host_json(host: Host) -> dict:
    return {"id": host.id, "name": host.name, "address": host.address, "port": host.port,
            "ssh_user": host.ssh_user, "connection": host.connection,
            "ssh_key_fingerprint": host.ssh_key_fingerprint or None, "vars": json.loads(host.vars_json),
            "created_at": iso(host.created_at), **key_json(host)}


class Hosts:
    def __init__(self, catalog: SiteCatalog) -> None:
        self.catalog = catalog

    @authenticated
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"hosts": [host_json(h) for h in hosts_for(req.context.principal.user)]}

    @superadmin
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        host = self.catalog.create_host(read_json(req, HOST_FIELDS), actor_of(req))
        resp.status = falcon.HTTP_201
        resp.media = host_json(host)


class HostItem:
    def __init__(self, catalog: SiteCatalog, step_up: StepUp, approvals: Approvals) -> None:
        self.catalog, self.step_up, self.approvals = catalog, step_up, approvals

    @authenticated
    @host_guard
    def on_get(self, req: falcon.Request, resp: falcon.Response, host_id: int) -> None:
        resp.media = host_json(req.context.host)

    @superadmin
    @host_guard
    @destructive("host.delete")
    @four_eyes("host.delete", lambda req, params: {"host_id": params["host_id"]})
    def on_delete(self, req: falcon.Request, resp: falcon.Response, host_id: int) -> None:
        self.catalog.delete_host(req.context.host, actor_of(req))
        resp.status = falcon.HTTP_204


class HostGrantLink:
    def __init__(self, catalog: SiteCatalog) -> None:
        self.catalog = catalog

    @superadmin
    @host_guard
    def on_put(self, req: falcon.Request, resp: falcon.Response, host_id: int, user_id: int) -> None:
        created = self.catalog.grant_host(req.context.host, user_or_404(user_id), actor_of(req))
        resp.status = falcon.HTTP_201 if created else falcon.HTTP_200
        resp.media = {"host_id": host_id, "user_id": user_id}

    @superadmin
    @host_guard
    def on_delete(self, req: falcon.Request, resp: falcon.Response, host_id: int, user_id: int) -> None:
        self.catalog.revoke_host(req.context.host, user_id, actor_of(req))
        resp.status = falcon.HTTP_204
