"""Who may do what: the route declarations, and the role and grant policy behind them.

Every responder declares who may call it, and undeclared ones are refused.

The declaration is a decorator (`public`, `authenticated`, `superadmin`, `scim`) that both
guards the responder (a Falcon `before` hook) and marks it, so `undeclared_routes`
can walk Falcon's router and list responders without one. `create_app` refuses to
build an app with any, and a test walks the real app. Later grants (per site, per
host) are further levels on this same mechanism.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from collections.abc import Callable, Iterator

import falcon
import peewee

from control_api.errors import InvalidInput, NotFound
from control_api.models import Host, HostGrant, Run, Site, SiteGrant, User
from control_api.resources.common import actor_of

ACCESS_ATTR = "__weco_access__"


class Access(enum.Enum):
    PUBLIC = "public"
    AUTHENTICATED = "authenticated"
    SUPERADMIN = "superadmin"
    SCIM = "scim"  # a SCIM provisioning token (control_api/scim/tokens.py), never a user


def _guard(level: Access) -> Callable:
    def hook(req: falcon.Request, resp: falcon.Response, resource: object, params: dict) -> None:
        if level is Access.PUBLIC:
            return
        if level is Access.SCIM:
            # The resource's ScimTokens checks the bearer (throttled, audited) or refuses.
            req.context.scim_token = resource.scim_tokens.authenticate(req)
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
scim = _guard(Access.SCIM)


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


def four_eyes(action: str, params_of: Callable[[falcon.Request, dict], dict]) -> Callable:
    """Mark a responder covered by four-eyes approval (FF_JIT_REQUIRED=1). The resource
    provides `self.approvals` (control_api.approvals.Approvals). The request's approval
    is admitted first, then consumed in one transaction with what the responder changes,
    so an action that fails leaves its approval unused. Innermost, under the guards."""

    def decorate(responder: Callable) -> Callable:
        @functools.wraps(responder)
        def guarded(resource, req: falcon.Request, resp: falcon.Response, **params) -> None:
            gate = resource.approvals
            if not gate.required:
                return responder(resource, req, resp, **params)
            actor = actor_of(req)
            request_id = gate.admit(req.context.principal.user, action, params_of(req, params),
                                    req.get_header(gate.header), actor)
            with gate.audit.mutation():
                gate.consume(request_id, actor)
                return responder(resource, req, resp, **params)

        guarded.__weco_four_eyes__ = action
        return guarded

    return decorate


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


@dataclasses.dataclass(frozen=True)
class Decision:
    allowed: bool
    rule: str  # a stable name an auditor can cite
    reason: str


# action -> (the kind of target it acts on, whether only a superadmin may take it)
ACTIONS: dict[str, tuple[str, bool]] = {
    "site.read": ("site", False),
    "site.run": ("site", False),  # deploy_site, rollback_site
    "site.manage": ("site", True),  # attach and detach hosts, grant and revoke
    "site.delete": ("site", True),
    "host.read": ("host", False),
    "host.run": ("host", False),  # host playbooks: check_hosts, host_baseline ...
    "host.manage": ("host", True),  # grant and revoke
    "host.delete": ("host", True),
    "host.rotate_credentials": ("host", True),
    "host.repin_key": ("host", True),
}


def is_superadmin(user: User) -> bool:
    return user.role == "superadmin"


def active_superadmins() -> peewee.ModelSelect:
    return User.select().where(User.role == "superadmin", User.disabled_at.is_null())


def decide(user: User, action: str, target: Site | Host) -> Decision:
    """Whether `user` may take `action` on `target`, and by which rule. The guards below
    call this, and so does /api/authz/explain: what an auditor is told is what runs."""
    kind, superadmin_only = ACTIONS[action]
    if user.disabled_at is not None:
        return Decision(False, "account-disabled", "a disabled account may do nothing")
    if is_superadmin(user):
        return Decision(True, "superadmin", "a superadmin may act on every site and host")
    if superadmin_only:
        return Decision(False, "superadmin-only", f"{action} needs the superadmin role")
    if kind == "site":
        granted = SiteGrant.select().where(SiteGrant.site == target, SiteGrant.user == user).exists()
        return (Decision(True, "site-grant", f"the user is granted site '{target.slug}'") if granted else
                Decision(False, "no-site-grant", f"the user has no grant on site '{target.slug}'"))
    granted = HostGrant.select().where(HostGrant.host == target, HostGrant.user == user).exists()
    return (Decision(True, "host-grant", f"the user is granted host '{target.name}'") if granted else
            Decision(False, "no-host-grant", f"the user has no grant on host '{target.name}'"))


def explain(user_id: int, action: str, target: str) -> Decision:
    """decide() for an auditor's question: a user id, an action name, and a target
    written `site:SLUG` or `host:ID`. InvalidInput or NotFound when the question is wrong."""
    if action not in ACTIONS:
        raise InvalidInput(f"'action' must be one of: {', '.join(sorted(ACTIONS))}")
    kind, _, name = target.partition(":")
    if kind != ACTIONS[action][0]:
        raise InvalidInput(f"{action} acts on a {ACTIONS[action][0]}: 'target' must be "
                           f"{'site:SLUG' if ACTIONS[action][0] == 'site' else 'host:ID'}")
    user = User.get_or_none(User.id == user_id)
    if user is None:
        raise NotFound(f"there is no user {user_id}", title="No such user")
    if kind == "site":
        found = Site.get_or_none(Site.slug == name)
    else:
        digits = name.isascii() and name.isdigit() and len(name) <= 18
        found = Host.get_or_none(Host.id == int(name)) if digits else None
    if found is None:
        raise NotFound(f"there is no {target}", title=f"No such {kind}")
    return decide(user, action, found)


def may_use_site(user: User, site: Site) -> bool:
    return decide(user, "site.run", site).allowed


def visible_sites(user: User) -> peewee.ModelSelect:
    sites = Site.select()
    if not is_superadmin(user):
        sites = sites.join(SiteGrant).where(SiteGrant.user == user)
    return sites


def visible_hosts(user: User) -> peewee.ModelSelect:
    hosts = Host.select()
    if not is_superadmin(user):
        hosts = hosts.join(HostGrant).where(HostGrant.user == user)
    return hosts


def visible_runs(user: User) -> peewee.ModelSelect:
    """An admin sees the runs on sites granted to them and the runs they asked for."""
    runs = Run.select()
    if not is_superadmin(user):
        granted = SiteGrant.select(SiteGrant.site).where(SiteGrant.user == user)
        runs = runs.where(Run.site.in_(granted) | (Run.requested_by == user))
    return runs


def usable_hosts(user: User, host_ids: list[int]) -> list[int]:
    """The ids among `host_ids` that `user` may run host playbooks on."""
    return [h.id for h in visible_hosts(user).where(Host.id.in_(host_ids))]


def site_for(user: User, slug: str, action: str = "site.read") -> Site:
    """The site for a caller who may take `action` on it. A caller without a grant learns
    nothing, not even that the site exists: 404, as for a site that does not."""
    site = Site.get_or_none(Site.slug == slug)
    if site is None or not decide(user, action, site).allowed:
        raise NotFound(f"there is no site '{slug}' you may see", title="No such site")
    return site


def host_for(user: User, host_id: int, action: str = "host.read") -> Host:
    host = Host.get_or_none(Host.id == host_id)
    if host is None or not decide(user, action, host).allowed:
        raise NotFound(f"there is no host {host_id} you may see", title="No such host")
    return host


# -- guards for routes that name a site or a host -----------------------------------

GUARD_ATTR = "__weco_guard__"
_GUARDED_PARAMS = {"{slug}": "site", "{host_id": "host"}


def _target_guard(kind: str) -> Callable:
    def hook(req: falcon.Request, resp: falcon.Response, resource: object, params: dict) -> None:
        user = req.context.principal.user
        if kind == "site":
            req.context.site = site_for(user, params["slug"])
        else:
            req.context.host = host_for(user, params["host_id"])

    def decorate(responder: Callable) -> Callable:
        guarded = falcon.before(hook)(responder)
        setattr(guarded, GUARD_ATTR, getattr(responder, GUARD_ATTR, frozenset()) | {kind})
        return guarded

    return decorate


# Under the access declaration: `req.context.site` / `req.context.host`, or 404.
site_guard = _target_guard("site")
host_guard = _target_guard("host")


def unguarded_routes(app: falcon.App) -> list[str]:
    """Routes that name a site or a host in their path without the guard for it."""
    missing = []
    for template, method, responder in iter_routes(app):
        for marker, kind in _GUARDED_PARAMS.items():
            if marker in template and kind not in getattr(responder, GUARD_ATTR, ()):
                missing.append(f"{method} {template}")
    return sorted(missing)
