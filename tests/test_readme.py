"""The README's promises: its two commands, and a settings table in step with the code."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import requests

from control_api.audit import actions
from control_api.settings import markdown_table
from tests.peers.postgres import free_port

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def readme_commands() -> list[str]:
    block = README.split("<!-- readme-commands -->")[1].split("<!-- /readme-commands -->")[0]
    lines = [line for line in block.splitlines() if line and not line.startswith("```")]
    return [line.split("#")[0].strip() for line in lines]


def test_readme_has_exactly_two_commands_and_ci_runs_the_second():
    demo, test = readme_commands()
    assert (demo, test) == ("scripts/demo", "scripts/test")
    ci = (ROOT / ".ci/run").read_text()
    assert f"exec {test}" in ci


def test_settings_table_matches_settings_py():
    table = README.split("<!-- settings-table")[1].split("-->", 1)[1].split("<!-- /settings-table -->")[0]
    assert table.strip() == markdown_table().strip()


def test_audit_actions_match_the_registry():
    block = README.split("<!-- audit-actions")[1].split("-->", 1)[1].split("<!-- /audit-actions -->")[0]
    assert block.strip() == actions.markdown_table().strip()


def test_first_command_serves_the_api_and_the_printed_password_logs_in(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FF_")}
    env["FF_DATA_DIR"] = str(tmp_path / "var")
    proc = subprocess.Popen(
        [str(ROOT / readme_commands()[0]), "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    try:
        password, printed = None, []
        for line in proc.stdout:
            printed.append(line)
            match = re.search(r"password \(shown once, store it now\): (\S+)", line)
            if match:
                password = match.group(1)
            if "Stop it with Ctrl-C" in line:
                break
        assert password, "the demo did not print a password"
        # The demo deployed its sample site through the API to its local target.
        assert any(re.match(r"demo: run 1 is successful; ", line) for line in printed), "".join(printed)
        current = tmp_path / "var" / "served" / "demo" / "current"
        assert (current / "index.html").read_text().count("disclosure-") == 6
        assert len(list((current / "documents").glob("*.pdf"))) == 3
        deadline = time.monotonic() + 30
        while True:
            try:
                ready = requests.get(f"{base}/readyz", timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the API never answered"
                time.sleep(0.2)
        assert ready.status_code == 200 and ready.json() == {"status": "ready"}

        session = requests.Session()
        login = session.post(f"{base}/api/auth/login",
                             json={"email": "admin@weco.test", "password": password}, timeout=10)
        assert login.status_code == 200, login.text
        me = session.get(f"{base}/api/me", timeout=10)
        assert me.json()["user"] == {"id": 1, "email": "admin@weco.test", "role": "superadmin"}

        # Through real gunicorn: a chunked body is read, and bounded.
        def chunks(payload: bytes):
            yield from (payload[i:i + 1000] for i in range(0, len(payload), 1000))

        body = json.dumps({"email": "admin@weco.test", "password": password}).encode()
        chunked = requests.post(f"{base}/api/auth/login", data=chunks(body),
                                headers={"Content-Type": "application/json"}, timeout=10)
        assert chunked.status_code == 200, chunked.text
        big = b'{"email": "' + b"a" * 1_100_000 + b'"}'
        too_big = requests.post(f"{base}/api/auth/login", data=chunks(big),
                                headers={"Content-Type": "application/json"}, timeout=10)
        assert too_big.status_code == 413
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)

    # Logs are JSON lines, and request lines carry their request id.
    records = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert records, stderr
    access = [r for r in records if r["logger"] == "control_api.access"]
    assert any(r["path"] == "/api/me" and r["status"] == 200 and r["request_id"] for r in access)
    assert password not in stderr
