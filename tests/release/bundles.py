"""Small genuine release bundles for the self-update tests: the real tarball layout
(bundle.write_tarball) signed by the real minisign CLI with the trusted comment build.py
writes. The install.sh inside only records that it ran."""

from __future__ import annotations

import base64
import hashlib
import pathlib

from control_api.release.bundle import write_sha256sums, write_tarball
from control_api.release.verify import running_version

NEWER = "99.0.0"
INSTALLER = "#!/bin/sh\necho \"install.sh $*\" >&2\n"


def make_bundle(directory: pathlib.Path, keys, version: str = NEWER, *, comment: str | None = None,
                tag: str = "-") -> pathlib.Path:
    """weco-VERSION.tar.gz in `directory` with its .minisig beside it; `comment` replaces
    the trusted comment build.py would write."""
    directory.mkdir(parents=True, exist_ok=True)
    stage = directory / f"weco-{version}"
    stage.mkdir()
    (stage / "RELEASE").write_text(f"{version}\n")
    (stage / "install.sh").write_text(INSTALLER)
    (stage / "install.sh").chmod(0o755)
    write_sha256sums(stage)
    tarball = directory / f"weco-{version}.tar.gz"
    write_tarball(stage, tarball, 1_700_000_000)
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    keys.sign(tarball, comment or f"file:{tarball.name} version:{version} tag:{tag} sha256:{digest}")
    return tarball


def signature_header(tarball: pathlib.Path) -> str:
    return base64.b64encode(pathlib.Path(f"{tarball}.minisig").read_bytes()).decode()


def sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def older() -> str:
    return "0.0.1"


def running() -> str:
    return running_version()
