"""Sites, their hosts and grants: superadmins manage them; a granted admin may read
the sites granted to them (and launch runs on them, see runs.py)."""

from __future__ import annotations

import falcon

from control_api.auth.stepup import StepUp
from control_api.authz import authenticated, destructive, superadmin
from control_api.body import read_json
from control_api.models import Site, SiteGrant, User
from control_api.resources.common import actor_of, conflict, invalid, iso
from control_api.resources.hosts import host_json, host_or_404
from control_api.sites.catalog import Conflict, SiteCatalog, find_site, may_use_site, site_hosts
from control_api.sites.validate import InvalidInput


def site_json(site: Site) -> dict:
    return {"slug": site.slug, "domain": site.domain, "created_at": iso(site.created_at),
            "hosts": [host_json(h) for h in site_hosts(site)]}


def site_or_404(slug: str, user: User | None = None) -> Site:
    site = find_site(slug)
    # An admin without a grant learns nothing, not even that the site exists.
    if site is None or (user is not None and not may_use_site(user, site)):
        raise falcon.HTTPNotFound(title="No such site", description=f"there is no site '{slug}' you may see")
    return site


class Sites:
    def __init__(self, catalog: SiteCatalog) -> None:
        self.catalog = catalog

    @authenticated
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        user = req.context.principal.user
        sites = Site.select().order_by(Site.slug)
        if user.role != "superadmin":
            sites = sites.join(SiteGrant).where(SiteGrant.user == user)
        resp.media = {"sites": [site_json(s) for s in sites]}

    @superadmin
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            site = self.catalog.create_site(read_json(req, ("slug", "domain")), actor_of(req))
        except InvalidInput as exc:
            raise invalid(exc) from None
        except Conflict as exc:
            raise conflict(exc) from None
        resp.status = falcon.HTTP_201
        resp.media = site_json(site)


class SiteItem:
    def __init__(self, catalog: SiteCatalog, step_up: StepUp) -> None:
        self.catalog, self.step_up = catalog, step_up

    @authenticated
    def on_get(self, req: falcon.Request, resp: falcon.Response, slug: str) -> None:
        resp.media = site_json(site_or_404(slug, req.context.principal.user))

    @superadmin
    @destructive("site.delete")
    def on_delete(self, req: falcon.Request, resp: falcon.Response, slug: str) -> None:
        try:
            self.catalog.delete_site(site_or_404(slug), actor_of(req))
        except Conflict as exc:
            raise conflict(exc) from None
        resp.status = falcon.HTTP_204


class SiteHostLink:
    def __init__(self, catalog: SiteCatalog) -> None:
        self.catalog = catalog

    @superadmin
    def on_put(self, req: falcon.Request, resp: falcon.Response, slug: str, host_id: int) -> None:
        created = self.catalog.attach(site_or_404(slug), host_or_404(host_id), actor_of(req))
        resp.status = falcon.HTTP_201 if created else falcon.HTTP_200
        resp.media = site_json(site_or_404(slug))

    @superadmin
    def on_delete(self, req: falcon.Request, resp: falcon.Response, slug: str, host_id: int) -> None:
        if not self.catalog.detach(site_or_404(slug), host_or_404(host_id), actor_of(req)):
            raise falcon.HTTPNotFound(title="Not attached", description="this host does not serve this site")
        resp.status = falcon.HTTP_204


class SiteGrantLink:
    def __init__(self, catalog: SiteCatalog) -> None:
        self.catalog = catalog

    @superadmin
    def on_put(self, req: falcon.Request, resp: falcon.Response, slug: str, user_id: int) -> None:
        user = User.get_or_none(User.id == user_id)
        if user is None:
            raise falcon.HTTPNotFound(title="No such user", description=f"there is no user {user_id}")
        created = self.catalog.grant(site_or_404(slug), user, actor_of(req))
        resp.status = falcon.HTTP_201 if created else falcon.HTTP_200
        resp.media = {"site": slug, "user_id": user_id}

    @superadmin
    def on_delete(self, req: falcon.Request, resp: falcon.Response, slug: str, user_id: int) -> None:
        user = User.get_or_none(User.id == user_id)
        if user is None or not self.catalog.revoke(site_or_404(slug), user, actor_of(req)):
            raise falcon.HTTPNotFound(title="No such grant",
                                      description="this user has no grant on this site")
        resp.status = falcon.HTTP_204
