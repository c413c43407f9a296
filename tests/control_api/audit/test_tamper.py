"""Tampering done directly in the database, with the append-only triggers dropped as a
superuser: the verifier names the first bad row, or the truncation."""

from __future__ import annotations

import pytest

from control_api.audit.chain import GENESIS_MAC
from control_api.audit.verify import Verifier, rows_from_store
from tests.control_api.audit.helpers import COLUMNS, drop_guards, fill, row, sql, verify_store


@pytest.fixture
def log(deps):
    fill(deps.audit, 10)
    assert verify_store(deps.audit).ok
    drop_guards(deps.db)
    return deps


def failure(deps, checkpoints=None):
    report = verify_store(deps.audit, checkpoints)
    assert not report.ok
    return report.failure


def test_an_intact_log_verifies(deps):
    fill(deps.audit, 10)
    report = verify_store(deps.audit)
    assert report.ok and report.rows == 10 and (report.first_seq, report.last_seq) == (1, 10)


def test_progress_is_reported_on_long_logs(deps):
    fill(deps.audit, 10)
    seen = []
    verifier = Verifier([deps.audit.witness.public], [deps.audit.chain_key], seen.append, progress_every=4)
    assert verifier.verify(rows_from_store(batch=3)).ok
    assert seen == [4, 8]


def test_edited_indexed_column(log):
    sql(log.db, "UPDATE audit_events SET action = 'nothing.happened' WHERE seq = 4")
    found = failure(log)
    assert found.seq == 4
    assert found.reason == "action expected 'test.event' (signed), found 'nothing.happened'"


def test_edited_event(log):
    original = row(log.db, 4)["event_json"]
    sql(log.db, "UPDATE audit_events SET event_json = ? WHERE seq = 4",
        original.replace('"n":4', '"n":40'))
    found = failure(log)
    assert found.seq == 4 and found.reason.startswith("MAC expected ")


def test_deleted_row(log):
    sql(log.db, "DELETE FROM audit_events WHERE seq = 4")
    found = failure(log)
    assert (found.seq, found.reason) == (4, "expected row 4, found row 5 (row missing)")


def test_deleted_first_row(log):
    sql(log.db, "DELETE FROM audit_events WHERE seq = 1")
    assert failure(log).seq == 1


def test_inserted_row(log):
    # Make room after row 4 and slip a copy of row 2 in as the new row 5.
    sql(log.db, "UPDATE audit_events SET seq = seq + 1000 WHERE seq >= 5")
    sql(log.db, "UPDATE audit_events SET seq = seq - 999 WHERE seq >= 1000")
    forged = row(log.db, 2)
    forged["event_id"] = "forged"
    sql(log.db, f"INSERT INTO audit_events (seq, {', '.join(COLUMNS)}) VALUES (5{', ?' * len(COLUMNS)})",
        *forged.values())
    found = failure(log)
    assert found.seq == 5 and found.reason.startswith("prev_mac expected ")


def test_reordered_rows(log):
    six, seven = row(log.db, 6), row(log.db, 7)
    sql(log.db, "DELETE FROM audit_events WHERE seq IN (6, 7)")
    insert = f"INSERT INTO audit_events (seq, {', '.join(COLUMNS)}) VALUES (?{', ?' * len(COLUMNS)})"
    sql(log.db, insert, 6, *seven.values())
    sql(log.db, insert, 7, *six.values())
    found = failure(log)
    assert found.seq == 6 and found.reason.startswith("prev_mac expected ")


def test_rewritten_chain_without_the_witness_key(log):
    # An attacker holding FF_AUDIT_SECRET but not the witness key recomputes every MAC.
    chain_key = log.audit.chain_key
    edited = row(log.db, 3)["event_json"].replace('"n":3', '"n":33')
    prev = row(log.db, 2)["mac"]
    for seq in range(3, 11):
        current = row(log.db, seq)
        event = edited if seq == 3 else current["event_json"]
        mac = chain_key.mac(seq, prev, current["witness_key_id"], current["signature"], event)
        sql(log.db, "UPDATE audit_events SET event_json = ?, prev_mac = ?, mac = ? WHERE seq = ?",
            event, prev, mac, seq)
        prev = mac
    found = failure(log)
    assert (found.seq, found.reason) == (3, "witness signature does not verify")


def test_truncated_tail_is_caught_by_a_checkpoint(log):
    entry = log.audit.checkpoint()
    assert entry["count"] == 10
    sql(log.db, "DELETE FROM audit_events WHERE seq > 8")
    # The chain alone cannot tell ...
    assert verify_store(log.audit).ok
    # ... the checkpoint can.
    found = failure(log, log.audit.checkpoints.path)
    assert found.seq is None
    assert found.reason.startswith("log truncated: checkpoint line 1 (")
    assert found.reason.endswith(f"vouches for 10 rows ending in MAC {entry['head_mac']}, "
                                 "but the log ends at row 8")


def test_emptied_log_is_caught_by_a_checkpoint(log):
    log.audit.checkpoint()
    sql(log.db, "DELETE FROM audit_events")
    assert "but the log ends at row 0" in failure(log, log.audit.checkpoints.path).reason


def test_checkpoint_disagreeing_with_the_log(log):
    log.audit.checkpoint()
    # The witness vouched for row 10's MAC; a chain rebuilt from row 10 under the
    # stolen secret alone no longer matches it.
    last = row(log.db, 10)
    mac = log.audit.chain_key.mac(10, GENESIS_MAC, last["witness_key_id"], last["signature"],
                                  last["event_json"])
    sql(log.db, "UPDATE audit_events SET prev_mac = ?, mac = ? WHERE seq = 10", GENESIS_MAC, mac)
    assert failure(log, log.audit.checkpoints.path).seq == 10


def test_forged_checkpoint_line(log):
    log.audit.checkpoint()
    path = log.audit.checkpoints.path
    path.write_text(path.read_text().replace('"count": 10', '"count": 11'))
    found = failure(log, path)
    assert found.reason == "checkpoint line 1: signature does not verify"
