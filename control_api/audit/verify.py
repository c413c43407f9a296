"""Verifying the audit log, from the store or from an export, against checkpoints.

Streams rows in sequence order with constant memory and stops at the first row that
does not hold, saying what was expected and what was found. Checks, per row: the
sequence has no gap, prev_mac is the previous row's MAC, the MAC recomputes under
FF_AUDIT_SECRET, the witness signature verifies, and the indexed columns say what
the signed event says. Then each checkpoint: its signature, and that the log holds
the row it vouches for with the same MAC (a shorter log was truncated).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from collections.abc import Callable, Iterable, Iterator

from control_api.audit.chain import GENESIS_MAC, ChainKey, WitnessPublic
from control_api.models import AuditEvent

_INDEXED = ("actor", "action", "target")


@dataclasses.dataclass(frozen=True)
class Failure:
    seq: int | None
    reason: str

    def __str__(self) -> str:
        return f"row {self.seq}: {self.reason}" if self.seq is not None else self.reason


@dataclasses.dataclass
class Report:
    rows: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    first_time: str | None = None
    last_time: str | None = None
    checkpoints: int = 0
    seconds: float = 0.0
    failure: Failure | None = None
    anchored_at_genesis: bool = True

    @property
    def ok(self) -> bool:
        return self.failure is None


def time_text(value: dt.datetime | str) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="microseconds") + "Z"
    return value


def rows_from_store(batch: int = 5000, start_after: int = 0) -> Iterator[dict]:
    """Every sealed row in sequence order, fetched in keyset-paged batches."""
    after = start_after
    while True:
        page = list(
            AuditEvent.select().where(AuditEvent.seq > after).order_by(AuditEvent.seq).limit(batch).dicts()
        )
        yield from page
        if len(page) < batch:
            return
        after = page[-1]["seq"]


class Verifier:
    def __init__(
        self,
        witnesses: Iterable[WitnessPublic],
        chain_keys: Iterable[ChainKey],
        progress: Callable[[int], None] | None = None,
        progress_every: int = 50000,
    ) -> None:
        self.witnesses = {w.key_id: w for w in witnesses}
        self.chain_keys = {k.key_id: k for k in chain_keys}
        self.progress = progress
        self.progress_every = progress_every

    def verify(
        self,
        rows: Iterable[dict],
        checkpoints: Iterable[tuple[int, dict | None]] = (),
        from_genesis: bool = True,
    ) -> Report:
        """from_genesis: the rows are the whole log (the store), not an export's slice."""
        started = time.perf_counter()
        report = Report()
        vouched, report.failure = self._checkpoint_index(checkpoints)
        report.checkpoints = sum(len(v) for v in vouched.values())
        if report.failure is None:
            report.failure = self._walk(rows, vouched, report, from_genesis)
        if report.failure is None and vouched:
            everything = (e for entries in vouched.values() for e in entries)
            line, entry = max(everything, key=lambda e: e[1]["count"])
            if entry["count"] > (report.last_seq or 0):
                report.failure = Failure(None, (
                    f"log truncated: checkpoint line {line} ({entry['time']}) vouches for "
                    f"{entry['count']} rows ending in MAC {entry['head_mac']}, but the log "
                    f"ends at row {report.last_seq or 0}"))
        report.seconds = time.perf_counter() - started
        return report

    def _checkpoint_index(self, checkpoints) -> tuple[dict[int, list[tuple[int, dict]]], Failure | None]:
        vouched: dict[int, list[tuple[int, dict]]] = {}
        for line, entry in checkpoints:
            if entry is None:
                return vouched, Failure(None, f"checkpoint line {line} is not a checkpoint")
            witness = self.witnesses.get(entry["witness_key_id"])
            if witness is None:
                reason = f"unknown witness key {entry['witness_key_id']}"
                return vouched, Failure(None, f"checkpoint line {line}: {reason}")
            signed = (entry["count"], entry["head_mac"], entry["time"])
            if not witness.verify_checkpoint(entry["signature"], *signed):
                return vouched, Failure(None, f"checkpoint line {line}: signature does not verify")
            vouched.setdefault(entry["count"], []).append((line, entry))
        return vouched, None

    def _walk(self, rows: Iterable[dict], vouched: dict, report: Report, from_genesis: bool
              ) -> Failure | None:
        prev_mac = GENESIS_MAC if from_genesis else None
        expected_seq = 1 if from_genesis else None
        for row in rows:
            malformed = _malformed(row)
            if malformed:
                return Failure(expected_seq, f"malformed row: {malformed}")
            seq = row["seq"]
            if report.first_seq is None:
                report.first_seq = seq
                report.first_time = time_text(row["occurred_at"])
                if expected_seq is None:
                    # An export may start mid-chain: its first prev_mac is taken on trust.
                    expected_seq = seq
                    prev_mac = GENESIS_MAC if seq == 1 else row["prev_mac"]
                report.anchored_at_genesis = expected_seq == 1
            failure = self._check_row(row, expected_seq, prev_mac)
            if failure is None:
                for line, entry in vouched.get(seq, ()):
                    if entry["head_mac"] != row["mac"]:
                        failure = Failure(seq, f"MAC {row['mac']} differs from checkpoint line {line}, "
                                               f"which vouches for {entry['head_mac']}")
            if failure is not None:
                return failure
            report.rows += 1
            report.last_seq = seq
            report.last_time = time_text(row["occurred_at"])
            prev_mac = row["mac"]
            expected_seq = seq + 1
            if self.progress and report.rows % self.progress_every == 0:
                self.progress(report.rows)
        return None

    def _check_row(self, row: dict, expected_seq: int, prev_mac: str) -> Failure | None:
        seq = row["seq"]
        if seq != expected_seq:
            what = "missing" if seq > expected_seq else "out of order or duplicated"
            return Failure(expected_seq, f"expected row {expected_seq}, found row {seq} (row {what})")
        if row["prev_mac"] != prev_mac:
            return Failure(seq, f"prev_mac expected {prev_mac}, found {row['prev_mac']}")
        key = self.chain_keys.get(row["mac_key_id"])
        if key is None:
            return Failure(seq, f"unknown MAC key id {row['mac_key_id']}")
        expected = key.mac(seq, prev_mac, row["witness_key_id"], row["signature"], row["event_json"])
        if expected != row["mac"]:
            return Failure(seq, f"MAC expected {expected}, found {row['mac']}")
        witness = self.witnesses.get(row["witness_key_id"])
        if witness is None:
            return Failure(seq, f"unknown witness key id {row['witness_key_id']}")
        if not witness.verify_event(row["signature"], row["event_json"]):
            return Failure(seq, "witness signature does not verify")
        event = json.loads(row["event_json"])
        for column in _INDEXED:
            if row[column] != event[column]:
                return Failure(seq, f"{column} expected {event[column]!r} (signed), found {row[column]!r}")
        if time_text(row["occurred_at"]) != event["time"] or row["event_id"] != event["id"]:
            return Failure(seq, f"occurred_at/event_id expected {event['time']}/{event['id']} (signed), "
                                f"found {time_text(row['occurred_at'])}/{row['event_id']}")
        return None


_TEXT_FIELDS = ("event_id", "actor", "action", "target", "event_json", "witness_key_id",
                "signature", "mac_key_id", "prev_mac", "mac")


def _malformed(row: object) -> str | None:
    if not isinstance(row, dict):
        return "not an object"
    if not isinstance(row.get("seq"), int) or isinstance(row.get("seq"), bool):
        return "seq is not an integer"
    for field in _TEXT_FIELDS:
        if not isinstance(row.get(field), str):
            return f"{field} is missing or not text"
    if not isinstance(row.get("occurred_at"), str | dt.datetime):
        return "occurred_at is missing"
    try:
        event = json.loads(row["event_json"])
    except ValueError:
        return "event_json is not JSON"
    if not isinstance(event, dict) or not all(isinstance(event.get(k), str)
                                              for k in ("id", "time", "actor", "action", "target")):
        return "event_json lacks id, time, actor, action or target"
    return None
