"""The collection weco.platform (scripts/build-collection) as an operator gets it: two
builds of one commit are the same bytes; it installs offline and holds exactly the
repository's roles and playbooks; its playbooks run as `weco.platform.NAME` from a
directory with no ansible.cfg, their roles and the roles' plugins found in the
collection; and ansible-lint's production profile passes on it, and fails on a copy
with a short module name.

It builds from HEAD (a commit, as the release does): commit before running it."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(sys.executable).parent
PLAYBOOKS = sorted(p.stem for p in (ROOT / "playbooks").glob("*.yml"))


def clean_env(**extra: str) -> dict[str, str]:
    """No ANSIBLE_* of the caller (a roles path or config pointing at the checkout)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("SOURCE_DATE_EPOCH", None)
    return env | extra


def run(argv: list[str], cwd: pathlib.Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def build(out: pathlib.Path) -> pathlib.Path:
    done = run([str(ROOT / "scripts/build-collection"), str(out)], ROOT, clean_env())
    assert done.returncode == 0, done.stderr
    return pathlib.Path(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> pathlib.Path:
    return build(tmp_path_factory.mktemp("build-a"))


@pytest.fixture(scope="module")
def installed(built, tmp_path_factory) -> pathlib.Path:
    """The collections path the built tarball was installed into, offline."""
    path = tmp_path_factory.mktemp("collections")
    argv = [str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "-p", str(path), str(built)]
    done = run(argv, path, clean_env())
    assert done.returncode == 0, done.stdout + done.stderr
    return path


@pytest.fixture
def outside(tmp_path, installed) -> tuple[pathlib.Path, dict[str, str]]:
    """A cwd with no ansible.cfg, an empty config and an empty roles path: only the
    installed collection can provide roles."""
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")
    (tmp_path / "no-roles").mkdir()
    return tmp_path, clean_env(ANSIBLE_COLLECTIONS_PATH=str(installed),
                               ANSIBLE_CONFIG=str(tmp_path / "ansible.cfg"),
                               ANSIBLE_ROLES_PATH=str(tmp_path / "no-roles"))


def test_two_builds_of_one_commit_are_the_same_bytes(built, tmp_path):
    again = build(tmp_path)
    version = yaml.safe_load((ROOT / "collection/galaxy.yml").read_text())["version"]
    assert again.name == built.name == f"weco-platform-{version}.tar.gz"
    assert again.read_bytes() == built.read_bytes()


def test_the_build_refuses_a_version_galaxy_would_not_take(tmp_path):
    done = run([str(ROOT / "scripts/build-collection"), str(tmp_path), "--version", "1.0"], ROOT, clean_env())
    assert done.returncode == 2 and "semantic version" in done.stderr
    assert not list(tmp_path.iterdir())


def test_the_installed_collection_holds_the_repository_roles_and_playbooks(installed):
    home = installed / "ansible_collections/weco/platform"
    assert sorted(p.name for p in (home / "roles").iterdir()) == sorted(
        p.name for p in (ROOT / "roles").iterdir() if p.is_dir())
    assert sorted(p.stem for p in (home / "playbooks").glob("*.yml")) == PLAYBOOKS
    # Roles' own plugins moved to the collection's plugins/: a collection role gets no
    # plugin dirs of its own.
    assert not list(home.glob("roles/*/library")) and not list(home.glob("roles/*/action_plugins"))
    own = [*ROOT.glob("roles/*/library/*.py"), *ROOT.glob("roles/*/action_plugins/*.py")]
    assert {p.name for p in home.glob("plugins/*/*.py")} == {p.name for p in own}


def test_each_playbook_passes_the_syntax_check_from_the_collection(outside):
    cwd, env = outside
    done = run([str(BIN / "ansible-playbook"), "--syntax-check", "-i", "localhost,",
                *(f"weco.platform.{name}" for name in PLAYBOOKS)], cwd, env)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in PLAYBOOKS:
        assert f"ansible_collections/weco/platform/playbooks/{name}.yml" in done.stdout


def test_deploy_and_rollback_run_from_the_collection(outside):
    """A real deploy into a temp dir on localhost (unprivileged settings, as the demo's),
    twice, then a rollback: roles and their action plugins resolve in the collection."""
    cwd, env = outside
    source, root = cwd / "site", cwd / "served"
    source.mkdir()
    root.mkdir()
    common = ["-i", "localhost,", "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}",
              "-e", "site_slug=demo", "-e", f"site_deploy_root={root}",
              "-e", "site_deploy_install_packages=false", "-e", "site_deploy_nginx=false"]
    for release in ("r1", "r2"):
        (source / "index.html").write_text(f"release {release}\n")
        done = run([str(BIN / "ansible-playbook"), "weco.platform.deploy_site", *common,
                    "-e", f"site_source_dir={source}", "-e", f"site_release_id={release}"], cwd, env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "TASK [weco.platform.site_deploy : " in done.stdout
        assert (root / "demo/current/index.html").read_text() == f"release {release}\n"
    done = run([str(BIN / "ansible-playbook"), "weco.platform.rollback_site", *common], cwd, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert os.readlink(root / "demo/current").endswith("r1")


def lint(cwd: pathlib.Path, installed: pathlib.Path, *paths: str) -> subprocess.CompletedProcess:
    env = clean_env(ANSIBLE_COLLECTIONS_PATH=str(installed), NO_COLOR="1")
    argv = [str(BIN / "ansible-lint"), "--nocolor", "-f", "pep8", "-c", str(ROOT / ".ansible-lint"), *paths]
    return run(argv, cwd, env)


def test_ansible_lint_production_passes_on_the_collection(installed):
    done = lint(installed / "ansible_collections/weco/platform", installed)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Profile 'production' was required, and it passed" in done.stdout + done.stderr


def test_ansible_lint_fails_on_a_short_module_name(installed, tmp_path):
    broken = tmp_path / "platform"
    shutil.copytree(installed / "ansible_collections/weco/platform", broken)
    playbook = broken / "playbooks/check_hosts.yml"
    playbook.write_text(playbook.read_text().replace("ansible.builtin.ping:", "ping:"))
    done = lint(broken, installed, "playbooks/check_hosts.yml")
    assert done.returncode != 0
    assert "fqcn[action-core]" in done.stdout
