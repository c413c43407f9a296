"""Request input is read in one place (control_api/body.py): odd input gets a declared
4xx, never a 500 nor a driver's message, on both store backends."""

from __future__ import annotations

import json
import logging

import falcon.testing
import peewee
import pytest

from control_api.authz import public
from control_api.models import ApiToken, AuditEvent, AuditQueue, Session
from control_api.wiring import build_credentials
from tests.conftest import ACTOR, PASSWORD

JSON = {"Content-Type": "application/json"}
BIG = 2**63  # one past SQLite's (and PostgreSQL's bigint) largest integer


@pytest.fixture
def root(deps, superadmin) -> dict:
    value, _ = build_credentials(deps).create_token(superadmin, "root", None, ACTOR)
    return {"Authorization": f"Bearer {value}"}


def assert_refused(result, status: int = 400) -> dict:
    assert result.status_code == status, result.text
    assert result.headers["Content-Type"] == "application/json"
    assert set(result.json) == {"title", "description"}
    return result.json


def login_body(**fields) -> dict:
    return {"email": "admin@example.test", "password": PASSWORD, **fields}


def post_json(client, path: str, data: dict, headers: dict | None = None):
    """As a client sends it: json.dumps escapes a lone surrogate as \\udfff (the test
    client's json= cannot encode one)."""
    return client.simulate_post(path, body=json.dumps(data), headers={**JSON, **(headers or {})})


# -- JSON bodies -------------------------------------------------------------------

def test_deeply_nested_json_is_400(client):
    nested = "[" * 50_000 + "]" * 50_000
    body = '{"email": "a@b.c", "password": ' + nested + "}"
    result = client.simulate_post("/api/auth/login", body=body, headers=JSON)
    assert "nested" in assert_refused(result)["description"]


def test_modest_nesting_is_still_read(client, root):
    # Host vars are an object inside the body: two levels are normal.
    result = client.simulate_post("/api/hosts", json={"name": "h", "address": "10.0.0.1",
                                                      "vars": {"site_deploy_root": []}}, headers=root)
    assert result.status_code == 400
    assert "nested" not in result.json["description"]


@pytest.mark.parametrize("field", ["email", "password"])
@pytest.mark.parametrize("text", ["\udfff", "a\ud800b", "x\x00y"])
def test_login_text_with_a_lone_surrogate_or_nul_is_400(client, admin, field, text):
    result = post_json(client, "/api/auth/login", login_body(**{field: text}))
    assert_refused(result)
    assert Session.select().count() == 0


def test_object_keys_are_checked_too(client, admin):
    result = post_json(client, "/api/auth/login", {**login_body(), "\udfff": 1})
    assert_refused(result)


@pytest.mark.parametrize("number", ["9223372036854775808", "-9223372036854775809", "1e400", "NaN"])
def test_numbers_outside_the_stores_range_are_400(client, root, number):
    body = '{"playbook": "check_hosts", "hosts": [' + number + "]}"
    result = client.simulate_post("/api/runs", body=body, headers={**JSON, **root})
    assert_refused(result)


def test_fields_a_route_does_not_read_are_refused(client, admin):
    result = post_json(client, "/api/auth/login", {**login_body(), "remember_me": True})
    assert "remember_me" in assert_refused(result)["description"]


def test_integral_numbers_count_as_integers(client, root):
    # JSON Schema calls 2.0 an integer; so does the reader (a host id, here).
    body = '{"playbook": "check_hosts", "hosts": [2.0]}'
    result = client.simulate_post("/api/runs", body=body, headers={**JSON, **root})
    assert "no such host(s) you may use: 2" in assert_refused(result)["description"]


@pytest.mark.parametrize("content_type", ["application/json; charset=latin-1",
                                          "application/json; charset=utf-16"])
def test_a_charset_other_than_utf8_is_415(client, admin, content_type):
    body = json.dumps(login_body())
    result = client.simulate_post("/api/auth/login", body=body, headers={"Content-Type": content_type})
    assert_refused(result, 415)


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8",
                                          "application/json;charset=UTF-8", "Application/JSON"])
def test_utf8_json_is_read(client, admin, content_type):
    body = json.dumps(login_body())
    result = client.simulate_post("/api/auth/login", body=body, headers={"Content-Type": content_type})
    assert result.status_code == 200


def login_session(client) -> dict:
    logged_in = client.simulate_post("/api/auth/login", json=login_body())
    cookie = logged_in.cookies["weco_session"].value
    return {"Cookie": f"weco_session={cookie}", "X-CSRF-Token": logged_in.json["csrf_token"]}


@pytest.mark.parametrize("name", ["a\x00b", "a\udfffb"])
def test_a_token_name_with_nul_or_a_surrogate_is_400_and_stores_nothing(client, admin, name):
    result = post_json(client, "/api/tokens", {"name": name}, login_session(client))
    body = assert_refused(result)
    assert "literal" not in body["description"] and "encode" not in body["description"]
    assert ApiToken.select().count() == 0


# -- paths, queries and headers ----------------------------------------------------

@pytest.fixture
def run_id(client, root):
    client.simulate_post("/api/hosts", json={"name": "local", "connection": "local"}, headers=root)
    result = client.simulate_post("/api/runs", json={"playbook": "check_hosts", "hosts": [1]}, headers=root)
    assert result.status_code == 201, result.json
    # A finished run, so that its event stream ends.
    client.simulate_post(f"/api/runs/{result.json['id']}/cancel", headers=root)
    return result.json["id"]


@pytest.mark.parametrize("method, path", [
    ("DELETE", f"/api/tokens/{BIG}"),
    ("GET", f"/api/runs/{BIG}"),
    ("POST", f"/api/runs/{BIG}/cancel"),
    ("GET", f"/api/runs/{BIG}/events"),
    ("GET", f"/api/runs/{BIG}/events/stream"),
    ("GET", f"/api/hosts/{BIG}"),
    ("DELETE", f"/api/hosts/{BIG}"),
    ("PUT", f"/api/sites/acme/hosts/{BIG}"),
    ("PUT", f"/api/sites/acme/grants/{BIG}"),
    ("DELETE", f"/api/sessions/{BIG}"),
    ("DELETE", f"/api/me/sessions/{BIG}"),
    ("GET", "/api/runs/-1"),
    ("GET", "/api/runs/0"),
    ("GET", "/api/runs/+1"),
    ("GET", "/api/runs/%D9%A3"),  # an Arabic-Indic three: int() reads it, we do not
])
def test_path_ids_outside_the_stores_range_are_404(client, root, method, path):
    assert_refused(client.simulate_request(method, path, headers=root), 404)


@pytest.mark.parametrize("path, query", [
    ("/api/audit", f"cursor={BIG}"),
    ("/api/audit", "limit=99999999999999999999"),
    ("/api/runs", f"before={BIG}"),
    ("/api/runs", "limit=%D9%A3"),
])
def test_query_integers_outside_their_range_are_400(client, root, path, query):
    assert_refused(client.simulate_get(path, query_string=query, headers=root))


@pytest.mark.parametrize("query", ["actor=%00", "action=a%00b", "target=%00%00", "a%00=1"])
def test_query_text_with_nul_or_a_bad_byte_is_400(client, root, query):
    assert_refused(client.simulate_get("/api/audit", query_string=query, headers=root))


def test_a_nul_in_the_path_is_400(client, root):
    assert_refused(client.simulate_get("/api/sites/a%00b", headers=root))


@pytest.mark.parametrize("header", ["User-Agent", "X-Anything"])
def test_header_text_with_nul_is_400(client, admin, header):
    before = AuditQueue.select().count() + AuditEvent.select().count()
    result = client.simulate_post("/api/auth/login", json=login_body(), headers={header: "a\x00b"})
    assert_refused(result)
    assert AuditQueue.select().count() + AuditEvent.select().count() == before


@pytest.mark.parametrize("header", ["Authorization", "Cookie", "X-CSRF-Token"])
def test_credentials_with_a_surrogate_are_refused_not_a_500(client, admin, header):
    headers = {"Authorization": "Bearer weco_\udfff", "Cookie": "weco_session=\udfff",
               "X-CSRF-Token": "\udfff"}
    result = client.simulate_post("/api/auth/logout", headers={header: headers[header]})
    assert result.status_code in (400, 401), result.text


@pytest.mark.parametrize("value", [str(BIG), "abc", "-1", "1.5", ""])
def test_an_invalid_last_event_id_is_400(client, root, run_id, value):
    result = client.simulate_get(f"/api/runs/{run_id}/events/stream",
                                 headers={**root, "Last-Event-ID": value})
    assert_refused(result)


def test_a_valid_last_event_id_resumes_the_stream(client, root, run_id):
    result = client.simulate_get(f"/api/runs/{run_id}/events/stream",
                                 headers={**root, "Last-Event-ID": "0"})
    assert result.status_code == 200 and "event: end" in result.text


# -- what the store says stays with the operators ----------------------------------

class StoreTrouble:
    def __init__(self, error: Exception) -> None:
        self.error = error

    @public
    def on_get(self, req, resp):
        raise self.error


@pytest.mark.parametrize("error, status", [
    (peewee.IntegrityError('duplicate key value violates unique constraint "secret_idx"'), 500),
    (peewee.DataError("value too long for type character varying(100) at secret_column"), 500),
    (peewee.ProgrammingError("column secret_column does not exist"), 500),
    (peewee.InterfaceError("connection already closed to secret-host"), 503),
    (peewee.OperationalError("could not connect to server secret-host"), 503),
])
def test_driver_errors_are_json_without_the_drivers_text(app, caplog, error, status):
    app.add_route("/trouble", StoreTrouble(error))
    client = falcon.testing.TestClient(app)
    with caplog.at_level(logging.ERROR, logger="control_api.errors"):
        result = client.simulate_get("/trouble")
    body = assert_refused(result, status)
    assert "secret" not in result.text
    if status == 500:
        assert result.headers["X-Request-Id"] in body["description"]
    # The operator gets the driver's text, in a line tagged with the request's id.
    record = next(r for r in caplog.records if r.name == "control_api.errors")
    assert "secret" in (record.getMessage() + str(record.exc_info and record.exc_info[1]))


def test_a_token_can_be_looked_up_by_a_large_valid_id(client, root, deps):
    # The bound is the store's: the largest id is still a plain 404.
    assert_refused(client.simulate_delete(f"/api/tokens/{BIG - 1}", headers=root), 404)
