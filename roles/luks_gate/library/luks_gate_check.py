#!/usr/bin/python
"""Decide whether each data location sits on LUKS encryption (the luks_gate role's check).

A directory is judged by the filesystem it lives on: findmnt names the mount's source
device, and lsblk --inverse describes that device's block stack from the top down
(partitions, LVM, md, crypt layers). The location is encrypted when every branch of the
stack passes through a `crypt` device whose backing device carries a LUKS header. The
header is confirmed on the device itself with `cryptsetup isLuks` (or `blkid -p`), never
taken from lsblk's FSTYPE, which is only a cache kept by udev.

The decision functions take the tools' parsed JSON and an `is_luks` callable, so they are
tested on recorded output of real layouts; only `main` runs the tools.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: luks_gate_check
short_description: Check that data directories and block devices sit on LUKS
description:
  - Follows each directory's filesystem down its block stack (findmnt, lsblk --inverse) to a
    crypt device over a LUKS header, confirmed with cryptsetup isLuks (or blkid -p).
  - A directory that does not exist yet is checked at its nearest existing parent.
  - A block device is checked directly; a LUKS container that is not opened yet passes.
  - Read-only; never changes the host.
options:
  paths:
    description: Absolute paths of directories or block devices.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Check the data directories
  luks_gate_check:
    paths: [/, /var/lib/postgresql, /srv/sites]
  register: check
"""

RETURN = r"""
results:
  description: >-
    One verdict per path: path, checked_at, mountpoint, source, device, fstype, encrypted,
    luks_devices, reason.
  type: list
  returned: always
unencrypted:
  description: One sentence per path that is not LUKS-encrypted, naming the path and its device.
  type: list
  returned: always
"""

FINDMNT_COLUMNS = "TARGET,SOURCE,FSTYPE"
LSBLK_COLUMNS = "NAME,PATH,TYPE,FSTYPE,PKNAME"

IsLuks = Callable[[str], bool]


def nearest_existing(path: str, exists: Callable[[str], bool] = os.path.exists) -> str:
    """The path itself, or its nearest parent that exists (a data dir may not be created yet)."""
    probe = os.path.normpath(path)
    while not exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            raise ValueError(f"no part of {path} exists")
        probe = parent
    return probe


def mount_of(findmnt_doc: dict) -> dict:
    """The one filesystem `findmnt --json --target DIR` reports."""
    filesystems = findmnt_doc.get("filesystems") or []
    if len(filesystems) != 1:
        raise ValueError(f"findmnt reported {len(filesystems)} filesystems, expected one")
    return filesystems[0]


def source_device(source: str) -> str | None:
    """The block device behind a mount source, or None when there is none (tmpfs, overlay, NFS).

    findmnt writes a bind mount or a btrfs subvolume as DEVICE[/subdir].
    """
    device = source.split("[", 1)[0]
    return device if device.startswith("/dev/") else None


def top_device(lsblk_doc: dict) -> dict:
    """The device lsblk was asked about: the root of its inverse tree."""
    devices = lsblk_doc.get("blockdevices") or []
    if len(devices) != 1:
        raise ValueError(f"lsblk reported {len(devices)} devices, expected one")
    return devices[0]


def _path(node: dict) -> str:
    return node.get("path") or f"/dev/{node['name']}"


def assess_stack(node: dict, is_luks: IsLuks, *, container_ok: bool = False) -> tuple[list[str], list[str]]:
    """Walk an inverse lsblk tree from `node` down to the disks.

    Returns (luks_devices, exposed): the LUKS devices protecting the stack, and, when some
    branch reaches storage without a crypt layer over LUKS, that branch from the top down
    (then the stack is not encrypted and luks_devices is empty). `container_ok` accepts
    `node` itself being a LUKS device, as an operator-named volume not yet opened is.
    """
    if container_ok and is_luks(_path(node)):
        return [_path(node)], []
    backing = node.get("children") or []
    if node.get("type") == "crypt" and backing and all(is_luks(_path(b)) for b in backing):
        return [_path(b) for b in backing], []
    if not backing:
        return [], [_path(node)]
    # Every backing device must be protected: one plain PV or RAID member exposes the data.
    luks: list[str] = []
    for below in backing:
        found, exposed = assess_stack(below, is_luks)
        if exposed:
            return [], [_path(node), *exposed]
        luks += found
    return luks, []


def _verdict(base: dict, luks: list[str], reason: str | None) -> dict:
    return dict(base, encrypted=reason is None, luks_devices=luks, reason=reason)


def assess_directory(path: str, checked_at: str, findmnt_doc: dict, lsblk_doc: dict | None,
                     is_luks: IsLuks) -> dict:
    """Verdict for a directory, from findmnt of `checked_at` and lsblk of the mount's device.

    `lsblk_doc` is only needed (and only read) when the mount has a block device source.
    """
    mount = mount_of(findmnt_doc)
    source, fstype = mount["source"], mount.get("fstype")
    device = source_device(source)
    base = {"path": path, "checked_at": checked_at, "mountpoint": mount["target"], "source": source,
            "device": device, "fstype": fstype}
    subject = path if checked_at == path else f"{path} (not created yet; checked at {checked_at})"
    if device is None:
        return _verdict(base, [], f"{subject} is on {source} ({fstype}), which is not a block device, "
                                  "so it cannot be LUKS-encrypted")
    if lsblk_doc is None:
        raise ValueError(f"{path} is on the block device {device}: its lsblk output is needed")
    luks, exposed = assess_stack(top_device(lsblk_doc), is_luks)
    if exposed:
        return _verdict(base, [], f"{subject} is on {device} ({fstype}), which is not LUKS-encrypted "
                                  f"(no LUKS layer in {' -> '.join(exposed)})")
    return _verdict(base, luks, None)


def assess_device(path: str, lsblk_doc: dict, is_luks: IsLuks, fstype: str | None) -> dict:
    """Verdict for a block device named directly: a LUKS container, or a stack over LUKS."""
    base = {"path": path, "checked_at": path, "mountpoint": None, "source": path, "device": path,
            "fstype": fstype}
    luks, exposed = assess_stack(top_device(lsblk_doc), is_luks, container_ok=True)
    if exposed:
        return _verdict(base, [], f"{path} ({fstype or 'no filesystem'}) is not LUKS-encrypted "
                                  f"(no LUKS layer in {' -> '.join(exposed)})")
    return _verdict(base, luks, None)


def missing_device(path: str) -> dict:
    """Verdict for a device path that does not exist (its parent would be /dev, a tmpfs)."""
    base = {"path": path, "checked_at": None, "mountpoint": None, "source": None, "device": path,
            "fstype": None}
    return _verdict(base, [], f"{path} does not exist, so it cannot be shown to be LUKS-encrypted")


class Probe:
    """Runs the tools on the host for one module invocation."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.cryptsetup = module.get_bin_path("cryptsetup")
        self.blkid = module.get_bin_path("blkid")
        if not (self.cryptsetup or self.blkid):
            module.fail_json(msg="neither cryptsetup nor blkid is installed: cannot detect LUKS")
        self._luks: dict[str, bool] = {}

    def json_of(self, argv: list[str]) -> dict:
        rc, out, err = self.module.run_command([self.module.get_bin_path(argv[0], required=True), *argv[1:]])
        if rc != 0:
            self.module.fail_json(msg=f"{' '.join(argv)} failed (rc {rc}): {err.strip()}")
        return json.loads(out)

    def fstype(self, device: str) -> str | None:
        if not self.blkid:
            return None
        rc, out, _ = self.module.run_command([self.blkid, "-p", "-o", "value", "-s", "TYPE", device])
        # rc 2 means blkid found no signature at all.
        return (out.strip() or None) if rc == 0 else None

    def is_luks(self, device: str) -> bool:
        if device not in self._luks:
            self._luks[device] = self._probe_luks(device)
        return self._luks[device]

    def _probe_luks(self, device: str) -> bool:
        if self.cryptsetup:
            # isLuks: 0 is LUKS, 1 is not; anything else (no such device, no permission) is an error.
            rc, _, err = self.module.run_command([self.cryptsetup, "isLuks", device])
            if rc in (0, 1):
                return rc == 0
            self.module.fail_json(msg=f"cryptsetup isLuks {device} failed (rc {rc}): {err.strip()}")
        return self.fstype(device) == "crypto_LUKS"

    def assess(self, path: str) -> dict:
        if path.startswith("/dev/") and not os.path.exists(path):
            return missing_device(path)
        checked_at = nearest_existing(path)
        if stat.S_ISBLK(os.stat(checked_at).st_mode):
            lsblk = self.json_of(["lsblk", "--json", "--inverse", "--output", LSBLK_COLUMNS, path])
            return assess_device(path, lsblk, self.is_luks, self.fstype(path))
        findmnt = self.json_of(["findmnt", "--json", "--output", FINDMNT_COLUMNS, "--target", checked_at])
        device = source_device(mount_of(findmnt)["source"])
        lsblk = None
        if device is not None:
            lsblk = self.json_of(["lsblk", "--json", "--inverse", "--output", LSBLK_COLUMNS, device])
        return assess_directory(path, checked_at, findmnt, lsblk, self.is_luks)


def main() -> None:
    module = AnsibleModule(
        argument_spec={"paths": {"type": "list", "elements": "str", "required": True}},
        supports_check_mode=True,
    )
    paths = module.params["paths"]
    if not paths:
        module.fail_json(msg="no paths to check: name at least one data directory or block device")
    relative = [p for p in paths if not os.path.isabs(p)]
    if relative:
        module.fail_json(msg=f"paths must be absolute: {', '.join(relative)}")
    probe = Probe(module)
    try:
        results = [probe.assess(path) for path in paths]
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, results=results,
                     unencrypted=[r["reason"] for r in results if not r["encrypted"]])


if __name__ == "__main__":
    main()
