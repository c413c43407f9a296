"""Verifying the audit log, from the store or from an export, against checkpoints.

Streams rows in sequence order with constant memory and stops at the first row that
does not hold, saying what was expected and what was found. Checks, per row: the
sequence has no gap, prev_mac is the previous row's MAC, the MAC recomputes under
FF_AUDIT_SECRET, the witness signature verifies, and the indexed columns say what
the signed event says. Then each checkpoint: its signature, and that the log holds
the row it vouches for with the same MAC (a shorter log was truncated).

Signatures are checked in chunks on every core (signatures.py) while this process
walks the chain; a row counts as verified only once its chunk's signatures held, and
a bad signature is reported before any later failure, so the first bad row named is
the same as in a one-process walk.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator

from control_api.audit.chain import GENESIS_MAC, ChainKey, WitnessPublic
from control_api.audit.signatures import Answer, SignatureChecks, available_cores
from control_api.models import AuditEvent

_INDEXED = ("actor", "action", "target")
_EVENT_FIELDS = ("id", "time", "actor", "action", "target")
BAD_SIGNATURE = "witness signature does not verify"
_BACKLOG = 64  # chunks walked past at most while an earlier one is being checked


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
    workers: int = 0  # processes that checked signatures, when more than this one

    @property
    def ok(self) -> bool:
        return self.failure is None


def time_text(value: dt.datetime | str) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="microseconds") + "Z"
    return value


def parse_event(event_json: str) -> dict:
    """The signed event, or ValueError saying what it lacks."""
    try:
        event = json.loads(event_json)
    except ValueError:
        raise ValueError("event_json is not JSON") from None
    if not isinstance(event, dict) or not all(isinstance(event.get(k), str) for k in _EVENT_FIELDS):
        raise ValueError("event_json lacks id, time, actor, action or target")
    return event


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


class _Chunk:
    """Rows whose chain checks held, waiting for their signatures' verdict."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, str]] = []
        self.rows: list[tuple[int, dt.datetime | str]] = []  # (seq, occurred_at)
        self.handle: Answer | None = None


class Verifier:
    def __init__(
        self,
        witnesses: Iterable[WitnessPublic],
        chain_keys: Iterable[ChainKey],
        progress: Callable[[int], None] | None = None,
        progress_every: int = 50000,
        workers: int | None = None,
        chunk_rows: int = 100,
    ) -> None:
        """workers: processes checking signatures, this one included (default: one per
        available core; 1: this one alone)."""
        self.witnesses = {w.key_id: w for w in witnesses}
        self.chain_keys = {k.key_id: k for k in chain_keys}
        self.progress = progress
        self.progress_every = progress_every
        self.workers = available_cores() if workers is None else workers
        self.chunk_rows = chunk_rows

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
            checks = SignatureChecks(self.witnesses, self.workers)
            try:
                report.failure = self._walk(rows, vouched, report, from_genesis, checks)
            finally:
                checks.close()
            report.workers = checks.processes if checks.processes > 1 else 0
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

    def _walk(self, rows: Iterable[dict], vouched: dict, report: Report, from_genesis: bool,
              checks: SignatureChecks) -> Failure | None:
        prev_mac = GENESIS_MAC if from_genesis else None
        expected_seq = 1 if from_genesis else None
        pending: deque[_Chunk] = deque()
        chunk = _Chunk()
        failure = None
        for row in rows:
            try:
                event = _read(row)
            except ValueError as exc:
                failure = Failure(expected_seq, f"malformed row: {exc}")
                break
            seq = row["seq"]
            if report.first_seq is None:
                report.first_seq = seq
                report.first_time = time_text(row["occurred_at"])
                if expected_seq is None:
                    # An export may start mid-chain: its first prev_mac is taken on trust.
                    expected_seq = seq
                    prev_mac = GENESIS_MAC if seq == 1 else row["prev_mac"]
                report.anchored_at_genesis = expected_seq == 1
            failure = self._chain_checks(row, expected_seq, prev_mac)
            if failure is None:
                failure = self._content_checks(row, event, vouched)
                if failure is not None and not self._signature_holds(row):
                    failure = Failure(seq, BAD_SIGNATURE)  # within a row, the signature comes first
            if failure is not None:
                break
            chunk.items.append((row["witness_key_id"], row["signature"], row["event_json"]))
            chunk.rows.append((seq, row["occurred_at"]))
            prev_mac, expected_seq = row["mac"], seq + 1
            if len(chunk.items) == self.chunk_rows:
                chunk.handle = checks.check(chunk.items, full=True)
                pending.append(chunk)
                chunk = _Chunk()
                # Settle what is answered, in order; wait only to bound memory.
                while pending and (pending[0].handle.ready() or len(pending) > _BACKLOG):
                    bad = self._settle(pending.popleft(), report)
                    if bad is not None:
                        return bad
        if chunk.items:
            chunk.handle = checks.check(chunk.items, full=False)
            pending.append(chunk)
        # Every row before the failing one (if any) is in these chunks: a bad signature
        # there is the first failure.
        for waiting in pending:
            bad = self._settle(waiting, report)
            if bad is not None:
                return bad
        return failure

    def _settle(self, chunk: _Chunk, report: Report) -> Failure | None:
        bad = chunk.handle.result()
        good = chunk.rows if bad is None else chunk.rows[:bad]
        if good:
            before = report.rows
            report.rows += len(good)
            report.last_seq, last_time = good[-1]
            report.last_time = time_text(last_time)
            if self.progress:
                first_mark = (before // self.progress_every + 1) * self.progress_every
                for mark in range(first_mark, report.rows + 1, self.progress_every):
                    self.progress(mark)
        return None if bad is None else Failure(chunk.rows[bad][0], BAD_SIGNATURE)

    def _chain_checks(self, row: dict, expected_seq: int, prev_mac: str) -> Failure | None:
        """What comes before the signature: sequence, link, MAC, known witness."""
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
        if row["witness_key_id"] not in self.witnesses:
            return Failure(seq, f"unknown witness key id {row['witness_key_id']}")
        return None

    def _signature_holds(self, row: dict) -> bool:
        return self.witnesses[row["witness_key_id"]].verify_event(row["signature"], row["event_json"])

    @staticmethod
    def _content_checks(row: dict, event: dict, vouched: dict) -> Failure | None:
        """What comes after the signature: the columns against the event, checkpoints."""
        seq = row["seq"]
        for column in _INDEXED:
            if row[column] != event[column]:
                return Failure(seq, f"{column} expected {event[column]!r} (signed), found {row[column]!r}")
        if time_text(row["occurred_at"]) != event["time"] or row["event_id"] != event["id"]:
            return Failure(seq, f"occurred_at/event_id expected {event['time']}/{event['id']} (signed), "
                                f"found {time_text(row['occurred_at'])}/{row['event_id']}")
        for line, entry in vouched.get(seq, ()):
            if entry["head_mac"] != row["mac"]:
                return Failure(seq, f"MAC {row['mac']} differs from checkpoint line {line}, "
                                    f"which vouches for {entry['head_mac']}")
        return None


_TEXT_FIELDS = ("event_id", "actor", "action", "target", "event_json", "witness_key_id",
                "signature", "mac_key_id", "prev_mac", "mac")


def _read(row: object) -> dict:
    """The row's signed event, or ValueError saying why the row is malformed."""
    if not isinstance(row, dict):
        raise ValueError("not an object")
    if not isinstance(row.get("seq"), int) or isinstance(row.get("seq"), bool):
        raise ValueError("seq is not an integer")
    if set(map(type, map(row.get, _TEXT_FIELDS))) != {str}:  # one C-level pass for the usual row
        for field in _TEXT_FIELDS:
            if not isinstance(row.get(field), str):
                raise ValueError(f"{field} is missing or not text")
    if not isinstance(row.get("occurred_at"), str | dt.datetime):
        raise ValueError("occurred_at is missing")
    return parse_event(row["event_json"])
