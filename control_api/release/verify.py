"""What makes a release bundle acceptable for self-update, to the API receiving an upload
and to the root side applying it alike: a minisign signature under FF_RELEASE_PUBLIC_KEY
(checked as install.sh checks it, by minisign.py), whose trusted comment (build.py writes
it: `file:weco-V.tar.gz version:V tag:T sha256:D`) names exactly this file, a PEP 440
version and the bundle's own SHA-256; and a version newer than the one running."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import re
from pathlib import Path

from packaging.version import InvalidVersion, Version

from control_api.errors import ApiError, Conflict
from control_api.release import minisign
from control_api.release.bundle import VERSION_PATTERN

COMMENT = re.compile(r"file:(\S+) version:(\S+) tag:(\S+) sha256:([0-9a-f]{64})")
SHA256 = re.compile(r"[0-9a-f]{64}")
VERSION_MAX = 64


class ReleaseRefused(ApiError):
    """The bundle is not a genuine release of ours: the description says which check failed."""

    status = 422
    title = "Release refused"


class SelfUpdateOff(Conflict):
    title = "Self-update off"

    def __init__(self) -> None:
        super().__init__("self-update is off: FF_RELEASE_PUBLIC_KEY is empty (install.sh sets it to the "
                         "key its release was signed with)")


class NotNewer(Conflict):
    title = "Release not newer"


@dataclasses.dataclass(frozen=True)
class Signed:
    """What the verified trusted comment says."""

    version: str
    tag: str  # "" for an untagged (development) build
    sha256: str

    @property
    def tarball_name(self) -> str:
        return tarball_name(self.version)


def tarball_name(version: str) -> str:
    return f"weco-{version}.tar.gz"


def canonical_version(value: object) -> str:
    """`value` if it is a release version in PEP 440's canonical form (so it is also a safe
    file name: digits, lowercase letters, dots and one +), else ValueError."""
    if not isinstance(value, str) or len(value) > VERSION_MAX or not VERSION_PATTERN.fullmatch(value):
        raise ValueError(value)
    try:
        if str(Version(value)) != value:
            raise ValueError(value)
    except InvalidVersion:
        raise ValueError(value) from None
    return value


def parse_comment(comment: str) -> Signed:
    """The trusted comment's four fields, strictly, or ReleaseRefused."""
    found = COMMENT.fullmatch(comment)
    if found is None:
        raise ReleaseRefused("the signature's trusted comment is not 'file:weco-V.tar.gz version:V tag:T "
                             f"sha256:D' ({comment[:120]!r})")
    file, version, tag, digest = found.groups()
    try:
        canonical_version(version)
    except ValueError:
        raise ReleaseRefused(f"the signed version {version[:80]!r} is not a PEP 440 version") from None
    if file != tarball_name(version):
        raise ReleaseRefused(f"the signature was made for {file[:120]!r}, not {tarball_name(version)}")
    if tag not in ("-", f"v{version}"):
        raise ReleaseRefused(f"the signed tag {tag[:80]!r} does not name version {version}")
    return Signed(version, "" if tag == "-" else tag, digest)


def verify(public_key: str, path: Path, signature_text: str, sha256: str) -> Signed:
    """The signed facts of the bundle at `path`, whose SHA-256 the caller computed."""
    if not public_key:
        raise SelfUpdateOff()
    try:
        comment = minisign.verify_file(public_key, path, signature_text)
    except minisign.SignatureError as error:
        raise ReleaseRefused(f"the signature does not verify: {error}") from None
    signed = parse_comment(comment)
    if signed.sha256 != sha256:
        raise ReleaseRefused(f"the signature names SHA-256 {signed.sha256}, but the bundle's is {sha256}")
    return signed


def check_newer(version: str, running: str) -> None:
    """PEP 440 order. A local label (+g<commit>, a development build) orders by its text, so
    two development builds of one version are not ordered by time: bump the version."""
    if Version(version) <= Version(running):
        raise NotNewer(f"release {version} is not newer than the running {running}")


def running_version() -> str:
    """The version of the weco distribution this process runs."""
    return importlib.metadata.version("weco")
