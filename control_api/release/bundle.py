"""The parts of a release bundle that are ours to make: the installer with its baked
values, the installer's own requirements, SHA256SUMS and a byte-reproducible tarball."""

from __future__ import annotations

import gzip
import hashlib
import pathlib
import re
import tarfile
import zipfile

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

HERE = pathlib.Path(__file__).resolve().parent
INSTALLER_TEMPLATE = HERE / "install.sh.in"
MINISIGN_SOURCE = HERE / "minisign.py"

VERSION_PATTERN = re.compile(r"^[0-9]+(\.[0-9]+)*([a-z0-9.+]*)$")
PUBLIC_KEY_PATTERN = re.compile(r"^RW[A-Za-z0-9+/]{54}$")
# What the target's interpreter is: the installer's virtualenv runs Debian 12's CPython 3.11.
TARGET_ENVIRONMENT = {"python_version": "3.11", "python_full_version": "3.11.2", "sys_platform": "linux",
                      "platform_system": "Linux", "os_name": "posix", "platform_machine": "x86_64",
                      "implementation_name": "cpython", "platform_python_implementation": "CPython",
                      "extra": ""}


class BundleError(Exception):
    """A release cannot be made from these inputs; the message says which and why."""


def render_installer(*, version: str, tag: str, public_key: str, tarball_sha256: str = "",
                     template: str | None = None, verifier: str | None = None) -> str:
    """install.sh with the release's values baked in (the digest only in the copy beside the
    tarball). `template` and `verifier` are install.sh.in's and minisign.py's text as the
    release's commit has them (default: this checkout's)."""
    if not VERSION_PATTERN.match(version):
        raise BundleError(f"version {version!r} is not a release version")
    if tag not in ("", f"v{version}"):
        raise BundleError(f"tag {tag!r} does not name version {version}")
    if not PUBLIC_KEY_PATTERN.match(public_key):
        raise BundleError("the public key is not a minisign public key line (RW... base64)")
    if tarball_sha256 and not re.fullmatch(r"[0-9a-f]{64}", tarball_sha256):
        raise BundleError("the tarball digest is not a SHA-256 hex digest")
    text = INSTALLER_TEMPLATE.read_text() if template is None else template
    verifier = MINISIGN_SOURCE.read_text() if verifier is None else verifier
    for token, value in (("@VERSION@", version), ("@TAG@", tag), ("@PUBLIC_KEY@", public_key),
                         ("@TARBALL_SHA256@", tarball_sha256), ("@MINISIGN_PY@", verifier.rstrip("\n"))):
        text = text.replace(token, value)
    return text


def _wheel_requires(wheel: pathlib.Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(name).decode()
    return [Requirement(line.split(":", 1)[1].strip()) for line in metadata.splitlines()
            if line.startswith("Requires-Dist:")]


def requirements_closure(wheelhouse: pathlib.Path, root: str) -> str:
    """The lines of wheelhouse/requirements.txt that `root` needs on the target, read from
    the shipped wheels' own metadata (pip's hash-checking mode needs the whole closure)."""
    lines = {}
    for line in (wheelhouse / "requirements.txt").read_text().splitlines():
        if line.strip():
            lines[canonicalize_name(line.split("==", 1)[0])] = line
    wheels = {canonicalize_name(w.name.split("-", 1)[0]): w for w in wheelhouse.glob("*.whl")}
    wanted, todo = set(), [canonicalize_name(root)]
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        if name not in wheels or name not in lines:
            raise BundleError(f"the wheelhouse lacks {name}, which {root} needs")
        wanted.add(name)
        for requirement in _wheel_requires(wheels[name]):
            if requirement.marker is None or requirement.marker.evaluate(TARGET_ENVIRONMENT):
                todo.append(canonicalize_name(requirement.name))
    return "".join(f"{lines[name]}\n" for name in sorted(wanted))


def sha256_file(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_sha256sums(stage: pathlib.Path) -> None:
    """SHA256SUMS over every other file of the stage, in `sha256sum -c` format."""
    files = sorted(p for p in stage.rglob("*") if p.is_file() and p.name != "SHA256SUMS")
    lines = [f"{sha256_file(p)}  {p.relative_to(stage).as_posix()}\n" for p in files]
    (stage / "SHA256SUMS").write_text("".join(lines))


def _normalised(info: tarfile.TarInfo, epoch: int) -> tarfile.TarInfo:
    info.mtime = epoch
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o755 if info.isdir() or info.mode & 0o100 else 0o644
    return info


def write_tarball(stage: pathlib.Path, out: pathlib.Path, epoch: int) -> None:
    """stage as out (a .tar.gz under stage's name), the same bytes for the same files:
    sorted entries, one mtime (the commit's), owner 0, and a gzip header without name or time."""
    paths = [stage, *sorted(stage.rglob("*"), key=lambda p: p.relative_to(stage).as_posix())]
    with out.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in paths:
            arcname = stage.name if path == stage else f"{stage.name}/{path.relative_to(stage).as_posix()}"
            info = _normalised(tar.gettarinfo(path, arcname), epoch)
            if info.isfile():
                with path.open("rb") as stream:
                    tar.addfile(info, stream)
            else:
                tar.addfile(info)
