"""Every route declares who may call it; the router walk catches one that does not."""

from __future__ import annotations

import pytest

from control_api import authz
from control_api.app import check_declared


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
