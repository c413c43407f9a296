"""Lockout and the per-IP limit across two gunicorn workers and across a restart, and
the reliability check: 1,000 attempts from one address let exactly the allowed
number reach the password check."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.peers.server import WecoServer, worker_pids

# Early in a run the side runs hold the cores and these took about a minute each.
pytestmark = pytest.mark.many_cores


@pytest.fixture
def served(env):
    env = {"PATH": os.environ["PATH"], **env}

    def weco(*args):
        return subprocess.run([sys.executable, "-m", "control_api.cli", *args], env=env,
                              capture_output=True, text=True, timeout=120)

    assert weco("db", "upgrade").returncode == 0
    made = weco("user", "create", "--email", "ops@example.test", "--role", "admin")
    password = re.search(r"store it now\): (\S+)", made.stdout).group(1)
    return env, password


def test_lockout_and_ip_limit_hold_across_workers_and_a_restart(served):
    env, password = served
    server = WecoServer(env, threads=1).start()  # one request per process: both must serve
    try:
        # Concurrent, so that both workers are busy and each takes a share.
        wrong = {"email": "ops@example.test", "password": "not the password"}
        with ThreadPoolExecutor(max_workers=4) as pool:
            statuses = list(pool.map(
                lambda n: server.post_json("/api/auth/login", wrong, f"127.0.0.{10 + n}")[0], range(5)))
            # The per-IP limit: 10 attempts from one address, on other accounts.
            spread = list(pool.map(
                lambda n: server.post_json("/api/auth/login", {"email": f"u{n}@example.test",
                                                               "password": "x" * 12}, "127.0.0.50")[0],
                range(10)))
        assert statuses == [401] * 5 and spread == [401] * 10
    finally:
        first = server.stop()
    assert len(worker_pids(first, "/api/auth/login")) == 2  # both workers took attempts

    server = WecoServer(env, threads=1).start()  # a restart: state lives in the store
    try:
        right = {"email": "ops@example.test", "password": password}
        status, body = server.post_json("/api/auth/login", right, "127.0.0.99")
        assert status == 429 and body["title"] == "Too many attempts"
        status, _ = server.post_json("/api/auth/login", {"email": "new@example.test", "password": "x" * 12},
                                     "127.0.0.50")
        assert status == 429
        status, _ = server.post_json("/api/auth/login", {"email": "new@example.test", "password": "x" * 12},
                                     "127.0.0.51")
        assert status == 401
    finally:
        server.stop()


def test_a_thousand_attempts_from_one_address(served):
    env, _ = served
    server = WecoServer(env, threads=1).start()  # one request per process: both must serve
    try:
        def one(n: int) -> int:
            body = {"email": f"spray{n % 37}@example.test", "password": "not the password"}
            return server.post_json("/api/auth/login", body, "127.0.0.77")[0]

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(one, range(1000)))
        # And one account attacked from many addresses: locked at 5.
        account = [server.post_json("/api/auth/login", {"email": "ops@example.test", "password": "nope" * 3},
                                    f"127.0.1.{n}")[0] for n in range(20)]
    finally:
        stderr = server.stop()
    assert statuses.count(401) == 10 and statuses.count(429) == 990
    assert account == [401] * 5 + [429] * 15
    assert len(worker_pids(stderr, "/api/auth/login")) == 2
