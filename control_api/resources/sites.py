"""Sites, their hosts and grants: superadmins manage them; a granted admin may read
the sites granted to them (and launch runs on them, see runs.py)."""

from __future__ import annotations

import falcon

from control_api.approvals import Approvals
from control_api.auth.stepup import StepUp
from control_api.authz import authenticated, destructive, four_eyes, host_guard, site_guard, superadmin
from control_api.body import read_json
from control_api.models import Site
from control_api.resources.common import actor_of, iso
from control_api.resources.hosts import host_json
from control_api.sites.catalog import SiteCatalog, site_hosts, sites_for, user_or_404


def site_json(site: Site) -> dict:
    return {"slug": site.slug, "domain": site.domain, "created_at": iso(site.created_at),
            "hosts": [host_json(h) for h in site_hosts(site)]}


class Sites:
    def __init__(self, catalog: SiteCatalog) -> None:
        self.catalog = catalog

    @authenticated
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"sites": [site_json(s) for s in sites_for(req.context.principal.user)]}

    @superadmin
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        site = self.catalog.create_site(read_json(req, ("slug", "domain")), actor_of(req))
        resp.status = falcon.HTTP_201
        resp.media = site_json(site)


class SiteItem:
    def __init__(self, catalog: SiteCatalog, step_up: StepUp, approvals: Approvals) -> None:
        self.catalog, self.step_up, self.approvals = catalog, step_up, approvals

    @authenticated
    @site_guard
    def on_get(self, req: falcon.Request, resp: falcon.Response, slug: str) -> None:
        resp.media = site_json(req.context.site)

    @superadmin
    @site_guard
    @destructive("site.delete")
    @four_eyes("site.delete", lambda req, params: {"slug": params["slug"]})
    def on_delete(self, req: falcon.Request, resp: falcon.Response, slug: str) -> None:
        self.catalog.delete_site(req.context.site, actor_of(req))
        resp.status = falcon.HTTP_204


class SiteHostLink:
    def __init__(self, catalog: SiteCatalog) -> None:
        self.catalog = catalog

    @superadmin
    @site_guard
    @host_guard
    def on_put(self, req: falcon.Request, resp: falcon.Response, slug: str, host_id: int) -> None:
        created = self.catalog.attach(req.context.site, req.context.host, actor_of(req))
        resp.status = falcon.HTTP_201 if created else falcon.HTTP_200
        resp.media = site_json(req.context.site)

    @superadmin
    @site_guard
    @host_guard
    def on_delete(self, req: falcon.Request, resp: falcon.Response, slug: str, host_id: int) -> None:
        self.catalog.detach(req.context.site, req.context.host, actor_of(req))
        resp.status = falcon.HTTP_204


class SiteGrantLink:
    def __init__(self, catalog: SiteCatalog) -> None:
        self.catalog = catalog

    @superadmin
    @site_guard
    def on_put(self, req: falcon.Request, resp: falcon.Response, slug: str, user_id: int) -> None:
        created = self.catalog.grant(req.context.site, user_or_404(user_id), actor_of(req))
        resp.status = falcon.HTTP_201 if created else falcon.HTTP_200
        resp.media = {"site": slug, "user_id": user_id}

    @superadmin
    @site_guard
    def on_delete(self, req: falcon.Request, resp: falcon.Response, slug: str, user_id: int) -> None:
        self.catalog.revoke(req.context.site, user_id, actor_of(req))
        resp.status = falcon.HTTP_204
