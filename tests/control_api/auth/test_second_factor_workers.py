"""Concurrent guesses at one login challenge, across two gunicorn workers (#11 item 5):
each attempt is reserved atomically before its code is checked, so 64 parallel wrong
codes get at most 5 checked. Two limits apply to every guess (the account's 5 and the
challenge's 5), so a second test sets things up where only the challenge's can bind."""

from __future__ import annotations

import datetime as dt
import http.client
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from control_api.auth.passwords import PasswordHasher
from control_api.auth.totp import STEP_SECONDS, TotpService, code_at
from control_api.clock import SystemClock, unix_seconds
from control_api.db import open_database
from control_api.settings import load_settings
from control_api.wiring import build_deps, build_users
from tests.conftest import ACTOR, PASSWORD
from tests.peers.server import WecoServer, worker_pids

# Early in a run the side runs hold the cores and these took about a minute each.
pytestmark = pytest.mark.many_cores


def enrolled_store(env: dict) -> tuple[str, str]:
    """Migrate the store, create an admin with confirmed TOTP; return its seed and a wrong
    code to send."""
    subprocess.run([sys.executable, "-m", "control_api.cli", "db", "upgrade"], check=True,
                   env={"PATH": os.environ["PATH"], **env}, capture_output=True)
    settings = load_settings(env)
    db = open_database(settings.effective_database_url)
    try:
        deps = build_deps(settings, db, hasher=PasswordHasher(cost=4))
        user = build_users(deps).create("ops@example.test", "admin", PASSWORD, ACTOR)
        totp = TotpService(deps.keys)
        seed, _ = totp.begin(user, deps.clock.now())
        totp.confirm(user, deps.clock.now())
    finally:
        db.close()
    # A code that is right for no step the server may accept during the test.
    step = int(unix_seconds(SystemClock().now() + dt.timedelta(seconds=60)) // STEP_SECONDS)
    right = {code_at(seed, s) for s in range(step - 6, step + 6)}
    return seed, next(f"{n:06d}" for n in range(1000) if f"{n:06d}" not in right)


def server_log(server: WecoServer) -> str:
    # pread: the server writes through the same file offset, which a seek would move.
    fd = server.log.fileno()
    return os.pread(fd, os.fstat(fd).st_size, 0).decode()


def wait_for_both_workers(server: WecoServer) -> None:
    """/readyz answers once one worker has loaded the app; wait until both have."""
    def ready(_: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/readyz")
        conn.getresponse().read()
        conn.close()

    deadline = time.monotonic() + 30
    with ThreadPoolExecutor(max_workers=16) as pool:
        while len(worker_pids(server_log(server), "/readyz")) < 2:
            assert time.monotonic() < deadline, "the second worker never served"
            list(pool.map(ready, range(16)))


def test_sixty_four_parallel_wrong_codes_check_at_most_five(env):
    _, wrong = enrolled_store(env)
    server = WecoServer(env, workers=2, threads=8).start()
    try:
        wait_for_both_workers(server)
        credentials = {"email": "ops@example.test", "password": PASSWORD}
        status, body = server.post_json("/api/auth/login", credentials)
        assert status == 200 and body["second_factor_required"], body
        challenge = body["challenge"]

        def guess(n: int) -> tuple[int, str]:
            # From 64 addresses, so the per-address limit is not what stops them.
            status, answer = server.post_json(
                "/api/auth/login/second-factor",
                {"challenge": challenge, "method": "totp", "code": wrong}, f"127.0.3.{n + 1}")
            return status, answer.get("description", "")

        with ThreadPoolExecutor(max_workers=64) as pool:
            answers = list(pool.map(guess, range(64)))
    finally:
        stderr = server.stop()
    checked = [a for a in answers if a == (401, "the code is not right")]
    assert 1 <= len(checked) <= 5, answers
    assert all(status in (401, 429) for status, _ in answers), answers
    assert len(worker_pids(stderr, "/api/auth/login/second-factor")) == 2


def test_the_challenge_reservation_alone_holds_parallel_guesses_to_its_last_try(env):
    """A challenge with one try left, on an account whose failures were just cleared: the
    account would admit 5 guesses, so only the challenge's own reservation keeps the
    checked ones to 1."""
    seed, wrong = enrolled_store(env)
    server = WecoServer(env, workers=2, threads=8).start()
    try:
        wait_for_both_workers(server)
        credentials = {"email": "ops@example.test", "password": PASSWORD}

        def answer(challenge: str, code: str, source: str) -> tuple[int, str]:
            status, body = server.post_json("/api/auth/login/second-factor",
                                            {"challenge": challenge, "method": "totp", "code": code}, source)
            return status, body.get("description", "")

        status, body = server.post_json("/api/auth/login", credentials)
        assert status == 200 and body["second_factor_required"], body
        target = body["challenge"]
        for _ in range(4):  # four of the target's five tries, spent
            assert answer(target, wrong, "127.0.4.1") == (401, "the code is not right")
        # A login completed on another challenge clears the account's failures (not the target's tries).
        status, body = server.post_json("/api/auth/login", credentials, "127.0.4.2")
        assert status == 200, body
        step = int(unix_seconds(SystemClock().now()) // STEP_SECONDS)
        assert answer(body["challenge"], code_at(seed, step), "127.0.4.2")[0] == 200

        with ThreadPoolExecutor(max_workers=64) as pool:
            answers = list(pool.map(lambda n: answer(target, wrong, f"127.0.5.{n + 1}"), range(64)))
    finally:
        stderr = server.stop()
    checked = [a for a in answers if a == (401, "the code is not right")]
    assert len(checked) == 1, answers
    assert all(status in (401, 429) for status, _ in answers), answers
    assert len(worker_pids(stderr, "/api/auth/login/second-factor")) == 2
