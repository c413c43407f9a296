"""Pinned host keys and credential rotation on real hosts (two systemd-nspawn Debian
targets, booted once for the module), through the API and real `weco worker`
processes.

- A scanned host key is only pending: runs refuse the host until a superadmin confirms
  the fingerprint; a wrong fingerprint pins nothing.
- A host key swapped on the host between two runs fails the second run, with the
  pinned and offered fingerprints in its error and a critical audited alert; re-pinning
  brings the host back.
- A worker SIGKILLed right after each step of a credential rotation leaves a key that
  works (the next run logs in), and the next rotation settles what was left: the host
  ends with exactly the one key the store holds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from control_api.hosts import hostkeys, sshrun
from control_api.hosts.rotation import STEPS
from tests.peers.server import WecoServer, superadmin_token
from tests.peers.testhosts import booted, harness_key

DRIVER = pathlib.Path(__file__).with_name("worker_driver.py")
ROOT = pathlib.Path(__file__).resolve().parents[3]


@dataclasses.dataclass
class Lab:
    server: WecoServer
    headers: dict
    hosts: list
    env: dict
    public_key: str  # the key the product was first given (its public half)
    log: object = None  # where the workers' logs go (a file, read when a test fails)

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, self.server.base + path, headers=self.headers, timeout=60, **kwargs)

    @contextlib.contextmanager
    def worker(self, kill_at: str = "none"):
        process = subprocess.Popen([sys.executable, str(DRIVER), kill_at, "worker"],
                                   env={**self.env, "PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)},
                                   stdout=subprocess.DEVNULL, stderr=self.log)
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=60)

    def wait(self, run_id: int, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            run = self.api("GET", f"/api/runs/{run_id}").json()
            if run["finished_at"]:
                return run
            assert time.monotonic() < deadline, f"run {run_id} did not finish: {run}"
            time.sleep(0.2)

    def check(self, host_id: int) -> dict:
        made = self.api("POST", "/api/runs", json={"playbook": "check_hosts", "hosts": [host_id]})
        assert made.status_code == 201, made.text
        return self.wait(made.json()["id"])

    def rotate(self, host_id: int) -> dict:
        made = self.api("POST", f"/api/hosts/{host_id}/rotate-credentials")
        assert made.status_code == 202, made.text
        return made.json()


def new_key() -> tuple[str, str]:
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return private, public


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    data = tmp_path_factory.mktemp("hostkeys") / "var"
    env = {"FF_ENV": "dev", "FF_DATA_DIR": str(data), "FF_EMBEDDED_WORKER": "0", "FF_RUN_LEASE_SECONDS": "3"}
    token = superadmin_token(env)
    private, public = new_key()
    with booted("hk", 70, 2) as hosts:
        for host in hosts:
            host.authorize(public)
        server = WecoServer(env, workers=1, threads=4).start()
        try:
            lab = Lab(server, {"Authorization": f"Bearer {token}"}, hosts, env, public,
                      (data / "workers.log").open("a"))
            for host in hosts:
                made = lab.api("POST", "/api/hosts", json={"name": host.name, "address": host.address,
                                                           "ssh_private_key": private})
                assert made.status_code == 201, made.text
                assert made.json()["ssh_host_key"] is None
            yield lab
        finally:
            server.stop()


def host_id(lab: Lab, name: str) -> int:
    return next(h["id"] for h in lab.api("GET", "/api/hosts").json()["hosts"] if h["name"] == name)


def test_a_scanned_key_is_used_only_once_confirmed_by_its_fingerprint(lab):
    host = lab.hosts[0]
    hid = host_id(lab, host.name)
    scanned = lab.api("POST", f"/api/hosts/{hid}/host-key/scan")
    assert scanned.status_code == 200, scanned.text
    pending = scanned.json()["ssh_host_key_pending"]
    assert pending["fingerprint"] == host.host_key_fingerprint() and scanned.json()["ssh_host_key"] is None
    with lab.worker():
        refused = lab.check(hid)
    assert refused["status"] == "error" and "has no pinned SSH host key" in refused["error"], refused
    confirm = f"/api/hosts/{hid}/host-key/confirm"
    wrong = lab.api("POST", confirm, json={"fingerprint": "SHA256:" + "A" * 43})
    assert wrong.status_code == 409 and lab.api("GET", f"/api/hosts/{hid}").json()["ssh_host_key"] is None
    right = lab.api("POST", confirm, json={"fingerprint": pending["fingerprint"]})
    assert right.status_code == 200, right.text
    assert right.json()["ssh_host_key"]["key"] == " ".join(host.host_key_line().split()[:2])
    again = lab.api("POST", confirm, json={"fingerprint": pending["fingerprint"]})
    assert again.status_code == 409  # changing a pinned key is a re-pin, never a confirmation
    with lab.worker():
        checked = lab.check(hid)
        assert checked["status"] == "successful", checked["error"]


def test_a_host_key_swapped_between_two_runs_fails_the_second_and_raises_an_alert(lab):
    host = lab.hosts[1]
    hid = host_id(lab, host.name)
    pinned = lab.api("PUT", f"/api/hosts/{hid}/host-key", json={"ssh_host_key": host.host_key_line()})
    assert pinned.status_code == 200, pinned.text
    with lab.worker():
        first = lab.check(hid)
        assert first["status"] == "successful", first
        old = host.host_key_fingerprint()
        host.ssh("rm -f /etc/ssh/ssh_host_ed25519_key* && ssh-keygen -q -t ed25519 -N '' "
                 "-f /etc/ssh/ssh_host_ed25519_key && systemctl restart ssh")
        new = host.host_key_fingerprint()
        assert new != old
        second = lab.check(hid)
        assert second["status"] == "failed", second
        assert second["error"].startswith("SSH host key mismatch: ")
        assert f"host '{host.name}' presented {new}, not its pinned {old}" in second["error"]
        alerts = lab.api("GET", "/api/audit", params={"action": "host.host_key_mismatch"}).json()["events"]
        assert [(a["target"], a["metadata"]["run"], a["metadata"]["offered"], a["metadata"]["severity"])
                for a in alerts] == [(f"host:{hid}", second["id"], new, "critical")]
        # Re-pinning is explicit and audited; then the host is reachable again.
        repinned = lab.api("PUT", f"/api/hosts/{hid}/host-key", json={"ssh_host_key": host.host_key_line()})
        assert repinned.status_code == 200 and repinned.json()["ssh_host_key"]["fingerprint"] == new
        assert lab.check(hid)["status"] == "successful"
    repins = lab.api("GET", "/api/audit", params={"action": "host.host_key_repin"}).json()["events"]
    # Newest first.
    assert [r["metadata"]["previous"] for r in repins if r["target"] == f"host:{hid}"] == [old, None]


def product_keys(lab: Lab, host) -> list[str]:
    """The authorized_keys lines the product manages (the harness's own key aside)."""
    lines = host.ssh("cat /root/.ssh/authorized_keys").stdout.splitlines()
    return [line for line in lines if "weco-testhosts" not in line and line.strip()]


@pytest.mark.parametrize("step", STEPS)
def test_a_worker_killed_after_each_rotation_step_leaves_a_key_that_works(lab, step):
    host = lab.hosts[0]
    hid = host_id(lab, host.name)
    if lab.api("GET", f"/api/hosts/{hid}").json()["ssh_host_key"] is None:  # run alone
        assert lab.api("PUT", f"/api/hosts/{hid}/host-key",
                       json={"ssh_host_key": host.host_key_line()}).status_code == 200
    run = lab.rotate(hid)
    with lab.worker(kill_at=step) as killed:
        assert killed.wait(timeout=120) == -signal.SIGKILL, f"the worker never reached step {step}"
    with lab.worker():
        check = lab.check(hid)
        assert check["status"] == "successful", (step, check)
        assert lab.wait(run["id"], timeout=60)["status"] == "lost"
        # The next rotation settles what the killed one left, and finishes.
        settled = lab.wait(lab.rotate(hid)["id"])
        assert settled["status"] == "successful", (step, settled)
    keys = product_keys(lab, host)
    fingerprint = lab.api("GET", f"/api/hosts/{hid}").json()["ssh_key_fingerprint"]
    assert len(keys) == 1 and keys[0].endswith(f" weco-host-{hid}"), (step, keys)
    assert lab.public_key.split()[1] not in keys[0]
    assert fingerprint_of(keys[0]) == fingerprint


def fingerprint_of(line: str) -> str:
    return subprocess.run(["ssh-keygen", "-lf", "-"], input=line, capture_output=True, text=True,
                          check=True).stdout.split()[1]


def run_ssh_processes(base: str) -> list[int]:
    """Processes whose command line names the run's ssh directory (its masters)."""
    found = []
    for entry in pathlib.Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and base in (entry / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def through_master(options: list[str], host) -> subprocess.CompletedProcess:
    """A command as Ansible runs one (ControlMaster=auto at the run's ControlPath), but
    with no agent (ssh keeps an option's first value): it cannot log in by itself, only
    ride a master that has."""
    return subprocess.run(["ssh", "-o", "IdentityAgent=none", *options, "-o", "BatchMode=yes",
                           "-o", "ControlMaster=auto", "-o", "ControlPersist=no",
                           "-l", "root", "--", host.address, "echo through"],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)


def wait_for_master(options: list[str], host, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        check = subprocess.run(["ssh", *options, "-O", "check", "-l", "root", "--", host.address],
                               capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
        if check.returncode == 0:
            return True
        time.sleep(0.05)
    return False


def test_a_runs_master_carries_its_sessions_without_a_new_login_and_ends_with_the_run(lab):
    """runs/worker.py logs in to each host while ansible-playbook starts (sshrun.masters):
    Ansible's sessions then ride that login (here: one that could not log in by itself);
    when the run ends, so do its masters."""
    host = lab.hosts[0]
    access = sshrun.HostAccess(900, hostkeys.parse(host.host_key_line()),
                               (pathlib.Path(harness_key()).read_bytes(),))
    with sshrun.session([access], lifetime=60) as ssh:
        options = ssh[900]
        control_path = next(o for o in options if o.startswith("ControlPath=")).removeprefix("ControlPath=")
        base = str(pathlib.Path(control_path).parent)
        with sshrun.masters([sshrun.Endpoint(options, host.address, 22, "root")]):
            assert wait_for_master(options, host, 10), "the master never came up"
            done = through_master(options, host)
            assert done.returncode == 0 and done.stdout.strip() == "through", done.stderr
            assert run_ssh_processes(base)
        assert run_ssh_processes(base) == []
        alone = through_master(options, host)
        assert alone.returncode == 255 and "Permission denied" in alone.stderr, alone.stderr


def test_a_master_refused_for_another_host_key_just_ends_and_the_run_sees_the_refusal(lab):
    """A master has the run's pinned key: one the host does not present stops it, and
    the session Ansible then opens on its own is refused as it would be without one."""
    host = lab.hosts[0]
    other = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    access = sshrun.HostAccess(901, hostkeys.parse(other), (pathlib.Path(harness_key()).read_bytes(),))
    with sshrun.session([access], lifetime=60) as ssh:
        options = ssh[901]
        with sshrun.masters([sshrun.Endpoint(options, host.address, 22, "root")]):
            assert not wait_for_master(options, host, 3)
            done = through_master(options, host)
            assert done.returncode == 255 and "Host key verification failed" in done.stderr, done.stderr
