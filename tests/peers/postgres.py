"""A throwaway PostgreSQL cluster for the tests: initdb, start on a free port, stop.

PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres`
user. A missing installation is an error, not a skip: CI must test both backends.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote


class PostgresMissing(RuntimeError):
    pass


def _bindir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if not candidates:
        raise PostgresMissing(
            "PostgreSQL server binaries not found under /usr/lib/postgresql: "
            "run scripts/setup (it installs the postgresql package)"
        )
    return Path(candidates[0]).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresCluster:
    def __init__(self, fsync: bool = False) -> None:
        self.bindir = _bindir()
        self.fsync = fsync
        self.dir = Path(tempfile.mkdtemp(prefix="weco-pg-"))
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> PostgresCluster:
        if self._as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        data = self.dir / "data"
        self._run(str(self.bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        if not self.fsync:
            # A throwaway cluster for tests; benchmarks start one with fsync on.
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(data), "-o", options,
                  "-l", str(self.dir / "log"), "-w", "start")
        return self

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")
        finally:
            # The suite's cluster holds hundreds of test databases (about a million files):
            # removing them took the last test's teardown most of a minute, so a detached
            # rm does it while the session ends.
            subprocess.Popen(["rm", "-rf", "--", str(self.dir)], start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def url(self, database: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def socket_url(self, database: str = "postgres", user: str = "postgres") -> str:
        """Through the cluster's unix socket, as the install's API reaches a local
        PostgreSQL (roles/control_api: the socket directory as the URL's host)."""
        return f"postgresql://{user}@{quote(str(self.dir), safe='')}:{self.port}/{database}"

    def admin_sql(self, sql: str, database: str = "postgres") -> None:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=database)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()
