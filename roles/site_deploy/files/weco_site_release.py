#!/usr/bin/env python3
"""Host side of WECO's atomic site deploys (installed by the site_deploy role).

    weco-site-release --root ROOT status SLUG
    weco-site-release --root ROOT prepare SLUG [--release ID --manifest-sha256 HEX]
                                          [--packages NAME...] [--service NAME [--start]]
    weco-site-release --root ROOT activate SLUG RELEASE [--keep N] [--manifest FILE|-]
    weco-site-release --root ROOT rollback SLUG [RELEASE]
    weco-site-release --root ROOT vhost SLUG < VHOST
    weco-site-release --root ROOT rotate-audit [--max-bytes N]

Every prepare, activate, rollback, prune and vhost (and every refusal of one) appends one JSON
line to the host audit log (``--audit-log``, default /var/log/weco-host-audit.jsonl)
when that file exists (the site_host role creates it, append-only with ``chattr +a``):
time, actor (``--actor``: the control plane's run id), action, slug, release, outcome.
Never file bytes, manifests, tokens or secrets. A line that cannot be written fails the
command (exit 1). ``rotate-audit`` renames a log over N bytes to
``PATH.YYYYmmddTHHMMSSZ``, makes that file immutable (``chattr +i``) and starts a new
append-only one, under the log's lock, so rotation never truncates a line.

Layout under ROOT/SLUG: ``releases/ID/`` (one tree per deploy, unchanged files
hard-linked between them by rsync), ``manifests/ID.sha256`` (shipped by the controller),
``manifests/ID.ok`` (written here once ID passed verification: its deploy sequence
number, which orders releases for pruning and rollback), ``current`` (a symlink to
``releases/ID``, the tree nginx serves) and ``.lock``.

``activate`` and ``rollback`` verify, switch and prune in this one process under
``flock`` on ``.lock``, so a process that dies releases the lock with it. The switch is a
new symlink renamed over ``current`` (rename(2) is atomic; ``ln -sfn`` is not), once the
verified release is on disk (syncfs) and its ``.ok`` marker written. A release
that fails verification is removed and ``current`` is left alone. Prints one JSON
object; on refusal prints the reason on stderr and exits 1.

``prepare`` is everything a deploy needs to know about the host, in one process (each
remote step costs a deploy a round trip): it creates the site's directories, reports
the current and kept releases, which of ``--packages`` dpkg lacks and whether
``--service`` is active and enabled (with ``--start``, it starts and enables it when it
is not and no package is missing), and refuses new content under a kept release id.
``vhost`` installs the site's nginx vhost from stdin when its text changed: checked on
its own, then with the whole configuration, then nginx reloaded; a refusal puts the
previous vhost back and reloads nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import hashlib
import json
import math
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time

# The same strings as control_api/sites/patterns.py (a test holds them equal).
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
RELEASE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
MANIFEST_LINE = re.compile(r"^([0-9a-f]{64})  (.+)$")
SHOWN = 20  # problems named in a refusal; the rest are counted
AUDIT_LOG = "/var/log/weco-host-audit.jsonl"
NGINX_DIR = "/etc/nginx"


class Refused(Exception):
    """A request this tool will not carry out; nothing was switched."""


class Site:
    def __init__(self, root: str, slug: str) -> None:
        if not SLUG.match(slug):
            raise Refused(f"malformed site slug {slug!r}")
        self.slug = slug
        self.dir = os.path.join(root, slug)
        self.releases = os.path.join(self.dir, "releases")
        self.manifests = os.path.join(self.dir, "manifests")
        self.current_link = os.path.join(self.dir, "current")
        if not os.path.isdir(self.releases) or not os.path.isdir(self.manifests):
            raise Refused(f"site {slug} has never been deployed under {root}")

    def release_dir(self, release: str) -> str:
        if not RELEASE.match(release):
            raise Refused(f"malformed release id {release!r}")
        return os.path.join(self.releases, release)

    def current(self) -> str | None:
        try:
            return os.path.basename(os.readlink(self.current_link))
        except FileNotFoundError:
            return None

    def verified(self) -> dict[str, int]:
        """Kept releases that passed verification, with their deploy sequence numbers."""
        found = {}
        for name in os.listdir(self.manifests):
            release, _, suffix = name.rpartition(".")
            if suffix == "ok" and os.path.isdir(os.path.join(self.releases, release)):
                with open(os.path.join(self.manifests, name)) as handle:
                    found[release] = int(handle.read())
        return found


@contextlib.contextmanager
def locked(site: Site, timeout: float):
    path = os.path.join(site.dir, ".lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise Refused(f"another deploy of {site.slug} holds the lock {path} "
                                  f"(waited {timeout:g} s)") from None
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def problems_of(site: Site, release: str) -> list[str]:
    """Every way the release's tree differs from its manifest (empty: it matches)."""
    top = site.release_dir(release)
    try:
        with open(os.path.join(site.manifests, f"{release}.sha256")) as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return ["no manifest was shipped"]
    expected = {}
    for number, line in enumerate(lines, 1):
        match = MANIFEST_LINE.match(line)
        if not match or match[2].startswith("/") or ".." in match[2].split("/"):
            return [f"manifest line {number} is malformed"]
        expected[match[2]] = match[1]
    problems = []
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, top)
            mode = os.lstat(full).st_mode
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode):
                problems.append(f"{rel}: not a regular file")
            elif rel not in expected:
                problems.append(f"{rel}: not in the manifest")
            elif sha256_of(full) != expected.pop(rel):
                problems.append(f"{rel}: SHA-256 differs from the manifest")
    problems.extend(f"{rel}: missing" for rel in sorted(expected))
    return problems


def refusal(site: Site, release: str, problems: list[str]) -> str:
    more = f" (and {len(problems) - SHOWN} more)" if len(problems) > SHOWN else ""
    return (f"release {release} of {site.slug} failed verification: "
            + "; ".join(problems[:SHOWN]) + more)


def write_atomically(path: str, text: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


_LIBC = ctypes.CDLL(None, use_errno=True)


def settle(path: str) -> None:
    """Put the bytes under `path` on disk before anything points at them. The switch is a
    rename, which a power cut can keep while file data still in the page cache is lost
    (delayed allocation), leaving ``current`` on empty or short files that never passed
    verification. syncfs(2) flushes the one filesystem the release is on."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _LIBC.syncfs(fd) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"syncfs of {path}: {os.strerror(errno)}")
    finally:
        os.close(fd)


def switch(site: Site, release: str) -> None:
    tmp = os.path.join(site.dir, f".current.tmp{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(os.path.join("releases", release), tmp)
    os.replace(tmp, site.current_link)
    dirfd = os.open(site.dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)


def prune(site: Site, keep: int, protect: set[str]) -> list[str]:
    """Remove all but the `keep` newest verified releases, never one in `protect`.

    A release directory without an ``.ok`` marker is what a killed or failed deploy left
    behind: it goes too (runs on one slug are serialised by the caller).
    """
    verified = site.verified()
    kept = set(sorted(verified, key=verified.__getitem__, reverse=True)[:keep]) | protect
    removed = []
    for name in sorted(os.listdir(site.releases)):
        path = os.path.join(site.releases, name)
        if name in kept:
            continue
        # A receiver of a killed transfer may still be writing: what it leaves, the
        # next deploy removes.
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
        if not os.path.lexists(path):
            removed.append(name)
    for name in os.listdir(site.manifests):
        if name.rpartition(".")[0] not in kept:
            os.unlink(os.path.join(site.manifests, name))
    for name in os.listdir(site.dir):
        if name.startswith(".current.tmp"):
            os.unlink(os.path.join(site.dir, name))
    return removed


def activate(site: Site, release: str, keep: int, timeout: float, manifest: str | None = None) -> dict:
    """Verify, switch and prune. `manifest` (the controller's, when given) is written as
    ``manifests/RELEASE.sha256`` under the lock first; otherwise it must be there already."""
    top = site.release_dir(release)
    with locked(site, timeout):
        previous = site.current()
        if previous == release:
            return {"changed": False, "current": release, "previous": None, "removed": []}
        if not os.path.isdir(top):
            raise Refused(f"release {release} of {site.slug} was not transferred ({top} is missing)")
        if manifest is not None:
            write_atomically(os.path.join(site.manifests, f"{release}.sha256"), manifest)
        problems = problems_of(site, release)
        if problems:
            shutil.rmtree(top)
            for suffix in ("ok", "sha256"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(site.manifests, f"{release}.{suffix}"))
            raise Refused(refusal(site, release, problems)
                          + f"; removed it, current is still {previous or 'unset'}")
        settle(top)
        sequence = max(site.verified().values(), default=0) + 1
        write_atomically(os.path.join(site.manifests, f"{release}.ok"), f"{sequence}\n")
        switch(site, release)
        removed = prune(site, keep, {release} | ({previous} if previous else set()))
        return {"changed": True, "current": release, "previous": previous, "removed": removed}


def rollback(site: Site, release: str | None, timeout: float) -> dict:
    with locked(site, timeout):
        current = site.current()
        verified = site.verified()
        kept = ", ".join(sorted(verified, key=verified.__getitem__)) or "none"
        if release is None:
            if current is None:
                raise Refused(f"site {site.slug} has no current release to roll back from")
            older = [name for name in verified if verified[name] < verified.get(current, math.inf)]
            if not older:
                raise Refused(f"site {site.slug} has no release before {current} to roll back to "
                              f"(kept: {kept})")
            release = max(older, key=verified.__getitem__)
        else:
            site.release_dir(release)
            if release == current:
                return {"changed": False, "current": current, "previous": None}
            if release not in verified:
                raise Refused(f"release {release} of {site.slug} is not a kept release (kept: {kept})")
        problems = problems_of(site, release)
        if problems:
            raise Refused(refusal(site, release, problems) + f"; current is still {current}")
        switch(site, release)
        return {"changed": True, "current": release, "previous": current}


def status(site: Site) -> dict:
    verified = site.verified()
    return {"changed": False, "current": site.current(),
            "releases": sorted(verified, key=verified.__getitem__)}


def missing_packages(names: list[str]) -> list[str]:
    """The packages of `names` dpkg does not have installed (all of them without dpkg)."""
    if not names:
        return []
    try:
        listed = subprocess.run(["dpkg-query", "--show", "--showformat", "${Package} ${db:Status-Status}\n",
                                 *names], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return list(names)
    installed = {line.split()[0] for line in listed.splitlines() if line.endswith(" installed")}
    return [name for name in names if name not in installed]


def systemctl_says(verb: str, unit: str) -> bool:
    try:
        return subprocess.run(["systemctl", "--quiet", verb, unit], capture_output=True).returncode == 0
    except FileNotFoundError:
        return False


def start_service(service: str) -> None:
    """Start `service` now and at boot (a module task doing this cost a deploy 1.5 s)."""
    try:
        done = subprocess.run(["systemctl", "enable", "--now", "--quiet", service],
                              capture_output=True, text=True)
    except FileNotFoundError:
        raise Refused(f"cannot start {service}: this host has no systemctl") from None
    if done.returncode != 0:
        raise Refused(f"cannot start {service}: {done.stderr.strip()}")


def prepare(root: str, slug: str, release: str | None, manifest_sha256: str | None, packages: list[str],
            service: str | None, start: bool = False) -> dict:
    if not SLUG.match(slug):
        raise Refused(f"malformed site slug {slug!r}")
    created = False
    for sub in ("releases", "manifests"):
        path = os.path.join(root, slug, sub)
        if not os.path.isdir(path):
            os.makedirs(path, mode=0o755)
            os.chmod(path, 0o755)  # noqa: S103 - nginx reads the site's tree, whatever the umask
            created = True
    site = Site(root, slug)
    result = dict(status(site), changed=created, missing_packages=missing_packages(packages))
    if service:
        result.update(service_active=systemctl_says("is-active", service),
                      service_enabled=systemctl_says("is-enabled", service))
    # A release id names one content: redeploying a kept id (the current one: a no-op) is
    # fine only with the same manifest.
    if release is not None and release in result["releases"]:
        with open(os.path.join(site.manifests, f"{release}.sha256"), "rb") as handle:
            kept = hashlib.sha256(handle.read()).hexdigest()
        if kept != manifest_sha256:
            raise Refused(f"release {release} of {slug} already exists with different content; "
                          "deploy it under a new site_release_id")
    # Only when every package is there: otherwise the role installs them, then starts it.
    if service and start and not result["missing_packages"] and not (
            result["service_active"] and result["service_enabled"]):
        start_service(service)
        result.update(changed=True, service_active=True, service_enabled=True)
    return result


def check_vhost(path: str) -> None:
    """Check a candidate vhost on its own before it replaces the live one (a broken file
    in sites-enabled would stop every later reload)."""
    # Inside /etc/nginx, so relative includes (snippets/...) resolve as for nginx.conf.
    with tempfile.NamedTemporaryFile("w", dir=NGINX_DIR, prefix=".weco-site-check.") as conf:
        conf.write("include /etc/nginx/modules-enabled/*.conf;\nevents {}\n"
                   f"http {{\ninclude /etc/nginx/mime.types;\ninclude {path};\n}}\n")
        conf.flush()
        checked = subprocess.run(["nginx", "-t", "-q", "-c", conf.name], capture_output=True, text=True)
    if checked.returncode != 0:
        raise Refused(f"nginx refuses the vhost: {checked.stderr.strip()}")


def staged_vhost(text: str) -> str:
    """A 0644 file holding `text`, beside sites-enabled (never read by a reload)."""
    with tempfile.NamedTemporaryFile("w", dir=NGINX_DIR, prefix=".weco-site-vhost.", delete=False) as staged:
        staged.write(text)
    os.chmod(staged.name, 0o644)
    return staged.name


def install_vhost(slug: str, source) -> dict:
    """Install SLUG's vhost, read from `source`, when its text changed: checked on its
    own, then with the whole configuration (`nginx -t`), then nginx reloaded. A refusal
    puts the previous vhost back (or removes the new one) and reloads nothing."""
    if not SLUG.match(slug):
        raise Refused(f"malformed site slug {slug!r}")
    text = source.read()
    path = os.path.join(NGINX_DIR, "sites-enabled", f"weco-site-{slug}.conf")
    try:
        with open(path) as handle:
            previous = handle.read()
    except FileNotFoundError:
        previous = None
    if previous == text:
        return {"changed": False, "vhost": path}
    staged = staged_vhost(text)
    try:
        check_vhost(staged)
        os.replace(staged, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staged)
    checked = subprocess.run(["nginx", "-t", "-q"], capture_output=True, text=True)
    if checked.returncode != 0:
        if previous is None:
            os.unlink(path)
        else:
            os.replace(staged_vhost(previous), path)
        undone = "the new vhost is removed" if previous is None else "the previous vhost is back"
        raise Refused(f"nginx -t refuses the configuration with the new {path}: {checked.stderr.strip()}; "
                      f"{undone} and nginx was not reloaded")
    reloaded = subprocess.run(["systemctl", "reload", "nginx"], capture_output=True, text=True)
    if reloaded.returncode != 0:
        raise Refused(f"nginx did not reload with the new {path}: {reloaded.stderr.strip()}")
    return {"changed": True, "vhost": path}


@contextlib.contextmanager
def audit_lock(log: str):
    fd = os.open(f"{log}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def audit(log: str, actor: str | None, entries: list[dict]) -> None:
    """Append one line per entry to the host audit log, if there is one. O_APPEND without
    O_CREAT or O_TRUNC: the only open an append-only (chattr +a) file allows for writing."""
    if not os.path.exists(log):
        return
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    data = "".join(json.dumps({"time": when, "actor": actor or None, **entry}, sort_keys=True) + "\n"
                   for entry in entries).encode()
    with audit_lock(log):
        fd = os.open(log, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)


def audit_entries(command: str, args, result: dict | None, refusal: str | None) -> list[dict]:
    release = getattr(args, "release", None)
    if refusal is not None:
        return [{"action": command, "slug": args.slug, "release": release, "outcome": "refused",
                 "reason": refusal[:500]}]
    if command in ("prepare", "vhost"):
        return [{"action": command, "slug": args.slug, "release": release,
                 "outcome": "changed" if result["changed"] else "unchanged"}]
    entries = [{"action": command, "slug": args.slug, "release": result["current"],
                "previous": result.get("previous"),
                "outcome": "changed" if result["changed"] else "unchanged"}]
    entries += [{"action": "prune", "slug": args.slug, "release": name, "outcome": "removed"}
                for name in result.get("removed", [])]
    return entries


def chattr(flag: str, path: str) -> bool:
    """Set or clear an attribute; False where the filesystem does not support it."""
    try:
        return subprocess.run(["chattr", flag, path], capture_output=True).returncode == 0
    except FileNotFoundError:
        return False


def rotate_audit(log: str, max_bytes: int) -> dict:
    with audit_lock(log):
        if not os.path.exists(log) or os.path.getsize(log) <= max_bytes:
            return {"changed": False, "rotated": None}
        rotated = f"{log}.{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
        if os.path.exists(rotated):
            raise Refused(f"{rotated} exists already; rotate again in a second")
        fresh = f"{log}.new"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(fresh)
        os.close(os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        # An append-only file cannot be renamed: the flag is off for the instant of the
        # renames, while the lock keeps every writer out, and on again before it is released.
        chattr("-a", log)
        os.rename(log, rotated)
        os.rename(fresh, log)
        append_only = chattr("+a", log)
        immutable = chattr("+i", rotated)
        return {"changed": True, "rotated": rotated, "append_only": append_only, "immutable": immutable}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="weco-site-release", description=__doc__.split("\n")[0])
    parser.add_argument("--root", required=True, help="directory holding one directory per site")
    parser.add_argument("--lock-timeout", type=float, default=60.0, help="seconds to wait for the lock")
    parser.add_argument("--audit-log", default=AUDIT_LOG, help="the host audit log (used if it exists)")
    parser.add_argument("--actor", help="who asks: the control plane's run id")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("status").add_argument("slug")
    preparing = commands.add_parser("prepare")
    preparing.add_argument("slug")
    preparing.add_argument("--release", help="the release id about to be deployed")
    preparing.add_argument("--manifest-sha256", help="SHA-256 of that release's manifest")
    preparing.add_argument("--packages", nargs="*", default=[], help="report which of these dpkg lacks")
    preparing.add_argument("--service", help="report whether this systemd unit is active and enabled")
    preparing.add_argument("--start", action="store_true",
                           help="and start and enable it when it is not and no package is missing")
    activating = commands.add_parser("activate")
    activating.add_argument("slug")
    activating.add_argument("release")
    activating.add_argument("--keep", type=int, default=5)
    activating.add_argument("--manifest", help="the release's manifest to write first ('-': stdin)")
    rolling = commands.add_parser("rollback")
    rolling.add_argument("slug")
    rolling.add_argument("release", nargs="?")
    commands.add_parser("vhost").add_argument("slug")
    rotating = commands.add_parser("rotate-audit")
    rotating.add_argument("--max-bytes", type=int, default=16 * 1024 * 1024)
    args = parser.parse_args(argv)
    audited = args.command in ("prepare", "activate", "rollback", "vhost")
    try:
        if args.command == "prepare":
            result = prepare(args.root, args.slug, args.release, args.manifest_sha256, args.packages,
                             args.service, args.start)
        elif args.command == "vhost":
            result = install_vhost(args.slug, sys.stdin)
        elif args.command == "rotate-audit":
            result = rotate_audit(args.audit_log, args.max_bytes)
        else:
            site = Site(args.root, args.slug)
            if args.command == "status":
                result = status(site)
            elif args.command == "activate":
                if args.keep < 2:
                    raise Refused("--keep must be at least 2 (the current and the previous release)")
                manifest = None
                if args.manifest == "-":
                    manifest = sys.stdin.read()
                elif args.manifest:
                    with open(args.manifest) as handle:
                        manifest = handle.read()
                result = activate(site, args.release, args.keep, args.lock_timeout, manifest)
            else:
                result = rollback(site, args.release, args.lock_timeout)
    except Refused as refused:
        if audited:
            try:
                audit(args.audit_log, args.actor, audit_entries(args.command, args, None, str(refused)))
            except OSError as error:
                print(f"weco-site-release: cannot write the host audit log {args.audit_log}: {error}",
                      file=sys.stderr)
        print(f"weco-site-release: {refused}", file=sys.stderr)
        return 1
    if audited:
        try:
            audit(args.audit_log, args.actor, audit_entries(args.command, args, result, None))
        except OSError as error:
            print(f"weco-site-release: cannot write the host audit log {args.audit_log}: {error}",
                  file=sys.stderr)
            return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
