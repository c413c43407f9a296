"""An authenticated read through `weco serve` against a bare Falcon app under the same
gunicorn settings (goal: ratio >= 0.6).

Ours is `GET /api/me` with an API token: request id and access log, client address,
security headers, body limit, the token's look-up in the store (and its checks:
revoked, expired, account disabled, sealed mode), the route's access guard, JSON.
The baseline answers a JSON document of the same size with nothing else. Both run
with 2 gunicorn workers of 8 threads; `ab -k -c 8` (Debian's apache2-utils) drives
each in turn, in alternating short rounds, and the best round of each counts (/healthz,
the path without the store, is measured beside them). With
--postgres, ours runs on a throwaway PostgreSQL cluster instead of SQLite, reached
through its unix socket as the install reaches the admin VM's own PostgreSQL
(roles/control_api); --tcp reaches it over TCP on 127.0.0.1 instead, as a store on
another machine would be.

    .venv/bin/python -m bench.request_path [--requests 10000] [--rounds 5] [--postgres [--tcp]]
"""

from __future__ import annotations

import argparse
import contextlib
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from tests.peers.postgres import PostgresCluster, free_port
from tests.peers.server import WecoServer, superadmin_token

WORKERS, THREADS = 2, 8


def requests_per_second(url: str, count: int, headers: list[str]) -> float:
    argv = ["ab", "-q", "-k", "-c", "8", "-n", str(count)]
    for header in headers:
        argv += ["-H", header]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    failed = re.search(r"Non-2xx responses:\s+(\d+)", out)
    if failed or not re.search(r"Failed requests:\s+0\b", out):
        raise SystemExit(f"ab saw failed requests on {url}:\n{out}")
    return float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))


@contextlib.contextmanager
def bare_app():
    port = free_port()
    gunicorn = Path(sys.executable).parent / "gunicorn"
    process = subprocess.Popen([str(gunicorn), "-w", str(WORKERS), "--threads", str(THREADS), "-b",
                                f"127.0.0.1:{port}", "--log-level", "warning", "bench.bare_app:app"],
                               cwd=Path(__file__).resolve().parents[1])
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(url, timeout=2)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextlib.contextmanager
def store(postgres: bool, tcp: bool, data_dir: str):
    env = {"FF_ENV": "dev", "FF_DATA_DIR": data_dir, "FF_LOG_LEVEL": "WARNING"}
    if not postgres:
        yield env
        return
    cluster = PostgresCluster().start()
    try:
        cluster.admin_sql("CREATE DATABASE weco_bench")
        url = cluster.url("weco_bench") if tcp else cluster.socket_url("weco_bench")
        yield dict(env, FF_DATABASE_URL=url)
    finally:
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10000, help="requests a round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--tcp", action="store_true", help="PostgreSQL over TCP, not its unix socket")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, store(args.postgres, args.tcp, f"{tmp}/var") as env:
        token = superadmin_token(env)
        server = WecoServer(env, workers=WORKERS, threads=THREADS).start()
        try:
            with bare_app() as bare:
                targets = {"bare": (bare, []), "healthz": (f"{server.base}/healthz", []),
                           "me": (f"{server.base}/api/me", [f"Authorization: Bearer {token}"])}
                for url, headers in targets.values():
                    requests_per_second(url, 200, headers)  # warm up
                rounds = {name: [] for name in targets}
                # Alternating short rounds, the best of each counting: on a shared machine
                # a round now and then runs at half speed, whichever app it measures.
                for _ in range(args.rounds):
                    for name, (url, headers) in targets.items():
                        rounds[name].append(requests_per_second(url, args.requests, headers))
        finally:
            server.stop()
    best = {name: max(figures) for name, figures in rounds.items()}
    backend = "SQLite"
    if args.postgres:
        backend = "PostgreSQL over TCP" if args.tcp else "PostgreSQL, unix socket"
    print(f"{args.rounds} rounds of {args.requests} requests, 8 concurrent, keep-alive, "
          f"{WORKERS} workers x {THREADS} threads; the best round of each")
    print(f"bare Falcon app:                 {best['bare']:8.0f} requests/s")
    print(f"weco GET /healthz (no store):    {best['healthz']:8.0f} requests/s")
    print(f"weco GET /api/me with a token:   {best['me']:8.0f} requests/s ({backend})")
    print(f"ratio ours/bare: {best['me'] / best['bare']:.2f} (goal >= 0.6)")


if __name__ == "__main__":
    main()
