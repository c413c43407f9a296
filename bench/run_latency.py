"""An API-triggered run of a one-task playbook, POST to finished, against bare
`ansible-playbook` of the same playbook on the same local target (goal: ratio <= 1.15).

Both sides run playbooks/check_hosts.yml (one `ping` task) with a local connection;
ours goes through `weco serve`, the queue, the embedded worker, ansible-runner, the
process guard and the stored events, timed from the POST until GET shows it finished.
Runs alternate between the two so load on the machine falls on both alike.

    .venv/bin/python -m bench.run_latency [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from tests.peers.server import WecoServer, superadmin_token

ROOT = Path(__file__).resolve().parents[1]


def api_run(server: WecoServer, headers: dict, host_id: int) -> float:
    started = time.perf_counter()
    run = requests.post(f"{server.base}/api/runs", json={"playbook": "check_hosts", "hosts": [host_id]},
                        headers=headers, timeout=30).json()
    while True:
        got = requests.get(f"{server.base}/api/runs/{run['id']}", headers=headers, timeout=30).json()
        if got["finished_at"]:
            assert got["status"] == "successful", got
            return time.perf_counter() - started
        time.sleep(0.01)


def bare_run(inventory: Path) -> float:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    started = time.perf_counter()
    subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory),
                    str(ROOT / "playbooks" / "check_hosts.yml")], check=True, capture_output=True, env=env)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        env = {"FF_ENV": "dev", "FF_DATA_DIR": data_dir}
        token = superadmin_token(env)
        headers = {"Authorization": f"Bearer {token}"}
        inventory = Path(data_dir) / "inventory.json"
        inventory.write_text(json.dumps({"all": {"hosts": {"here": {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
        server = WecoServer(env).start()
        try:
            host = requests.post(f"{server.base}/api/hosts", json={"name": "here", "connection": "local"},
                                 headers=headers, timeout=30).json()
            api_run(server, headers, host["id"])  # warm up both paths once
            bare_run(inventory)
            ours, bare = [], []
            for _ in range(args.runs):
                ours.append(api_run(server, headers, host["id"]))
                bare.append(bare_run(inventory))
        finally:
            server.stop()
    ours_s, bare_s = statistics.median(ours), statistics.median(bare)
    print(f"API-triggered run, POST to finished: median {ours_s:.3f} s over {args.runs} runs "
          f"(min {min(ours):.3f}, max {max(ours):.3f})")
    print(f"bare ansible-playbook:               median {bare_s:.3f} s over {args.runs} runs "
          f"(min {min(bare):.3f}, max {max(bare):.3f})")
    print(f"ratio ours/bare: {ours_s / bare_s:.2f} (goal <= 1.15)")


if __name__ == "__main__":
    main()
