"""playbooks/deploy_site.yml and rollback_site.yml with ansible_connection=local.

This is how the embedded demo's worker runs them: a local rsync into a writable
site_deploy_root, without nginx or apt. The molecule scenario (molecule/site_deploy)
covers SSH targets, nginx and killed deploys.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
BIN = pathlib.Path(sys.executable).parent


def site(top: pathlib.Path, changed: bytes) -> pathlib.Path:
    (top / "reports").mkdir(parents=True)
    (top / "index.html").write_bytes(b"<h1>Disclosures</h1>")
    (top / "reports/big.pdf").write_bytes(b"%PDF-1.4 " + os.urandom(400_000))
    (top / "reports/changed.pdf").write_bytes(changed)
    return top


class Deployer:
    def __init__(self, tmp: pathlib.Path) -> None:
        self.root = tmp / "sites"
        self.inventory = tmp / "inventory"
        self.inventory.write_text(
            f"demo ansible_connection=local ansible_python_interpreter={sys.executable}\n")

    def run(self, playbook: str, **extra: object) -> subprocess.CompletedProcess[str]:
        extra = {"site_slug": "demo", "site_deploy_root": str(self.root), "site_deploy_nginx": False,
                 "site_deploy_install_packages": False, **extra}
        env = dict(os.environ, ANSIBLE_ROLES_PATH=str(ROOT / "roles"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_FORCE_COLOR="0")
        return subprocess.run([BIN / "ansible-playbook", "-i", self.inventory, ROOT / "playbooks" / playbook,
                               "-e", json.dumps(extra)], capture_output=True, text=True, env=env, timeout=120)

    def current(self) -> str:
        return os.readlink(self.root / "demo/current")


def reported(out: str, name: str) -> int:
    match = re.search(rf'"{name}": (\d+)', out)
    assert match, out[-3000:]
    return int(match[1])


@pytest.fixture
def deployer(tmp_path: pathlib.Path) -> Deployer:
    return Deployer(tmp_path)


def test_deploy_redeploy_and_rollback(tmp_path, deployer):
    v1 = site(tmp_path / "v1", b"%PDF-1.4 " + os.urandom(100_000))
    v2 = site(tmp_path / "v2", b"%PDF-1.4 " + os.urandom(100_000))
    (v2 / "reports/big.pdf").write_bytes((v1 / "reports/big.pdf").read_bytes())

    first = deployer.run("deploy_site.yml", site_source_dir=str(v1), site_release_id="r1")
    assert first.returncode == 0, first.stdout[-3000:]
    assert deployer.current() == "releases/r1"
    assert reported(first.stdout, "site_deploy_bytes_sent") > 500_000

    second = deployer.run("deploy_site.yml", site_source_dir=str(v2), site_release_id="r2")
    assert second.returncode == 0, second.stdout[-3000:]
    assert deployer.current() == "releases/r2"
    # Only changed.pdf travels; big.pdf is hard-linked from r1.
    assert 100_000 < reported(second.stdout, "site_deploy_bytes_sent") < 2 * 100_009 + 16_384
    assert reported(second.stdout, "site_deploy_files_sent") == 1
    releases = deployer.root / "demo/releases"
    assert (releases / "r1/reports/big.pdf").stat().st_ino == (releases / "r2/reports/big.pdf").stat().st_ino
    assert (releases / "r2/reports/changed.pdf").read_bytes() == (v2 / "reports/changed.pdf").read_bytes()

    again = deployer.run("deploy_site.yml", site_source_dir=str(v2), site_release_id="r2")
    assert again.returncode == 0, again.stdout[-3000:]
    assert re.search(r"demo\s+: ok=\d+\s+changed=0 ", again.stdout), again.stdout[-3000:]
    assert reported(again.stdout, "site_deploy_bytes_sent") == 0

    back = deployer.run("rollback_site.yml")
    assert back.returncode == 0, back.stdout[-3000:]
    assert deployer.current() == "releases/r1"


def test_a_source_with_a_symlink_is_refused_before_anything_is_created(tmp_path, deployer):
    source = site(tmp_path / "v1", b"%PDF-1.4")
    (source / "reports/secret.pdf").symlink_to("/etc/shadow")
    done = deployer.run("deploy_site.yml", site_source_dir=str(source), site_release_id="r1")
    assert done.returncode != 0
    assert "reports/secret.pdf (not a regular file)" in done.stdout
    assert not deployer.root.exists()


def test_a_stale_helper_is_replaced_and_a_no_op_redeploy_changes_nothing_else(tmp_path, deployer):
    source = site(tmp_path / "v1", b"%PDF-1.4")
    assert deployer.run("deploy_site.yml", site_source_dir=str(source), site_release_id="r1").returncode == 0
    helper = deployer.root / ".weco-site-release"
    helper.write_text(helper.read_text() + "# another version\n")
    again = deployer.run("deploy_site.yml", site_source_dir=str(source), site_release_id="r1")
    assert again.returncode == 0, again.stdout[-3000:]
    assert helper.read_bytes() == (ROOT / "roles/site_deploy/files/weco_site_release.py").read_bytes()
    assert re.search(r"demo\s+: ok=\d+\s+changed=1 ", again.stdout), again.stdout[-3000:]


def test_a_rollback_where_nothing_was_deployed_is_refused_and_creates_nothing(deployer):
    done = deployer.run("rollback_site.yml")
    assert done.returncode != 0
    assert "nothing was ever deployed there" in done.stdout, done.stdout[-3000:]
    assert not deployer.root.exists()
