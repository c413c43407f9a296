"""The product's main path on real hosts: an admin triggers deploys and rollbacks
through the API, the embedded worker runs them over SSH against three systemd-nspawn
Debian targets, and nginx on each serves the current release.

The host key given to the API is a canary: after everything, it appears nowhere in
the store, the run artifacts or the logs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import signal
import sqlite3
import subprocess
import time

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from control_api.runs.adapter import AnsibleRunnerAdapter, PlaybookJob
from control_api.sites.sample import pdf, write_sample_site
from tests.control_api.sites.keys import key_body
from tests.peers.server import WecoServer, superadmin_token
from tests.peers.testhosts import booted, harness_key

DOMAIN = "acme.example.test"


@dataclasses.dataclass
class Deployment:
    server: WecoServer
    headers: dict
    hosts: list
    data_dir: pathlib.Path
    private_key: str

    @property
    def canary(self) -> str:
        return key_body(self.private_key)

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, self.server.base + path, headers=self.headers, timeout=30, **kwargs)

    def run(self, playbook: str, site: str = "acme", wait: bool = True, **extra) -> dict:
        created = self.api("POST", "/api/runs", json={"playbook": playbook, "site": site, **extra})
        assert created.status_code == 201, created.text
        return self.wait(created.json()["id"]) if wait else created.json()

    def wait(self, run_id: int, timeout: float = 180) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            run = self.api("GET", f"/api/runs/{run_id}").json()
            if run["finished_at"]:
                return run
            assert time.monotonic() < deadline, f"run {run_id} did not finish: {run}"
            time.sleep(0.2)

    def fetch(self, host, path: str, domain: str = DOMAIN) -> requests.Response:
        return requests.get(f"http://{host.address}{path}", headers={"Host": domain}, timeout=10)


def new_key() -> tuple[str, str]:
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return private, public


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    data = tmp_path_factory.mktemp("deploys") / "var"
    env = {"FF_ENV": "dev", "FF_DATA_DIR": str(data), "FF_RUN_LEASE_SECONDS": "6"}
    token = superadmin_token(env)
    private, public = new_key()
    write_sample_site(data / "site-sources" / "acme", count=5, size=20_000)
    with booted("rt", 50, 3) as hosts:
        for host in hosts:
            host.authorize(public)
        server = WecoServer(env).start()
        try:
            deployment = Deployment(server, {"Authorization": f"Bearer {token}"}, hosts, data, private)
            site = deployment.api("POST", "/api/sites", json={"slug": "acme", "domain": DOMAIN})
            assert site.status_code == 201
            for host in hosts:
                made = deployment.api("POST", "/api/hosts", json={
                    "name": host.name, "address": host.address, "ssh_user": "root",
                    "ssh_private_key": private, "ssh_host_key": host.host_key_line(),
                    "vars": {"site_deploy_tls": False}})
                assert made.status_code == 201, made.text
                assert deployment.api("PUT", f"/api/sites/acme/hosts/{made.json()['id']}").status_code == 201
            yield deployment
        finally:
            server.stop()


def test_deploy_redeploy_and_rollback_through_the_api(deployment):
    source = deployment.data_dir / "site-sources" / "acme" / "documents" / "disclosure-0003.pdf"
    first = deployment.run("deploy_site")
    assert first["status"] == "successful", first
    original = source.read_bytes()
    for host in deployment.hosts:
        page = deployment.fetch(host, "/")
        assert page.status_code == 200 and "disclosure-0005.pdf" in page.text
        assert deployment.fetch(host, "/documents/disclosure-0003.pdf").content == original

    changed = pdf("Regulatory disclosure disclosure-0003.pdf, amended", 20_000)
    source.write_bytes(changed)
    second = deployment.run("deploy_site")
    assert second["status"] == "successful", second
    for host in deployment.hosts:
        assert deployment.fetch(host, "/documents/disclosure-0003.pdf").content == changed
    # One changed PDF crossed the wire per host, not the whole site.
    sent = bytes_sent(deployment, second["id"])
    assert len(sent) == 3 and all(0 < n <= 2 * len(changed) + 4096 for n in sent), sent

    back = deployment.run("rollback_site")
    assert back["status"] == "successful", back
    for host in deployment.hosts:
        assert deployment.fetch(host, "/documents/disclosure-0003.pdf").content == original


def bytes_sent(deployment, run_id: int) -> list[int]:
    events = deployment.api("GET", f"/api/runs/{run_id}/events", params={"limit": "500"}).json()["events"]
    found = []
    for event in events:
        if "site_deploy_bytes_sent" in event["stdout"] and event["event"] == "runner_on_ok":
            found.append(int(event["stdout"].split('"site_deploy_bytes_sent": ')[1].split(",")[0].strip('"')))
    return found


def test_two_deploys_of_one_slug_never_overlap(deployment):
    a = deployment.run("deploy_site", wait=False)
    b = deployment.run("deploy_site", wait=False)
    a, b = deployment.wait(a["id"]), deployment.wait(b["id"])
    assert a["status"] == b["status"] == "successful", (a, b)
    assert a["finished_at"] <= b["started_at"], (a, b)


def worker_pid(server: WecoServer) -> int:
    for proc in pathlib.Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().split(b"\0")
                status = (proc / "status").read_text()
            except OSError:
                continue
            ppid = int(status.split("PPid:")[1].split()[0])
            if b"worker" in cmdline and b"control_api.cli" in cmdline and ppid == server.process.pid:
                return int(proc.name)
    raise AssertionError("no embedded worker")


def test_a_worker_killed_mid_deploy_leaves_the_old_release_served_and_the_slug_free(deployment):
    host = deployment.hosts[0]
    before = deployment.fetch(host, "/").text
    big = deployment.data_dir / "site-sources" / "acme" / "documents" / "annual-report.pdf"
    big.write_bytes(pdf("Annual report", 3_000_000))
    # The first host serves acme through a second, bandwidth-limited entry for a while.
    fast_id = host_id(deployment, host.name)
    slow = deployment.api("POST", "/api/hosts", json={
        "name": f"{host.name}-slow", "address": host.address, "ssh_user": "root",
        "ssh_private_key": deployment.private_key, "ssh_host_key": host.host_key_line(),
        "vars": {"site_deploy_tls": False, "site_deploy_bwlimit": 300}}).json()
    deployment.api("DELETE", f"/api/sites/acme/hosts/{fast_id}")
    deployment.api("PUT", f"/api/sites/acme/hosts/{slow['id']}")
    run = deployment.run("deploy_site", wait=False)
    deadline = time.monotonic() + 60
    while "--bwlimit" not in processes():
        assert time.monotonic() < deadline, "the transfer never started"
        time.sleep(0.1)
    os.kill(worker_pid(deployment.server), signal.SIGKILL)
    lost = deployment.wait(run["id"], timeout=60)
    assert lost["status"] == "lost", lost
    assert "--bwlimit" not in processes()  # nothing of the dead run goes on
    assert deployment.fetch(host, "/").text == before
    # The slug is free again: the restarted worker takes the next deploy of it.
    big.unlink()
    deployment.api("DELETE", f"/api/sites/acme/hosts/{slow['id']}")
    deployment.api("PUT", f"/api/sites/acme/hosts/{fast_id}")
    again = deployment.run("deploy_site")
    assert again["status"] == "successful", again


def processes() -> str:
    return subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout


def host_id(deployment, name: str) -> int:
    return next(h["id"] for h in deployment.api("GET", "/api/hosts").json()["hosts"] if h["name"] == name)


def test_jinja_from_the_api_or_the_store_never_runs_on_the_worker_or_the_host(deployment, tmp_path):
    """Issue 11, item 1, on SSH hosts: a superadmin token cannot get a Jinja payload in,
    and one written straight into the store stops the run before Ansible starts."""
    marker = tmp_path / "marker"
    evil = "{{ lookup('pipe', 'touch " + str(marker) + "') }}"
    host = deployment.hosts[1]
    entry = {"name": "evil", "address": host.address, "ssh_user": "root",
             "ssh_private_key": deployment.private_key, "ssh_host_key": host.host_key_line()}
    refused = deployment.api("POST", "/api/hosts", json=dict(
        entry, vars={"site_deploy_root": "/srv/" + evil + "x", "site_deploy_tls": False}))
    assert refused.status_code == 400 and "site_deploy_root" in refused.json()["description"]
    made = deployment.api("POST", "/api/hosts", json=dict(entry, vars={"site_deploy_tls": False})).json()
    assert deployment.api("POST", "/api/sites", json={"slug": "evil", "domain": "evil.example.test"}).ok
    assert deployment.api("PUT", f"/api/sites/evil/hosts/{made['id']}").status_code == 201
    write_sample_site(deployment.data_dir / "site-sources" / "evil", count=1, size=1000)
    store = sqlite3.connect(deployment.data_dir / "weco.sqlite3")
    with store:
        store.execute("UPDATE hosts SET vars_json = ? WHERE id = ?",
                      (json.dumps({"site_deploy_root": "/srv/" + evil + "x"}), made["id"]))
    store.close()
    run = deployment.run("deploy_site", site="evil")
    assert run["status"] == "error" and "stored value" in run["error"], run
    assert not marker.exists()
    assert host.ssh(f"test -e {marker}", check=False).returncode == 1
    assert deployment.api("DELETE", "/api/sites/evil").status_code == 204
    assert deployment.api("DELETE", f"/api/hosts/{made['id']}").status_code == 204


def test_jinja_in_connection_values_is_never_rendered_on_an_ssh_host(deployment, tmp_path):
    """The adapter's own layer, with the API's and the worker's checks bypassed: every
    string reaches Ansible marked unsafe, against a real host."""
    marker = tmp_path / "marker"
    evil = "{{ lookup('pipe', 'touch " + str(marker) + "') }}"
    host = deployment.hosts[1]
    base = {"ansible_host": host.address, "ansible_user": "root",
            "ansible_ssh_private_key_file": harness_key(),
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"}
    project = pathlib.Path(__file__).resolve().parents[3]
    for playbook, host_vars, extra in (
            ("check_hosts.yml", dict(base, probe=evil), {"note": evil}),
            ("check_hosts.yml", dict(base, ansible_user="root" + evil), {}),
            ("rollback_site.yml", dict(base, site_deploy_root="/srv/" + evil + "x"),
             {"site_slug": "acme", "site_release_id": evil})):
        job = PlaybookJob(run_dir=tmp_path / "run", project_dir=project, playbook=playbook,
                          inventory={"all": {"hosts": {host.name: host_vars}}}, extra_vars=extra,
                          env={"FF_ENV": "dev"}, timeout=120)
        AnsibleRunnerAdapter().run(job, lambda event: None, lambda: False)
        assert not marker.exists(), playbook
    assert host.ssh(f"test -e {marker}", check=False).returncode == 1


def test_the_host_key_appears_nowhere(deployment):
    """Run last in this module: every run above has stored its events by now."""
    canary = deployment.canary.encode()
    for path in deployment.data_dir.rglob("*"):
        if path.is_file():
            assert canary not in path.read_bytes(), path
    assert not list(deployment.data_dir.glob("runs/*/env"))
    assert not list(deployment.data_dir.rglob("ssh_key*"))
    assert deployment.canary not in deployment.server._read_log()
    for host in deployment.hosts:
        leftovers = host.ssh(f"grep -rl '{deployment.canary}' /srv /tmp /var/log /root 2>/dev/null || true")
        assert leftovers.stdout.strip() == ""
