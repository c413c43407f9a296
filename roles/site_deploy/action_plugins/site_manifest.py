"""Build the SHA-256 manifest of a site's source tree (an action: it runs on the controller).

The manifest is what the host verifies a release against before it is switched live:
one ``<sha256>  <relative path>`` line per regular file, sorted by path, the format
``sha256sum --check`` reads. The tree may hold only directories and regular files: a
symlink would let a site publish any file nginx can read, so it is refused here, before
anything is sent. Names that are not printable UTF-8, or hold a backslash, are refused
too: sha256sum would have to escape them, and no site needs them.

An action plugin rather than a module: the files are on the controller, and an action
runs there in Ansible's own process, without a module's Python start per call.

    site_manifest:
      path: /abs/site/dir
      release: r42          # optional; empty: a UTC timestamp YYYYmmddTHHMMSSZ
      manifest_file: /abs/manifest.sha256   # optional: digests known already (see below)

With `manifest_file` (the control API's document store writes one with each release it
builds, from digests it took when each file was stored), no file is hashed here: the
tree is walked as above (same refusals) and must hold exactly the files the manifest
lists, with nothing else; the host still verifies every digest before switching.

Returns manifest, files, bytes, sha256 (of the manifest) and release.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time

from ansible.plugins.action import ActionBase

CHUNK = 1 << 20


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def build_manifest(top: str) -> tuple[list[tuple[str, str]], int, list[str]]:
    """(sorted (relative path, digest) pairs, total bytes, refused entries)."""
    entries: list[tuple[str, str]] = []
    refused: list[str] = []
    total = 0

    def walk_error(error: OSError) -> None:
        refused.append(f"{os.path.relpath(error.filename, top)} (unreadable: {error.strerror})")

    for dirpath, dirnames, filenames in os.walk(top, onerror=walk_error):
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, top)
            mode = os.lstat(full).st_mode
            if "\\" in rel or not rel.isprintable() or not is_utf8(rel):
                refused.append(f"{rel!r} (a name a manifest line cannot hold)")
            elif stat.S_ISDIR(mode):
                continue
            elif not stat.S_ISREG(mode):
                refused.append(f"{rel} (not a regular file)")
            else:
                entries.append((rel, file_sha256(full)))
                total += os.lstat(full).st_size
    entries.sort()
    return entries, total, refused


def read_manifest(manifest_file: str, top: str) -> tuple[list[tuple[str, str]], int, list[str]]:
    """(sorted (relative path, digest) pairs from the manifest, total bytes, problems): the
    tree must hold exactly the manifest's files, as regular files; nothing is hashed."""
    listed: dict[str, str] = {}
    problems: list[str] = []
    with open(manifest_file, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            digest, sep, rel = line.rstrip("\n").partition("  ")
            if not sep or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest) or not rel:
                problems.append(f"manifest line {number} is not '<sha256>  <path>'")
            else:
                listed[rel] = digest
    present, total, refused = [], 0, []

    def walk_error(error: OSError) -> None:
        refused.append(f"{os.path.relpath(error.filename, top)} (unreadable: {error.strerror})")

    for dirpath, dirnames, filenames in os.walk(top, onerror=walk_error):
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, top)
            mode = os.lstat(full).st_mode
            if "\\" in rel or not rel.isprintable() or not is_utf8(rel):
                refused.append(f"{rel!r} (a name a manifest line cannot hold)")
            elif stat.S_ISDIR(mode):
                continue
            elif not stat.S_ISREG(mode):
                refused.append(f"{rel} (not a regular file)")
            else:
                present.append(rel)
                total += os.lstat(full).st_size
    problems += refused
    problems += [f"{rel} (not in the manifest)" for rel in sorted(set(present) - set(listed))]
    problems += [f"{rel} (in the manifest, not in the tree)" for rel in sorted(set(listed) - set(present))]
    return sorted(listed.items()), total, problems


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("path", "release", "manifest_file"))
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        top = self._task.args.get("path")
        if not isinstance(top, str) or not os.path.isabs(top) or not os.path.isdir(top):
            return dict(result, failed=True,
                        msg=f"site_source_dir {top!r} is not an absolute path to a directory")
        manifest_file = str(self._task.args.get("manifest_file") or "")
        if manifest_file and not (os.path.isabs(manifest_file) and os.path.isfile(manifest_file)):
            return dict(result, failed=True, msg=f"site_manifest_file {manifest_file!r} is not an absolute "
                                                 "path to a file")
        entries, total, refused = (read_manifest(manifest_file, top) if manifest_file
                                   else build_manifest(top))
        if refused:
            return dict(result, failed=True, refused=refused,
                        msg=f"site_source_dir {top} holds entries a site may not publish: "
                            + ", ".join(refused[:20]))
        if not entries:
            return dict(result, failed=True, msg=f"site_source_dir {top} holds no file")
        manifest = "".join(f"{digest}  {rel}\n" for rel, digest in entries)
        # One id for every host of the deploy: this runs once per play.
        release = str(self._task.args.get("release") or "") or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        return dict(result, changed=False, manifest=manifest, files=len(entries), bytes=total,
                    sha256=hashlib.sha256(manifest.encode()).hexdigest(), release=release)
