#!/usr/bin/python
"""Build the SHA-256 manifest of a site's source tree (run on the controller).

The manifest is what the host verifies a release against before it is switched live:
one ``<sha256>  <relative path>`` line per regular file, sorted by path, the format
``sha256sum --check`` reads. The tree may hold only directories and regular files: a
symlink would let a site publish any file nginx can read, so it is refused here, before
anything is sent. Names that are not printable UTF-8, or hold a backslash, are refused
too: sha256sum would have to escape them, and no site needs them.
"""

from __future__ import annotations

import hashlib
import os
import stat

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: site_manifest
short_description: SHA-256 manifest of a directory tree, refusing anything but regular files
options:
  path:
    description: Absolute path of the site's source directory.
    type: str
    required: true
"""

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


def main() -> None:
    module = AnsibleModule(argument_spec={"path": {"type": "str", "required": True}},
                           supports_check_mode=True)
    top = module.params["path"]
    if not os.path.isabs(top) or not os.path.isdir(top):
        module.fail_json(msg=f"site_source_dir {top!r} is not an absolute path to a directory")
    entries, total, refused = build_manifest(top)
    if refused:
        module.fail_json(msg=f"site_source_dir {top} holds entries a site may not publish: "
                             + ", ".join(refused[:20]), refused=refused)
    if not entries:
        module.fail_json(msg=f"site_source_dir {top} holds no file")
    manifest = "".join(f"{digest}  {rel}\n" for rel, digest in entries)
    module.exit_json(changed=False, manifest=manifest, files=len(entries), bytes=total,
                     sha256=hashlib.sha256(manifest.encode()).hexdigest())


if __name__ == "__main__":
    main()
