"""The built-in anomaly rules, each judging one sealed audit event against the chain.

Window rules fire on the event that brings the count in its window to the threshold,
once per burst (not again while the window ending at each next such event stays
full), with the events that made the count as evidence:
- failed-login burst: FAILED_LOGINS `auth.login_failed` within FAILED_LOGIN_WINDOW,
  for one account (the event's target) and over all accounts;
- bearer rotation storm: TOKEN_CHANGES `token.create`/`token.revoke` within
  TOKEN_WINDOW by one actor.
Single-event rules:
- off-hours deploy: `run.request` of a playbook that changes what is live, outside
  FF_BUSINESS_HOURS (in its time zone);
- break-glass use: its login, a failed login to it, its creation;
- a quarantined audit row (`audit.quarantine`);
- a host-key mismatch: a run that ended failed with ssh's host-key refusal in its output.
The watcher adds `anomaly.verification_failed` itself (detector.py).
Windows are counted on the events' own times and only over rows sealed up to the
event judged, so a rescan after a crash judges every row the same way.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import peewee

from control_api.anomaly.hours import BusinessHours
from control_api.audit.quarantine import as_datetime
from control_api.audit.verify import time_text

FAILED_LOGINS, FAILED_LOGIN_WINDOW = 10, dt.timedelta(seconds=60)
TOKEN_CHANGES, TOKEN_WINDOW = 5, dt.timedelta(minutes=5)
DEPLOY_PLAYBOOKS = frozenset({"deploy_site", "rollback_site"})
HOST_KEY_SIGNS = ("REMOTE HOST IDENTIFICATION HAS CHANGED", "Host key verification failed")
EVIDENCE_ROWS = 50  # rows listed at most in one finding's evidence


@dataclasses.dataclass(frozen=True)
class Finding:
    action: str  # anomaly.*
    target: str
    evidence: dict


@dataclasses.dataclass(frozen=True)
class Judged:
    seq: int
    event: dict
    at: dt.datetime  # the event's time, naive UTC


class Rules:
    def __init__(self, db: peewee.Database, hours: BusinessHours | None) -> None:
        self.db = db
        self.hours = hours

    def judge(self, row: Judged) -> list[Finding]:
        action = row.event["action"]
        metadata = row.event.get("metadata") if isinstance(row.event.get("metadata"), dict) else {}
        findings: list[Finding] = []
        if action == "auth.login_failed":
            findings += self._window(row, "anomaly.failed_login_burst", ("auth.login_failed",),
                                     FAILED_LOGINS, FAILED_LOGIN_WINDOW, "target", "account")
            findings += self._window(row, "anomaly.failed_login_burst", ("auth.login_failed",),
                                     FAILED_LOGINS, FAILED_LOGIN_WINDOW, None, "all accounts")
        if action in ("token.create", "token.revoke"):
            findings += self._window(row, "anomaly.bearer_rotation_storm", ("token.create", "token.revoke"),
                                     TOKEN_CHANGES, TOKEN_WINDOW, "actor", "actor")
        if action == "run.request" and metadata.get("playbook") in DEPLOY_PLAYBOOKS and self.hours \
                and not self.hours.contains(row.at):
            findings.append(Finding("anomaly.off_hours_deploy", row.event["target"], {
                "seq": row.seq, "playbook": metadata.get("playbook"), "actor": row.event["actor"],
                "time": row.event["time"], "local_time": self.hours.local(row.at),
                "business_hours": self.hours.text}))
        if action in ("auth.break_glass_login", "user.break_glass_created") or (
                action == "auth.login_failed" and metadata.get("break_glass") is True):
            findings.append(Finding("anomaly.break_glass", row.event["target"], {
                "seq": row.seq, "action": action, "actor": row.event["actor"],
                "source_ip": row.event.get("source_ip", ""), "time": row.event["time"]}))
        if action == "audit.quarantine":
            findings.append(Finding("anomaly.audit_quarantine", row.event["target"], {
                "seq": row.seq, "reason": metadata.get("reason"), "time": row.event["time"]}))
        if action == "run.finish" and metadata.get("status") == "failed":
            findings += self._host_key(row)
        return findings

    def _window(self, row: Judged, rule: str, actions: tuple[str, ...], threshold: int,
                window: dt.timedelta, key: str | None, scope: str) -> list[Finding]:
        p = self.db.param
        match = f"action IN ({', '.join([p] * len(actions))})"
        keyed: list = []
        if key is not None:
            match += f" AND {key} = {p}"  # key is one of two constant column names
            keyed = [row.event[key]]
        in_window = f"{match} AND occurred_at > {p} AND occurred_at <= {p} AND seq <= {p}"

        def count(at: dt.datetime, seq: int) -> int:
            (n,), = self.db.execute_sql(f"SELECT count(*) FROM audit_events WHERE {in_window}",  # noqa: S608
                                        [*actions, *keyed, at - window, at, seq]).fetchall()
            return n

        if count(row.at, row.seq) < threshold:
            return []
        # Fire on the crossing only: not if the window ending at the previous such event
        # was already full (the same burst going on).
        previous = self.db.execute_sql(
            f"SELECT occurred_at, seq FROM audit_events WHERE {match} AND seq < {p} "  # noqa: S608
            "ORDER BY seq DESC LIMIT 1", [*actions, *keyed, row.seq]).fetchone()
        if previous and count(as_datetime(previous[0]), previous[1]) >= threshold:
            return []
        params = [*actions, *keyed, row.at - window, row.at, row.seq]
        rows = self.db.execute_sql(
            f"SELECT seq, event_id, occurred_at, actor, target FROM audit_events WHERE {in_window} "  # noqa: S608
            f"ORDER BY seq LIMIT {EVIDENCE_ROWS}", params).fetchall()
        evidence = {
            "scope": scope, "threshold": threshold, "window_seconds": int(window.total_seconds()),
            "count": count(row.at, row.seq), "actions": list(actions),
            "events": [{"seq": seq, "id": event_id, "time": time_text(as_datetime(at) or str(at)),
                        "actor": actor, "target": target}
                       for seq, event_id, at, actor, target in rows],
        }
        target = row.event[key] if key else "all"
        return [Finding(rule, target, evidence)]

    def _host_key(self, row: Judged) -> list[Finding]:
        run_id = row.event["target"].removeprefix("run:")
        if not run_id.isdigit():
            return []
        p = self.db.param
        signs = " OR ".join([f"stdout LIKE {p}"] * len(HOST_KEY_SIGNS))
        found = self.db.execute_sql(
            f"SELECT seq, host FROM run_events WHERE run_id = {p} AND ({signs}) ORDER BY seq LIMIT 10",  # noqa: S608
            [int(run_id), *(f"%{sign}%" for sign in HOST_KEY_SIGNS)]).fetchall()
        if not found:
            return []
        return [Finding("anomaly.host_key_mismatch", row.event["target"], {
            "seq": row.seq, "run_events": [{"seq": seq, "host": host} for seq, host in found],
            "time": row.event["time"]})]
