"""Every route declares who may call it; the router walk catches one that does not."""

from __future__ import annotations

import pathlib
import re

import pytest

from control_api import authz
from control_api.app import check_declared
from tests.conftest import ACTOR


class Undeclared:
    def on_get(self, req, resp):
        resp.media = {"secret": True}


class HalfDeclared:
    @authz.superadmin
    def on_get(self, req, resp):
        resp.media = {}

    def on_delete(self, req, resp):
        resp.media = {}


def test_every_route_of_the_real_app_declares_its_access(app):
    routes = list(authz.iter_routes(app))
    assert len(routes) >= 7
    assert authz.undeclared_routes(app) == []
    levels = {f"{m} {t}": authz.access_of(r) for t, m, r in routes}
    assert levels["GET /healthz"] is authz.Access.PUBLIC
    assert levels["POST /api/auth/login"] is authz.Access.PUBLIC
    assert levels["GET /api/me"] is authz.Access.AUTHENTICATED
    assert levels["GET /api/users"] is authz.Access.SUPERADMIN


def test_the_walk_fails_on_a_route_added_without_a_declaration(app):
    app.add_route("/api/undeclared", Undeclared())
    app.add_route("/api/half/{id:int}", HalfDeclared())
    assert authz.undeclared_routes(app) == ["DELETE /api/half/{id:int}", "GET /api/undeclared"]
    with pytest.raises(RuntimeError, match="routes without an access declaration"):
        check_declared(app)


def test_falcon_default_responders_are_not_counted(app):
    # OPTIONS and 405 responders are Falcon's, not ours: they are skipped, not flagged.
    methods = {m for _, m, _ in authz.iter_routes(app)}
    assert "OPTIONS" not in methods


# -- the role and grant policy, called without HTTP ----------------------------------


@pytest.fixture
def two_sites(deps, superadmin, admin):
    from control_api.wiring import build_catalog

    catalog = build_catalog(deps)
    mine = catalog.create_site({"slug": "mine", "domain": "mine.example.com"}, ACTOR)
    other = catalog.create_site({"slug": "other", "domain": "other.example.com"}, ACTOR)
    catalog.grant(mine, admin, ACTOR)
    return mine, other


def test_an_admin_may_use_only_granted_sites_and_a_superadmin_every_one(two_sites, admin, superadmin):
    mine, other = two_sites
    assert authz.may_use_site(admin, mine) and not authz.may_use_site(admin, other)
    assert authz.may_use_site(superadmin, other)
    assert [s.slug for s in authz.visible_sites(admin)] == ["mine"]
    assert sorted(s.slug for s in authz.visible_sites(superadmin)) == ["mine", "other"]


def test_an_admin_sees_runs_on_granted_sites_and_the_runs_they_asked_for(deps, two_sites, admin, superadmin):
    from control_api.runs.queue import RunRequest
    from control_api.wiring import build_queue

    mine, other = two_sites
    queue = build_queue(deps)
    on_mine = queue.request(superadmin, RunRequest("deploy_site", {"site": "mine"}, {}, mine.id, "mine"),
                            None, ACTOR)[0]
    on_other = queue.request(superadmin, RunRequest("deploy_site", {"site": "other"}, {}, other.id, "other"),
                             None, ACTOR)[0]
    asked = queue.request(admin, RunRequest("check_hosts", {"hosts": [1]}, {}, None, None), None, ACTOR)[0]
    assert {r.id for r in authz.visible_runs(admin)} == {on_mine.id, asked.id}
    assert {r.id for r in authz.visible_runs(superadmin)} == {on_mine.id, on_other.id, asked.id}


def test_runs_on_listed_hosts_need_a_superadmin(admin, superadmin):
    from control_api.errors import Forbidden

    authz.require_host_runs(superadmin)
    with pytest.raises(Forbidden, match="superadmin"):
        authz.require_host_runs(admin)


# -- the shape that keeps policy here and HTTP in the resources ----------------------

SOURCE = pathlib.Path(authz.__file__).parent


def test_no_module_but_authz_tests_a_role_by_name():
    pattern = re.compile(r"""role\s*[!=]=\s*["']superadmin["']""")
    found = [str(p.relative_to(SOURCE)) for p in SOURCE.rglob("*.py") if pattern.search(p.read_text())]
    assert found == ["authz.py"]


def test_resources_do_http_only_no_store_queries():
    # A model's class methods (Site.select(), Run.get_by_id() ...) or a filter (.where()).
    query = re.compile(r"\b[A-Z][A-Za-z]+\.(select|get_or_none|get_by_id|get|create|update|delete|insert)\(|"
                       r"\.where\(")
    found = {str(p.name): query.findall(p.read_text()) for p in (SOURCE / "resources").glob("*.py")}
    assert {name: calls for name, calls in found.items() if calls} == {}


def test_resources_translate_no_exceptions_one_by_one():
    # One hierarchy (errors.ApiError), one handler: no try/except mapping in a resource.
    found = [p.name for p in (SOURCE / "resources").glob("*.py")
             if re.search(r"^\s+except ", p.read_text(), re.M)]
    assert found == ["health.py"]  # readiness answers 503 when the store is down: that is its job
