"""host_baseline through the API, on a real systemd-nspawn Debian host: an admin granted
the host runs it as an audited run, and the host ends with the egress allowlist in its
ruleset and nginx answering HTTPS; an admin without the grant cannot name the host."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import requests

from tests.control_api.runs.test_deploys_on_hosts import new_key
from tests.peers.server import WecoServer, superadmin_token
from tests.peers.testhosts import booted


def weco(env: dict, *args: str) -> str:
    return subprocess.run([sys.executable, "-m", "control_api.cli", *args], check=True, text=True,
                          capture_output=True, env={"PATH": os.environ["PATH"], **env}).stdout


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    data = tmp_path_factory.mktemp("baseline") / "var"
    # A test host has no LUKS: the gate lets it through only in dev, when told to.
    env = {"FF_ENV": "dev", "FF_DATA_DIR": str(data), "FF_ALLOW_UNENCRYPTED": "1"}
    root = {"Authorization": f"Bearer {superadmin_token(env)}"}
    weco(env, "user", "create", "--email", "ops@example.test", "--role", "admin")
    token = weco(env, "token", "create", "--email", "ops@example.test", "--name", "t")
    admin = {"Authorization": f"Bearer {token.split('store it now): ')[1].split()[0]}"}
    private, public = new_key()
    with booted("hb", 56, 1) as (host,):
        host.authorize(public)
        server = WecoServer(env).start()
        try:
            made = requests.post(f"{server.base}/api/hosts", headers=root, timeout=30, json={
                "name": host.name, "address": host.address, "ssh_user": "root", "ssh_private_key": private,
                "ssh_host_key": host.host_key_line()})
            assert made.status_code == 201, made.text
            yield server, host, made.json()["id"], root, admin
        finally:
            server.stop()


def run(server, headers, host_id: int) -> requests.Response:
    return requests.post(f"{server.base}/api/runs", headers=headers, timeout=30,
                         json={"playbook": "host_baseline", "hosts": [host_id]})


def wait(server, headers, run_id: int, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        found = requests.get(f"{server.base}/api/runs/{run_id}", headers=headers, timeout=30).json()
        if found["finished_at"]:
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.5)


def test_a_granted_admin_runs_the_baseline_on_a_real_host(baseline):
    server, host, host_id, root, admin = baseline
    refused = run(server, admin, host_id)
    assert refused.status_code == 400 and "you may use" in refused.json()["description"]
    me = requests.get(f"{server.base}/api/me", headers=admin, timeout=30).json()
    grant = f"{server.base}/api/hosts/{host_id}/grants/{me['user']['id']}"
    granted = requests.put(grant, headers=root, timeout=30)
    assert granted.status_code == 201
    created = run(server, admin, host_id)
    assert created.status_code == 201, created.text
    done = wait(server, admin, created.json()["id"])
    assert done["status"] == "successful", done
    ruleset = host.ssh("nft list ruleset").stdout
    assert "weco" in ruleset and "policy drop" in ruleset  # outbound is default-deny now
    https = host.ssh("curl -sk -o /dev/null -w '%{http_code}' https://127.0.0.1/", check=False).stdout
    assert https in ("200", "403", "404"), https  # nginx answers TLS (a site comes with deploy_site)
    audit = requests.get(f"{server.base}/api/audit?action=run.request", headers=root, timeout=30).json()
    assert any(e["metadata"].get("playbook") == "host_baseline" for e in audit["events"])
