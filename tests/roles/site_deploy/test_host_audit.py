"""The host audit log written by the release helper (roles/site_deploy/files/weco_site_release.py):
one JSON line per prepare, activate, rollback and prune, refusals included, with time, actor,
slug, release and outcome and never file bytes; no line without the file; rotation that
never truncates. (chattr +a itself is proven on a real host by molecule/install.)"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import subprocess

import pytest

from tests.roles.site_deploy.test_weco_site_release import helper, stage


@pytest.fixture
def site(tmp_path: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    root = tmp_path / "sites"
    for sub in ("releases", "manifests"):
        (root / "demo" / sub).mkdir(parents=True)
    log = tmp_path / "weco-host-audit.jsonl"
    log.touch(mode=0o600)
    return root, log


def call(root, log, *args, actor="17"):
    return helper.main(["--root", str(root), "--lock-timeout", "1", "--audit-log", str(log),
                        "--actor", actor, *args])


def lines(log: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_each_step_appends_its_line_and_prunes_are_listed(site, capsys):
    root, log = site
    assert call(root, log, "prepare", "demo", "--release", "r1") == 0
    for release in ("r1", "r2", "r3"):
        stage(root, release)
        assert call(root, log, "activate", "demo", release, "--keep", "2") == 0
    assert call(root, log, "rollback", "demo") == 0
    got = [(e["action"], e["release"], e["outcome"]) for e in lines(log)]
    assert got == [("prepare", "r1", "unchanged"), ("activate", "r1", "changed"),
                   ("activate", "r2", "changed"), ("activate", "r3", "changed"),
                   ("prune", "r1", "removed"), ("rollback", "r2", "changed")]
    for entry in lines(log):
        assert entry["actor"] == "17" and entry["slug"] == "demo"
        assert entry["time"].endswith("Z")
        assert set(entry) <= {"time", "actor", "action", "slug", "release", "previous", "outcome", "reason"}


def test_a_refusal_is_recorded_without_file_bytes(site, capsys):
    root, log = site
    secret = b"%PDF-only-on-the-host-" + os.urandom(8).hex().encode()
    stage(root, "r1", files={"a.pdf": secret}, manifest={"a.pdf": b"other"})
    assert call(root, log, "activate", "demo", "r1") == 1
    [entry] = lines(log)
    assert (entry["action"], entry["release"], entry["outcome"]) == ("activate", "r1", "refused")
    assert "SHA-256 differs" in entry["reason"]
    assert secret.decode() not in log.read_text()


def test_hostile_values_stay_json_data(site, capsys):
    root, log = site
    assert call(root, log, "prepare", "demo", actor='x"}\n{"action": "forged') == 0
    [entry] = lines(log)
    assert entry["actor"] == 'x"}\n{"action": "forged' and entry["action"] == "prepare"


def test_no_log_file_no_line_and_the_step_still_runs(tmp_path, capsys):
    root = tmp_path / "sites"
    log = tmp_path / "absent.jsonl"
    assert call(root, log, "prepare", "demo") == 0
    assert not log.exists()


def test_a_log_that_cannot_be_written_fails_the_step(site, capsys):
    root, log = site
    log.unlink()
    log.mkdir()  # exists, but no line can be appended to it
    assert call(root, log, "prepare", "demo") == 1
    assert "cannot write the host audit log" in capsys.readouterr().err


@pytest.fixture
def unflag(site):
    """Clear the attributes rotation sets, so the temporary directory can be removed."""
    yield
    for path in site[1].parent.iterdir():
        subprocess.run(["chattr", "-a", "-i", str(path)], capture_output=True)


def test_rotation_moves_a_full_log_aside_and_starts_an_empty_one(site, unflag, capsys):
    root, log = site
    assert call(root, log, "prepare", "demo") == 0
    before = log.read_bytes()
    capsys.readouterr()
    assert call(root, log, "rotate-audit", "--max-bytes", "1000000") == 0
    assert json.loads(capsys.readouterr().out)["changed"] is False
    assert call(root, log, "rotate-audit", "--max-bytes", "1") == 0
    rotated = json.loads(capsys.readouterr().out)["rotated"]
    assert pathlib.Path(rotated).read_bytes() == before
    assert log.read_bytes() == b"" and oct(log.stat().st_mode & 0o777) == "0o600"
    assert call(root, log, "prepare", "demo") == 0
    assert [e["action"] for e in lines(log)] == ["prepare"]
    # This file system (ext4 here, as on the hosts) honours the flags: no truncation of
    # the new log, no change at all to the rotated one, even as root.
    with pytest.raises(PermissionError) as refused:
        log.write_text("")
    assert refused.value.errno == errno.EPERM
    with pytest.raises(PermissionError):
        os.open(rotated, os.O_WRONLY | os.O_APPEND)
    assert len(lines(log)) == 1
