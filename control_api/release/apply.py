"""Self-update, the root side: `weco release apply-pending`, run by weco-update.service (as
root) when weco-update.path sees FF_DATA_DIR/updates/apply.json.

Everything the weco user can write is hostile here: apply.json, the bundle and its
signature in FF_DATA_DIR/updates, and the store. So apply.json is removed first (a failure
never loops) and read strictly; the bundle and signature are opened without following a
symlink (each path step relative to an open directory, regular files with one link only)
and copied into a root-only directory before anything is checked; only the copy is
verified (SHA-256, then the minisign signature, with FF_RELEASE_PUBLIC_KEY from the
root-owned /etc/weco/weco.env, and a version newer than this one). install.sh comes out
of the verified tarball and runs on the copy with the operator's saved variables
(/var/lib/weco-install/admin.vars) and a clean environment; it verifies the bundle again.
Nothing read from the store is used: the outcome is only written to the release's row
(when it names this very bundle) and audited.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

from control_api.audit.log import Actor, AuditLog
from control_api.body import STORE_INT_MAX
from control_api.clock import SystemClock
from control_api.errors import ApiError
from control_api.release import verify
from control_api.release.models import Release
from control_api.release.updates import REQUEST_FILE
from control_api.release.verify import ReleaseRefused

INSTALL_STATE = Path("/var/lib/weco-install")  # install.sh's own (root, 0700)
REQUEST_MAX = 4096
INSTALLER_MAX = 1 << 20
SIGNATURE_MAX = 64 << 10
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ACTOR = Actor("system:weco-update", "local", "weco-update")
_OPEN = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # NONBLOCK: a FIFO never hangs us

# (argv, environment) -> (exit status, its last line on stderr). Tests stop here.
Installer = Callable[[list[str], dict[str, str]], tuple[int, str]]


class InstallFailed(ApiError):
    status = 500
    title = "Install failed"


@dataclasses.dataclass(frozen=True)
class ApplyRequest:
    id: int
    version: str
    sha256: str


@dataclasses.dataclass(frozen=True)
class Outcome:
    request: ApplyRequest | None
    error: str | None  # None: applied


def run_installer(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """install.sh with its output in this unit's journal; its last stderr line is the reason."""
    last = ""
    with subprocess.Popen(argv, env=env, cwd=Path(argv[0]).parent, stdin=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, errors="replace") as proc:
        for line in proc.stderr:
            sys.stderr.write(line)
            last = line.strip() or last
    return proc.returncode, last


def parse_request(raw: bytes) -> ApplyRequest:
    """apply.json, exactly {"id", "version", "sha256"} of the right forms, or ReleaseRefused."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError:
        raise ReleaseRefused("apply.json is not JSON in UTF-8") from None
    if not isinstance(data, dict) or set(data) != {"id", "version", "sha256"}:
        raise ReleaseRefused("apply.json must hold exactly id, version and sha256")
    ident, version, digest = data["id"], data["version"], data["sha256"]
    if type(ident) is not int or not 1 <= ident <= STORE_INT_MAX:
        raise ReleaseRefused("apply.json: id must be a row id")
    try:
        verify.canonical_version(version)
    except ValueError:
        raise ReleaseRefused("apply.json: version is not a PEP 440 release version") from None
    if not isinstance(digest, str) or not verify.SHA256.fullmatch(digest):
        raise ReleaseRefused("apply.json: sha256 must be 64 lowercase hex digits")
    return ApplyRequest(ident, version, digest)


def _open_updates(updates: Path) -> int:
    # FF_DATA_DIR is in a root-owned parent; `updates` inside it is weco's and may be a symlink.
    parent = os.open(updates.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        return os.open(updates.name, flags, dir_fd=parent)
    finally:
        os.close(parent)


def _open_regular(directory: int, name: str, limit: int) -> int:
    """A file of weco's directory for reading: no symlink, a regular file, one link, not too big."""
    try:
        fd = os.open(name, _OPEN, dir_fd=directory)
    except FileNotFoundError:
        raise ReleaseRefused(f"there is no {name} in the updates directory") from None
    except OSError:  # ELOOP: a symlink
        raise ReleaseRefused(f"{name} in the updates directory is not a regular file") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1 or info.st_size > limit:
        os.close(fd)
        raise ReleaseRefused(f"{name} in the updates directory is not a regular file of one link and at "
                             f"most {limit >> 20} MiB")
    return fd


def take_request(updates: Path) -> bytes | None:
    """apply.json's bytes, removed before anything else; None when there is none."""
    try:
        directory = _open_updates(updates)
    except FileNotFoundError:
        return None
    except OSError:  # a symlink (or a file) where the directory should be: removed, so no loop
        parent = os.open(updates.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.unlink(updates.name, dir_fd=parent)
        finally:
            os.close(parent)
        raise ReleaseRefused(f"{updates} is not a directory (removed)") from None
    try:
        try:
            os.lstat(REQUEST_FILE, dir_fd=directory)
        except FileNotFoundError:
            return None
        try:
            fd = _open_regular(directory, REQUEST_FILE, REQUEST_MAX)
        finally:
            os.unlink(REQUEST_FILE, dir_fd=directory)
        with os.fdopen(fd, "rb") as handle:
            return handle.read(REQUEST_MAX + 1)
    finally:
        os.close(directory)


def _copy(source: int, dest: Path, limit: int) -> str:
    """Copy an open file to a new root-only file; its SHA-256."""
    digest, size = hashlib.sha256(), 0
    with os.fdopen(source, "rb") as reader:
        out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(out, "wb") as writer:
            while chunk := reader.read(1 << 20):
                size += len(chunk)
                if size > limit:  # it grew while we read
                    raise ReleaseRefused(f"the bundle is larger than {limit >> 20} MiB")
                digest.update(chunk)
                writer.write(chunk)
    return digest.hexdigest()


def _root_only(directory: Path) -> None:
    try:
        info = os.lstat(directory)
    except FileNotFoundError:
        raise ReleaseRefused(f"there is no {directory}: this admin VM was not installed with "
                             "install.sh --admin; run install.sh by hand") from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise ReleaseRefused(f"{directory} must be a directory of this user's only (mode 0700)")


def extract_installer(tarball: Path, version: str, dest: Path) -> None:
    """weco-V/install.sh of the verified tarball, as an executable only root may run."""
    wanted = f"weco-{version}/install.sh"
    try:
        with tarfile.open(tarball, "r:gz") as archive:
            for member in archive:
                if member.name != wanted:
                    continue
                if not member.isreg() or member.size > INSTALLER_MAX:
                    raise ReleaseRefused(f"{wanted} in the bundle is not a regular file of at most 1 MiB")
                data = archive.extractfile(member).read()
                break
            else:
                raise ReleaseRefused(f"the bundle holds no {wanted}")
    except (tarfile.TarError, OSError, EOFError) as error:
        raise ReleaseRefused(f"the bundle does not read as a .tar.gz: {error}") from None
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o700)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


class ApplyPending:
    def __init__(self, *, updates: Path, state: Path, public_key: str, max_bytes: int, running: str,
                 role_env: dict[str, str], audit: AuditLog, clock: SystemClock,
                 installer: Installer = run_installer) -> None:
        self.updates, self.state, self.public_key = updates, state, public_key
        self.max_bytes, self.running, self.role_env = max_bytes, running, role_env
        self.audit, self.clock, self.installer = audit, clock, installer

    @property
    def incoming(self) -> Path:
        return self.state / "incoming"

    @property
    def vars_file(self) -> Path:
        return self.state / "admin.vars"

    def __call__(self) -> Outcome | None:
        """Apply the pending request, if any; the outcome is recorded and audited either way."""
        request = None
        try:
            raw = take_request(self.updates)
            if raw is None:
                return None
            request = parse_request(raw)
            self._apply(request)
        except ApiError as refusal:
            return self._record(request, refusal.description)
        except Exception as error:  # recorded, then the unit fails with its trace in the journal
            self._record(request, f"unexpected {type(error).__name__}: {error}")
            raise
        return self._record(request, None)

    def _apply(self, request: ApplyRequest) -> None:
        if not self.public_key:
            raise verify.SelfUpdateOff()
        tarball = self._copy_in(request)
        signature = Path(f"{tarball}.minisig").read_bytes().decode("utf-8", "surrogateescape")
        signed = verify.verify(self.public_key, tarball, signature, request.sha256)
        if signed.version != request.version:  # the file name holds it too: belt and braces
            raise ReleaseRefused(f"the signature is for {signed.version}, the request for {request.version}")
        verify.check_newer(signed.version, self.running)
        installer = self.incoming / "install.sh"
        extract_installer(tarball, signed.version, installer)
        info = os.lstat(self.vars_file) if os.path.lexists(self.vars_file) else None
        if info is None or not stat.S_ISREG(info.st_mode):
            raise ReleaseRefused(f"there is no {self.vars_file}: this admin VM was not installed with "
                                 "install.sh --admin --vars, so its variables are unknown; run install.sh "
                                 "by hand")
        env = {"PATH": SAFE_PATH, "LANG": "C.UTF-8", "HOME": "/root", **self.role_env}
        status, said = self.installer([str(installer), "--admin", "--vars", str(self.vars_file),
                                       "--tarball", str(tarball)], env)
        if status != 0:
            why = said or "see journalctl -u weco-update"
            raise InstallFailed(f"install.sh exited with status {status}: {why}")
        shutil.rmtree(self.incoming)  # installed: install.sh keeps its own extracted copy

    def _copy_in(self, request: ApplyRequest) -> Path:
        """The bundle and its signature, copied before any check into a fresh root-only directory;
        the copy's SHA-256 must be the one the request (and the upload) named."""
        _root_only(self.state)
        shutil.rmtree(self.incoming, ignore_errors=True)
        os.mkdir(self.incoming, 0o700)
        name = verify.tarball_name(request.version)
        tarball = self.incoming / name
        directory = _open_updates(self.updates)
        try:
            digest = _copy(_open_regular(directory, name, self.max_bytes), tarball, self.max_bytes)
            signature = _open_regular(directory, f"{name}.minisig", SIGNATURE_MAX)
            _copy(signature, Path(f"{tarball}.minisig"), SIGNATURE_MAX)
        finally:
            os.close(directory)
        if digest != request.sha256:
            raise ReleaseRefused(f"{name} changed since it was received: its SHA-256 is {digest}, "
                                 f"the request names {request.sha256}")
        return tarball

    def _record(self, request: ApplyRequest | None, error: str | None) -> Outcome:
        error = " ".join(error.split())[:1000] if error is not None else None
        now = self.clock.now()
        with self.audit.mutation():
            if request is not None:
                # Only the row that names this very bundle; a request naming another is not it.
                (Release.update(state="failed" if error else "applied", finished_at=now, error=error)
                 .where(Release.id == request.id, Release.version == request.version,
                        Release.sha256 == request.sha256).execute())
            facts = dataclasses.asdict(request) if request else {}
            facts.pop("id", None)
            self.audit.record(ACTOR, "release.apply_failed" if error else "release.applied",
                              f"release:{request.id}" if request else "releases",
                              {**facts, **({"error": error} if error else {})})
        return Outcome(request, error)
