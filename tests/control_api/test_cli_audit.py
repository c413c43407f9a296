"""`weco audit ...` and what the CLI records, against a real store on both backends."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import re
import stat

import pytest

from control_api.models import AuditEvent, User
from tests.control_api.audit.helpers import drop_guards, sql


@pytest.fixture
def pub(tmp_path):
    return str(tmp_path / "var" / "audit" / "witness.pub")


def populate(weco) -> None:
    weco("user", "create", "--email", "a@example.test", "--role", "superadmin")
    weco("token", "create", "--email", "a@example.test", "--name", "ci")
    weco("token", "revoke", "--id", "1")


def test_cli_mutations_are_recorded_with_the_os_user(weco, store):
    populate(weco)
    actions = [(row.action, row.actor, row.target) for row in AuditEvent.select().order_by(AuditEvent.seq)]
    me = f"cli:{getpass.getuser()}"
    assert actions == [("db.upgrade", me, "store"), ("user.create", me, "user:1"),
                       ("token.create", me, "token:1"), ("token.revoke", me, "token:1")]


def test_witness_keygen_writes_a_private_half_only_the_owner_reads(weco, tmp_path):
    out = tmp_path / "keys"
    result = weco("audit", "witness-keygen", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE((out / "witness.key").stat().st_mode) == 0o600
    assert (out / "witness.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    again = weco("audit", "witness-keygen", "--out", str(out))
    assert again.returncode == 1 and "refusing to overwrite" in again.stderr


def test_verify_passes_then_names_the_first_bad_row(weco, store, pub):
    populate(weco)
    good = weco("audit", "verify", "--witness-pub", pub)
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.startswith("audit log: OK\nrows verified: 4 (row 1 at ")
    assert "rows/s" in good.stdout
    drop_guards(store)
    sql(store, "UPDATE audit_events SET target = 'user:2' WHERE seq = 2")
    bad = weco("audit", "verify", "--witness-pub", pub)
    assert bad.returncode == 1
    assert bad.stdout.splitlines()[0] == (
        "audit log: BROKEN: row 2: target expected 'user:1' (signed), found 'user:2'")
    assert "rows verified: 1 (row 1 at" in bad.stdout


def test_verify_refuses_a_foreign_witness_key(weco, store, tmp_path):
    populate(weco)
    weco("audit", "witness-keygen", "--out", str(tmp_path / "other"))
    result = weco("audit", "verify", "--witness-pub", str(tmp_path / "other" / "witness.pub"))
    assert result.returncode == 1 and "unknown witness key id" in result.stdout


def test_checkpoint_then_truncation_is_reported(weco, store, pub, tmp_path):
    populate(weco)
    made = weco("audit", "checkpoint")
    assert made.returncode == 0 and made.stdout.startswith("checkpoint: 4 rows, head ")
    checkpoints = str(tmp_path / "var" / "audit" / "checkpoints.jsonl")
    assert weco("audit", "verify", "--witness-pub", pub, "--checkpoint", checkpoints).returncode == 0
    drop_guards(store)
    sql(store, "DELETE FROM audit_events WHERE seq = 4")
    result = weco("audit", "verify", "--witness-pub", pub, "--checkpoint", checkpoints)
    assert result.returncode == 1
    assert "log truncated: checkpoint line 1" in result.stdout and "ends at row 3" in result.stdout


def test_export_verifies_offline_and_catches_an_edited_line(weco, store, pub, tmp_path):
    populate(weco)
    out = tmp_path / "export.jsonl"
    exported = weco("audit", "export", "--since", "30d", "--out", str(out))
    assert exported.returncode == 0 and "exported 4 rows" in exported.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    header, *lines = out.read_text().splitlines()
    assert json.loads(header)["first_seq"] == 1 and len(lines) == 4
    # Offline: the store is unreachable, the export alone is checked.
    offline = {"FF_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    good = weco("audit", "verify", "--witness-pub", pub, "--export", str(out), **offline)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "rows verified: 4" in good.stdout
    row = json.loads(lines[2])
    row["event_json"] = row["event_json"].replace("token:1", "token:9")
    out.write_text("\n".join([header, lines[0], lines[1], json.dumps(row), lines[3]]) + "\n")
    bad = weco("audit", "verify", "--witness-pub", pub, "--export", str(out), **offline)
    assert bad.returncode == 1 and bad.stdout.startswith("audit log: BROKEN: row 3: MAC expected")
    assert weco("audit", "export", "--out", str(out)).returncode != 0  # never overwrites


def test_export_of_a_recent_slice_says_where_it_starts(weco, store, pub, tmp_path):
    populate(weco)
    out = tmp_path / "slice.jsonl"
    since = "2999-01-01T00:00:00Z"
    assert weco("audit", "export", "--since", since, "--out", str(out)).returncode == 0
    assert json.loads(out.read_text().splitlines()[0])["first_seq"] is None
    result = weco("audit", "export", "--since", "soon")
    assert result.returncode == 1 and "expected Nd, Nh or an ISO 8601 time" in result.stderr


def test_a_malformed_export_is_refused_cleanly(weco, pub, tmp_path):
    path = tmp_path / "junk.jsonl"
    path.write_text("not json\n")
    result = weco("audit", "verify", "--witness-pub", pub, "--export", str(path))
    assert result.returncode == 1 and "is not a weco-audit-export/v1 file" in result.stderr
    path.write_text('{"format": "weco-audit-export/v1"}\n{"seq": "1"}\n')
    result = weco("audit", "verify", "--witness-pub", pub, "--export", str(path))
    assert result.returncode == 1 and "malformed row: seq is not an integer" in result.stdout


def test_production_refuses_to_mutate_without_audit_keys(weco, store):
    # A setting that production requires is missing: exit 2, one line naming it.
    result = weco("user", "create", "--email", "b@example.test", "--role", "admin", FF_ENV="production")
    assert result.returncode == 2
    assert result.stderr == "weco: FF_AUDIT_SECRET is required when FF_ENV=production\n"
    result = weco("user", "create", "--email", "b@example.test", "--role", "admin", FF_ENV="production",
                  FF_AUDIT_SECRET="0" * 64)
    assert result.returncode == 2
    assert result.stderr.startswith("weco: FF_AUDIT_WITNESS_KEY is required when FF_ENV=production")
    assert result.stderr.count("\n") == 1
    assert User.select().count() == 0


def test_verify_needs_the_secret_and_the_public_key_not_the_witness_private_key(weco, store, pub, tmp_path):
    populate(weco)
    secret = (tmp_path / "var" / "audit" / "chain.secret").read_text().strip()
    result = weco("audit", "verify", "--witness-pub", pub, FF_ENV="production", FF_AUDIT_SECRET=secret)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("audit log: OK\n")


def test_a_witness_key_others_can_read_is_refused(weco, store, tmp_path):
    weco("audit", "witness-keygen", "--out", str(tmp_path / "k"))
    key = tmp_path / "k" / "witness.key"
    os.chmod(key, 0o644)
    result = weco("user", "create", "--email", "b@example.test", "--role", "admin",
                  FF_AUDIT_WITNESS_KEY=str(key))
    assert result.returncode == 1 and "readable by group or others: chmod 600 it" in result.stderr
    assert User.select().count() == 0


def test_verify_after_rotating_the_audit_secret(weco, store, pub, tmp_path):
    populate(weco)
    old = tmp_path / "var" / "audit" / "chain.secret"
    new = "n" * 64
    weco("token", "create", "--email", "a@example.test", "--name", "after", FF_AUDIT_SECRET=new)
    without = weco("audit", "verify", "--witness-pub", pub, FF_AUDIT_SECRET=new)
    assert without.returncode == 1 and "row 1: unknown MAC key id" in without.stdout
    both = weco("audit", "verify", "--witness-pub", pub, "--previous-secret-file", str(old),
                FF_AUDIT_SECRET=new)
    assert both.returncode == 0, both.stdout + both.stderr
    assert "rows verified: 5" in both.stdout


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def test_verify_fails_naming_what_the_sealer_quarantined(weco, store, pub):
    populate(weco)
    event_json, key_id, signature = sql(
        store, "SELECT event_json, witness_key_id, signature FROM audit_events WHERE seq = 1")[0]
    insert = ("INSERT INTO audit_queue (event_json, witness_key_id, signature, queued_at) "
              "VALUES (?, ?, ?, ?)")
    sql(store, insert, "junk", key_id, "AAAA", _now())  # forged
    sql(store, insert, event_json, key_id, signature, _now())  # a replayed copy
    weco("token", "create", "--email", "a@example.test", "--name", "later")
    assert AuditEvent.select().where(AuditEvent.action == "token.create").count() == 2
    assert sql(store, "SELECT count(*) FROM audit_queue") == [(0,)]
    result = weco("audit", "verify", "--witness-pub", pub)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "audit log: NOT OK: 2 queued row(s) quarantined (not reviewed)"
    assert lines[1].startswith("rows verified: 7 (row 1 at ")  # 5 events, 2 alerts
    assert re.search(r"^quarantined 1 at \S+Z: queue row \d+: witness signature does not verify$",
                     result.stdout, re.M)
    assert re.search(r"^quarantined 2 at \S+Z: queue row \d+: duplicate of sealed row 1$",
                     result.stdout, re.M)
    reviewed = weco("audit", "verify", "--witness-pub", pub, "--reviewed-quarantine", "2")
    assert reviewed.returncode == 0, reviewed.stdout
    assert reviewed.stdout.startswith("audit log: OK\n")
    assert "quarantine: 2 row(s), all reviewed (--reviewed-quarantine 2)" in reviewed.stdout
    partly = weco("audit", "verify", "--witness-pub", pub, "--reviewed-quarantine", "1")
    assert partly.returncode == 1 and "quarantine: 2 row(s), 1 not reviewed:" in partly.stdout


def test_verify_fails_on_an_event_queued_too_long(weco, store, pub):
    populate(weco)
    sql(store, "INSERT INTO audit_queue (event_json, witness_key_id, signature, queued_at) "
               "VALUES (?, ?, ?, ?)", "{}", "k", "s", _now() - dt.timedelta(minutes=10))
    result = weco("audit", "verify", "--witness-pub", pub)
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == (
        "audit log: NOT OK: 1 event(s) queued for longer than 300 s")
    assert re.search(r"^queue: 1 event\(s\) waiting, the oldest queued 6\d\d s ago", result.stdout, re.M)
    patient = weco("audit", "verify", "--witness-pub", pub, "--max-queued-age", "3600")
    assert patient.returncode == 0 and patient.stdout.startswith("audit log: OK\n")


def test_verify_reads_the_configured_checkpoint_file_by_default(weco, store, pub, tmp_path):
    populate(weco)
    shipped = str(tmp_path / "elsewhere" / "checkpoints.jsonl")
    assert weco("audit", "checkpoint", FF_AUDIT_CHECKPOINT_FILE=shipped).returncode == 0
    good = weco("audit", "verify", "--witness-pub", pub, FF_AUDIT_CHECKPOINT_FILE=shipped)
    assert good.returncode == 0 and f"checkpoints: 1 checked ({shipped})" in good.stdout
    drop_guards(store)
    sql(store, "DELETE FROM audit_events WHERE seq = 4")
    cut = weco("audit", "verify", "--witness-pub", pub, FF_AUDIT_CHECKPOINT_FILE=shipped)
    assert cut.returncode == 1
    assert cut.stdout.startswith("audit log: BROKEN: log truncated: checkpoint line 1")


def test_verify_without_a_checkpoint_file_once_one_was_due(weco, store, pub, tmp_path):
    populate(weco)
    default = tmp_path / "var" / "audit" / "checkpoints.jsonl"
    early = weco("audit", "verify", "--witness-pub", pub)
    assert early.returncode == 0 and f"checkpoints: none yet (no file at {default})" in early.stdout
    due = weco("audit", "verify", "--witness-pub", pub, FF_AUDIT_CHECKPOINT_EVERY="3")
    assert due.returncode == 1
    assert due.stdout.splitlines()[0] == (
        f"audit log: NOT OK: no checkpoint file at {default}, "
        "though the log has passed FF_AUDIT_CHECKPOINT_EVERY (3) rows")


@pytest.mark.parametrize("flag", ["--checkpoint", "--witness-pub", "--export"])
def test_a_missing_file_is_a_one_line_error(weco, store, pub, tmp_path, flag):
    populate(weco)
    missing = str(tmp_path / "missing")
    args = ["--witness-pub", pub] if flag != "--witness-pub" else []
    result = weco("audit", "verify", *args, flag, missing)
    assert result.returncode == 1
    assert result.stderr == f"weco: {flag} {missing}: No such file or directory\n"
