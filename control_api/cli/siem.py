"""`weco siem`: the watcher (anomaly rules and SIEM forwarding), the forwarding status,
and the check of a stream as the SIEM received it."""

from __future__ import annotations

import logging
import signal
from pathlib import Path

from control_api.audit import keys
from control_api.audit.chain import AuditCryptoError, ChainKey, WitnessPublic
from control_api.audit.keys import AuditKeyError
from control_api.cli.args import STORE_ID_MAX, bounded_int
from control_api.cli.common import CommandError, open_deps, open_store, reason
from control_api.settings import Settings
from control_api.siem import cursor
from control_api.siem.build import build_siem_transport, build_watcher
from control_api.siem.check import check_stream, read_lines
from control_api.siem.forwarder import cursor_name

log = logging.getLogger(__name__)


def cmd_siem_watch(settings: Settings, args) -> None:
    deps = open_deps(settings)
    watcher = build_watcher(settings, deps.audit)

    def stop(signum, frame) -> None:
        watcher.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if settings.metrics_bind:
        from control_api.metrics import serve_metrics

        serve_metrics(settings.metrics_bind, deps.db, args.metrics_dir)
        log.info("metrics served on http://%s/metrics", settings.metrics_bind)
    watcher.run_forever()
    log.info("watcher stopped")


def cmd_siem_status(settings: Settings, args) -> None:
    db = open_store(settings)
    head = cursor.head(db)
    print(f"audit chain: {head.seq} rows")
    anomaly = cursor.read(db, "anomaly")
    print(f"anomaly rules: read to row {anomaly.seq} ({head.seq - anomaly.seq} behind)")
    transport = build_siem_transport(settings)
    if transport is None:
        print("SIEM: none configured (FF_AUDIT_SIEM_URL)")
        return
    acked = cursor.read(db, cursor_name(transport.name))
    print(f"SIEM {transport.name}: acknowledged to row {acked.seq} ({head.seq - acked.seq} behind)")


def _chain_keys(settings: Settings, previous: list[str] | None) -> list[ChainKey]:
    chain_keys = [keys.load_chain_key(settings)]
    for path in previous or ():
        try:
            keys.check_private_file(Path(path))
            chain_keys.append(ChainKey(Path(path).read_bytes().strip()))
        except (OSError, AuditCryptoError, AuditKeyError) as exc:
            raise CommandError(f"--previous-secret-file {path}: {reason(exc)}") from None
    return chain_keys


def cmd_siem_check(settings: Settings, args) -> None:
    witnesses = []
    for path in args.witness_pub or ():
        try:
            witnesses.append(WitnessPublic.from_pem(Path(path).read_bytes()))
        except (OSError, AuditCryptoError) as exc:
            raise CommandError(f"--witness-pub {path}: {reason(exc)}") from None
    chain_keys = _chain_keys(settings, args.previous_secret_file)
    try:
        report = check_stream(read_lines(Path(args.file)), chain_keys, witnesses, args.first)
    except OSError as exc:
        raise CommandError(f"{args.file}: {reason(exc)}") from None
    if report.ok:
        span = f"rows {report.first_seq} to {report.last_seq}" if report.rows else "no rows"
        print(f"siem stream: OK: {span}, in order, no gap ({report.lines} lines, "
              f"{report.duplicates} duplicate(s))")
    else:
        print(f"siem stream: BROKEN: {report.failure}")
        if report.rows:
            print(f"before it: rows {report.first_seq} to {report.last_seq} held "
                  f"({report.duplicates} duplicate(s))")
    if args.expect_last is not None and report.ok and report.last_seq != args.expect_last:
        print(f"siem stream: INCOMPLETE: ends at row {report.last_seq}, expected row {args.expect_last}")
        raise SystemExit(1)
    if not report.ok:
        raise SystemExit(1)


def register(groups) -> None:
    siem = groups.add_parser("siem", help="SIEM forwarding and anomaly rules").add_subparsers(required=True)
    watch = siem.add_parser("watch", help="run the anomaly rules and forward the audit chain to "
                                          "FF_AUDIT_SIEM_URL until stopped (one watcher at a time)")
    watch.add_argument("--metrics-dir", help="gunicorn's multiprocess metrics directory (set by weco serve)")
    watch.set_defaults(fn=cmd_siem_watch)
    status = siem.add_parser("status", help="how far the SIEM and the anomaly rules are behind")
    status.set_defaults(fn=cmd_siem_status)
    check = siem.add_parser("check", help="check a stream the SIEM received for gaps, order and MACs")
    check.add_argument("file", help="the receiver's file: one syslog message or JSON event a line")
    check.add_argument("--witness-pub", action="append", help="also check witness signatures (repeatable)")
    check.add_argument("--previous-secret-file", action="append",
                       help="a former FF_AUDIT_SECRET, for rows sealed before a rotation (repeatable)")
    check.add_argument("--first", type=bounded_int(1, STORE_ID_MAX), default=1,
                       help="the row the stream starts at (default 1: the chain's first)")
    check.add_argument("--expect-last", type=bounded_int(1, STORE_ID_MAX),
                       help="fail unless the stream reaches this row (the chain's head)")
    check.set_defaults(fn=cmd_siem_check)
