"""Deploying a site of 500 PDFs (about 200 MB) to 3 test hosts through the API, against
a raw rsync of the same tree to the same hosts (goal: ratio <= 1.5); then a redeploy
with one changed PDF (goal: bytes sent per host <= 2x that PDF).

Hosts are real systemd-nspawn Debian targets (molecule/_hosts). The raw rsync is
measured both one host after another (what a deploy script does) and to the three in
parallel (the best rsync can do); ours also builds and checks a SHA-256 manifest of
every file on every host before switching, and reloads nginx.

    .venv/bin/python -m bench.site_deploy [--pdfs 500] [--size 400000]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from control_api.sites.sample import pdf, write_sample_site
from tests.peers.server import WecoServer, superadmin_token
from tests.peers.testhosts import booted, harness_key


def raw_rsync(source: Path, host, key: str, target: str) -> None:
    ssh = f"ssh -i {key} -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
    subprocess.run(["rsync", "--recursive", "--delete", "-e", ssh, f"{source}/",
                    f"root@{host.address}:{target}/"], check=True, capture_output=True)


def raw_rsyncs(source: Path, hosts: list, key: str) -> tuple[float, float]:
    """Seconds to rsync `source` raw to every host, one after another, then to all in parallel."""
    started = time.perf_counter()
    for host in hosts:
        raw_rsync(source, host, key, "/srv/raw-sequential")
    sequential = time.perf_counter() - started
    started = time.perf_counter()
    with ThreadPoolExecutor(len(hosts)) as pool:
        list(pool.map(lambda h: raw_rsync(source, h, key, "/srv/raw-parallel"), hosts))
    return sequential, time.perf_counter() - started


class Api:
    def __init__(self, server: WecoServer, token: str) -> None:
        self.base, self.headers = server.base, {"Authorization": f"Bearer {token}"}

    def call(self, method: str, path: str, **kwargs) -> dict:
        response = requests.request(method, self.base + path, headers=self.headers, timeout=60, **kwargs)
        assert response.ok, response.text
        return response.json() if response.content else {}

    def deploy(self, slug: str) -> tuple[float, dict]:
        started = time.perf_counter()
        run = self.call("POST", "/api/runs", json={"playbook": "deploy_site", "site": slug})
        while not (run := self.call("GET", f"/api/runs/{run['id']}"))["finished_at"]:
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        assert run["status"] == "successful", run
        return elapsed, run

    def bytes_sent(self, run_id: int) -> list[int]:
        events = self.call("GET", f"/api/runs/{run_id}/events", params={"limit": "500"})["events"]
        return [int(e["stdout"].split('"site_deploy_bytes_sent": ')[1].split(",")[0].strip('"'))
                for e in events if e["event"] == "runner_on_ok" and "site_deploy_bytes_sent" in e["stdout"]]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pdfs", type=int, default=500)
    parser.add_argument("--size", type=int, default=400_000, help="bytes per PDF")
    args = parser.parse_args()
    key = harness_key()
    with tempfile.TemporaryDirectory() as data_dir, booted("bd", 60, 3) as hosts:
        data = Path(data_dir)
        source = data / "site-sources" / "bench"
        files = write_sample_site(source, args.pdfs, args.size)
        total = sum(f.stat().st_size for f in source.rglob("*") if f.is_file())
        env = {"FF_ENV": "dev", "FF_DATA_DIR": data_dir}
        token = superadmin_token(env)
        server = WecoServer(env).start()
        try:
            api = Api(server, token)
            api.call("POST", "/api/sites", json={"slug": "bench", "domain": "bench.example.test"})
            for host in hosts:
                made = api.call("POST", "/api/hosts", json={
                    "name": host.name, "address": host.address, "ssh_private_key": Path(key).read_text(),
                    "ssh_host_key": host.host_key_line(), "vars": {"site_deploy_tls": False}})
                api.call("PUT", f"/api/sites/bench/hosts/{made['id']}")

            sequential, parallel = raw_rsyncs(source, hosts, key)

            ours, _ = api.deploy("bench")
            files[len(files) // 2].write_bytes(pdf("Amended disclosure", args.size))
            changed = files[len(files) // 2].stat().st_size
            again, run = api.deploy("bench")
            sent = api.bytes_sent(run["id"])
        finally:
            server.stop()
    print(f"site: {args.pdfs} PDFs, {total / 1e6:.1f} MB, to 3 hosts")
    print(f"raw rsync, one host after another: {sequential:.2f} s")
    print(f"raw rsync, 3 hosts in parallel:    {parallel:.2f} s")
    print(f"API-triggered deploy, POST to finished: {ours:.2f} s")
    print(f"ratio ours/raw sequential: {ours / sequential:.2f}; ours/raw parallel: {ours / parallel:.2f} "
          f"(goal <= 1.5)")
    print(f"redeploy with one changed PDF ({changed} bytes): {again:.2f} s, bytes sent per host: "
          f"{', '.join(map(str, sent))}; worst ratio to the PDF: {max(sent) / changed:.2f} (goal <= 2)")


if __name__ == "__main__":
    main()
