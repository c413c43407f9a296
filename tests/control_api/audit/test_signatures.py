"""Signature checks spread over worker processes name the same first bad row, with the same
summary, as checks in one process, whatever else is wrong further on."""

from __future__ import annotations

import pytest

from control_api.audit.verify import Verifier, rows_from_store
from tests.control_api.audit.helpers import drop_guards, fill, row, sql


@pytest.fixture
def log(deps):
    fill(deps.audit, 20)
    drop_guards(deps.db)
    return deps


def forge_signature(deps, seq: int) -> None:
    """Swap in another row's signature and re-chain from there, as a holder of
    FF_AUDIT_SECRET without the witness key could: only the signature is wrong."""
    sql(deps.db, "UPDATE audit_events SET signature = ? WHERE seq = ?", row(deps.db, 1)["signature"], seq)
    rechain(deps, seq)


def rechain(deps, start: int) -> None:
    prev = row(deps.db, start - 1)["mac"]
    for seq in range(start, 21):
        current = row(deps.db, seq)
        mac = deps.audit.chain_key.mac(seq, prev, current["witness_key_id"], current["signature"],
                                       current["event_json"])
        sql(deps.db, "UPDATE audit_events SET prev_mac = ?, mac = ? WHERE seq = ?", prev, mac, seq)
        prev = mac


def both_ways(deps):
    keys = [deps.audit.witness.public], [deps.audit.chain_key]
    alone = Verifier(*keys, workers=1).verify(rows_from_store(batch=7))
    spread = Verifier(*keys, workers=2, chunk_rows=3).verify(rows_from_store(batch=7))
    assert (alone.workers, spread.workers) == (0, 2)
    summary = [(r.failure, r.rows, r.first_seq, r.last_seq, r.last_time) for r in (alone, spread)]
    assert summary[0] == summary[1]
    return spread


def test_an_intact_log(log):
    report = both_ways(log)
    assert report.ok and report.rows == 20


def test_a_bad_signature(log):
    forge_signature(log, 8)
    report = both_ways(log)
    assert (report.failure.seq, report.failure.reason) == (8, "witness signature does not verify")
    assert (report.rows, report.last_seq) == (7, 7)


def test_a_bad_signature_before_a_broken_link(log):
    forge_signature(log, 8)
    sql(log.db, "UPDATE audit_events SET prev_mac = ? WHERE seq = 14", "0" * 64)
    assert both_ways(log).failure.seq == 8


def test_a_broken_link_before_a_bad_signature(log):
    forge_signature(log, 14)
    sql(log.db, "UPDATE audit_events SET prev_mac = ? WHERE seq = 5", "0" * 64)
    failure = both_ways(log).failure
    assert failure.seq == 5 and failure.reason.startswith("prev_mac expected")


def test_the_signature_comes_before_the_columns_in_one_row(log):
    forge_signature(log, 8)
    sql(log.db, "UPDATE audit_events SET target = 'elsewhere' WHERE seq = 8")
    assert both_ways(log).failure.reason == "witness signature does not verify"


def test_the_mac_comes_before_the_signature_in_one_row(log):
    sql(log.db, "UPDATE audit_events SET signature = ? WHERE seq = 9", row(log.db, 1)["signature"])
    failure = both_ways(log).failure
    assert failure.seq == 9 and failure.reason.startswith("MAC expected")


def test_two_bad_signatures_in_one_chunk(log):
    forge_signature(log, 10)
    forge_signature(log, 11)
    assert both_ways(log).failure.seq == 10


def test_a_bad_column_in_the_last_row(log):
    sql(log.db, "UPDATE audit_events SET actor = 'nobody' WHERE seq = 20")
    report = both_ways(log)
    assert report.failure.seq == 20 and report.rows == 19
