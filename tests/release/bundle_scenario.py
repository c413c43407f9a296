"""The signed release bundle, end to end on bare Debian 12 test hosts with no route out.

Run beside the rest of the suite (tests/side_runs.py starts it when collection finishes;
tests/release/test_bundle_scenario.py waits for it). Builds the bundle with
`scripts/release build` from this commit, then on four bare hosts (systemd, sshd and
python3 only; forwarding only between their links, nothing NATed):

- refusals first, on rl64 before anything is installed there: a flipped byte, a
  signature from another key, a missing signature, FF_ALLOW_UNVERIFIED=1 on a tagged
  build; each leaves the host as it was;
- rl63 gets only the tarball, its signature and install.sh, and `install.sh --admin`;
  a login works through nginx over HTTPS;
- rl64 is installed with `install.sh --host`, rl65 through the admin VM's API
  (install_hosts as an audited run); one deploy serves the site on both;
- the SBOM lists every package installed on the admin VM (pip freeze, dpkg);
- with the egress allowlist on, the login and the deploy hit none of its reject counters;
- rw68 becomes a worker machine of the admin VM with `install.sh --worker --inventory`
  run there, and claims a deploy from its queue while the admin VM's own worker is stopped;
- a newer bundle (the next commit's, signed by the same key) uploaded through the API is
  verified, applied as root by weco-update.service (to the admin VM and, from the
  inventory install.sh kept, to the worker machine), and the control plane comes
  back on it with its data, its audit chain and deploys that work, one claimed by rw68.
"""

from __future__ import annotations

import base64
import json
import os
import pathlib
import subprocess
import time

import pytest
import requests
from packaging.version import Version

from control_api.release import bundle, sbom, signing
from tests.control_api.runs.test_deploys_on_hosts import new_key
from tests.peers.testhosts import ROOT, booted
from tests.peers.testhosts import TestHost as Host

ADMIN, SITE, API_SITE, WORKER = "10.200.63.2", "10.200.64.2", "10.200.65.2", "10.200.68.2"
# Everything a refused install could have written to.
FOOTPRINT = ("find /etc /opt /srv /usr /var/lib /var/cache/apt -xdev -newer /root/before -not -path "
             "'/var/lib/systemd/*' -print 2>/dev/null | sort")


# What the install test leaves for the update test after it (the CA, a token).
INSTALLED: dict = {}


def build_release(out: pathlib.Path, keys: pathlib.Path, commit: str) -> subprocess.CompletedProcess:
    argv = [ROOT / "scripts/release", "build", out, "--secret-key", keys / "release.key",
            "--public-key", keys / "release.pub", "--commit", commit]
    return subprocess.run(argv, capture_output=True, text=True, timeout=1800)


def git(*args: str, env: dict | None = None, stdin: str | None = None) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True, input=stdin,
                          env=env).stdout.strip()


def next_release_commit(index: pathlib.Path, commit: str) -> str:
    """A child of `commit` whose pyproject.toml names the next patch version, as the next
    release's commit would; no branch or tag points at it (git gc drops it in time)."""
    env = dict(os.environ, GIT_INDEX_FILE=str(index), GIT_AUTHOR_NAME="weco-tests",
               GIT_AUTHOR_EMAIL="tests@weco.test", GIT_COMMITTER_NAME="weco-tests",
               GIT_COMMITTER_EMAIL="tests@weco.test")
    pyproject = git("show", f"{commit}:pyproject.toml")
    current = next(line for line in pyproject.splitlines() if line.startswith("version = "))
    major, minor, micro = Version(current.split('"')[1]).release[:3]
    bumped = pyproject.replace(current, f'version = "{major}.{minor}.{micro + 1}"', 1) + "\n"
    git("read-tree", commit, env=env)
    blob = git("hash-object", "-w", "--stdin", stdin=bumped)
    git("update-index", "--cacheinfo", f"100644,{blob},pyproject.toml", env=env)
    return git("commit-tree", git("write-tree", env=env), "-p", commit, "-m", "The next release", env=env)


def delivery(tarball: pathlib.Path) -> list[pathlib.Path]:
    """What an operator carries in: the tarball, its signature and install.sh."""
    return [tarball, pathlib.Path(f"{tarball}.minisig"), tarball.parent / "install.sh"]


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    out = tmp_path_factory.mktemp("release")
    keys = tmp_path_factory.mktemp("keys")
    signing.generate_keypair(keys / "release.pub", keys / "release.key", password=False)
    signing.generate_keypair(keys / "other.pub", keys / "other.key", password=False)
    started = time.monotonic()
    commit = git("rev-parse", "HEAD")  # every build of this run is of this one commit
    built = build_release(out, keys, commit)
    assert built.returncode == 0, built.stderr[-4000:]
    tarball = pathlib.Path(built.stdout.strip().splitlines()[-1])
    print(f"bundle: {tarball.name} {tarball.stat().st_size / 2**20:.1f} MiB, built in "
          f"{time.monotonic() - started:.0f} s")
    return tarball, keys, commit


@pytest.fixture(scope="module")
def hosts():
    with booted("rl", 63, 3, base="bare") as booted_hosts:
        # The hosts reach each other through this machine's veths (the admin VM reaches
        # the site hosts over SSH); nothing is NATed, so there is still no route out.
        for host in booted_hosts:
            subprocess.run(["sysctl", "-q", "-w", f"net.ipv4.conf.vh-{host.name}.forwarding=1"], check=True)
        yield booted_hosts


@pytest.fixture(scope="module")
def worker_host():
    """A fourth bare host, for a worker machine of the admin VM (rl63)."""
    with booted("rw", 68, 1, base="bare") as (host,):
        subprocess.run(["sysctl", "-q", "-w", f"net.ipv4.conf.vh-{host.name}.forwarding=1"], check=True)
        yield host


@pytest.fixture(scope="module")
def next_release(release, tmp_path_factory):
    _, keys, commit = release
    work = tmp_path_factory.mktemp("next")
    built = build_release(work / "out", keys, next_release_commit(work / "index", commit))
    assert built.returncode == 0, built.stderr[-4000:]
    return pathlib.Path(built.stdout.strip().splitlines()[-1])


def version_of(tarball: pathlib.Path) -> str:
    return tarball.name.removeprefix("weco-").removesuffix(".tar.gz")


def test_two_builds_of_one_commit_are_the_same_bytes(release, tmp_path):
    tarball, keys, commit = release
    again = build_release(tmp_path, keys, commit)
    assert again.returncode == 0, again.stderr[-4000:]
    sbom_name = f"weco-{version_of(tarball)}.sbom.json"
    for name in (tarball.name, f"{tarball.name}.minisig", "install.sh", sbom_name):
        assert (tmp_path / name).read_bytes() == (tarball.parent / name).read_bytes(), name


def test_the_sbom_beside_the_tarball_validates_against_cyclonedx_1_6(release):
    tarball, *_ = release
    document = json.loads((tarball.parent / f"weco-{version_of(tarball)}.sbom.json").read_text())
    sbom.validate(document)
    assert document["specVersion"] == "1.6"
    purls = [c["purl"] for c in document["components"]]
    assert any(p.startswith("pkg:pypi/ansible-core@") for p in purls)
    assert any(p.startswith("pkg:deb/debian/nginx@") for p in purls)


def refusal(host: Host, case: str, setup: str, env: str = "") -> str:
    """Run install.sh --admin from a copy of the delivery in /root/CASE after `setup` there;
    it must fail, print one line, and leave nothing behind."""
    host.ssh(f"rm -rf /root/{case} && cp -a /root/delivery /root/{case} && cd /root/{case} && {setup}")
    host.ssh("touch /root/before && sleep 1")
    ran = host.ssh(f"cd /root/{case} && {env} ./install.sh --admin", check=False, timeout=120)
    assert ran.returncode == 1, (case, ran.stdout, ran.stderr)
    assert ran.stderr.count("\n") == 1 and ran.stderr.startswith("install.sh: refused:"), (case, ran.stderr)
    assert host.ssh(FOOTPRINT, check=False).stdout == "", (case, "the target changed")
    left = host.ssh("ls -d /var/lib/weco-install /opt/weco-installer", check=False)
    assert left.returncode != 0 and not left.stdout, (case, left.stdout)
    host.ssh(f"rm -rf /root/{case}")
    return ran.stderr.strip()


def test_tampering_is_refused_before_anything_is_written(release, hosts, tmp_path):
    tarball, keys, _ = release
    site = hosts[1]
    name = tarball.name
    site.copy_in(delivery(tarball), "/root/delivery")
    # Another key's signature over the very same bytes.
    other = tmp_path / name
    other.symlink_to(tarball)
    foreign = signing.sign(other, keys / "other.key", f"file:{name} version:{version_of(tarball)}")
    site.copy_in([foreign], "/root/foreign")
    # One byte of the tarball overwritten.
    flip = ("python3 -c 'import sys; f = open(sys.argv[1], \"r+b\"); f.seek(4096); b = f.read(1)[0]; "
            f"f.seek(4096); f.write(bytes([b ^ 1]))' {name}")
    # The copy inside the tarball (it has no digest: only the signature guards it).
    inner = f"tar -xzOf {name} weco-{version_of(tarball)}/install.sh > install.sh"

    assert "has SHA-256" in refusal(site, "flip", flip)
    assert "does not match the file" in refusal(site, "flip-inner", f"{inner} && {flip}")
    assert "trusted key" in refusal(site, "other-key", f"cp /root/foreign/{name}.minisig .")
    assert "no signature" in refusal(site, "no-signature", f"rm {name}.minisig")
    # install.sh as a tagged build of this version makes it; the check comes before any other.
    tagged = tmp_path / "install.sh"
    version = version_of(tarball)
    tagged.write_text(bundle.render_installer(version=version, tag=f"v{version}",
                                              public_key=signing.public_key_line(keys / "release.pub")))
    site.copy_in([tagged], "/root/tagged")
    assert "tagged release" in refusal(site, "unverified-tagged", "cp /root/tagged/install.sh .",
                                       env="FF_ALLOW_UNVERIFIED=1")


def api_session(admin: Host, ca: pathlib.Path) -> dict:
    password = admin.ssh("sed -n 2p /root/superadmin.txt").stdout.strip()
    login = requests.post(f"https://{ADMIN}/api/auth/login", verify=ca, timeout=30,
                          json={"email": "admin@weco.test", "password": password})
    assert login.status_code == 200, login.text
    minted = requests.post(f"https://{ADMIN}/api/tokens", verify=ca, timeout=30, cookies=login.cookies,
                           headers={"X-CSRF-Token": login.json()["csrf_token"]},
                           json={"name": f"bundle-test-{time.time_ns()}"})
    assert minted.status_code == 201, minted.text
    return {"Authorization": f"Bearer {minted.json()['value']}"}


def reject_counters(host: Host) -> list[int]:
    rules = host.ssh("nft -a list ruleset").stdout
    return [int(line.split("counter packets ")[1].split()[0]) for line in rules.splitlines()
            if "counter packets" in line and "reject" in line]


def register(ca, auth, host: Host, private_key: str) -> int:
    made = requests.post(f"https://{ADMIN}/api/hosts", verify=ca, headers=auth, timeout=30, json={
        "name": host.name, "address": host.address, "ssh_user": "root", "ssh_private_key": private_key,
        "ssh_host_key": host.host_key_line()})
    assert made.status_code == 201, made.text
    return made.json()["id"]


def succeeded(ca, auth, run_id: int, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while True:
        run = requests.get(f"https://{ADMIN}/api/runs/{run_id}", verify=ca, headers=auth, timeout=30).json()
        if run["finished_at"]:
            break
        assert time.monotonic() < deadline, run
        time.sleep(1)
    if run["status"] != "successful":
        events = requests.get(f"https://{ADMIN}/api/runs/{run_id}/events", verify=ca, headers=auth,
                              timeout=30).json()
        raise AssertionError(f"run {run_id} {run['status']}: {run['error']}\n{json.dumps(events)[-6000:]}")


def test_install_sh_installs_the_admin_vm_and_site_hosts_offline(release, hosts, tmp_path):
    tarball, *_ = release
    admin, site, api_site = hosts
    admin.copy_in(delivery(tarball), "/root/delivery")
    private, public = new_key()
    admin_vars = {
        "control_api_superadmin_email": "admin@weco.test",
        "control_api_superadmin_password_file": "/root/superadmin.txt",
        "control_api_worker_instances": 1,
        # The control plane runs in production; the hosts it installs have no LUKS, so it tells
        # their gate that the disks are the provider's to encrypt (recorded on each host).
        "control_api_settings": {"FF_DISK_ENCRYPTION": "cloud-managed"},
        "nginx_tls_server_names": ["rl63.weco.test"], "nginx_tls_ip_sans": [ADMIN],
        "nginx_tls_listen_ipv6": False,
        "egress_allowlist_destinations": [{"name": f"ssh-{h}", "host": h, "port": 22, "protocol": "tcp"}
                                          for h in (SITE, API_SITE)]}
    site_vars = {"site_host_deploy_public_key": public, "nginx_tls_server_names": ["rl64.weco.test"],
                 "nginx_tls_listen_ipv6": False, "egress_allowlist_destinations": []}
    for host, variables in ((admin, admin_vars), (site, site_vars)):
        (tmp_path / f"{host.name}.json").write_text(json.dumps(variables))
        host.copy_in([tmp_path / f"{host.name}.json"], "/root/delivery")
    started = time.monotonic()
    # A test host has no LUKS: the gate lets it through only in dev, when told to.
    env = "FF_ENV=dev FF_ALLOW_UNENCRYPTED=1"
    installed = admin.ssh(f"cd /root/delivery && {env} ./install.sh --admin --vars rl63.json", check=False,
                          timeout=1800)
    assert installed.returncode == 0, installed.stdout[-6000:] + installed.stderr[-3000:]
    print(f"install.sh --admin: {time.monotonic() - started:.0f} s")
    installed = site.ssh(f"cd /root/delivery && {env} ./install.sh --host --vars rl64.json", check=False,
                         timeout=1200)
    assert installed.returncode == 0, installed.stdout[-6000:] + installed.stderr[-3000:]

    ca = tmp_path / "ca.crt"
    ca.write_text(admin.ssh("cat /etc/ssl/weco/weco-ca.crt").stdout)
    counters = reject_counters(admin)
    auth = api_session(admin, ca)  # a login through nginx over HTTPS
    INSTALLED.update(ca=ca, auth=auth, admin_vars=admin_vars)
    site_id = register(ca, auth, site, private)
    api_site.authorize(public)
    api_site_id = register(ca, auth, api_site, private)

    # The third host is installed by the control plane itself, as an audited run.
    run = requests.post(f"https://{ADMIN}/api/runs", verify=ca, headers=auth, timeout=30,
                        json={"playbook": "install_hosts", "hosts": [api_site_id]})
    assert run.status_code == 201, run.text
    succeeded(ca, auth, run.json()["id"])

    admin.ssh("install -d -o weco -g weco /var/lib/weco/site-sources/demo && "
              "echo '<h1>from the bundle</h1>' > /var/lib/weco/site-sources/demo/index.html")
    for method, path, body in (("POST", "/api/sites", {"slug": "demo", "domain": "demo.weco.test"}),
                               ("PUT", f"/api/sites/demo/hosts/{site_id}", {}),
                               ("PUT", f"/api/sites/demo/hosts/{api_site_id}", {})):
        answer = requests.request(method, f"https://{ADMIN}{path}", verify=ca, headers=auth, timeout=30,
                                  json=body)
        assert answer.status_code in (200, 201, 204), answer.text
    run = requests.post(f"https://{ADMIN}/api/runs", verify=ca, headers=auth, timeout=30,
                        json={"playbook": "deploy_site", "site": "demo"})
    assert run.status_code == 201, run.text
    succeeded(ca, auth, run.json()["id"])
    for host in (site, api_site):
        served = subprocess.run(["curl", "-fsS", "-k", "--resolve", f"demo.weco.test:443:{host.address}",
                                 "https://demo.weco.test/"], capture_output=True, text=True, timeout=30)
        assert "from the bundle" in served.stdout, (host.name, served.stderr)
        log = host.ssh("cat /var/log/weco-host-audit.jsonl").stdout
        lines = [json.loads(line) for line in log.splitlines()]
        assert {"prepare", "activate"} <= {e["action"] for e in lines if e.get("slug") == "demo"}, lines

    # Runtime egress: the login, the host installs and the deploy reached nothing outside the allowlist.
    assert counters and reject_counters(admin) == counters, admin.ssh("nft list ruleset").stdout
    audit = admin.ssh("weco audit verify --witness-pub /etc/weco/audit/witness.pub", check=False)
    assert audit.returncode == 0, audit.stdout + audit.stderr

    # Every package on the admin VM that the bare image lacked is in the SBOM.
    document = json.loads((tarball.parent / f"weco-{version_of(tarball)}.sbom.json").read_text())
    freeze = admin.ssh("/opt/weco/current/bin/python -m pip freeze --all; "
                       "for v in /opt/weco-installer/*/bin/python; do $v -m pip freeze --all; done").stdout
    dpkg = admin.ssh("dpkg-query -W -f '${Package} ${Version}\\n'").stdout
    bare = subprocess.run([ROOT / "molecule/_hosts/base-bare.sh"], capture_output=True, text=True,
                          check=True).stdout.strip().splitlines()[-1]
    base = set(subprocess.run(["dpkg-query", f"--admindir={bare}/var/lib/dpkg", "-W", "-f", "${Package}\n"],
                              capture_output=True, text=True, check=True).stdout.split())
    missing = sbom.installed_vs_sbom(document, freeze, dpkg, base)
    assert not missing, missing


def ran_on(ca, auth, run_id: int) -> str:
    """The worker that started the run, from its audited `run.start`."""
    events = requests.get(f"https://{ADMIN}/api/audit", params={"action": "run.start"}, verify=ca,
                          headers=auth, timeout=30).json()["events"]
    return next(e["metadata"]["worker"] for e in events if e["target"] == f"run:{run_id}")


def deployed_by(admin: Host, ca, auth, worker_prefix: str) -> None:
    """A deploy of the demo site, claimed by a worker whose name starts with `worker_prefix`:
    the admin VM's own worker is stopped meanwhile."""
    admin.ssh("systemctl stop weco-worker@1")
    try:
        run = requests.post(f"https://{ADMIN}/api/runs", verify=ca, headers=auth, timeout=30,
                            json={"playbook": "deploy_site", "site": "demo"})
        assert run.status_code == 201, run.text
        succeeded(ca, auth, run.json()["id"])
        assert ran_on(ca, auth, run.json()["id"]).startswith(worker_prefix)
    finally:
        admin.ssh("systemctl start weco-worker@1")


def test_install_sh_worker_installs_a_worker_machine_with_its_admin_vm(release, hosts, worker_host, tmp_path):
    admin, worker = hosts[0], worker_host
    ca, auth = INSTALLED["ca"], INSTALLED["auth"]
    # The admin VM reaches the worker over SSH with a key of its own; the worker's host key
    # is pinned there (install.sh checks host keys).
    private, public = new_key()
    worker.authorize(public)
    (tmp_path / "weco-workers").write_text(private)
    admin.copy_in([tmp_path / "weco-workers"], "/root/.ssh")
    admin.ssh(f"chmod 0600 /root/.ssh/weco-workers && echo '{WORKER} {worker.host_key_line()}' "
              ">> /root/.ssh/known_hosts")
    hostname = admin.ssh("cat /proc/sys/kernel/hostname").stdout.strip()

    def ssh_to(*addresses: str) -> list[dict]:
        return [{"name": f"ssh-{a}", "host": a, "port": 22, "protocol": "tcp"} for a in addresses]

    # Each machine's own variables in the inventory; --vars holds what they share.
    python = {"ansible_python_interpreter": "/usr/bin/python3"}
    store = {"name": "store", "host": ADMIN, "port": 5432, "protocol": "tcp"}
    inventory = {
        "weco_admin": {"hosts": {hostname: {
            **python, "ansible_connection": "local", "ansible_host": ADMIN,
            "egress_allowlist_destinations": ssh_to(SITE, API_SITE, WORKER)}}},
        "weco_workers": {"hosts": {worker.name: {
            **python, "ansible_host": WORKER, "ansible_user": "root",
            "ansible_ssh_private_key_file": "/root/.ssh/weco-workers",
            "egress_allowlist_destinations": [store, *ssh_to(SITE, API_SITE)]}}}}
    shared = {key: value for key, value in INSTALLED["admin_vars"].items()
              if key != "egress_allowlist_destinations"}
    (tmp_path / "workers.json").write_text(json.dumps(inventory))
    (tmp_path / "shared.json").write_text(json.dumps(shared))
    admin.copy_in([tmp_path / "workers.json", tmp_path / "shared.json"], "/root/delivery")
    started = time.monotonic()
    installed = admin.ssh("cd /root/delivery && FF_ENV=dev FF_ALLOW_UNENCRYPTED=1 ./install.sh --worker "
                          "--inventory workers.json --vars shared.json", check=False, timeout=1800)
    assert installed.returncode == 0, installed.stdout[-6000:] + installed.stderr[-3000:]
    print(f"install.sh --worker: {time.monotonic() - started:.0f} s")
    kept = admin.ssh("stat -c %a /var/lib/weco-install/admin.inventory.json && "
                     "cat /var/lib/weco-install/admin.inventory.json").stdout
    assert kept == "600\n" + json.dumps(inventory), kept  # root's own copy, for the next update

    # The worker machine claims a deploy from the admin VM's queue and runs it. It deploys
    # what it can read: the site's content directory, as on the admin VM (README).
    worker.ssh("install -d -o weco -g weco /var/lib/weco/site-sources/demo && "
               "echo '<h1>from the bundle</h1>' > /var/lib/weco/site-sources/demo/index.html")
    deployed_by(admin, ca, auth, f"{worker.name}:")
    INSTALLED.update(worker=worker)


def releases(ca, auth) -> list[dict]:
    listed = requests.get(f"https://{ADMIN}/api/releases", verify=ca, headers=auth, timeout=30)
    return listed.json()["releases"]


def test_a_newer_bundle_uploaded_through_the_api_is_applied_as_root(next_release, hosts):
    admin = hosts[0]
    ca, auth = INSTALLED["ca"], INSTALLED["auth"]
    version = version_of(next_release)
    signature = base64.b64encode(pathlib.Path(f"{next_release}.minisig").read_bytes()).decode()
    with next_release.open("rb") as body:
        uploaded = requests.post(f"https://{ADMIN}/api/releases", verify=ca, timeout=600, data=body, headers={
            **auth, "Content-Type": "application/gzip", "X-Weco-Signature": signature})
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["state"] == "received" and uploaded.json()["version"] == version
    applying = requests.post(f"https://{ADMIN}/api/releases/{uploaded.json()['id']}/apply", verify=ca,
                             headers=auth, timeout=30)
    assert applying.status_code == 202, applying.text

    # The control plane restarts on the new release while it installs: wait for the row's end.
    deadline, row = time.monotonic() + 1200, {}
    while time.monotonic() < deadline:
        try:
            row = next(r for r in releases(ca, auth) if r["version"] == version)
        except (requests.RequestException, ValueError):
            row = {}
        if row.get("state") in ("applied", "failed"):
            break
        time.sleep(3)
    journal = admin.ssh("journalctl -u weco-update.service --no-pager | tail -40", check=False).stdout
    assert row.get("state") == "applied", (row, journal)
    assert admin.ssh("readlink -f /opt/weco/current").stdout.strip().endswith(version)
    assert admin.ssh("test ! -e /var/lib/weco/updates/apply.json", check=False).returncode == 0

    # The same data, a login, a deploy and an intact audit chain on the new release.
    auth = api_session(admin, ca)
    run = requests.post(f"https://{ADMIN}/api/runs", verify=ca, headers=auth, timeout=30,
                        json={"playbook": "deploy_site", "site": "demo"})
    assert run.status_code == 201, run.text
    succeeded(ca, auth, run.json()["id"])
    audit = admin.ssh("weco audit verify --witness-pub /etc/weco/audit/witness.pub", check=False)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    # The update went to the worker machine too (from the inventory install.sh kept),
    # which still reaches the store and claims runs.
    worker = INSTALLED["worker"]
    assert worker.ssh("readlink -f /opt/weco/current").stdout.strip().endswith(version)
    deployed_by(admin, ca, auth, f"{worker.name}:")
    for action in ("release.received", "release.apply_requested", "release.applied"):
        found = requests.get(f"https://{ADMIN}/api/audit", params={"action": action}, verify=ca, headers=auth,
                             timeout=30).json()["events"]
        assert any(e["metadata"].get("version") == version for e in found), (action, found)
