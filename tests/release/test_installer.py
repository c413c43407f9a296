"""install.sh's checks before it writes anything, on this machine (the same script the
bundle scenario runs on bare hosts), and the bundle's own parts: a byte-reproducible
tarball, SHA256SUMS, the installer's requirement closure and the release identity."""

from __future__ import annotations

import hashlib
import os
import pathlib
import subprocess
import tarfile

import pytest

from control_api.release import build
from control_api.release.bundle import (
    BundleError,
    render_installer,
    requirements_closure,
    write_sha256sums,
    write_tarball,
)

VERSION = "1.2.3+gabcdef012345"


def make_bundle(directory: pathlib.Path, keys, *, comment_file: str | None = None) -> pathlib.Path:
    """A small signed tarball of the real layout (no wheelhouse: install.sh stops there)."""
    stage = directory / f"weco-{VERSION}"
    stage.mkdir()
    (stage / "RELEASE").write_text(f"{VERSION}\n")
    (stage / "SECURITY.md").write_text("# policy\n")
    write_sha256sums(stage)
    tarball = directory / f"weco-{VERSION}.tar.gz"
    write_tarball(stage, tarball, 1_700_000_000)
    keys.sign(tarball, f"file:{comment_file or tarball.name} version:{VERSION} tag:-")
    return tarball


def installer(tarball: pathlib.Path, keys, *, tag: str = "", digest: bool = True) -> pathlib.Path:
    script = tarball.parent / "install.sh"
    sha = hashlib.sha256(tarball.read_bytes()).hexdigest() if digest else ""
    version = tag.removeprefix("v") if tag else VERSION
    script.write_text(render_installer(version=version, tag=tag, public_key=keys.line, tarball_sha256=sha))
    script.chmod(0o755)
    return script


def run(script: pathlib.Path, state: pathlib.Path, *args: str, role: str = "--admin",
        **env: str) -> subprocess.CompletedProcess:
    environment = {"PATH": os.environ["PATH"], "WECO_INSTALL_STATE": str(state),
                   "WECO_INSTALLER_VENV": str(state.parent / "venv"), **env}
    return subprocess.run([script, role, *args], capture_output=True, text=True, env=environment,
                          timeout=60)


def refused(result: subprocess.CompletedProcess, state: pathlib.Path, why: str) -> None:
    assert result.returncode == 1, result
    assert result.stderr.startswith("install.sh: refused: ") and result.stderr.count("\n") == 1, result.stderr
    assert why in result.stderr, result.stderr
    assert not state.exists() and not (state.parent / "venv").exists()  # nothing written


def flip_byte(path: pathlib.Path, offset: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def state(tmp_path):
    return tmp_path / "state" / "weco-install"


def test_a_genuine_tarball_passes_both_checks_and_is_extracted(tmp_path, keys, state):
    tarball = make_bundle(tmp_path, keys)
    result = run(installer(tarball, keys), state)
    # It got past the checks and extracted (the test bundle has no wheelhouse to go on with).
    assert (state / VERSION / "RELEASE").read_text() == f"{VERSION}\n", result.stderr
    assert "refused" not in result.stderr


def test_one_flipped_byte_is_refused_by_the_digest_and_by_the_signature(tmp_path, keys, state):
    tarball = make_bundle(tmp_path, keys)
    script = installer(tarball, keys)
    flip_byte(tarball)
    refused(run(script, state), state, "has SHA-256")
    refused(run(installer(tarball, keys, digest=False), state), state, "does not match the file")


def test_a_signature_from_another_key_is_refused(tmp_path, keys, other_keys, state):
    tarball = make_bundle(tmp_path, other_keys)
    refused(run(installer(tarball, keys), state), state, "trusted key")


def test_a_missing_signature_is_refused(tmp_path, keys, state):
    tarball = make_bundle(tmp_path, keys)
    pathlib.Path(f"{tarball}.minisig").unlink()
    refused(run(installer(tarball, keys), state), state, "no signature")


def test_a_signature_made_for_another_release_is_refused(tmp_path, keys, state):
    tarball = make_bundle(tmp_path, keys, comment_file="weco-1.0.0.tar.gz")
    refused(run(installer(tarball, keys), state), state, "made for another release")


def test_allow_unverified_is_refused_on_a_tagged_release_and_honoured_on_a_development_build(
        tmp_path, keys, state):
    tarball = make_bundle(tmp_path, keys)
    flip_byte(tarball)  # no check would pass
    tagged = installer(tarball, keys, tag=f"v{VERSION}")
    refused(run(tagged, state, FF_ALLOW_UNVERIFIED="1"), state, "tagged release")
    development = run(installer(tarball, keys), state, FF_ALLOW_UNVERIFIED="1")
    assert "WARNING: FF_ALLOW_UNVERIFIED=1" in development.stderr
    assert "refused" not in development.stderr


def test_workers_are_installed_with_their_admin_vm_whose_inventory_and_variables_are_remembered(
        tmp_path, keys, state):
    tarball = make_bundle(tmp_path, keys)
    script = installer(tarball, keys)
    alone = run(script, state, role="--worker")
    assert alone.returncode == 1 and "--worker needs --inventory" in alone.stderr, alone.stderr
    assert not state.exists()

    inventory = tmp_path / "workers.yml"
    inventory.write_text("weco_admin: {hosts: {admin-1: {}}}\nweco_workers: {hosts: {worker-1: {}}}\n")
    with_workers = run(script, state, "--inventory", str(inventory), role="--worker")
    assert "refused" not in with_workers.stderr, with_workers.stderr
    # Kept as root's copy, its suffix kept (the test bundle stops after extracting, at its
    # missing wheelhouse), so a later install of the admin VM (an update through the API)
    # keeps the workers: the admin VM alone would drop their access to its PostgreSQL.
    kept = state / "admin.inventory.yml"
    assert kept.read_text() == inventory.read_text() and kept.stat().st_mode & 0o777 == 0o600
    # The operator's file changed (or gone) afterwards changes nothing that root runs.
    inventory.write_text("weco_admin: {hosts: {admin-1: {ansible_python_interpreter: /tmp/evil}}}\n")
    again = run(script, state)
    assert f"from the inventory {kept} kept by an earlier install" in again.stderr, again.stderr
    assert "evil" not in kept.read_text()
    inventory.unlink()
    assert f"from the inventory {kept}" in run(script, state).stderr
    # And the variables of the last install of the role, when none are given.
    (state / "admin.vars").write_text("{}")
    again = run(script, state)
    assert f"with the variables {state / 'admin.vars'} of an earlier install" in again.stderr, again.stderr
    # Another inventory replaces the kept one.
    other = tmp_path / "other.ini"
    other.write_text("[weco_admin]\nadmin-1\n")
    run(script, state, "--inventory", str(other))
    assert sorted(p.name for p in state.glob("admin.inventory*")) == ["admin.inventory.ini"]


def test_the_installer_refuses_bad_baked_values():
    with pytest.raises(BundleError, match="does not name version"):
        render_installer(version="1.0.0", tag="v2.0.0", public_key="RW" + "A" * 54)
    with pytest.raises(BundleError, match="not a minisign public key"):
        render_installer(version="1.0.0", tag="", public_key="RW'; rm -rf / #")
    with pytest.raises(BundleError, match="not a release version"):
        render_installer(version="1.0.0'$(id)", tag="", public_key="RW" + "A" * 54)


def test_the_tarball_is_the_same_bytes_whatever_the_files_times_and_owners(tmp_path):
    def stage(where: pathlib.Path, mtime: int) -> pathlib.Path:
        root = where / "weco-1.0.0"
        (root / "b").mkdir(parents=True)
        for name in ("b/z.txt", "a.txt", "install.sh"):
            (root / name).write_text(name)
        (root / "install.sh").chmod(0o750)
        for path in root.rglob("*"):
            os.utime(path, (mtime, mtime))
        return root

    one, two = tmp_path / "one.tar.gz", tmp_path / "two.tar.gz"
    write_tarball(stage(tmp_path / "x", 1), one, 42)
    write_tarball(stage(tmp_path / "y", 999_999), two, 42)
    assert one.read_bytes() == two.read_bytes()
    header = one.read_bytes()[:10]
    assert header[3] == 0 and header[4:8] == b"\0\0\0\0"  # gzip: no file name, no time (RFC 1952)
    with tarfile.open(one) as tar:
        members = tar.getmembers()
    names = [m.name.removeprefix("weco-1.0.0") for m in members]
    assert names == ["", "/a.txt", "/b", "/b/z.txt", "/install.sh"]
    assert {(m.mtime, m.uid, m.gid, m.uname) for m in members} == {(42, 0, 0, "")}
    assert members[-1].mode == 0o755 and members[1].mode == 0o644


def test_sha256sums_cover_every_file_and_check_with_sha256sum(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_text("x")
    (tmp_path / "y").write_text("y")
    write_sha256sums(tmp_path)
    assert [line.split()[1] for line in (tmp_path / "SHA256SUMS").read_text().splitlines()] == ["d/x", "y"]
    check = ["sha256sum", "--quiet", "--strict", "-c", "SHA256SUMS"]
    assert subprocess.run(check, cwd=tmp_path).returncode == 0
    (tmp_path / "y").write_text("tampered")
    assert subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=tmp_path,
                          capture_output=True).returncode == 1


def wheel(directory: pathlib.Path, name: str, version: str, requires: list[str]) -> None:
    import zipfile

    metadata = "".join(f"Requires-Dist: {r}\n" for r in requires)
    path = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{name}-{version}.dist-info/METADATA",
                         f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{metadata}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with (directory / "requirements.txt").open("a") as out:
        out.write(f"{name}=={version} --hash=sha256:{digest}\n")


def test_the_installer_requirements_are_the_closure_read_from_the_shipped_wheels(tmp_path):
    windows_only = 'pywin32; sys_platform == "win32"'
    wheel(tmp_path, "ansible_core", "2.19.14", ["jinja2>=3", "cryptography", windows_only])
    wheel(tmp_path, "jinja2", "3.1.6", ["MarkupSafe>=2"])
    wheel(tmp_path, "MarkupSafe", "3.0.4", [])
    wheel(tmp_path, "cryptography", "50.0.2", ['cffi; platform_python_implementation != "PyPy"'])
    wheel(tmp_path, "cffi", "2.1.1", [])
    wheel(tmp_path, "falcon", "4.0", [])
    closure = requirements_closure(tmp_path, "ansible-core")
    names = [line.split("==")[0] for line in closure.splitlines()]
    assert sorted(names, key=str.lower) == ["ansible_core", "cffi", "cryptography", "jinja2", "MarkupSafe"]
    assert all("--hash=sha256:" in line for line in closure.splitlines())
    (tmp_path / "cffi-2.1.1-py3-none-any.whl").unlink()
    with pytest.raises(BundleError, match="lacks cffi"):
        requirements_closure(tmp_path, "ansible-core")


def git(repo: pathlib.Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def test_a_release_is_tagged_only_by_a_tag_naming_its_version(tmp_path, monkeypatch):
    git(tmp_path, "init", "-q")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "weco"\nversion = "1.4.0"\n')
    git(tmp_path, "add", "pyproject.toml")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.test", "commit", "-qm", "one")
    monkeypatch.setattr(build, "ROOT", tmp_path)
    sha, version, tag, epoch = build.release_identity("HEAD")
    assert (version, tag) == (f"1.4.0+g{sha[:12]}", "") and epoch > 0
    git(tmp_path, "tag", "v1.4.0")
    assert build.release_identity("HEAD")[1:3] == ("1.4.0", "v1.4.0")
    git(tmp_path, "tag", "-d", "v1.4.0")
    git(tmp_path, "tag", "v9.9.9")
    with pytest.raises(build.ReleaseError, match=r"tagged v9\.9\.9 but pyproject\.toml says 1\.4\.0"):
        build.release_identity("HEAD")
