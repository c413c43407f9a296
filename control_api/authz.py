"""Who may do what: the route declarations, and the role and grant policy behind them.

Every responder declares who may call it, and undeclared ones are refused.

The declaration is a decorator (`public`, `authenticated`, `superadmin`) that both
guards the responder (a Falcon `before` hook) and marks it, so `undeclared_routes`
can walk Falcon's router and list responders without one. `create_app` refuses to
build an app with any, and a test walks the real app. Later grants (per site, per
host) are further levels on this same mechanism.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator

import falcon
import peewee

from control_api.errors import Forbidden
from control_api.models import Run, Site, SiteGrant, User

ACCESS_ATTR = "__weco_access__"


class Access(enum.Enum):
    PUBLIC = "public"
    AUTHENTICATED = "authenticated"
    SUPERADMIN = "superadmin"


def _guard(level: Access) -> Callable:
    def hook(req: falcon.Request, resp: falcon.Response, resource: object, params: dict) -> None:
        if level is Access.PUBLIC:
            return
        principal = req.context.principal
        if principal is None:
            raise falcon.HTTPUnauthorized(
                title="Authentication required",
                description="log in, or send an API token as 'Authorization: Bearer ...'",
            )
        if level is Access.SUPERADMIN and not is_superadmin(principal.user):
            raise falcon.HTTPForbidden(
                title="Forbidden", description="this action needs the superadmin role"
            )

    def decorate(responder: Callable) -> Callable:
        guarded = falcon.before(hook)(responder)
        setattr(guarded, ACCESS_ATTR, level)
        return guarded

    return decorate


public = _guard(Access.PUBLIC)
authenticated = _guard(Access.AUTHENTICATED)
superadmin = _guard(Access.SUPERADMIN)


def iter_routes(app: falcon.App) -> Iterator[tuple[str, str, Callable]]:
    """(uri_template, HTTP method, responder) for every responder a resource defines.

    Falcon fills the method map with its own 405 and OPTIONS responders; those are
    not bound to the resource and are skipped.
    """
    stack = list(app._router._roots)
    while stack:
        node = stack.pop()
        stack.extend(node.children or ())
        for method, responder in (node.method_map or {}).items():
            if getattr(responder, "__self__", None) is node.resource:
                yield node.uri_template, method, responder


def access_of(responder: Callable) -> Access | None:
    return getattr(responder, ACCESS_ATTR, None)


def undeclared_routes(app: falcon.App) -> list[str]:
    return sorted(
        f"{method} {template}"
        for template, method, responder in iter_routes(app)
        if access_of(responder) is None
    )


def destructive(scope: str) -> Callable:
    """Mark a responder destructive: with FF_REQUIRE_STEP_UP=1 it needs a step-up token
    for `scope`. The resource provides `self.step_up` (control_api.auth.stepup.StepUp).
    Put it under the access declaration, so who may call is checked first."""

    def hook(req: falcon.Request, resp: falcon.Response, resource, params: dict) -> None:
        resource.step_up.check(req, scope)

    def decorate(responder: Callable) -> Callable:
        guarded = falcon.before(hook)(responder)
        guarded.__weco_scope__ = scope
        return guarded

    return decorate


# -- role and grant policy: the one place that says who may see and act on what ----------


def is_superadmin(user: User) -> bool:
    return user.role == "superadmin"


def may_use_site(user: User, site: Site) -> bool:
    """A superadmin may use every site; an admin only the sites granted to them."""
    if is_superadmin(user):
        return True
    return SiteGrant.select().where(SiteGrant.site == site, SiteGrant.user == user).exists()


def visible_sites(user: User) -> peewee.ModelSelect:
    sites = Site.select()
    if not is_superadmin(user):
        sites = sites.join(SiteGrant).where(SiteGrant.user == user)
    return sites


def visible_runs(user: User) -> peewee.ModelSelect:
    """An admin sees the runs on sites granted to them and the runs they asked for."""
    runs = Run.select()
    if not is_superadmin(user):
        granted = SiteGrant.select(SiteGrant.site).where(SiteGrant.user == user)
        runs = runs.where(Run.site.in_(granted) | (Run.requested_by == user))
    return runs


def require_host_runs(user: User) -> None:
    """Runs on listed hosts (not through a site) need a superadmin."""
    if not is_superadmin(user):
        raise Forbidden("runs on hosts need the superadmin role")
