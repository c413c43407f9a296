"""Every route declares who may call it; the router walk catches one that does not."""

from __future__ import annotations

import pathlib
import re

import pytest

from control_api import authz
from control_api.app import check_declared
from control_api.models import AuditEvent
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


# -- guards on routes that name a site or a host ---------------------------------------


class Unguarded:
    @authz.authenticated
    def on_get(self, req, resp, slug):
        resp.media = {}


def test_every_route_naming_a_site_or_host_has_its_guard(app):
    assert authz.unguarded_routes(app) == []
    guarded = {f"{m} {t}" for t, m, r in authz.iter_routes(app) if getattr(r, authz.GUARD_ATTR, None)}
    assert "DELETE /api/sites/{slug}/hosts/{host_id:id}" in guarded
    app.add_route("/api/sites/{slug}/leak", Unguarded())
    assert authz.unguarded_routes(app) == ["GET /api/sites/{slug}/leak"]
    with pytest.raises(RuntimeError, match="without a site or host guard"):
        check_declared(app)


@pytest.fixture
def tokens(deps, superadmin, admin):
    from control_api.wiring import build_credentials
    from tests.control_api.resources.conftest import bearer

    credentials = build_credentials(deps)
    return (bearer(credentials.create_token(superadmin, "r", None, ACTOR)[0]),
            bearer(credentials.create_token(admin, "a", None, ACTOR)[0]))


def test_an_admin_sees_and_uses_only_granted_hosts(client, tokens, admin):
    root, adm = tokens
    ids = [client.simulate_post("/api/hosts", json={"name": n, "connection": "local"},
                                headers=root).json["id"] for n in ("h1", "h2")]
    assert client.simulate_get("/api/hosts", headers=adm).json["hosts"] == []
    assert client.simulate_get(f"/api/hosts/{ids[0]}", headers=adm).status_code == 404
    assert client.simulate_put(f"/api/hosts/{ids[0]}/grants/{admin.id}", headers=adm).status_code == 403
    assert client.simulate_put(f"/api/hosts/{ids[0]}/grants/{admin.id}", headers=root).status_code == 201
    assert client.simulate_put(f"/api/hosts/{ids[0]}/grants/{admin.id}", headers=root).status_code == 200
    assert [h["id"] for h in client.simulate_get("/api/hosts", headers=adm).json["hosts"]] == [ids[0]]
    assert client.simulate_get(f"/api/hosts/{ids[0]}", headers=adm).status_code == 200
    assert client.simulate_get(f"/api/hosts/{ids[1]}", headers=adm).status_code == 404
    assert client.simulate_delete(f"/api/hosts/{ids[0]}", headers=adm).status_code == 403
    assert client.simulate_delete(f"/api/hosts/{ids[0]}/grants/{admin.id}", headers=root).status_code == 204
    assert client.simulate_delete(f"/api/hosts/{ids[0]}/grants/{admin.id}", headers=root).status_code == 404
    assert client.simulate_get(f"/api/hosts/{ids[0]}", headers=adm).status_code == 404
    audited = [e.action for e in AuditEvent.select() if e.action.startswith("host.")]
    assert audited.count("host.grant") == 1 and audited.count("host.revoke") == 1


def explain(client, root, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return client.simulate_get(f"/api/authz/explain?{query}", headers=root)


def test_explain_names_the_rule_and_agrees_with_the_guards(client, tokens, two_sites, admin, superadmin,
                                                           deps):
    root, adm = tokens
    for slug in ("mine", "other"):
        answer = explain(client, root, user=admin.id, action="site.read", target=f"site:{slug}").json
        served = client.simulate_get(f"/api/sites/{slug}", headers=adm).status_code
        assert answer["allowed"] == (served == 200)
        assert answer["rule"] == ("site-grant" if slug == "mine" else "no-site-grant")
    assert explain(client, root, user=admin.id, action="site.delete", target="site:mine").json["rule"] == \
        "superadmin-only"
    top = explain(client, root, user=superadmin.id, action="site.delete", target="site:mine").json
    assert top["allowed"] and top["rule"] == "superadmin" and top["four_eyes"] is False
    from control_api.wiring import build_credentials, build_users

    build_users(deps).disable(admin, ACTOR, build_credentials(deps))
    assert explain(client, root, user=admin.id, action="site.read", target="site:mine").json["rule"] == \
        "account-disabled"


def test_explain_refuses_wrong_questions_and_plain_admins(client, tokens, two_sites, admin):
    root, adm = tokens
    assert explain(client, root, user=admin.id, action="site.fly", target="site:mine").status_code == 400
    assert explain(client, root, user=admin.id, action="site.read", target="host:1").status_code == 400
    assert explain(client, root, user=admin.id, action="site.read", target="site:none").status_code == 404
    huge = explain(client, root, user=admin.id, action="host.read", target="host:99999999999999999999")
    assert huge.status_code == 404
    assert explain(client, root, user=2**62, action="site.read", target="site:mine").status_code == 404
    assert explain(client, root, action="site.read", target="site:mine").status_code == 400
    assert explain(client, adm, user=admin.id, action="site.read", target="site:mine").status_code == 403
