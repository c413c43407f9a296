"""Backups to S3 under Object Lock, against moto's real HTTP server.

What moto 5.2.5 enforces, as this test found it: a compliance-locked version cannot be
deleted before its retain-until date (AccessDenied, with or without the governance
bypass), and can be after it; a bucket without Object Lock has no lock configuration.
What it does not enforce, and real S3 does: shortening a compliance retention or
turning it into governance mode is accepted; lock headers on a multipart upload are
ignored (so `weco backup create` reads the lock back and fails rather than pretend,
proven below). A delete without a version id only adds a delete marker in both.
"""

from __future__ import annotations

import datetime as dt
import time

import boto3
import pytest
from botocore.exceptions import ClientError

from control_api.backup import targets
from tests.conftest import PASSWORD, run_weco
from tests.control_api.backup.test_restore_drill import PASSPHRASE, _one_line, _passphrase_file
from tests.peers.moto import CREDENTIALS


@pytest.fixture(scope="module")
def s3(moto):
    client = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_bucket(Bucket="weco-backups", ObjectLockEnabledForBucket=True)
    client.create_bucket(Bucket="weco-plain")
    return client


@pytest.fixture
def s3_env(tmp_path, moto):
    env = {"FF_ENV": "dev", "FF_DATA_DIR": str(tmp_path / "var"), "FF_LOG_LEVEL": "WARNING",
           "FF_BACKUP_PASSPHRASE_FILE": str(_passphrase_file(tmp_path, PASSPHRASE)),
           "FF_BACKUP_S3_ENDPOINT": moto.endpoint, "FF_BACKUP_RETENTION_DAYS": "1", **CREDENTIALS}
    assert run_weco(env, "db", "upgrade").returncode == 0
    assert run_weco(env, "user", "create", "--email", "a@example.test", "--role", "admin", "--password-stdin",
                    stdin=PASSWORD + "\n").returncode == 0
    return env


def test_a_locked_backup_cannot_be_deleted_before_expiry(s3, s3_env):
    made = run_weco(s3_env, "backup", "create", "--out", "s3://weco-backups/nightly")
    assert made.returncode == 0, made.stderr
    location = made.stdout.split("backup written: ")[1].split(" ")[0]
    key = location.removeprefix("s3://weco-backups/")
    head = s3.head_object(Bucket="weco-backups", Key=key)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    left = head["ObjectLockRetainUntilDate"] - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=23) < left <= dt.timedelta(days=1)
    for bypass in ({}, {"BypassGovernanceRetention": True}):
        with pytest.raises(ClientError, match="AccessDenied"):
            s3.delete_object(Bucket="weco-backups", Key=key, VersionId=head["VersionId"], **bypass)
    # A plain delete only hides it behind a marker; the locked version still verifies and drills.
    s3.delete_object(Bucket="weco-backups", Key=key)
    kept = s3.get_object(Bucket="weco-backups", Key=key, VersionId=head["VersionId"])
    assert kept["Body"].read(8) == b"WECOBAK\0"
    s3.delete_object(Bucket="weco-backups", Key=key, VersionId=s3.list_object_versions(
        Bucket="weco-backups", Prefix=key)["DeleteMarkers"][0]["VersionId"])
    verified = run_weco(s3_env, "backup", "verify", location)
    assert verified.returncode == 0 and "backup OK" in verified.stdout, verified.stderr
    drilled = run_weco(s3_env, "backup", "drill", "--from", "s3://weco-backups/nightly")
    assert drilled.returncode == 0 and "restore drill OK" in drilled.stdout, drilled.stderr

    # After its retain-until date the same delete is allowed (moto enforces the date).
    short = s3.put_object(Bucket="weco-backups", Key="short-lived", Body=b"x", ObjectLockMode="COMPLIANCE",
                          ObjectLockRetainUntilDate=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2))
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.delete_object(Bucket="weco-backups", Key="short-lived", VersionId=short["VersionId"])
    time.sleep(2.5)
    s3.delete_object(Bucket="weco-backups", Key="short-lived", VersionId=short["VersionId"])


def test_a_bucket_without_object_lock_and_an_existing_key_are_refused(s3, s3_env):
    assert "does not have Object Lock" in _one_line(
        run_weco(s3_env, "backup", "create", "--out", "s3://weco-plain/nightly"))
    assert s3.list_objects_v2(Bucket="weco-plain").get("KeyCount", 0) == 0
    s3.put_object(Bucket="weco-backups", Key="taken.wecobak", Body=b"x")
    with pytest.raises(targets.TargetError, match="never overwritten"):
        targets.S3Sink(s3, "weco-backups", "taken.wecobak", dt.datetime.now(dt.UTC))


def test_a_store_that_ignores_the_lock_fails_the_backup(s3, monkeypatch):
    # moto ignores lock headers on multipart uploads: a backup larger than a part is refused.
    monkeypatch.setattr(targets, "PART_BYTES", 5 << 20)
    sink = targets.S3Sink(s3, "weco-backups", "multipart.wecobak",
                          dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=1))
    sink.write(b"\0" * (11 << 20))
    with pytest.raises(targets.TargetError, match="did not put it under compliance-mode Object Lock"):
        sink.commit()
