"""The anomaly watcher: reads the sealed chain after its durable cursor, re-checks each
row's link and MAC (RFC 2104 HMAC-SHA256 under FF_AUDIT_SECRET, as
control_api/audit/verify.py does), judges it by the rules, and records what fired as
`anomaly.*` audit events (actor `system:anomaly-rules`), signed and chained like any
other, so they reach the SIEM through the same forwarder.

The findings and the cursor's move commit in one transaction: each row is judged once,
even across a crash. `anomaly.*` rows are read past, never judged (no rule fires on
its own output). A row whose link or MAC does not hold gives one
`anomaly.verification_failed`, and the walk goes on from it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

from control_api.anomaly.hours import BusinessHours
from control_api.anomaly.rules import Finding, Judged, Rules
from control_api.audit.log import Actor, AuditLog
from control_api.siem import cursor

ACTOR = Actor("system:anomaly-rules", "", "weco-watch")
CURSOR = "anomaly"


@dataclasses.dataclass(frozen=True)
class Scan:
    read: int
    findings: list[Finding]


class AnomalyDetector:
    def __init__(self, audit: AuditLog, hours: BusinessHours | None, batch: int = 500) -> None:
        self.audit = audit
        self.db = audit.db
        self.rules = Rules(audit.db, hours)
        self.batch = batch

    def scan_once(self) -> Scan:
        """Judge the next batch of sealed rows; record what fired; move the cursor."""
        position = cursor.read(self.db, CURSOR)
        rows = cursor.rows_after(self.db, position.seq, self.batch)
        if not rows:
            return Scan(0, [])
        findings: list[Finding] = []
        previous = position
        for row in rows:
            problem = self._link(previous, row)
            previous = cursor.Position(row.seq, row.mac)
            if problem:
                findings.append(Finding("anomaly.verification_failed", f"audit_events:{row.seq}",
                                        {"seq": row.seq, "reason": problem}))
                continue
            event = json.loads(row.event_json)
            if event["action"].startswith("anomaly."):
                continue
            at = dt.datetime.fromisoformat(event["time"].removesuffix("Z"))
            findings += self.rules.judge(Judged(row.seq, event, at))
        with self.audit.mutation():
            for finding in findings:
                self.audit.record(ACTOR, finding.action, finding.target, finding.evidence)
            cursor.advance(self.db, CURSOR, position, previous, self.audit.clock.now())
        return Scan(len(rows), findings)

    def _link(self, previous: cursor.Position, row) -> str | None:
        # A cursor that starts mid-chain (never here: it starts at 0) would trust its MAC.
        if row.seq != previous.seq + 1:
            return f"expected row {previous.seq + 1}, found row {row.seq}"
        if row.prev_mac != previous.mac:
            return "prev_mac is not the previous row's MAC"
        key = self.audit.chain_key
        if row.mac_key_id == key.key_id and row.mac != key.mac(
                row.seq, row.prev_mac, row.witness_key_id, row.signature, row.event_json):
            return "the MAC does not recompute under FF_AUDIT_SECRET"
        try:
            event = json.loads(row.event_json)
            if not isinstance(event, dict) or not isinstance(event.get("action"), str) \
                    or not isinstance(event.get("time"), str):
                return "event_json is not an event"
            dt.datetime.fromisoformat(event["time"].removesuffix("Z"))
        except ValueError:
            return "event_json is not an event"
        return None
