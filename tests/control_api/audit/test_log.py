"""Recording and sealing: fail-closed mutations, batches, checkpoints, concurrent writers."""

from __future__ import annotations

import json
import threading

import pytest

from control_api.audit.chain import Witness
from control_api.audit.checkpoints import read_checkpoints
from control_api.audit.log import AuditUnavailable
from control_api.db import dialect
from control_api.models import ApiToken, AuditEvent, AuditQueue, User
from control_api.wiring import build_audit_log, build_credentials
from tests.conftest import ACTOR, PASSWORD
from tests.control_api.audit.helpers import fill, sql, verify_store


def test_record_outside_a_mutation_is_a_programming_error(deps):
    with pytest.raises(RuntimeError, match=r"inside AuditLog.mutation\(\)"):
        deps.audit.record(ACTOR, "x.y", "z")


def test_events_are_sealed_in_order_with_every_field(deps, clock):
    fill(deps.audit, 3)
    assert AuditQueue.select().count() == 0
    rows = list(AuditEvent.select().order_by(AuditEvent.seq))
    assert [r.seq for r in rows] == [1, 2, 3]
    event = json.loads(rows[0].event_json)
    assert event == {"id": rows[0].event_id, "time": "2026-11-29T12:00:00.000000Z", "actor": "user:1",
                     "action": "test.event", "target": "thing:1", "source_ip": "192.0.2.7",
                     "user_agent": "pytest", "metadata": {"n": 1}}
    assert rows[0].witness_key_id == deps.audit.witness.key_id
    assert rows[0].mac_key_id == deps.audit.chain_key.key_id
    assert verify_store(deps.audit).ok


def test_a_mutation_and_its_events_commit_together(deps):
    with pytest.raises(ZeroDivisionError), deps.audit.mutation():
        deps.audit.record(ACTOR, "half.done", "x")
        raise ZeroDivisionError  # the mutation fails after recording
    assert AuditQueue.select().count() == 0 and AuditEvent.select().count() == 0


class BrokenWitness(Witness):
    def sign_event(self, event_json: str) -> str:
        raise OSError("the witness key went away")


def test_no_mutation_when_the_event_cannot_be_signed(deps, users):
    deps.audit.witness = BrokenWitness(deps.audit.witness._private)
    with pytest.raises(AuditUnavailable, match=r"user\.create could not be recorded"):
        users.create("new@example.test", "admin", PASSWORD, ACTOR)
    assert User.select().count() == 0
    assert AuditQueue.select().count() == 0


def _refuse_audit_inserts(db) -> None:
    if dialect(db) == "postgresql":
        sql(db, """CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
                   BEGIN RAISE EXCEPTION 'disk full'; END $$""")
        sql(db, "CREATE TRIGGER refuse BEFORE INSERT ON audit_queue "
                "FOR EACH ROW EXECUTE FUNCTION refuse()")
    else:
        sql(db, "CREATE TRIGGER refuse BEFORE INSERT ON audit_queue "
                "BEGIN SELECT RAISE(ABORT, 'disk full'); END")


def test_no_mutation_when_the_event_cannot_be_written_and_the_api_says_503(deps, client, admin):
    build_credentials(deps).create_token(admin, "first", None, ACTOR)
    tokens_before = ApiToken.select().count()
    # API tokens are minted from a login session.
    ok = client.simulate_post("/api/auth/login", json={"email": "admin@example.test", "password": PASSWORD})
    cookie = ok.cookies["weco_session"].value
    session = {"Cookie": f"weco_session={cookie}", "X-CSRF-Token": ok.json["csrf_token"]}
    _refuse_audit_inserts(deps.db)
    result = client.simulate_post("/api/tokens", json={"name": "second"}, headers=session)
    assert result.status_code == 503
    assert result.json == {"title": "Audit log unavailable", "description":
                           "the action could not be audited, so nothing was changed; try again shortly"}
    assert ApiToken.select().count() == tokens_before


def test_a_failed_seal_loses_nothing(deps, monkeypatch):
    fill(deps.audit, 2)
    original = deps.audit._seal_batch
    monkeypatch.setattr(deps.audit, "_seal_batch", lambda wait: (_ for _ in ()).throw(OSError("boom")))
    fill(deps.audit, 3)  # committed and signed, not sealed
    assert AuditQueue.select().count() == 3
    monkeypatch.setattr(deps.audit, "_seal_batch", original)
    assert deps.audit.seal().sealed == 3
    report = verify_store(deps.audit)
    assert report.ok and report.rows == 5


def test_checkpoints_at_an_interval_and_on_demand(settings, db, clock, tmp_path):
    audit = build_audit_log(settings, db, clock)
    audit.checkpoint_every = 4
    fill(audit, 9)
    entries = [entry for _, entry in read_checkpoints(audit.checkpoints.path)]
    assert [e["count"] for e in entries] == [4, 8]
    audit.checkpoint()
    entries = [entry for _, entry in read_checkpoints(audit.checkpoints.path)]
    assert [e["count"] for e in entries] == [4, 8, 9]
    assert entries[-1]["head_mac"] == AuditEvent.get(AuditEvent.seq == 9).mac
    assert verify_store(audit, audit.checkpoints.path).ok


def test_concurrent_writers_never_fork_the_chain(deps):
    errors = []

    def writer(number: int) -> None:
        try:
            for i in range(15):
                deps.audit.record_alone(ACTOR, "test.concurrent", f"w{number}:{i}")
        except Exception as exc:  # reported below; a thread cannot fail the test itself
            errors.append(exc)
        finally:
            deps.db.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    deps.audit.seal()
    report = verify_store(deps.audit)
    assert report.ok and report.rows == 8 * 15
    targets = {row.target for row in AuditEvent.select()}
    assert len(targets) == 8 * 15
