"""Repack a collection tarball from `ansible-galaxy collection build` reproducibly.

ansible-galaxy stamps MANIFEST.json and FILES.json with the build's time, keeps each
file's mtime, writes the gzip header with a timestamp and the temp file's name, and
lists files in FILES.json in os.listdir order (the file system's). Two builds of one
commit therefore differ. This rewrites the archive with names sorted, FILES.json's
entries sorted (MANIFEST.json's checksum of it recomputed, so installing still
verifies), one mtime (SOURCE_DATE_EPOCH, default 0), owner 0:0 with empty names, and
a gzip header with no name and mtime 0. Modes are kept as ansible-galaxy set them.

    python scripts/collection_repack.py IN.tar.gz OUT.tar.gz
"""

import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

FRONT = ("MANIFEST.json", "FILES.json")  # where ansible-galaxy puts them: first


class RepackError(Exception):
    """The input is not a collection artifact this script understands."""


def _json_bytes(doc: dict) -> bytes:
    # The same serialization ansible-galaxy uses, so the files read as it wrote them.
    return json.dumps(doc, indent=True).encode()


def _read(path: str) -> tuple[dict[str, tarfile.TarInfo], dict[str, bytes]]:
    infos, data = {}, {}
    with tarfile.open(path, "r:gz") as tar:
        for info in tar.getmembers():
            if info.name in infos:
                raise RepackError(f"{path}: {info.name} appears twice")
            infos[info.name] = info
            if info.isfile():
                data[info.name] = tar.extractfile(info).read()
    missing = [n for n in FRONT if n not in data]
    if missing:
        raise RepackError(f"{path}: no {', '.join(missing)} (not a collection artifact)")
    return infos, data


def _sorted_manifests(data: dict[str, bytes]) -> None:
    files = json.loads(data["FILES.json"])
    files["files"].sort(key=lambda entry: entry["name"])
    data["FILES.json"] = _json_bytes(files)
    manifest = json.loads(data["MANIFEST.json"])
    manifest["file_manifest_file"]["chksum_sha256"] = hashlib.sha256(data["FILES.json"]).hexdigest()
    data["MANIFEST.json"] = _json_bytes(manifest)


def _member(info: tarfile.TarInfo, mtime: int) -> tarfile.TarInfo:
    out = tarfile.TarInfo(info.name)
    out.type, out.mode, out.linkname = info.type, info.mode, info.linkname
    out.mtime, out.uid, out.gid, out.uname, out.gname = mtime, 0, 0, "", ""
    return out


def repack(src: str, dst: str, mtime: int) -> None:
    infos, data = _read(src)
    _sorted_manifests(data)
    order = list(FRONT) + sorted(n for n in infos if n not in FRONT)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in order:
            member = _member(infos[name], mtime)
            if member.isfile():
                member.size = len(data[name])
                tar.addfile(member, io.BytesIO(data[name]))
            else:
                tar.addfile(member)
    # filename="" and mtime=0: the gzip header names no file and carries no time.
    with open(dst, "wb") as fh, gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0) as gz:
        gz.write(raw.getvalue())


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    try:
        repack(argv[1], argv[2], int(os.environ.get("SOURCE_DATE_EPOCH") or 0))
    except (RepackError, tarfile.TarError, OSError, ValueError, KeyError) as exc:
        print(f"collection_repack: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
