"""Verifier throughput versus raw Ed25519 verification on one core, same run.

Builds a log of N events in SQLite, exports it, then times `Verifier` over the
export (JSON parsing, HMAC, signature, column checks: the whole per-row job) and,
as the baseline, bare Ed25519 verifications of the same N signed messages, both
pinned to one core: the ratio is verifier rows/s over raw verifications/s (goal
>= 0.8). Then the verifier again on every core the process may use (signatures
checked by a helper process per extra core, and by this one): its ratio is against
the same one-core raw rate (goal >= 1.6 on 2 cores).

    .venv/bin/python -m bench.audit_verify [--rows 20000]
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import os
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from control_api import migrations
from control_api.audit.chain import _event_message
from control_api.audit.export import export, read_export
from control_api.audit.log import Actor
from control_api.audit.verify import Verifier
from control_api.db import open_database
from control_api.settings import load_settings
from control_api.wiring import build_audit_log

ACTOR = Actor("user:1", "192.0.2.10", "Mozilla/5.0 (bench)")


class Clock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20000)
    args = parser.parse_args()
    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cores)})  # one core for the raw rate and the first run
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings({"FF_ENV": "dev", "FF_DATA_DIR": tmp, "FF_AUDIT_CHECKPOINT_EVERY": "0"})
        db = open_database(settings.effective_database_url)
        migrations.upgrade(db, Clock().now())
        audit = build_audit_log(settings, db, Clock())
        with audit.mutation():
            for number in range(args.rows):
                audit.record(ACTOR, "site.deploy", f"site:fund-{number % 50}",
                             {"release": number, "files": 120, "sha256": "ab" * 32})
        path = Path(tmp) / "export.jsonl"
        with path.open("w") as out:
            export(out, dt.datetime(2000, 1, 1), Clock().now())

        verify_rate, _ = timed_verify(audit, path, args.rows)

        _, rows = read_export(path)
        key_id = audit.witness.key_id
        signed = [(base64.b64decode(row["signature"]), _event_message(key_id, row["event_json"]))
                  for row in rows]
        public = serialization.load_pem_public_key(audit.witness.public.pem())
        started = time.perf_counter()
        for signature, message in signed:
            public.verify(signature, message)
        raw_rate = len(signed) / (time.perf_counter() - started)

        os.sched_setaffinity(0, cores)
        multi_rate, workers = timed_verify(audit, path, args.rows)
    print(f"{args.rows} rows")
    spread = f"{workers} processes" if workers else "this process"
    for label, rate, unit in (("raw Ed25519 verifications, one core", raw_rate, "/s"),
                              ("audit verifier, one core", verify_rate, "rows/s"),
                              (f"audit verifier, {len(cores)} core{'s' * (len(cores) > 1)}", multi_rate,
                               f"rows/s (signatures checked by {spread})")):
        print(f"{label + ':':<37}{rate:8.0f} {unit}")
    print(f"ratio verifier/raw: {verify_rate / raw_rate:.2f} (one core; goal >= 0.8)")
    print(f"ratio multi-core/raw: {multi_rate / raw_rate:.2f} ({len(cores)} cores against one core's "
          "raw rate; goal >= 1.6 on 2 cores)")


def timed_verify(audit, path: Path, rows: int) -> tuple[float, int]:
    """Rows/s of the whole verifier over the export, and its signature processes."""
    _, exported = read_export(path)
    verifier = Verifier([audit.witness.public], [audit.chain_key])
    started = time.perf_counter()
    report = verifier.verify(exported, from_genesis=False)
    rate = report.rows / (time.perf_counter() - started)
    assert report.ok and report.rows == rows, report.failure
    return rate, report.workers


if __name__ == "__main__":
    main()
