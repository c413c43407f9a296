"""The host-side release helper (roles/site_deploy/files/weco_site_release.py) on a real tree.

Releases are laid out as the role leaves them (releases/ID, manifests/ID.sha256); the
helper must verify, switch, prune and roll back as documented, and refuse, changing
nothing, whatever it must not do.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import io
import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
HELPER = ROOT / "roles/site_deploy/files/weco_site_release.py"

_spec = importlib.util.spec_from_file_location("weco_site_release", HELPER)
assert _spec is not None and _spec.loader is not None
helper = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helper)

SITE = {"index.html": b"<h1>v1</h1>", "reports/a.pdf": b"%PDF-a", "reports/b.pdf": b"%PDF-b"}


@pytest.fixture
def root(tmp_path: pathlib.Path) -> pathlib.Path:
    for sub in ("releases", "manifests"):
        (tmp_path / "demo" / sub).mkdir(parents=True)
    return tmp_path


def stage(root: pathlib.Path, release: str, files: dict[str, bytes] = SITE,
          manifest: dict[str, bytes] | None = None) -> None:
    """Lay out a transferred release and its manifest (of `manifest`, default `files`)."""
    top = root / "demo/releases" / release
    for rel, content in files.items():
        (top / rel).parent.mkdir(parents=True, exist_ok=True)
        (top / rel).write_bytes(content)
    lines = sorted(f"{hashlib.sha256(c).hexdigest()}  {rel}\n" for rel, c in (manifest or files).items())
    (root / "demo/manifests" / f"{release}.sha256").write_text("".join(lines))


def run(root: pathlib.Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict | str]:
    code = helper.main(["--root", str(root), "--lock-timeout", "1", *args])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else err)


def current(root: pathlib.Path) -> str:
    return os.readlink(root / "demo/current")


def test_activate_switches_and_a_second_activate_is_a_no_op(root, capsys):
    stage(root, "r1")
    code, result = run(root, "activate", "demo", "r1", capsys=capsys)
    assert code == 0 and result == {"changed": True, "current": "r1", "previous": None, "removed": []}
    assert current(root) == "releases/r1"
    code, result = run(root, "activate", "demo", "r1", capsys=capsys)
    assert code == 0 and result["changed"] is False


@pytest.mark.parametrize(("files", "manifest", "named"), [
    (dict(SITE, **{"reports/a.pdf": b"%PDF-tampered"}), SITE,
     "reports/a.pdf: SHA-256 differs from the manifest"),
    (dict(SITE, **{"extra.html": b"x"}), SITE, "extra.html: not in the manifest"),
    ({k: v for k, v in SITE.items() if k != "reports/b.pdf"}, SITE, "reports/b.pdf: missing"),
])
def test_a_release_differing_from_its_manifest_is_removed_and_current_kept(root, capsys, files, manifest,
                                                                          named):
    stage(root, "r1")
    run(root, "activate", "demo", "r1", capsys=capsys)
    stage(root, "r2", files, manifest)
    code, message = run(root, "activate", "demo", "r2", capsys=capsys)
    assert code == 1
    assert named in message and "current is still r1" in message
    assert current(root) == "releases/r1"
    assert not (root / "demo/releases/r2").exists()
    assert sorted(os.listdir(root / "demo/manifests")) == ["r1.ok", "r1.sha256"]


def test_a_symlink_in_a_release_is_refused(root, capsys):
    stage(root, "r1")
    (root / "demo/releases/r1/passwd").symlink_to("/etc/passwd")
    code, message = run(root, "activate", "demo", "r1", capsys=capsys)
    assert code == 1 and "passwd: not a regular file" in message
    assert not (root / "demo/current").is_symlink()


def test_prune_keeps_n_newest_and_the_previous_and_removes_leftovers(root, capsys):
    for release in ("r1", "r2", "r3"):
        stage(root, release)
        run(root, "activate", "demo", release, "--keep", "2", capsys=capsys)
    assert sorted(os.listdir(root / "demo/releases")) == ["r2", "r3"]
    code, result = run(root, "rollback", "demo", capsys=capsys)
    assert (code, result["current"]) == (0, "r2")
    stage(root, "killed")  # transferred, never activated
    stage(root, "r4")
    code, result = run(root, "activate", "demo", "r4", "--keep", "2", capsys=capsys)
    # r3 and r4 are the two newest; r2 was current until r4 and so survives too.
    assert sorted(os.listdir(root / "demo/releases")) == ["r2", "r3", "r4"]
    assert result["removed"] == ["killed"]
    assert not any(name.startswith("killed") for name in os.listdir(root / "demo/manifests"))


def test_rollback_goes_to_the_release_deployed_before_the_current_one(root, capsys):
    for release in ("r1", "r2", "r3"):
        stage(root, release, dict(SITE, **{"index.html": release.encode()}))
        run(root, "activate", "demo", release, capsys=capsys)
    assert run(root, "rollback", "demo", capsys=capsys)[1]["current"] == "r2"
    assert run(root, "rollback", "demo", capsys=capsys)[1]["current"] == "r1"
    code, message = run(root, "rollback", "demo", capsys=capsys)
    assert code == 1 and "no release before r1 to roll back to (kept: r1, r2, r3)" in message
    assert run(root, "rollback", "demo", "r3", capsys=capsys)[1]["current"] == "r3"
    code, message = run(root, "rollback", "demo", "r9", capsys=capsys)
    assert code == 1 and "release r9 of demo is not a kept release" in message
    assert current(root) == "releases/r3"


def test_rollback_refuses_a_kept_release_that_no_longer_matches(root, capsys):
    for release in ("r1", "r2"):
        stage(root, release, dict(SITE, **{"index.html": release.encode()}))
        run(root, "activate", "demo", release, capsys=capsys)
    (root / "demo/releases/r1/index.html").write_bytes(b"defaced")
    code, message = run(root, "rollback", "demo", capsys=capsys)
    assert code == 1 and "index.html: SHA-256 differs" in message and "current is still r2" in message
    assert current(root) == "releases/r2" and (root / "demo/releases/r1").is_dir()


@pytest.mark.parametrize(("args", "refusal"), [
    (["activate", "Bad_Slug", "r1"], "malformed site slug 'Bad_Slug'"),
    (["activate", "demo", "../r1"], "malformed release id '../r1'"),
    (["activate", "demo", "r1", "--keep", "1"], "--keep must be at least 2"),
    (["activate", "demo", "r1"], "release r1 of demo was not transferred"),
    (["rollback", "ghost"], "site ghost has never been deployed"),
    (["rollback", "demo"], "site demo has no current release"),
    (["vhost", "Bad_Slug"], "malformed site slug 'Bad_Slug'"),
    (["vhost", "../demo"], "malformed site slug '../demo'"),
])
def test_bad_requests_are_refused(root, capsys, args, refusal):
    code, message = run(root, *args, capsys=capsys)
    assert code == 1 and refusal in message
    assert set(os.listdir(root / "demo")) <= {"manifests", "releases", ".lock"}
    assert os.listdir(root / "demo/releases") == os.listdir(root / "demo/manifests") == []


def test_a_held_lock_fails_clearly_and_is_released_with_its_holder(root):
    stage(root, "r1")
    with open(root / "demo/.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        done = subprocess.run([sys.executable, HELPER, "--root", root, "--lock-timeout", "0.5",
                               "activate", "demo", "r1"], capture_output=True, text=True)
        assert done.returncode == 1
        assert "another deploy of demo holds the lock" in done.stderr
        assert not (root / "demo/current").exists()
    done = subprocess.run([sys.executable, HELPER, "--root", root, "activate", "demo", "r1"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert current(root) == "releases/r1"


def test_activate_writes_the_manifest_given_on_stdin_under_the_lock(root, capsys, monkeypatch):
    stage(root, "r1")
    manifest = (root / "demo/manifests/r1.sha256").read_text()
    (root / "demo/manifests/r1.sha256").unlink()
    monkeypatch.setattr(sys, "stdin", io.StringIO(manifest))
    code, result = run(root, "activate", "demo", "r1", "--manifest", "-", capsys=capsys)
    assert code == 0 and result["current"] == "r1"
    assert (root / "demo/manifests/r1.sha256").read_text() == manifest


def test_a_manifest_on_stdin_that_the_release_does_not_match_is_refused(root, capsys, monkeypatch):
    stage(root, "r1", manifest=dict(SITE, **{"reports/a.pdf": b"%PDF-other"}))
    manifest = (root / "demo/manifests/r1.sha256").read_text()
    stage(root, "r1")  # the shipped file matches the tree; stdin's does not, and wins
    monkeypatch.setattr(sys, "stdin", io.StringIO(manifest))
    code, message = run(root, "activate", "demo", "r1", "--manifest", "-", capsys=capsys)
    assert code == 1 and "reports/a.pdf: SHA-256 differs from the manifest" in message
    assert not (root / "demo/current").exists()


def test_prepare_creates_the_site_and_reports_its_releases(tmp_path, capsys):
    code, result = run(tmp_path, "prepare", "demo", "--packages", "dpkg", "weco-no-such-package",
                       capsys=capsys)
    assert code == 0
    assert result == {"changed": True, "current": None, "releases": [],
                      "missing_packages": ["weco-no-such-package"]}
    assert oct((tmp_path / "demo/releases").stat().st_mode & 0o777) == "0o755"
    stage(tmp_path, "r1")
    run(tmp_path, "activate", "demo", "r1", capsys=capsys)
    code, result = run(tmp_path, "prepare", "demo", capsys=capsys)
    assert (code, result["changed"], result["current"], result["releases"]) == (0, False, "r1", ["r1"])


def test_prepare_says_why_it_could_not_start_the_service(tmp_path, capsys):
    code, message = run(tmp_path, "prepare", "demo", "--service", "weco-no-such-unit", "--start",
                        capsys=capsys)
    assert code == 1 and "cannot start weco-no-such-unit:" in message and len(message.strip()) > 40


def test_prepare_refuses_other_content_under_a_kept_release_id(root, capsys):
    stage(root, "r1")
    run(root, "activate", "demo", "r1", capsys=capsys)
    same = hashlib.sha256((root / "demo/manifests/r1.sha256").read_bytes()).hexdigest()
    code, result = run(root, "prepare", "demo", "--release", "r1", "--manifest-sha256", same, capsys=capsys)
    assert code == 0 and result["current"] == "r1"
    code, message = run(root, "prepare", "demo", "--release", "r1", "--manifest-sha256", "0" * 64,
                        capsys=capsys)
    assert code == 1 and "release r1 of demo already exists with different content" in message
    code, message = run(root, "prepare", "Bad_Slug", capsys=capsys)
    assert code == 1 and "malformed site slug" in message
    assert not (root / "Bad_Slug").exists()


def test_a_verified_release_is_on_disk_before_it_is_marked_and_switched_to(root, monkeypatch):
    stage(root, "r1")
    site = helper.Site(str(root), "demo")
    steps = []

    def record(name: str, label) -> None:
        real = getattr(helper, name)

        def recorded(*args):
            steps.append((name, label(*args)))
            return real(*args)

        monkeypatch.setattr(helper, name, recorded)

    record("settle", lambda path: path)
    record("write_atomically", lambda path, text: os.path.basename(path))
    record("switch", lambda site, release: release)
    helper.activate(site, "r1", keep=5, timeout=5)
    assert steps == [("settle", site.release_dir("r1")), ("write_atomically", "r1.ok"), ("switch", "r1")]


def test_settle_flushes_a_directory_and_refuses_anything_else(tmp_path):
    helper.settle(str(tmp_path))  # a real syncfs of the test's filesystem
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(NotADirectoryError):
        helper.settle(str(tmp_path / "file"))
