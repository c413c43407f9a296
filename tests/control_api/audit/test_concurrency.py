"""16 concurrent writers across two gunicorn workers on PostgreSQL: one chain, no gaps."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time

import pytest
import requests

from control_api.db import open_database
from control_api.models import AuditEvent, AuditQueue
from tests.peers.server import WecoServer, worker_pids

# Early in a run the side runs hold the cores and this took about 40 s.
pytestmark = pytest.mark.many_cores

WRITERS, EACH = 16, 12


def _weco(env, *args):
    return subprocess.run([sys.executable, "-m", "control_api.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.postgres_only
def test_sixteen_writers_two_gunicorn_workers_one_chain(env, database_url, tmp_path):
    env = {"PATH": os.environ["PATH"], **env}
    assert _weco(env, "db", "upgrade").returncode == 0
    made = _weco(env, "user", "create", "--email", "ops@example.test", "--role", "admin")
    password = re.search(r"store it now\): (\S+)", made.stdout).group(1)

    server = WecoServer(env, threads=1).start()  # one request per process: both must serve
    base = server.base
    try:
        failures = []
        # API tokens are minted from a login session (its cookie and CSRF token).
        credentials = {"email": "ops@example.test", "password": password}
        login = requests.post(f"{base}/api/auth/login", json=credentials, timeout=30)
        cookies, csrf = login.cookies, login.json()["csrf_token"]

        def writer(number: int) -> None:
            with requests.Session() as session:
                session.cookies.update(cookies)
                session.headers["X-CSRF-Token"] = csrf
                for i in range(EACH):
                    result = session.post(f"{base}/api/tokens", json={"name": f"w{number}-{i}"}, timeout=30)
                    if result.status_code != 201:
                        failures.append(result.text)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        # The servers' background sealers chain what the requests queued.
        db = open_database(database_url)
        deadline = time.monotonic() + 60
        while AuditQueue.select().count():
            assert time.monotonic() < deadline, "events left unsealed"
            time.sleep(0.05)
        db.close()
    finally:
        stderr = server.stop()
    assert len(worker_pids(stderr, "/api/tokens")) == 2  # both workers took writes

    pub = str(tmp_path / "var" / "audit" / "witness.pub")
    verified = _weco(env, "audit", "verify", "--witness-pub", pub)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    db = open_database(database_url)
    # What the server's audit watcher made of 192 token creations by one actor: one
    # bearer-rotation-storm alert, unless the server stopped before the watcher looked.
    alerts = [row.action for row in AuditEvent.select().where(AuditEvent.action.startswith("anomaly."))]
    assert alerts in ([], ["anomaly.bearer_rotation_storm"])
    # db.upgrade + user.create (CLI), the master key registered when `weco serve`
    # first loads it, the login, every API token creation, and the alert.
    expected = 4 + WRITERS * EACH + len(alerts)
    assert f"rows verified: {expected} (row 1 at" in verified.stdout
    seqs = [row.seq for row in AuditEvent.select(AuditEvent.seq).order_by(AuditEvent.seq)]
    assert seqs == list(range(1, expected + 1))
    assert AuditQueue.select().count() == 0
    db.close()
