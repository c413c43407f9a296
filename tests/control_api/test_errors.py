"""Every error leaves as JSON {"title", "description"} with its status, and headers hold."""

from __future__ import annotations

import logging

import falcon.testing
import pytest

from control_api.app import create_app
from control_api.authz import public
from control_api.db import open_database
from control_api.settings import load_settings
from control_api.wiring import build_deps

JSON = {"Content-Type": "application/json"}


def assert_json_error(result, status: int) -> dict:
    assert result.status_code == status
    assert result.headers["Content-Type"] == "application/json"
    assert set(result.json) == {"title", "description"}
    assert result.json["description"]
    return result.json


def test_malformed_json_is_400(client):
    body = assert_json_error(client.simulate_post("/api/auth/login", body="{nope", headers=JSON), 400)
    assert body["title"] == "Malformed JSON"


def test_non_object_json_is_400(client):
    body = assert_json_error(client.simulate_post("/api/auth/login", body="[1]", headers=JSON), 400)
    assert body["description"] == "the body must be a JSON object"


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_wrong_content_type_is_415(client, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    result = client.simulate_post("/api/auth/login", body='{"email": "a"}', headers=headers)
    assert_json_error(result, 415)


def test_body_over_the_limit_is_413(client, settings):
    body = '{"email": "' + "a" * settings.max_body_bytes + '"}'
    assert_json_error(client.simulate_post("/api/auth/login", body=body, headers=JSON), 413)


def test_chunked_body_over_the_limit_is_413(client, settings):
    # No Content-Length: the reader itself must stop at the limit.
    body = ('{"email": "' + "a" * settings.max_body_bytes + '"}').encode()
    result = client.simulate_request(
        "POST", "/api/auth/login", headers={**JSON, "Transfer-Encoding": "chunked"}, body=body,
        extras={"CONTENT_LENGTH": "", "wsgi.input_terminated": True},
    )
    assert_json_error(result, 413)


def test_unknown_route_is_404(client):
    body = assert_json_error(client.simulate_get("/api/nothing-here"), 404)
    assert "openapi" in body["description"]


def test_wrong_method_is_405_with_allow(client):
    result = client.simulate_delete("/api/me")
    assert_json_error(result, 405)
    assert "GET" in result.headers["Allow"]


def test_json_errors_even_when_the_client_asks_for_xml(client):
    result = client.simulate_get("/api/me", headers={"Accept": "application/xml"})
    assert_json_error(result, 401)


class Exploding:
    @public
    def on_get(self, req, resp):
        raise RuntimeError("database password is hunter2hunter2")


def test_unexpected_exceptions_are_500_and_leak_nothing(app, caplog):
    app.add_route("/boom", Exploding())
    client = falcon.testing.TestClient(app)
    with caplog.at_level(logging.ERROR, logger="control_api.errors"):
        result = client.simulate_get("/boom")
    body = assert_json_error(result, 500)
    assert "hunter2" not in result.text and "Traceback" not in result.text
    request_id = result.headers["X-Request-Id"]
    assert request_id in body["description"]
    # The operator gets the trace, tagged with the same request id.
    record = next(r for r in caplog.records if r.name == "control_api.errors")
    assert record.exc_info and "hunter2" in str(record.exc_info[1])


def test_security_headers_and_request_id_on_every_response(client):
    seen = set()
    for result in (client.simulate_get("/healthz"), client.simulate_get("/nope"),
                   client.simulate_post("/api/auth/login", body="x", headers=JSON)):
        assert result.headers["X-Content-Type-Options"] == "nosniff"
        assert result.headers["X-Frame-Options"] == "DENY"
        assert result.headers["Cache-Control"] == "no-store"
        assert "frame-ancestors 'none'" in result.headers["Content-Security-Policy"]
        seen.add(result.headers["X-Request-Id"])
    assert len(seen) == 3


def test_access_log_lines_carry_the_request_id(client, caplog):
    with caplog.at_level(logging.INFO, logger="control_api.access"):
        result = client.simulate_get("/healthz")
    record = next(r for r in caplog.records if r.name == "control_api.access")
    assert record.status == 200 and record.path == "/healthz"
    from control_api.logs import JsonFormatter, request_id_var
    token = request_id_var.set(result.headers["X-Request-Id"])
    try:
        import json
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)
    assert line["request_id"] == result.headers["X-Request-Id"]


def test_healthz_and_readyz(client):
    assert client.simulate_get("/healthz").json == {"status": "ok"}
    assert client.simulate_get("/readyz").json == {"status": "ready"}


def test_readyz_is_503_when_the_store_is_unreachable(clock, fast_hasher):
    from tests.peers.postgres import free_port

    url = f"postgresql://weco@127.0.0.1:{free_port()}/weco"
    settings = load_settings({"FF_ENV": "dev", "FF_DATABASE_URL": url})
    client = falcon.testing.TestClient(
        create_app(build_deps(settings, open_database(url), clock=clock, hasher=fast_hasher))
    )
    body = assert_json_error(client.simulate_get("/readyz"), 503)
    assert body["description"] == "the store is unreachable"


def test_other_routes_answer_503_when_the_store_is_unreachable(clock, fast_hasher):
    from tests.peers.postgres import free_port

    url = f"postgresql://weco@127.0.0.1:{free_port()}/weco"
    settings = load_settings({"FF_ENV": "dev", "FF_DATABASE_URL": url})
    client = falcon.testing.TestClient(
        create_app(build_deps(settings, open_database(url), clock=clock, hasher=fast_hasher))
    )
    result = client.simulate_get("/api/me", headers={"Authorization": "Bearer weco_x"})
    assert assert_json_error(result, 503)["title"] == "Store unavailable"
