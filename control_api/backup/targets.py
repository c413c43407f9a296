"""Where backups go and come from: a local file, or S3 with Object Lock.

A file is created 0600 under a temporary name and linked into place when complete, so
an existing backup is never overwritten and a cut-off run leaves no half file under the
final name. On S3 the object is uploaded in parts (memory stays at one part) with
Object Lock in compliance mode and a retain-until date, into a bucket that must have
Object Lock enabled: until that date nobody, the writer included, can delete or
overwrite that version. An existing key is never written again.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

SUFFIX = ".wecobak"
PART_BYTES = 8 << 20  # S3's minimum part is 5 MiB


class TargetError(Exception):
    """A backup location cannot be used; str() says which and why."""


def is_s3(location: str) -> bool:
    return location.startswith("s3://")


def split_s3(location: str) -> tuple[str, str]:
    parts = urlsplit(location)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise TargetError(f"{location}: expected s3://BUCKET/PREFIX")
    return parts.netloc, parts.path.lstrip("/")


def new_name(now: dt.datetime) -> str:
    return f"weco-backup-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}{SUFFIX}"


class FileSink:
    def __init__(self, path: Path) -> None:
        if path.exists():
            raise TargetError(f"{path} already exists; a backup is never overwritten")
        self.path = path
        self._temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
        self._handle = os.fdopen(os.open(self._temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")
        self.location = str(path)

    def write(self, data: bytes) -> int:
        return self._handle.write(data)

    def commit(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        try:
            os.link(self._temporary, self.path)
        except FileExistsError:
            raise TargetError(f"{self.path} appeared while the backup was written; kept neither") from None
        finally:
            self._temporary.unlink(missing_ok=True)

    def abort(self) -> None:
        self._handle.close()
        self._temporary.unlink(missing_ok=True)


class S3Sink:
    """An upload under compliance-mode Object Lock: one PutObject when the backup fits in
    a part, else a multipart upload (memory stays at one part). Either way the written
    version's lock is read back and checked, so a store that ignored the lock headers
    makes the backup fail instead of pretending (moto ignores them on multipart uploads)."""

    def __init__(self, client, bucket: str, key: str, retain_until: dt.datetime) -> None:
        self.client, self.bucket, self.key = client, bucket, key
        self.location = f"s3://{bucket}/{key}"
        self.retain_until = retain_until
        try:
            config = client.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
        except client.exceptions.ClientError as exc:
            if _code(exc) == "ObjectLockConfigurationNotFoundError":
                raise TargetError(f"s3://{bucket} does not have Object Lock enabled") from None
            raise TargetError(f"s3://{bucket}: cannot read its Object Lock configuration ({_code(exc)}); "
                              "backups go only to a bucket created with Object Lock enabled") from None
        if config.get("ObjectLockEnabled") != "Enabled":
            raise TargetError(f"s3://{bucket} does not have Object Lock enabled")
        if _exists(client, bucket, key):
            raise TargetError(f"{self.location} already exists; a backup is never overwritten")
        self._lock = {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": retain_until}
        self._upload: str | None = None
        self._buffer = bytearray()
        self._parts: list[dict] = []

    def write(self, data: bytes) -> int:
        self._buffer += data
        while len(self._buffer) > PART_BYTES:
            self._send(bytes(self._buffer[:PART_BYTES]))
            del self._buffer[:PART_BYTES]
        return len(data)

    def _send(self, body: bytes) -> None:
        if self._upload is None:
            self._upload = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, ChecksumAlgorithm="SHA256", **self._lock)["UploadId"]
        number = len(self._parts) + 1
        answer = self.client.upload_part(Bucket=self.bucket, Key=self.key, UploadId=self._upload,
                                         PartNumber=number, Body=body, ChecksumAlgorithm="SHA256")
        part = {"PartNumber": number, "ETag": answer["ETag"]}
        if "ChecksumSHA256" in answer:
            part["ChecksumSHA256"] = answer["ChecksumSHA256"]
        self._parts.append(part)

    def commit(self) -> None:
        if self._upload is None:
            written = self.client.put_object(Bucket=self.bucket, Key=self.key, Body=bytes(self._buffer),
                                             ChecksumAlgorithm="SHA256", **self._lock)
        else:
            self._send(bytes(self._buffer))
            written = self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self._upload,
                MultipartUpload={"Parts": self._parts})
        self._buffer.clear()
        self.version = written.get("VersionId")
        head = self.client.head_object(Bucket=self.bucket, Key=self.key,
                                       **({"VersionId": self.version} if self.version else {}))
        until = head.get("ObjectLockRetainUntilDate")
        if head.get("ObjectLockMode") != "COMPLIANCE" or until is None or until < self.retain_until:
            raise TargetError(f"{self.location} was written, but the store did not put it under "
                              "compliance-mode Object Lock until the retention date; do not rely on it")

    def abort(self) -> None:
        if self._upload is not None:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self._upload)


def _code(exc) -> str:
    return exc.response.get("Error", {}).get("Code", "error")


def _exists(client, bucket: str, key: str) -> bool:
    try:
        client.head_object(Bucket=bucket, Key=key)
        return True
    except client.exceptions.ClientError as exc:
        if _code(exc) in ("404", "NoSuchKey", "NotFound"):
            return False
        raise TargetError(f"s3://{bucket}/{key}: {_code(exc)}") from None


def open_sink(location: str, now: dt.datetime, s3_client, retention_days: int):
    """A sink for `location`: a file path, or s3://BUCKET/PREFIX (a new object under it)."""
    if is_s3(location):
        bucket, prefix = split_s3(location)
        key = f"{prefix.rstrip('/')}/{new_name(now)}" if prefix else new_name(now)
        # Whole seconds: S3 keeps retain-until dates to the second.
        retain_until = now.replace(tzinfo=dt.UTC, microsecond=0) + dt.timedelta(days=retention_days)
        return S3Sink(s3_client(), bucket, key, retain_until)
    return FileSink(Path(location))


def open_source(location: str, s3_client) -> BinaryIO:
    """A readable stream of the backup at `location` (a file or s3://BUCKET/KEY)."""
    if is_s3(location):
        bucket, key = split_s3(location)
        client = s3_client()
        try:
            return client.get_object(Bucket=bucket, Key=key)["Body"]
        except client.exceptions.ClientError as exc:
            raise TargetError(f"{location}: {_code(exc)}") from None
    return Path(location).open("rb")


def newest(location: str, s3_client) -> str:
    """The newest backup in a directory or under an s3:// prefix."""
    if is_s3(location):
        bucket, prefix = split_s3(location)
        client = s3_client()
        best = None
        try:
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", ()):
                    newer = best is None or item["LastModified"] > best["LastModified"]
                    if item["Key"].endswith(SUFFIX) and newer:
                        best = item
        except client.exceptions.ClientError as exc:
            raise TargetError(f"{location}: {_code(exc)}") from None
        if best is None:
            raise TargetError(f"no backup (*{SUFFIX}) under {location}")
        return f"s3://{bucket}/{best['Key']}"
    directory = Path(location)
    if directory.is_file():
        return str(directory)
    candidates = sorted(directory.glob(f"*{SUFFIX}"), key=lambda p: (p.stat().st_mtime, p.name))
    if not candidates:
        raise TargetError(f"no backup (*{SUFFIX}) in {directory}")
    return str(candidates[-1])
