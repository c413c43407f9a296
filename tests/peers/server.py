"""`weco serve` as a real gunicorn process for tests: start, wait for /readyz, stop."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import requests

from tests.peers.postgres import free_port


class WecoServer:
    def __init__(self, env: dict, workers: int = 2, threads: int = 8) -> None:
        self.env = {"PATH": os.environ["PATH"], **env}
        self.workers, self.threads = workers, threads
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"

    def start(self) -> WecoServer:
        # A file, not a pipe: an unread pipe fills up and blocks the workers' logging.
        self.log = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "control_api.cli", "serve", "--bind", f"127.0.0.1:{self.port}",
             "--workers", str(self.workers), "--threads", str(self.threads)],
            env=self.env, stdout=subprocess.DEVNULL, stderr=self.log, text=True,
            start_new_session=True)
        # Generous: workers import the whole app, slowly on a busy 2-core machine.
        deadline = time.monotonic() + 120
        while True:
            try:
                requests.get(f"{self.base}/readyz", timeout=5)
                return self
            except (requests.ConnectionError, requests.Timeout):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"weco serve did not start: {self._read_log()}") from None
                time.sleep(0.1)

    def _read_log(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> str:
        """Stop it; return what it wrote to stderr."""
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=30)
        stderr = self._read_log()
        self.log.close()
        return stderr

    def post_json(self, path: str, body: dict, source: str = "127.0.0.1") -> tuple[int, dict]:
        """POST from a chosen loopback address (127.0.0.0/8 all reach the server)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30, source_address=(source, 0))
        try:
            conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json",
                                                          "Connection": "close"})
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"{}")
        finally:
            conn.close()


def worker_pids(stderr: str, path: str) -> set[int]:
    """The worker processes that logged an access line for `path`."""
    pids = set()
    for line in stderr.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("logger") == "control_api.access" and record.get("path") == path:
                pids.add(record["pid"])
    return pids


def superadmin_token(env: dict, email: str = "root@example.test") -> str:
    """Migrate the store `env` names, create a superadmin, and return an API token for it."""
    def weco(*args: str) -> str:
        return subprocess.run([sys.executable, "-m", "control_api.cli", *args], check=True, text=True,
                              capture_output=True, env={"PATH": os.environ["PATH"], **env}).stdout

    weco("db", "upgrade")
    weco("user", "create", "--email", email, "--role", "superadmin")
    return weco("token", "create", "--email", email, "--name", "tests").split("store it now): ")[1].split()[0]
