"""The LUKS gate's decisions (roles/luks_gate/library/luks_gate_check.py) on recorded layouts.

Each fixture under data/ is findmnt or lsblk JSON of a real layout (data/README.md). `is_luks`
stands in for `cryptsetup isLuks`: on hosts with udev it agrees with lsblk's FSTYPE; on the
test host (no udev) it is the recorded isLuks answer.
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
from collections.abc import Callable, Iterator

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
DATA = pathlib.Path(__file__).resolve().parent / "data"

_spec = importlib.util.spec_from_file_location(
    "luks_gate_check", ROOT / "roles/luks_gate/library/luks_gate_check.py")
assert _spec is not None and _spec.loader is not None
check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check)


# /srv/sites on the plain volume vdb1, as the nested and bind layouts have it.
SITES_ON_VDB1 = ("/srv/sites is on /dev/vdb1 (ext4), which is not LUKS-encrypted "
                 "(no LUKS layer in /dev/vdb1 -> /dev/vdb)")


def load(layout: str, name: str) -> dict:
    return json.loads((DATA / layout / f"{name}.json").read_text())


def nodes(node: dict) -> Iterator[dict]:
    yield node
    for child in node.get("children", []):
        yield from nodes(child)


def blkid(*lsblk_docs: dict) -> Callable[[str], bool]:
    """isLuks as it answers where lsblk's FSTYPE is right: true exactly for crypto_LUKS devices."""
    luks = {n["path"] for doc in lsblk_docs for top in doc["blockdevices"] for n in nodes(top)
            if n["fstype"] == "crypto_LUKS"}
    return luks.__contains__


def never_luks(device: str) -> bool:
    return False


def isluks_on_testhost(device: str) -> bool:
    """Recorded on the test host: `cryptsetup isLuks` returned 0 for loop0, 1 for loop1."""
    return {"/dev/loop0": True, "/dev/loop1": False}[device]


def directory(layout: str, path: str, findmnt: str, lsblk: str | None,
              is_luks: Callable[[str], bool] | None = None, checked_at: str | None = None) -> dict:
    lsblk_doc = load(layout, lsblk) if lsblk else None
    probe = is_luks or (blkid(lsblk_doc) if lsblk_doc else never_luks)
    return check.assess_directory(path, checked_at or path, load(layout, findmnt), lsblk_doc, probe)


@pytest.mark.parametrize(("layout", "path", "findmnt", "lsblk", "luks", "device"), [
    ("luks-root", "/", "findmnt-root", "lsblk-vda3_crypt", ["/dev/vda3"], "/dev/mapper/vda3_crypt"),
    ("lvm-on-luks", "/", "findmnt-root", "lsblk-debian--vg-root", ["/dev/sda3"],
     "/dev/mapper/debian--vg-root"),
    ("luks-on-lvm", "/", "findmnt-root", "lsblk-root_crypt", ["/dev/mapper/vg0-root"],
     "/dev/mapper/root_crypt"),
    ("luks-on-md", "/", "findmnt-root", "lsblk-md0_crypt", ["/dev/md0"], "/dev/mapper/md0_crypt"),
    ("bind", "/srv/sites", "findmnt-srv-sites-from-luks", "lsblk-vda3_crypt", ["/dev/vda3"],
     "/dev/mapper/vda3_crypt"),
    ("bind", "/var/lib/postgresql", "findmnt-var-lib-postgresql-btrfs",
     "lsblk-luks-7d0f3c1e-8a51-4f3b-9b6a-2c4e1d9f0a11", ["/dev/vdc"],
     "/dev/mapper/luks-7d0f3c1e-8a51-4f3b-9b6a-2c4e1d9f0a11"),
])
def test_directory_on_luks_passes(layout: str, path: str, findmnt: str, lsblk: str, luks: list[str],
                                  device: str) -> None:
    verdict = directory(layout, path, findmnt, lsblk)
    assert verdict["encrypted"] is True
    assert verdict["reason"] is None
    assert verdict["luks_devices"] == luks
    assert verdict["device"] == device


@pytest.mark.parametrize(("layout", "path", "findmnt", "lsblk", "reason"), [
    ("plain-disk", "/", "findmnt-root", "lsblk-sda1",
     "/ is on /dev/sda1 (ext4), which is not LUKS-encrypted (no LUKS layer in /dev/sda1 -> /dev/sda)"),
    ("cloud-nvme", "/", "findmnt-root", "lsblk-nvme0n1p1",
     "/ is on /dev/nvme0n1p1 (ext4), which is not LUKS-encrypted "
     "(no LUKS layer in /dev/nvme0n1p1 -> /dev/nvme0n1)"),
    ("cloud-nvme", "/srv/sites", "findmnt-srv-sites", "lsblk-nvme1n1",
     "/srv/sites is on /dev/nvme1n1 (xfs), which is not LUKS-encrypted (no LUKS layer in /dev/nvme1n1)"),
    ("cloud-xvd", "/", "findmnt-root", "lsblk-xvda1",
     "/ is on /dev/xvda1 (ext4), which is not LUKS-encrypted (no LUKS layer in /dev/xvda1 -> /dev/xvda)"),
    # One PV of the volume group is plain, so part of the LV's data is not encrypted.
    ("lvm-mixed-pvs", "/srv/sites", "findmnt-srv-sites", "lsblk-data-sites",
     "/srv/sites is on /dev/mapper/data-sites (ext4), which is not LUKS-encrypted "
     "(no LUKS layer in /dev/mapper/data-sites -> /dev/sdb1 -> /dev/sdb)"),
    # A crypt layer without a LUKS header (plain dm-crypt) is not what the policy asks for.
    ("plain-dmcrypt", "/srv/sites", "findmnt-srv-sites", "lsblk-sdb_plain",
     "/srv/sites is on /dev/mapper/sdb_plain (ext4), which is not LUKS-encrypted "
     "(no LUKS layer in /dev/mapper/sdb_plain -> /dev/sdb)"),
    ("bind", "/srv/sites", "findmnt-srv-sites-from-plain", "lsblk-vdb1", SITES_ON_VDB1),
    ("non-block", "/", "findmnt-root", None,
     "/ is on overlay (overlay), which is not a block device, so it cannot be LUKS-encrypted"),
    ("non-block", "/srv/sites", "findmnt-srv-sites-tmpfs", None,
     "/srv/sites is on tmpfs (tmpfs), which is not a block device, so it cannot be LUKS-encrypted"),
    ("non-block", "/srv/sites", "findmnt-srv-sites-nfs", None,
     "/srv/sites is on files.example.internal:/export/sites (nfs4), which is not a block device, "
     "so it cannot be LUKS-encrypted"),
])
def test_directory_not_on_luks_is_refused(layout: str, path: str, findmnt: str, lsblk: str | None,
                                          reason: str) -> None:
    verdict = directory(layout, path, findmnt, lsblk)
    assert verdict["encrypted"] is False
    assert verdict["luks_devices"] == []
    assert verdict["reason"] == reason


def test_nested_plain_volume_is_refused_under_a_luks_root() -> None:
    """/ is on LUKS, /srv/sites is a separate plain volume, PostgreSQL's dir is not created yet."""
    existing = {"/", "/var", "/var/lib", "/srv", "/srv/sites"}
    mounts = {"/": ("findmnt-root", "lsblk-vda3_crypt"), "/var/lib": ("findmnt-var-lib", "lsblk-vda3_crypt"),
              "/srv/sites": ("findmnt-srv-sites", "lsblk-vdb1")}
    verdicts = []
    for path in ["/", "/var/lib/postgresql", "/srv/sites"]:
        checked_at = check.nearest_existing(path, existing.__contains__)
        findmnt, lsblk = mounts[checked_at]
        verdicts.append(directory("nested", path, findmnt, lsblk, checked_at=checked_at))

    assert [v["encrypted"] for v in verdicts] == [True, True, False]
    assert verdicts[1]["checked_at"] == "/var/lib"
    assert verdicts[1]["luks_devices"] == ["/dev/vda3"]
    assert [v["reason"] for v in verdicts if not v["encrypted"]] == [SITES_ON_VDB1]


def test_refusal_names_a_directory_checked_at_its_parent() -> None:
    verdict = directory("plain-disk", "/var/lib/postgresql", "findmnt-root", "lsblk-sda1",
                        checked_at="/var/lib")
    assert verdict["reason"].startswith(
        "/var/lib/postgresql (not created yet; checked at /var/lib) is on /dev/sda1 (ext4), which is not")


def test_lsblk_fstype_alone_does_not_count_as_luks() -> None:
    """lsblk's crypto_LUKS comes from udev's cache; a header isLuks does not find is no LUKS."""
    verdict = directory("luks-root", "/", "findmnt-root", "lsblk-vda3_crypt", is_luks=never_luks)
    assert verdict["encrypted"] is False
    assert "no LUKS layer in /dev/mapper/vda3_crypt -> /dev/vda3 -> /dev/vda" in verdict["reason"]


def test_luks_found_by_probe_when_lsblk_has_no_fstype() -> None:
    """Without udev lsblk's FSTYPE is null; isLuks on the backing device still decides."""
    lsblk = load("luks-root", "lsblk-vda3_crypt")
    for node in nodes(lsblk["blockdevices"][0]):
        node["fstype"] = None
    verdict = check.assess_directory("/", "/", load("luks-root", "findmnt-root"), lsblk,
                                     {"/dev/vda3"}.__contains__)
    assert verdict["encrypted"] is True
    assert verdict["luks_devices"] == ["/dev/vda3"]


def test_every_raid_member_under_a_crypt_layer_must_be_luks() -> None:
    """md0 is LUKS: the crypt layer over it suffices; without that header the RAID members are exposed."""
    lsblk = load("luks-on-md", "lsblk-md0_crypt")
    findmnt = load("luks-on-md", "findmnt-root")
    assert check.assess_directory("/", "/", findmnt, lsblk, {"/dev/md0"}.__contains__)["encrypted"] is True
    refused = check.assess_directory("/", "/", findmnt, lsblk, {"/dev/sda2", "/dev/sdb2"}.__contains__)
    assert refused["encrypted"] is False
    assert refused["reason"].endswith(
        "(no LUKS layer in /dev/mapper/md0_crypt -> /dev/md0 -> /dev/sda2 -> /dev/sda)")


def test_testhost_directory_on_plain_loop_device_is_refused() -> None:
    verdict = directory("testhost", "/srv/plain", "findmnt-srv-plain", "lsblk-loop1",
                        is_luks=isluks_on_testhost)
    assert verdict["reason"] == ("/srv/plain is on /dev/loop1 (ext4), which is not LUKS-encrypted "
                                 "(no LUKS layer in /dev/loop1)")


def test_testhost_bind_mount_of_plain_loop_device_is_refused() -> None:
    verdict = directory("testhost", "/srv/sites", "findmnt-srv-sites", "lsblk-loop1",
                        is_luks=isluks_on_testhost)
    assert verdict["device"] == "/dev/loop1"
    assert verdict["reason"].startswith("/srv/sites is on /dev/loop1 (ext4), which is not LUKS-encrypted")


def test_testhost_overlay_root_and_tmpfs_are_refused() -> None:
    for findmnt, source in [("findmnt-root", "overlay"), ("findmnt-run", "tmpfs")]:
        verdict = directory("testhost", "/x", findmnt, None, is_luks=isluks_on_testhost)
        assert verdict["encrypted"] is False
        assert verdict["reason"] == (f"/x is on {source} ({source}), which is not a block device, "
                                     "so it cannot be LUKS-encrypted")


def test_luks_container_named_directly_passes() -> None:
    verdict = check.assess_device("/dev/loop0", load("testhost", "lsblk-loop0"), isluks_on_testhost,
                                  "crypto_LUKS")
    assert verdict["encrypted"] is True
    assert verdict["luks_devices"] == ["/dev/loop0"]


def test_plain_device_named_directly_is_refused() -> None:
    verdict = check.assess_device("/dev/loop1", load("testhost", "lsblk-loop1"), isluks_on_testhost, "ext4")
    assert verdict["encrypted"] is False
    assert verdict["reason"] == "/dev/loop1 (ext4) is not LUKS-encrypted (no LUKS layer in /dev/loop1)"


def test_opened_crypt_device_named_directly_passes_and_its_disk_does_not() -> None:
    lsblk = load("luks-root", "lsblk-vda3_crypt")
    is_luks = blkid(lsblk)
    opened = check.assess_device("/dev/mapper/vda3_crypt", lsblk, is_luks, "ext4")
    assert opened["encrypted"] is True
    assert opened["luks_devices"] == ["/dev/vda3"]
    disk = {"blockdevices": [lsblk["blockdevices"][0]["children"][0]["children"][0]]}
    refused = check.assess_device("/dev/vda", disk, is_luks, None)
    assert refused["reason"] == "/dev/vda (no filesystem) is not LUKS-encrypted (no LUKS layer in /dev/vda)"


def test_a_luks_header_below_a_mounted_filesystem_without_a_crypt_layer_is_not_enough() -> None:
    """Only an opened crypt layer (or a named, unopened container) counts: not any LUKS signature below."""
    lsblk = load("plain-disk", "lsblk-sda1")
    verdict = check.assess_directory("/", "/", load("plain-disk", "findmnt-root"), lsblk,
                                     {"/dev/sda1", "/dev/sda"}.__contains__)
    assert verdict["encrypted"] is False


def test_missing_device_is_refused() -> None:
    verdict = check.missing_device("/dev/vdz1")
    assert verdict["encrypted"] is False
    assert verdict["reason"] == "/dev/vdz1 does not exist, so it cannot be shown to be LUKS-encrypted"


@pytest.mark.parametrize(("source", "device"), [
    ("/dev/mapper/vda3_crypt", "/dev/mapper/vda3_crypt"),
    ("/dev/vdb1[/sites]", "/dev/vdb1"),
    ("/dev/mapper/luks-7d0f[/@postgresql]", "/dev/mapper/luks-7d0f"),
    ("tmpfs", None),
    ("overlay", None),
    ("files.example.internal:/export/sites", None),
])
def test_source_device(source: str, device: str | None) -> None:
    assert check.source_device(source) == device


def test_nearest_existing() -> None:
    existing = {"/", "/var", "/var/lib"}.__contains__
    assert check.nearest_existing("/var/lib/postgresql/15/main", existing) == "/var/lib"
    assert check.nearest_existing("/var/lib/", existing) == "/var/lib"
    assert check.nearest_existing("/srv/sites", existing) == "/"
    with pytest.raises(ValueError, match="no part of /srv exists"):
        check.nearest_existing("/srv", set().__contains__)


def test_unexpected_tool_output_is_an_error_not_a_pass() -> None:
    with pytest.raises(ValueError, match="findmnt reported 0 filesystems"):
        check.mount_of({"filesystems": []})
    with pytest.raises(ValueError, match="lsblk reported 0 devices"):
        check.top_device({"blockdevices": []})
    with pytest.raises(ValueError, match="its lsblk output is needed"):
        check.assess_directory("/", "/", load("plain-disk", "findmnt-root"), None, never_luks)
