"""`weco release apply-pending`: the root side of self-update (control_api/release/apply.py),
run by weco-update.service when the API has asked for a received release to be applied."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from control_api.cli.common import CommandError, open_store
from control_api.release.apply import INSTALL_STATE, ApplyPending, Installer, run_installer
from control_api.release.verify import running_version
from control_api.settings import Settings
from control_api.wiring import build_deps, role_env


def build_apply_pending(settings: Settings, state: Path,
                        installer: Installer = run_installer) -> ApplyPending:
    # No checkpoint from here: root must not create files in the service account's audit directory.
    quiet = dataclasses.replace(settings, audit_checkpoint_every=0)
    deps = build_deps(quiet, open_store(settings))
    return ApplyPending(updates=settings.data_dir / "updates", state=state,
                        public_key=settings.release_public_key, max_bytes=settings.max_release_mb << 20,
                        running=running_version(), role_env=role_env(settings), audit=deps.audit,
                        clock=deps.clock, installer=installer)


def cmd_apply_pending(settings: Settings, args) -> None:
    if os.geteuid() != 0:
        raise CommandError("release apply-pending runs as root (weco-update.service), "
                           "not through /usr/local/sbin/weco")
    outcome = build_apply_pending(settings, Path(args.state_dir))()
    if outcome is None:
        print("no release is waiting to be applied")
    elif outcome.error:
        raise CommandError(f"release not applied: {outcome.error}")
    else:
        print(f"release {outcome.request.version} applied")


def register(groups) -> None:
    release = groups.add_parser("release", help="self-update: apply a release the API received (root)")
    commands = release.add_subparsers(required=True)
    apply = commands.add_parser("apply-pending", help="verify and install the release the API asked for "
                                                      "(FF_DATA_DIR/updates/apply.json), as root")
    apply.add_argument("--state-dir", default=str(INSTALL_STATE),
                       help="install.sh's state directory (admin.vars; the root-only copy goes in incoming/)")
    apply.set_defaults(fn=cmd_apply_pending)
