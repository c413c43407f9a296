"""The signed evidence pack: a gzip'd tar of named files, a SHA256SUMS list of every one
of them (sha256sum's format, so `sha256sum -c` checks it too), and SHA256SUMS.sig, an
Ed25519 signature over that list under the pack's own key (signing.py).

Verification reads the archive without extracting it: every member must be a regular
file with a plain name, listed exactly once in SHA256SUMS with a matching hash, nothing
listed may be missing, and the signature must verify under the public key the verifier
pinned. The first problem is the one-line answer.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
import zlib
from pathlib import Path

from control_api.evidence.signing import EvidenceError, PackSigner, check_signature, public_pem

SUMS, SIGNATURE, PUBLIC_KEY = "SHA256SUMS", "SHA256SUMS.sig", "signing-key.pub"
FORMAT = "weco-evidence/1"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_MAX_MEMBERS = 64
_READ = 1 << 20
# gzip magic, deflate, no flags, mtime 0, maximum compression, OS unknown (RFC 1952).
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"


def _sha256(handle) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: handle.read(_READ), b""):
        digest.update(block)
    return digest.hexdigest()


def _add(archive: tarfile.TarFile, name: str, data: bytes | None = None, path: Path | None = None) -> None:
    info = tarfile.TarInfo(name)
    info.mode, info.mtime, info.uid, info.gid = 0o644, 0, 0, 0
    if path is not None:
        info.size = path.stat().st_size
        with path.open("rb") as handle:
            archive.addfile(info, handle)
    else:
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))


def write_pack(out: Path, files: dict[str, Path], signer: PackSigner) -> str:
    """Write the pack to `out` (a new file); the SHA-256 of its SHA256SUMS."""
    for name in files:
        if not _NAME.fullmatch(name) or name in (SUMS, SIGNATURE, PUBLIC_KEY):
            raise EvidenceError(f"{name!r} cannot be a member of an evidence pack")
    lines = []
    for name in sorted(files):
        with files[name].open("rb") as handle:
            lines.append(f"{_sha256(handle)}  {name}\n")
    pub = public_pem(signer.public)
    lines.append(f"{hashlib.sha256(pub).hexdigest()}  {PUBLIC_KEY}\n")
    sums = "".join(sorted(lines, key=lambda line: line.split("  ", 1)[1])).encode("ascii")
    signature = json.dumps({"format": FORMAT, "key_id": signer.key_id, "signature": signer.sign(sums)},
                           sort_keys=True).encode() + b"\n"
    with out.open("xb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped, \
            tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as archive:
        _add(archive, SUMS, sums)
        _add(archive, SIGNATURE, signature)
        _add(archive, PUBLIC_KEY, pub)
        for name in sorted(files):
            _add(archive, name, path=files[name])
    return hashlib.sha256(sums).hexdigest()


def _parse_sums(sums: bytes) -> dict[str, str]:
    listed: dict[str, str] = {}
    try:
        text = sums.decode("ascii")
    except UnicodeDecodeError:
        raise EvidenceError(f"{SUMS} is not ASCII") from None
    for number, line in enumerate(text.splitlines(), 1):
        match = re.fullmatch(r"([0-9a-f]{64})  (.+)", line)
        if not match or not _NAME.fullmatch(match[2]) or match[2] in listed:
            raise EvidenceError(f"{SUMS} line {number} is not `SHA256  NAME` with a new plain name")
        listed[match[2]] = match[1]
    return listed


def _check_gzip(path: Path) -> None:
    """Every byte of the file is covered: the gzip header must be the one write_pack
    writes (its mtime and flags are outside the CRC), and the whole stream is read to its
    end, so the CRC and length in the trailer are checked (tarfile stops before them)."""
    try:
        with path.open("rb") as raw:
            if raw.read(len(GZIP_HEADER)) != GZIP_HEADER:
                raise EvidenceError(f"{path} does not start with an evidence pack's gzip header")
        with gzip.open(path, "rb") as stream:
            while stream.read(_READ):
                pass
    except (gzip.BadGzipFile, zlib.error, EOFError, OSError) as exc:
        raise EvidenceError(f"{path} is not a readable evidence pack: {exc}") from None


def verify_pack(path: Path, public) -> list[str]:
    """The names of the pack's files, once every check held; EvidenceError otherwise."""
    _check_gzip(path)
    try:
        with tarfile.open(path, mode="r:gz") as archive:
            members = archive.getmembers()
            if len(members) > _MAX_MEMBERS:
                raise EvidenceError(f"the pack has {len(members)} members; at most {_MAX_MEMBERS} "
                                    "are allowed")
            seen: dict[str, str] = {}
            sums = signature = None
            for member in members:
                if not member.isfile() or not _NAME.fullmatch(member.name) or member.name in seen:
                    raise EvidenceError(f"member {member.name!r} is not a plain, unique file name")
                handle = archive.extractfile(member)
                if member.name in (SUMS, SIGNATURE):
                    content = handle.read(1 << 20)
                    sums, signature = (content, signature) if member.name == SUMS else (sums, content)
                    seen[member.name] = hashlib.sha256(content).hexdigest()
                else:
                    seen[member.name] = _sha256(handle)
    except (tarfile.TarError, zlib.error, EOFError, OSError) as exc:
        raise EvidenceError(f"{path} is not a readable evidence pack: {exc}") from None
    if sums is None or signature is None:
        raise EvidenceError(f"the pack lacks {SUMS if sums is None else SIGNATURE}")
    try:
        signed = json.loads(signature)
        text = signed["signature"]
    except (ValueError, KeyError, TypeError):
        raise EvidenceError(f"{SIGNATURE} is not a signature record") from None
    check_signature(public, sums, text)
    listed = _parse_sums(sums)
    for name, digest in listed.items():
        if name not in seen:
            raise EvidenceError(f"{name} is listed in {SUMS} but missing from the pack")
        if seen[name] != digest:
            raise EvidenceError(f"{name} does not match its SHA-256 in {SUMS}: it was changed")
    extra = sorted(set(seen) - set(listed) - {SUMS, SIGNATURE})
    if extra:
        raise EvidenceError(f"{extra[0]} is in the pack but not listed in {SUMS}")
    return sorted(listed)
