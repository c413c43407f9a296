"""The OpenAPI 3.1 document is valid and matches the routes exactly, both ways."""

from __future__ import annotations

import copy

from openapi_spec_validator import validate

from control_api import authz
from control_api.auth.stepup import SCOPES
from control_api.resources.openapi import admin_api_routes, load_document, openapi_path, route_mismatches


def test_served_document_is_valid_openapi_3_1(client):
    result = client.simulate_get("/api/openapi.json")
    assert result.status_code == 200
    document = result.json
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_document_and_routes_match(app):
    assert route_mismatches(app, load_document()) == ([], [])


def test_only_scim_is_left_out_of_the_admin_api_document(app):
    # An explicit exclusion: /scim/v2 (RFC 7644, SCIM tokens, SCIM errors) is not in the
    # admin API's document, every one of its routes is SCIM-token only, and nothing else is left out.
    left_out = {(t, m, r) for t, m, r in authz.iter_routes(app)} - set(admin_api_routes(app))
    assert {t for t, _, _ in left_out} == {
        "/scim/v2/ServiceProviderConfig", "/scim/v2/ResourceTypes", "/scim/v2/ResourceTypes/{name}",
        "/scim/v2/Schemas", "/scim/v2/Schemas/{urn}", "/scim/v2/.search", "/scim/v2/Users",
        "/scim/v2/Users/.search", "/scim/v2/Users/{scim_id}", "/scim/v2/Groups", "/scim/v2/Groups/.search",
        "/scim/v2/Groups/{scim_id}"}
    assert {authz.access_of(r) for _, _, r in left_out} == {authz.Access.SCIM}
    assert not any(path.startswith("/scim") for path in load_document()["paths"])


class Extra:
    @authz.authenticated
    def on_post(self, req, resp):
        resp.media = {}


def test_a_route_missing_from_the_document_is_caught(app):
    app.add_route("/api/extra/{id:int}", Extra())
    assert route_mismatches(app, load_document()) == (["POST /api/extra/{id}"], [])


def test_a_documented_route_that_does_not_exist_is_caught(app):
    document = copy.deepcopy(load_document())
    document["paths"]["/api/ghost"] = {"get": {"responses": {"200": {"description": "x"}}}}
    document["paths"]["/api/me"]["delete"] = {"responses": {"200": {"description": "x"}}}
    assert route_mismatches(app, document) == ([], ["DELETE /api/me", "GET /api/ghost"])


def test_public_routes_are_documented_as_needing_no_credentials(app):
    document = load_document()
    for template, method, responder in admin_api_routes(app):
        operation = document["paths"][openapi_path(template)][method.lower()]
        is_public = authz.access_of(responder) is authz.Access.PUBLIC
        assert (operation.get("security") == []) == is_public, f"{method} {template}"


def test_every_operation_declares_the_answers_any_request_can_get(client):
    from control_api.resources.openapi import BODY_RESPONSES, COMMON_RESPONSES, PATH_RESPONSES

    document = client.simulate_get("/api/openapi.json").json
    for path, item in document["paths"].items():
        for method, operation in item.items():
            declared = set(operation["responses"])
            assert set(COMMON_RESPONSES) <= declared, f"{method} {path}"
            if "requestBody" in operation:
                assert set(BODY_RESPONSES) <= declared, f"{method} {path}"
            if "{" in path:
                assert set(PATH_RESPONSES) <= declared, f"{method} {path}"


def test_request_bodies_name_every_field_they_accept(client):
    document = client.simulate_get("/api/openapi.json").json
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if "requestBody" not in operation:
                continue
            for media_type, content in operation["requestBody"]["content"].items():
                schema = content["schema"]
                if media_type in ("application/pdf", "application/gzip"):  # a file, not an object with fields
                    continue
                for variant in schema.get("oneOf", [schema]):
                    assert variant.get("additionalProperties") is False, f"{method} {path} {media_type}"


def test_the_event_stream_is_declared_as_server_sent_events(client):
    document = client.simulate_get("/api/openapi.json").json
    answer = document["paths"]["/api/runs/{run_id}/events/stream"]["get"]["responses"]["200"]
    assert list(answer["content"]) == ["text/event-stream"]


def test_the_step_up_scopes_documented_are_the_ones_the_code_takes():
    body = load_document()["paths"]["/api/auth/step-up"]["post"]["requestBody"]
    assert tuple(body["content"]["application/json"]["schema"]["properties"]["scope"]["enum"]) == SCOPES
