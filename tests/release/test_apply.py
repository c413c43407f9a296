"""Self-update, the root side (control_api/release/apply.py), as a local run with temporary
directories: a genuine request reaches the installer with the root-only copy of the bundle;
whatever the weco user could have changed since (the bundle, its signature, apply.json,
symlinks) is refused before the installer, recorded on the row and audited, and apply.json
is gone either way."""

from __future__ import annotations

import json
import os
import stat

import pytest

from control_api import cli
from control_api.audit.log import Actor
from control_api.models import AuditEvent
from control_api.release.apply import ApplyPending
from control_api.release.models import Release
from control_api.release.verify import running_version
from control_api.wiring import build_release_updates, role_env
from tests.release import bundles
from tests.release.bundles import INSTALLER, NEWER, make_bundle, signature_header

ACTOR = Actor("user:1", "127.0.0.1", "pytest")


@pytest.fixture
def env(env, keys):
    return dict(env, FF_RELEASE_PUBLIC_KEY=keys.line, FF_MAX_RELEASE_MB="1")


@pytest.fixture
def state(tmp_path):
    directory = tmp_path / "weco-install"
    directory.mkdir(mode=0o700)
    (directory / "admin.vars").write_text('{"control_api_superadmin_email": "root@example.test"}\n')
    return directory


@pytest.fixture
def updates_dir(settings):
    return settings.data_dir / "updates"


class Installer:
    """Stands in for install.sh: records what it was given and checks the copy it runs on."""

    def __init__(self, status: int = 0, said: str = "") -> None:
        self.calls: list[tuple[list[str], dict]] = []
        self.status, self.said = status, said
        self.seen: dict = {}

    def __call__(self, argv: list[str], env: dict[str, str]) -> tuple[int, str]:
        self.calls.append((argv, env))
        tarball = argv[argv.index("--tarball") + 1]
        self.seen = {"tarball": open(tarball, "rb").read(),
                     "signature": open(f"{tarball}.minisig").read(),
                     "installer": open(argv[0]).read(),
                     "modes": {p: stat.S_IMODE(os.stat(p).st_mode)
                               for p in (os.path.dirname(tarball), tarball, argv[0])}}
        return self.status, self.said


@pytest.fixture
def received(deps, superadmin, keys, tmp_path, updates_dir):
    """A genuine bundle the API received and was asked to apply (apply.json written)."""
    tarball = make_bundle(tmp_path / "out", keys)
    updates = build_release_updates(deps)
    with tarball.open("rb") as body:
        row = updates.receive(body, "application/gzip", signature_header(tarball), superadmin, ACTOR)
    updates.request_apply(row.id, superadmin, ACTOR)
    assert (updates_dir / "apply.json").exists()
    return tarball, row


def applier(deps, state, updates_dir, installer, public_key=None) -> ApplyPending:
    settings = deps.settings
    return ApplyPending(updates=updates_dir, state=state,
                        public_key=settings.release_public_key if public_key is None else public_key,
                        max_bytes=settings.max_release_mb << 20, running=running_version(),
                        role_env=role_env(settings), audit=deps.audit, clock=deps.clock, installer=installer)


def outcome_events() -> list[dict]:
    return [json.loads(e.event_json) for e in AuditEvent.select().order_by(AuditEvent.seq)
            if e.action in ("release.applied", "release.apply_failed")]


def test_a_genuine_request_reaches_the_installer_with_the_root_only_copy(deps, state, updates_dir, received):
    tarball, row = received
    installer = Installer()
    outcome = applier(deps, state, updates_dir, installer)()
    assert outcome.error is None and outcome.request.version == NEWER
    [(argv, env)] = installer.calls
    copy = str(state / "incoming" / tarball.name)
    assert argv == [str(state / "incoming" / "install.sh"), "--admin", "--vars", str(state / "admin.vars"),
                    "--tarball", copy]
    assert installer.seen["tarball"] == tarball.read_bytes() and installer.seen["installer"] == INSTALLER
    assert installer.seen["signature"] == (tarball.parent / f"{tarball.name}.minisig").read_text()
    assert installer.seen["modes"] == {str(state / "incoming"): 0o700, copy: 0o600,
                                       str(state / "incoming" / "install.sh"): 0o700}
    # A clean environment: nothing of this process's (FF_ALLOW_UNVERIFIED never), the roles' settings.
    assert set(env) == {"PATH", "LANG", "HOME", "FF_ENV", "FF_ALLOW_UNENCRYPTED", "FF_DISK_ENCRYPTION",
                        "FF_ACME_SERVER"}
    assert not (updates_dir / "apply.json").exists() and not (state / "incoming").exists()
    row = Release.get_by_id(row.id)
    assert (row.state, row.error) == ("applied", None) and row.finished_at is not None
    [event] = outcome_events()
    assert (event["action"], event["actor"], event["target"]) == ("release.applied", "system:weco-update",
                                                                  f"release:{row.id}")
    assert event["metadata"] == {"version": NEWER, "sha256": row.sha256}
    assert applier(deps, state, updates_dir, installer)() is None  # nothing pending any more


def refused(deps, state, updates_dir, why: str, row_id: int | None = None) -> None:
    installer = Installer()
    outcome = applier(deps, state, updates_dir, installer)()
    assert outcome.error is not None and why in outcome.error, outcome
    assert not installer.calls and not (updates_dir / "apply.json").exists()
    [event] = outcome_events()
    assert event["action"] == "release.apply_failed" and why in event["metadata"]["error"]
    if row_id is not None:
        row = Release.get_by_id(row_id)
        assert row.state == "failed" and why in row.error


def test_a_bundle_swapped_after_the_request_is_refused(deps, state, updates_dir, received, keys, tmp_path):
    tarball, row = received
    # Another genuine, signed bundle of the same name: the request's SHA-256 still tells them apart.
    other = make_bundle(tmp_path / "other", keys, comment=f"file:{tarball.name} version:{NEWER} tag:- "
                                                          f"sha256:{'1' * 64}")
    (updates_dir / tarball.name).write_bytes(other.read_bytes() + b"\0")
    refused(deps, state, updates_dir, "changed since it was received", row.id)


def test_a_signature_swapped_for_another_keys_is_refused(deps, state, updates_dir, received, other_keys,
                                                         tmp_path):
    tarball, row = received
    copy = tmp_path / "resigned" / tarball.name
    copy.parent.mkdir()
    copy.write_bytes(tarball.read_bytes())
    other_keys.sign(copy, f"file:{tarball.name} version:{NEWER} tag:- sha256:{row.sha256}")
    resigned = (copy.parent / f"{tarball.name}.minisig").read_bytes()
    (updates_dir / f"{tarball.name}.minisig").write_bytes(resigned)
    refused(deps, state, updates_dir, "signed by key id", row.id)


def test_a_symlinked_bundle_is_refused_unread(deps, state, updates_dir, received, tmp_path):
    tarball, row = received
    (updates_dir / tarball.name).unlink()
    (updates_dir / tarball.name).symlink_to(tarball)  # the same genuine bytes, behind a link
    refused(deps, state, updates_dir, "not a regular file", row.id)


@pytest.mark.parametrize("request_json, why", [
    ({"id": 1, "version": "../../../etc/x", "sha256": "a" * 64}, "version is not a PEP 440"),
    ({"id": 1, "version": NEWER, "sha256": "A" * 64}, "sha256 must be 64 lowercase hex"),
    ({"id": 1, "version": NEWER, "sha256": "a" * 64, "path": "/tmp/x"}, "exactly id, version and sha256"),
    ({"id": True, "version": NEWER, "sha256": "a" * 64}, "id must be a row id"),
    ("not json", "not JSON"),
])
def test_a_hostile_apply_json_is_refused_and_removed(deps, state, updates_dir, request_json, why):
    updates_dir.mkdir(parents=True)
    text = request_json if isinstance(request_json, str) else json.dumps(request_json)
    (updates_dir / "apply.json").write_text(text)
    refused(deps, state, updates_dir, why)
    assert outcome_events()[0]["target"] == "releases"


def test_a_symlinked_apply_json_is_removed_unread(deps, state, updates_dir, tmp_path):
    updates_dir.mkdir(parents=True)
    secret = tmp_path / "root-only"
    secret.write_text('{"id": 1, "version": "99.0.0", "sha256": "' + "a" * 64 + '"}')
    (updates_dir / "apply.json").symlink_to(secret)
    refused(deps, state, updates_dir, "not a regular file")
    assert secret.exists()


def test_without_the_saved_variables_nothing_is_installed(deps, state, updates_dir, received):
    _, row = received
    (state / "admin.vars").unlink()
    refused(deps, state, updates_dir, "admin.vars", row.id)


def test_without_a_release_key_nothing_is_applied(deps, state, updates_dir, received):
    installer = Installer()
    outcome = applier(deps, state, updates_dir, installer, public_key="")()
    assert "FF_RELEASE_PUBLIC_KEY is empty" in outcome.error and not installer.calls


def test_a_failing_install_is_recorded_with_its_last_line(deps, state, updates_dir, received):
    _, row = received
    outcome = applier(deps, state, updates_dir, Installer(3, "install.sh: refused: boom"))()
    assert outcome.error == "install.sh exited with status 3: install.sh: refused: boom"
    assert Release.get_by_id(row.id).state == "failed"
    assert outcome_events()[0]["action"] == "release.apply_failed"


def test_the_cli_runs_the_verified_bundles_own_install_sh(env, deps, state, updates_dir, received,
                                                         monkeypatch, capfd):
    tarball, row = received
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["release", "apply-pending", "--state-dir", str(state)]) == 0
    out, err = capfd.readouterr()
    assert f"release {NEWER} applied" in out
    # The fake install.sh inside the bundle echoes its arguments: the copy, the saved variables.
    assert (f"install.sh --admin --vars {state / 'admin.vars'} --tarball "
            f"{state / 'incoming' / tarball.name}") in err
    assert Release.get_by_id(row.id).state == "applied"
    assert cli.main(["release", "apply-pending", "--state-dir", str(state)]) == 0
    assert "no release is waiting" in capfd.readouterr().out
    assert bundles.sha256(tarball) == row.sha256
