"""Hosts (superadmin only). The SSH private key goes in once and never comes back out:
responses carry its fingerprint."""

from __future__ import annotations

import json

import falcon

from control_api.auth.stepup import StepUp
from control_api.authz import destructive, superadmin
from control_api.body import read_json
from control_api.models import Host
from control_api.resources.common import actor_of, iso
from control_api.sites.catalog import SiteCatalog, all_hosts, host_or_404

HOST_FIELDS = ("name", "connection", "address", "port", "ssh_user", "ssh_private_key", "vars")


def host_json(host: Host) -> dict:
    return {"id": host.id, "name": host.name, "address": host.address, "port": host.port,
            "ssh_user": host.ssh_user, "connection": host.connection,
            "ssh_key_fingerprint": host.ssh_key_fingerprint or None, "vars": json.loads(host.vars_json),
            "created_at": iso(host.created_at)}


class Hosts:
    def __init__(self, catalog: SiteCatalog) -> None:
        self.catalog = catalog

    @superadmin
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"hosts": [host_json(h) for h in all_hosts()]}

    @superadmin
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        host = self.catalog.create_host(read_json(req, HOST_FIELDS), actor_of(req))
        resp.status = falcon.HTTP_201
        resp.media = host_json(host)


class HostItem:
    def __init__(self, catalog: SiteCatalog, step_up: StepUp) -> None:
        self.catalog, self.step_up = catalog, step_up

    @superadmin
    def on_get(self, req: falcon.Request, resp: falcon.Response, host_id: int) -> None:
        resp.media = host_json(host_or_404(host_id))

    @superadmin
    @destructive("host.delete")
    def on_delete(self, req: falcon.Request, resp: falcon.Response, host_id: int) -> None:
        self.catalog.delete_host(host_or_404(host_id), actor_of(req))
        resp.status = falcon.HTTP_204
