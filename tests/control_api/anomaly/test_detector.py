"""The anomaly rules at their boundaries, on both backends: what fires, with what
evidence, once; recorded as signed, chained `anomaly.*` events."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from control_api.anomaly.detector import AnomalyDetector
from control_api.anomaly.hours import parse_business_hours
from control_api.audit.log import Actor
from control_api.audit.verify import Verifier, rows_from_store
from tests.control_api.audit.helpers import drop_guards, sql

ATTACKER = Actor("anonymous", "198.51.100.9", "curl")


def detector(deps, hours: str = "") -> AnomalyDetector:
    return AnomalyDetector(deps.audit, parse_business_hours(hours))


def anomalies(deps) -> list[dict]:
    return [json.loads(event_json) for (event_json,) in
            sql(deps.db, "SELECT event_json FROM audit_events WHERE action LIKE ? ORDER BY seq", "anomaly.%")]


def failures(deps, clock, count: int, target: str = "user:7", step: float = 6.0) -> None:
    for _ in range(count):
        deps.audit.record_alone(ATTACKER, "auth.login_failed", target, {"email": "x@example.test"})
        clock.advance(seconds=step)


def test_nine_failed_logins_in_a_minute_are_no_burst_the_tenth_is(deps, clock):
    watch = detector(deps)
    failures(deps, clock, 9)
    assert watch.scan_once().findings == []
    failures(deps, clock, 1)
    found = watch.scan_once().findings
    assert {(f.action, f.target, f.evidence["scope"]) for f in found} == {
        ("anomaly.failed_login_burst", "user:7", "account"),
        ("anomaly.failed_login_burst", "all", "all accounts")}
    evidence = found[0].evidence
    assert evidence["count"] == 10 and evidence["threshold"] == 10 and evidence["window_seconds"] == 60
    assert [e["seq"] for e in evidence["events"]] == list(range(1, 11))
    # Recorded, sealed and chained like any other event, and the chain still verifies.
    recorded = anomalies(deps)
    assert [e["action"] for e in recorded] == ["anomaly.failed_login_burst"] * 2
    assert recorded[0]["actor"] == "system:anomaly-rules"
    assert recorded[0]["metadata"]["events"][9]["seq"] == 10
    assert Verifier([deps.audit.witness.public], [deps.audit.chain_key]).verify(rows_from_store()).ok
    # The 11th in the window is the same burst: nothing new; a rescan judges nothing twice.
    failures(deps, clock, 1)
    assert watch.scan_once().findings == []
    assert detector(deps).scan_once().findings == []
    assert len(anomalies(deps)) == 2


def test_ten_failures_spread_over_exactly_sixty_seconds_are_no_burst(deps, clock):
    failures(deps, clock, 10, step=60 / 9)  # the 10th is 60 s after the first: outside its window
    assert detector(deps).scan_once().findings == []


def test_ten_failures_over_ten_accounts_are_a_burst_over_all_accounts_only(deps, clock):
    for number in range(10):
        failures(deps, clock, 1, target=f"user:{number}", step=1)
    found = detector(deps).scan_once().findings
    assert [(f.target, f.evidence["scope"]) for f in found] == [("all", "all accounts")]


def tokens(deps, clock, count: int, actor: str = "user:3") -> None:
    for number in range(count):
        action = "token.create" if number % 2 == 0 else "token.revoke"
        deps.audit.record_alone(Actor(actor, "192.0.2.1", "ua"), action, f"token:{number}")
        clock.advance(seconds=70)


def test_four_token_changes_in_five_minutes_are_no_storm_the_fifth_is(deps, clock):
    watch = detector(deps)
    tokens(deps, clock, 4)
    assert watch.scan_once().findings == []
    tokens(deps, clock, 1)
    found = watch.scan_once().findings
    assert [(f.action, f.target) for f in found] == [("anomaly.bearer_rotation_storm", "user:3")]
    assert found[0].evidence["count"] == 5 and len(found[0].evidence["events"]) == 5


def test_token_changes_by_two_actors_or_beyond_five_minutes_are_no_storm(deps, clock):
    tokens(deps, clock, 3, actor="user:3")
    tokens(deps, clock, 2, actor="user:4")
    deps.audit.record_alone(Actor("user:5"), "token.create", "token:9")
    clock.advance(seconds=301)
    for _ in range(4):
        deps.audit.record_alone(Actor("user:5"), "token.create", "token:9")
    assert detector(deps).scan_once().findings == []


# New York, winter (EST, UTC-5) and summer (EDT, UTC-4): business hours 09:00-17:00 local.
HOURS = "Mon-Fri 09:00-17:00 America/New_York"


@pytest.mark.parametrize(("utc", "fires"), [
    (dt.datetime(2027, 1, 12, 13, 59, 59), True),    # Tue 08:59:59 EST
    (dt.datetime(2027, 1, 12, 14, 0, 0), False),     # Tue 09:00:00 EST: the start is inside
    (dt.datetime(2027, 1, 12, 21, 59, 59), False),   # Tue 16:59:59 EST
    (dt.datetime(2027, 1, 12, 22, 0, 0), True),      # Tue 17:00:00 EST: the end is outside
    (dt.datetime(2027, 7, 13, 12, 59, 59), True),    # Tue 08:59:59 EDT
    (dt.datetime(2027, 7, 13, 13, 0, 0), False),     # Tue 09:00:00 EDT
    (dt.datetime(2027, 1, 16, 15, 0, 0), True),      # Sat 10:00 EST
    (dt.datetime(2027, 1, 16, 3, 0, 0), True),       # Fri 22:00 EST, already Saturday in UTC
    (dt.datetime(2027, 1, 15, 21, 30, 0), False),    # Fri 16:30 EST
])
def test_off_hours_deploy_at_the_edges_of_business_hours_in_another_time_zone(deps, clock, utc, fires):
    clock.current = utc
    deps.audit.record_alone(Actor("user:2"), "run.request", "run:1",
                            {"playbook": "deploy_site", "target": {"site": "a"}, "extra_vars": {}})
    deps.audit.record_alone(Actor("user:2"), "run.request", "run:2",
                            {"playbook": "check_hosts", "target": {}, "extra_vars": {}})
    found = detector(deps, HOURS).scan_once().findings
    assert [(f.action, f.target) for f in found] == ([("anomaly.off_hours_deploy", "run:1")] if fires else [])
    if fires:
        assert found[0].evidence["business_hours"] == HOURS
        assert found[0].evidence["local_time"].endswith(("-05:00", "-04:00"))


def test_no_business_hours_no_off_hours_rule(deps, clock):
    clock.current = dt.datetime(2027, 1, 16, 3, 0, 0)
    deps.audit.record_alone(Actor("user:2"), "run.request", "run:1", {"playbook": "deploy_site"})
    assert detector(deps, "").scan_once().findings == []


def test_break_glass_quarantine_and_host_key_mismatch(deps, clock, admin):
    deps.audit.record_alone(Actor("user:1"), "auth.break_glass_login", "user:1", {"severity": "critical"})
    deps.audit.record_alone(ATTACKER, "auth.login_failed", "user:1", {"break_glass": True})
    deps.audit.record_alone(Actor("system:audit-sealer"), "audit.quarantine", "audit_queue:4",
                            {"queue_id": 4, "reason": "witness signature does not verify"})
    now = clock.now()
    sql(deps.db, "INSERT INTO runs (id, playbook, target_json, extra_vars_json, status, requested_by, "
                 "request_digest, created_at) VALUES (41, 'deploy_site', '{}', '{}', 'failed', ?, ?, ?)",
        admin.id, "0" * 64, now)
    sql(deps.db, "INSERT INTO run_events (run_id, seq, event, host, stdout, data_json, created_at) "
                 "VALUES (41, 3, 'runner_on_unreachable', 'web1', ?, '{}', ?)",
        "@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@\nHost key verification failed.", now)
    deps.audit.record_alone(Actor("worker:w"), "run.finish", "run:41", {"status": "failed", "rc": 4})
    deps.audit.record_alone(Actor("worker:w"), "run.finish", "run:42", {"status": "failed", "rc": 2})
    found = detector(deps).scan_once().findings
    assert [(f.action, f.target) for f in found] == [
        ("anomaly.break_glass", "user:1"), ("anomaly.break_glass", "user:1"),
        ("anomaly.audit_quarantine", "audit_queue:4"), ("anomaly.host_key_mismatch", "run:41")]
    assert found[3].evidence["run_events"] == [{"seq": 3, "host": "web1"}]


def test_a_row_whose_mac_does_not_hold_is_an_anomaly_and_the_walk_goes_on(deps, clock):
    for number in range(3):
        deps.audit.record_alone(Actor("user:1"), "site.create", f"site:{number}")
    drop_guards(deps.db)
    sql(deps.db, "UPDATE audit_events SET event_json = replace(event_json, 'site:1', 'site:9') WHERE seq = 2")
    watch = detector(deps)
    found = watch.scan_once().findings
    assert [(f.action, f.target) for f in found] == [("anomaly.verification_failed", "audit_events:2")]
    assert "MAC does not recompute" in found[0].evidence["reason"]
    deps.audit.record_alone(Actor("user:1"), "site.create", "site:4")
    assert watch.scan_once().findings == []  # row 3 links to row 2's (unchanged) MAC
