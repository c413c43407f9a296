"""`weco siem check FILE`: is a stream the SIEM received (as the receiver wrote it, one
message a line: RFC 5424 syslog lines or HTTP Event Collector JSON objects) the audit
chain, whole and in order? From the file and the chain key alone.

Each line's MAC is recomputed (RFC 2104 HMAC-SHA256, control_api/audit/chain.py), which
authenticates its sequence number, previous MAC, signature and event JSON; its
structured-data fields must say what the signed event says. A line at or below the
highest row seen is a duplicate (at-least-once delivery re-sends a batch whose
acknowledgement was lost): allowed and counted, since its MAC proves it is that row.
A new row must be the next one and link to its predecessor's MAC: anything else is a
gap or a reordering, reported at its line. Witness signatures (RFC 8032) are checked
too when the witness public keys are given.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from control_api.audit.chain import GENESIS_MAC, ChainKey, WitnessPublic
from control_api.siem.message import (
    MessageError,
    SealedRow,
    canonical,
    event_params_agree,
    from_hec,
    from_syslog,
)


@dataclasses.dataclass
class StreamReport:
    lines: int = 0
    rows: int = 0  # distinct rows
    duplicates: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    failure: str | None = None  # "line N: ..."

    @property
    def ok(self) -> bool:
        return self.failure is None


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text), split on LF only: U+2028 and friends are data inside an event."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            raw = raw.rstrip(b"\n")
            if not raw.strip():
                continue
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError:
                yield number, ""  # parse() reports it


def parse(text: str) -> tuple[SealedRow, dict]:
    if text.startswith("<"):
        return from_syslog(text)
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError:
            raise MessageError("not JSON") from None
        return from_hec(obj)
    raise MessageError("neither a syslog message nor a JSON object (or not UTF-8)")


def check_stream(lines: Iterable[tuple[int, str]], chain_keys: Iterable[ChainKey],
                 witnesses: Iterable[WitnessPublic] = (), first_seq: int = 1) -> StreamReport:
    keys = {key.key_id: key for key in chain_keys}
    signers = {w.key_id: w for w in witnesses}
    report = StreamReport()
    last_mac = GENESIS_MAC if first_seq == 1 else None  # None: the first row's link is taken on trust
    for number, text in lines:
        report.lines += 1
        problem = _problem(text, keys, signers, report, last_mac, first_seq)
        if isinstance(problem, str):
            report.failure = f"line {number}: {problem}"
            return report
        if problem is not None:  # a new row
            report.rows += 1
            report.first_seq = report.first_seq or problem.seq
            report.last_seq, last_mac = problem.seq, problem.mac
        else:
            report.duplicates += 1
    return report


def _problem(text: str, keys: dict, signers: dict, report: StreamReport, last_mac: str | None,
             first_seq: int) -> str | SealedRow | None:
    """A string saying what is wrong, the row if it is the next one, None for a duplicate."""
    try:
        row, params = parse(text)
    except MessageError as exc:
        return f"unreadable: {exc}"
    key = keys.get(row.mac_key_id)
    if key is None:
        return f"row {row.seq}: sealed under chain key {row.mac_key_id!r}, which was not given"
    if key.mac(row.seq, row.prev_mac, row.witness_key_id, row.signature, row.event_json) != row.mac:
        return f"row {row.seq}: the MAC does not recompute (the message was altered, or another key)"
    if not canonical(row.event_json):
        return f"row {row.seq}: the event is not the canonical JSON that was signed"
    event = json.loads(row.event_json)
    differs = event_params_agree(params, event) if isinstance(event, dict) else "event"
    if differs:
        return f"row {row.seq}: the structured data's {differs} is not what the signed event says"
    if signers:
        witness = signers.get(row.witness_key_id)
        if witness is None or not witness.verify_event(row.signature, row.event_json):
            return f"row {row.seq}: the witness signature does not verify"
    expected = first_seq if report.last_seq is None else report.last_seq + 1
    if row.seq < expected:
        return None if report.last_seq is not None else f"row {row.seq} before the first row {first_seq}"
    if row.seq > expected:
        return f"gap: row {expected} missing (found row {row.seq})"
    if last_mac is not None and row.prev_mac != last_mac:
        return f"row {row.seq}: does not link to the previous row's MAC"
    return row
