"""Login throttling under load, through `weco serve` with two gunicorn workers.

1,000 attempts from one address (8 concurrent clients) must let exactly 10 reach the
password check; one account attacked from 20 addresses must lock after 5. Also
times an attempt that reaches bcrypt (cost 12) against a throttled one, which must
do no bcrypt work: the ratio is bcrypt-checked / throttled latency.

    .venv/bin/python -m bench.login_throttle [--attempts 1000]
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from tests.peers.server import WecoServer


def timed(server: WecoServer, body: dict, source: str) -> tuple[int, float]:
    started = time.perf_counter()
    status, _ = server.post_json("/api/auth/login", body, source)
    return status, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--attempts", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        env = {"FF_ENV": "dev", "FF_DATA_DIR": data_dir}
        subprocess.run([sys.executable, "-m", "control_api.cli", "db", "upgrade"], check=True,
                       env={"PATH": os.environ["PATH"], **env}, capture_output=True)
        server = WecoServer(env, threads=1).start()  # two single-threaded workers, as measured before
        try:
            wrong = {"email": "spray@example.test", "password": "not the password"}
            checked = [timed(server, {**wrong, "email": f"c{n}@example.test"}, "127.0.0.3")[1]
                       for n in range(10)]
            throttled = [timed(server, {**wrong, "email": f"c{n}@example.test"}, "127.0.0.3")[1]
                         for n in range(50)]
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=8) as pool:
                results = list(pool.map(
                    lambda n: timed(server, {**wrong, "email": f"s{n % 37}@example.test"}, "127.0.0.4")[0],
                    range(args.attempts)))
            elapsed = time.perf_counter() - started
            account = [timed(server, wrong, f"127.0.1.{n}")[0] for n in range(20)]
        finally:
            server.stop()
    counts = collections.Counter(results)
    print(f"{args.attempts} attempts from one address, 8 clients, 2 workers: {elapsed:.1f} s, "
          f"{counts[401]} reached the password check, {counts[429]} throttled (limit 10)")
    print(f"one account from 20 addresses: {account.count(401)} password checks, then locked "
          f"({account.count(429)} refused; limit 5)")
    bcrypt_ms, throttled_ms = statistics.median(checked) * 1000, statistics.median(throttled) * 1000
    print(f"median latency: bcrypt-checked {bcrypt_ms:.1f} ms, throttled {throttled_ms:.1f} ms")
    print(f"ratio checked/throttled: {bcrypt_ms / throttled_ms:.0f}x (throttled attempts do no bcrypt)")


if __name__ == "__main__":
    main()
