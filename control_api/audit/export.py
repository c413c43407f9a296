"""Audit export: JSON lines the verifier accepts offline. A header line, then one line
per sealed row, in sequence order, from the first row at or after the cutoff."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from control_api.audit.verify import rows_from_store, time_text
from control_api.models import AuditEvent

FORMAT = "weco-audit-export/v1"
_AGE = re.compile(r"([1-9][0-9]*)([dh])")


class ExportError(ValueError):
    pass


def parse_since(text: str, now: dt.datetime) -> dt.datetime:
    """'30d', '12h' or an ISO 8601 date/time (UTC)."""
    match = _AGE.fullmatch(text)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return now - (dt.timedelta(days=amount) if unit == "d" else dt.timedelta(hours=amount))
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ExportError(f"--since {text!r}: expected Nd, Nh or an ISO 8601 time") from None
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value


def export(out: IO[str], since: dt.datetime, now: dt.datetime) -> int:
    first = (AuditEvent.select(AuditEvent.seq).where(AuditEvent.occurred_at >= since)
             .order_by(AuditEvent.seq).first())
    header = {"format": FORMAT, "exported_at": time_text(now), "since": time_text(since),
              "first_seq": first.seq if first else None}
    out.write(json.dumps(header, sort_keys=True) + "\n")
    count = 0
    if first is None:
        return 0
    # Sealing order and time order can differ slightly, so the export is the contiguous
    # run of rows from the first one in range: the verifier needs no gaps.
    for row in rows_from_store(start_after=first.seq - 1):
        row["occurred_at"] = time_text(row["occurred_at"])
        out.write(json.dumps(row, sort_keys=True) + "\n")
        count += 1
    return count


def read_export(path: Path) -> tuple[dict, Iterator[dict]]:
    handle = path.open(encoding="utf-8")
    try:
        header = json.loads(handle.readline())
    except ValueError:  # UnicodeDecodeError too
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        handle.close()
        raise ExportError(f"{path} is not a {FORMAT} file")

    def rows() -> Iterator[dict]:
        with handle:
            number = 1
            try:
                for number, line in enumerate(handle, 2):  # noqa: B007 (the handlers read it)
                    row = json.loads(line)
                    yield row
            except UnicodeDecodeError:
                raise ExportError(f"{path} is not UTF-8 after line {number}") from None
            except ValueError:
                raise ExportError(f"{path} line {number} is not JSON") from None

    return header, rows()
