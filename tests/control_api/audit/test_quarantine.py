"""A poisoned queue: rows the sealer cannot seal are quarantined with an audited alert, and
every other event is still sealed. The queue itself refuses edits and silent deletions."""

from __future__ import annotations

import json

import peewee
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from control_api.audit.chain import Witness, canonical_json
from control_api.audit.quarantine import ALERT_ACTION, SEALER_ACTOR_ID, Queued, judge
from control_api.db import dialect
from control_api.models import AuditEvent
from control_api.wiring import build_audit_log
from tests.control_api.audit.helpers import ACTOR, drop_guards, fill, sql, verify_store


@pytest.fixture
def audit(deps):
    fill(deps.audit, 2)
    deps.audit.seal_after_commit = False  # new events stay queued until a test seals
    return deps.audit


def queued(db) -> list[tuple]:
    return sql(db, "SELECT id, event_json, witness_key_id, signature FROM audit_queue ORDER BY id")


def enqueue(db, event_json, key_id, signature, queued_at) -> int:
    sql(db, "INSERT INTO audit_queue (event_json, witness_key_id, signature, queued_at) "
            "VALUES (?, ?, ?, ?)", event_json, key_id, signature, queued_at)
    return max(row[0] for row in queued(db))


def quarantined(db) -> list[tuple]:
    return sql(db, "SELECT queue_id, reason FROM audit_quarantine ORDER BY id")


def chain() -> list[tuple]:
    return [(row.action, row.target) for row in AuditEvent.select().order_by(AuditEvent.seq)]


def alerts() -> list[tuple]:
    return [(row.actor, row.target, json.loads(row.event_json)["metadata"])
            for row in AuditEvent.select().where(AuditEvent.action == ALERT_ACTION)]


def test_a_duplicated_queued_row_is_quarantined_and_later_events_are_sealed(audit, clock):
    audit.record_alone(ACTOR, "test.first", "a")
    first, *copy = queued(audit.db)[0]
    duplicate = enqueue(audit.db, *copy, clock.now())  # the same signed event, twice
    audit.record_alone(ACTOR, "test.later", "b")
    result = audit.seal()
    assert (result.sealed, result.quarantined) == (3, 1)  # two events and one alert
    assert chain()[2:] == [("test.first", "a"), (ALERT_ACTION, f"audit_queue:{duplicate}"),
                           ("test.later", "b")]
    reason = f"duplicate of queued row {first}"
    assert quarantined(audit.db) == [(duplicate, reason)]
    assert alerts() == [(SEALER_ACTOR_ID, f"audit_queue:{duplicate}",
                         {"queue_id": duplicate, "reason": reason})]
    assert queued(audit.db) == []
    assert verify_store(audit).ok


def test_a_copy_of_a_sealed_event_is_quarantined(audit, clock):
    event_json, key_id, signature = sql(
        audit.db, "SELECT event_json, witness_key_id, signature FROM audit_events WHERE seq = 1")[0]
    copy = enqueue(audit.db, event_json, key_id, signature, clock.now())
    audit.record_alone(ACTOR, "test.later", "b")
    audit.seal()
    assert quarantined(audit.db) == [(copy, "duplicate of sealed row 1")]
    assert chain()[-1] == ("test.later", "b")
    assert verify_store(audit).ok


def event(clock, **fields) -> str:
    """A well-formed event as the recorder writes it."""
    return canonical_json({"id": "e" * 32, "time": clock.now().isoformat(timespec="microseconds") + "Z",
                           "actor": "user:1", "action": "test.forged", "target": "thing:1",
                           "source_ip": "", "user_agent": "", "metadata": {}, **fields})


def test_forged_and_malformed_rows_are_quarantined_and_the_rest_sealed(audit, clock):
    witness = audit.witness
    twice = '{"id":"a",' + event(clock)[1:]  # two ids: which one counts depends on the reader
    rows = [
        (event(clock, id="forged"), witness.key_id, witness.sign_event(event(clock))),
        ("not json", witness.key_id, "AAAA"),
        ("not json", witness.key_id, witness.sign_event("not json")),  # signed, yet no event
        (event(clock, time="yesterday"), witness.key_id, witness.sign_event(event(clock, time="yesterday"))),
        (twice, witness.key_id, witness.sign_event(twice)),
    ]
    ids = [enqueue(audit.db, *values, clock.now()) for values in rows]
    audit.record_alone(ACTOR, "test.later", "b")
    assert audit.seal().quarantined == 5
    assert quarantined(audit.db) == [
        (ids[0], "witness signature does not verify"),
        (ids[1], "witness signature does not verify"),
        (ids[2], "not a well-formed event: event_json is not JSON"),
        (ids[3], "not a well-formed event: its time is not in the recorder's format"),
        (ids[4], "not a well-formed event: it is not canonical JSON"),
    ]
    assert chain()[2:] == [(ALERT_ACTION, f"audit_queue:{n}") for n in ids] + [("test.later", "b")]
    assert queued(audit.db) == []
    assert verify_store(audit).ok


def test_a_row_under_another_witness_key_waits_then_is_quarantined(audit, clock):
    # During a rolling change of FF_AUDIT_WITNESS_KEY an older process may still seal
    # what it queued; a row nobody here can seal is set aside after a grace period.
    other = Witness(Ed25519PrivateKey.generate())
    stranger = enqueue(audit.db, event(clock), other.key_id, other.sign_event(event(clock)), clock.now())
    audit.record_alone(ACTOR, "test.later", "b")
    assert audit.seal().quarantined == 0
    assert chain()[-1] == ("test.later", "b")
    assert [row[0] for row in queued(audit.db)] == [stranger]
    clock.advance(seconds=61)
    assert audit.seal().quarantined == 1
    assert quarantined(audit.db) == [(stranger, "signed by a witness key this sealer does not hold")]
    assert queued(audit.db) == []


def test_rows_that_are_not_text_are_judged_not_fatal(audit, clock):
    witness = audit.witness
    row = Queued(7, b"{}", witness.key_id, "AAAA", clock.now())  # SQLite stores what it is given
    assert judge(row, witness.public, clock.now()).reason == (
        "event_json, witness_key_id or signature is not text")


def test_the_queue_refuses_updates_and_unsealed_deletions(audit, clock):
    audit.record_alone(ACTOR, "test.pending", "a")
    (pending, *_), = queued(audit.db)
    for statement in ("UPDATE audit_queue SET event_json = '{}'",
                      "DELETE FROM audit_queue WHERE id = ?"):
        with pytest.raises(peewee.DatabaseError, match="audit_queue"), audit.db.atomic():
            sql(audit.db, statement, *([pending] if "?" in statement else []))
    audit.seal()  # the sealer may delete what it sealed
    assert queued(audit.db) == [] and chain()[-1] == ("test.pending", "a")


def test_the_quarantine_is_append_only(audit, clock):
    enqueue(audit.db, "junk", audit.witness.key_id, "AAAA", clock.now())
    audit.seal()
    for statement in ("UPDATE audit_quarantine SET reason = 'fine'", "DELETE FROM audit_quarantine"):
        with pytest.raises(peewee.DatabaseError, match="audit_quarantine is append-only"), \
                audit.db.atomic():
            sql(audit.db, statement)
    assert len(quarantined(audit.db)) == 1


def test_a_queued_event_deleted_with_the_guards_dropped_leaves_no_trace(audit, settings, db):
    # Said plainly in the README: whoever can drop the triggers can remove an event
    # in the moment between its commit and its sealing, and nothing in the log shows it.
    audit.record_alone(ACTOR, "test.vanishing", "a")
    drop_guards(db)
    sql(db, "DELETE FROM audit_queue")
    assert build_audit_log(settings, db, audit.clock).seal().sealed == 0
    report = verify_store(audit)
    assert report.ok and report.rows == 2


def test_rows_at_or_below_id_zero_are_not_stuck_in_the_queue(audit, clock):
    """The sealer reads from the lowest id there is, not from 1: a row planted with id 0
    or below is sealed or quarantined like any other, never left behind for good."""
    audit.record_alone(ACTOR, "test.copied", "a")
    _, *copy = queued(audit.db)[0]
    audit.seal()
    sql(audit.db, "INSERT INTO audit_queue (id, event_json, witness_key_id, signature, queued_at) "
                  "VALUES (?, ?, ?, ?, ?)", 0, "{}", copy[1], copy[2], clock.now())
    sql(audit.db, "INSERT INTO audit_queue (id, event_json, witness_key_id, signature, queued_at) "
                  "VALUES (?, ?, ?, ?, ?)", -(2**63), *copy, clock.now())
    result = audit.seal()
    assert result.quarantined == 2 and queued(audit.db) == []
    assert sorted(queue_id for queue_id, _ in quarantined(audit.db)) == [-(2**63), 0]


def test_text_that_is_not_utf8_does_not_stop_sealing(audit, clock):
    """SQLite stores any bytes as TEXT, which Python cannot read back as str: the row is
    quarantined and the events behind it sealed. PostgreSQL refuses such text outright."""
    if dialect(audit.db) == "postgresql":
        with pytest.raises(peewee.DataError), audit.db.atomic():
            sql(audit.db, "SELECT convert_from('\\xff'::bytea, 'UTF8')")
        return
    sql(audit.db, "INSERT INTO audit_queue (event_json, witness_key_id, signature, queued_at) "
                  "VALUES (CAST(x'ff7b7d' AS TEXT), 'k', 's', ?)", clock.now())
    audit.record_alone(ACTOR, "test.later", "b")
    result = audit.seal()
    assert result.quarantined == 1 and queued(audit.db) == []
    assert chain()[-1] == ("test.later", "b")
    assert quarantined(audit.db)[0][1] == "event_json, witness_key_id or signature is not text"
