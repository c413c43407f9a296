"""What gunicorn refuses by itself (a long URL, too many or too large headers, broken
HTTP) still gets the API's JSON error and security headers, from a real `weco serve`
with sync workers (FF_THREADS=1) and with threaded ones."""

from __future__ import annotations

import json
import socket

import pytest
from gunicorn import glogging
from gunicorn.config import Config

from control_api.gunicorn_workers import Logger
from control_api.middleware import SECURITY_HEADERS
from tests.peers.server import WecoServer, superadmin_token


@pytest.fixture(scope="module", params=[1, 4], ids=["sync", "threads"])
def server(request, tmp_path_factory):
    env = {"FF_ENV": "dev", "FF_DATA_DIR": str(tmp_path_factory.mktemp("serve") / "var")}
    superadmin_token(env)  # migrates the store
    server = WecoServer(env, workers=1, threads=request.param).start()
    yield server
    server.stop()


def exchange(server: WecoServer, raw: bytes) -> tuple[int, dict, bytes]:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(raw)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def request(path: str = "/healthz", headers: dict | None = None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def assert_json_error(answer: tuple[int, dict, bytes], status: int) -> dict:
    got, headers, body = answer
    assert got == status, body
    assert headers["content-type"] == "application/json"
    for name, value in SECURITY_HEADERS.items():
        assert headers[name.lower()] == value
    assert headers["x-request-id"]
    error = json.loads(body)
    assert set(error) == {"title", "description"} and error["description"]
    return error


def test_a_header_over_8_kb_is_a_json_431(server):
    answer = exchange(server, request(headers={"X-Big": "a" * 9000}))
    assert "header" in assert_json_error(answer, 431)["description"]


def test_150_headers_are_a_json_431(server):
    answer = exchange(server, request(headers={f"X-H{i}": "x" for i in range(150)}))
    assert_json_error(answer, 431)


def test_a_long_url_is_a_json_414(server):
    answer = exchange(server, request("/api/runs?" + "a" * 5000))
    assert_json_error(answer, 414)


def test_broken_http_is_a_json_400(server):
    assert_json_error(exchange(server, b"GET /healthz HTTP/9.9\r\n\r\n"), 400)


def test_ordinary_requests_still_pass(server):
    status, _, body = exchange(server, request())
    assert status == 200 and json.loads(body) == {"status": "ok"}


def test_gunicorns_own_access_line_is_not_even_formatted():
    config = Config()
    config.set("accesslog", "/dev/null")  # access logging on, as our logging configuration turns it on
    with pytest.raises(AttributeError):  # gunicorn's formats its atoms from the response
        glogging.Logger(config).access(None, None, {}, None)
    assert Logger(config).access(None, None, {}, None) is None  # ours: the middleware's line only
