"""Signed checkpoints: (row count, head MAC, time), one JSON line each, appended to a
file the operator can ship elsewhere. A chain cannot show that its newest rows were
cut off; a checkpoint kept outside the database can."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path

from control_api.audit.chain import Witness


class CheckpointFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, witness: Witness, count: int, head_mac: str, now: dt.datetime) -> dict:
        time = now.isoformat(timespec="microseconds") + "Z"
        entry = {
            "count": count,
            "head_mac": head_mac,
            "time": time,
            "witness_key_id": witness.key_id,
            "signature": witness.sign_checkpoint(count, head_mac, time),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(entry, sort_keys=True) + "\n").encode("ascii")
        # O_APPEND keeps lines from several workers whole; fsync makes the line outlive
        # a crash, as the rows it vouches for do.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        return entry


def read_checkpoints(path: Path) -> Iterator[tuple[int, dict | None]]:
    """(line number, entry) per line; entry is None for a line that is not a checkpoint."""
    with path.open(encoding="ascii", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            try:
                entry = json.loads(line)
                valid = (isinstance(entry, dict) and isinstance(entry.get("count"), int)
                         and all(isinstance(entry.get(k), str)
                                 for k in ("head_mac", "time", "witness_key_id", "signature")))
            except ValueError:
                valid = False
            yield number, entry if valid else None
