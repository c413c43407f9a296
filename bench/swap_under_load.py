"""Requests that fail while deploys swap a site's release under a steady stream of
requests (goal: 0), on a real nginx test host.

Four clients fetch the index page and a PDF over keep-alive connections, nonstop,
while five deploys through the API each switch the site to a new version. A request
fails if it is not a 200 or its body is not exactly one of the deployed versions.
The same probe then runs against a non-atomic swap (delete the served tree, copy the
new one in: what a hand-rolled deploy does), measured in the same run, to show the
probe does catch failures when there are some.

    .venv/bin/python -m bench.swap_under_load [--deploys 5]
"""

from __future__ import annotations

import argparse
import http.client
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.site_deploy import Api, raw_rsync
from control_api.sites.sample import write_sample_site
from tests.peers.server import WecoServer, superadmin_token
from tests.peers.testhosts import booted, harness_key

DOMAIN = "swap.example.test"
PATHS = ("/", "/documents/disclosure-0001.pdf")


def version(source: Path, label: str) -> dict[str, bytes]:
    write_sample_site(source, count=3, size=50_000, label=label)
    return {"/": (source / "index.html").read_bytes(),
            PATHS[1]: (source / "documents" / "disclosure-0001.pdf").read_bytes()}


class Probe:
    """Clients hammering the site; each response checked against the known versions."""

    def __init__(self, address: str, port: int, known: dict[str, set[bytes]]) -> None:
        self.address, self.port, self.known = address, port, known
        self.stop = threading.Event()
        self.ok = self.failed = 0
        self.lock = threading.Lock()

    def client(self) -> None:
        connection = http.client.HTTPConnection(self.address, self.port, timeout=10)
        n = 0
        while not self.stop.is_set():
            path = PATHS[n % 2]
            n += 1
            try:
                connection.request("GET", path, headers={"Host": DOMAIN})
                response = connection.getresponse()
                body = response.read()
                good = response.status == 200 and body in self.known[path]
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection(self.address, self.port, timeout=10)
                good = False
            with self.lock:
                self.ok += good
                self.failed += not good

    def run_during(self, action) -> None:
        threads = [threading.Thread(target=self.client) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        try:
            action()
        finally:
            time.sleep(0.5)
            self.stop.set()
            for thread in threads:
                thread.join()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deploys", type=int, default=5)
    args = parser.parse_args()
    key = harness_key()
    with tempfile.TemporaryDirectory() as data_dir, booted("sw", 63, 1) as (host,):
        data = Path(data_dir)
        source = data / "site-sources" / "swap"
        versions = [version(source, f"v{n} ") for n in range(args.deploys + 1)]
        known = {path: {v[path] for v in versions} for path in PATHS}
        env = {"FF_ENV": "dev", "FF_DATA_DIR": data_dir}
        token = superadmin_token(env)
        server = WecoServer(env).start()
        try:
            api = Api(server, token)
            api.call("POST", "/api/sites", json={"slug": "swap", "domain": DOMAIN})
            made = api.call("POST", "/api/hosts", json={"name": host.name, "address": host.address,
                                                        "ssh_private_key": Path(key).read_text(),
                                                        "ssh_host_key": host.host_key_line(),
                                                        "vars": {"site_deploy_tls": False}})
            api.call("PUT", f"/api/sites/swap/hosts/{made['id']}")
            version(source, "v0 ")
            api.deploy("swap")

            def deploys() -> None:
                for n in range(1, args.deploys + 1):
                    version(source, f"v{n} ")
                    api.deploy("swap")

            ours = Probe(host.address, 80, known)
            ours.run_during(deploys)

            # The non-atomic swap, on a second nginx server block of the same host.
            vhost = f"server {{ listen 8081; server_name {DOMAIN}; root /srv/naive; }}"
            host.ssh(f"mkdir -p /srv/naive && echo '{vhost}' > /etc/nginx/sites-enabled/naive.conf "
                     "&& nginx -s reload")
            version(source, "v0 ")
            raw_rsync(source, host, key, "/srv/naive")

            def naive() -> None:
                for n in range(1, args.deploys + 1):
                    version(source, f"v{n} ")
                    host.ssh("rm -rf /srv/naive/*")
                    raw_rsync(source, host, key, "/srv/naive")

            baseline = Probe(host.address, 8081, known)
            baseline.run_during(naive)
        finally:
            server.stop()
    print(f"atomic switch (ours): {ours.failed} failed of {ours.ok + ours.failed} requests "
          f"during {args.deploys} deploys (goal 0)")
    print(f"non-atomic swap (delete, then copy): {baseline.failed} failed of "
          f"{baseline.ok + baseline.failed} requests during {args.deploys} swaps")


if __name__ == "__main__":
    sys.exit(main())
