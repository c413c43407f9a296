"""`weco audit`: witness keys, sealing, checkpoints, export and the verifier."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from control_api.audit import keys
from control_api.audit.chain import AuditCryptoError, ChainKey, WitnessPublic
from control_api.audit.checkpoints import read_checkpoints
from control_api.audit.export import ExportError, export, parse_since, read_export
from control_api.audit.keys import AuditKeyError
from control_api.audit.verify import Report, Verifier, rows_from_store
from control_api.cli.common import CommandError, open_deps
from control_api.models import AuditQueue
from control_api.settings import Settings


def cmd_audit_keygen(settings: Settings, args) -> None:
    private, public = keys.write_witness_pair(Path(args.out))
    print(f"witness private key: {private} (0600; set FF_AUDIT_WITNESS_KEY to it)")
    print(f"witness public key:  {public} (give it to verifiers: --witness-pub)")


def cmd_audit_seal(settings: Settings, args) -> None:
    result = open_deps(settings).audit.seal()
    print(f"sealed {result.sealed} event(s); the log has {result.head_seq} rows")


def cmd_audit_checkpoint(settings: Settings, args) -> None:
    deps = open_deps(settings)
    entry = deps.audit.checkpoint()
    if entry is None:
        raise CommandError("the audit log is empty: nothing to checkpoint")
    print(f"checkpoint: {entry['count']} rows, head {entry['head_mac']}, "
          f"appended to {deps.audit.checkpoints.path}")


def cmd_audit_export(settings: Settings, args) -> None:
    deps = open_deps(settings)
    deps.audit.seal()
    now = deps.clock.now()
    try:
        since = parse_since(args.since, now)
    except ExportError as exc:
        raise CommandError(str(exc)) from None
    if args.out:
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            count = export(out, since, now)
        print(f"exported {count} rows to {args.out}", file=sys.stderr)
    else:
        export(sys.stdout, since, now)


def _progress(rows: int) -> None:
    print(f"verified {rows} rows...", file=sys.stderr, flush=True)


def cmd_audit_verify(settings: Settings, args) -> None:
    try:
        witnesses = [WitnessPublic.from_pem(Path(p).read_bytes()) for p in args.witness_pub]
    except (OSError, AuditCryptoError) as exc:
        raise CommandError(f"--witness-pub: {exc}") from None
    chain_keys = [keys.load_chain_key(settings)]
    for path in args.previous_secret_file or ():
        # Rows sealed before FF_AUDIT_SECRET was rotated name the old key's id.
        try:
            keys.check_private_file(Path(path))
            chain_keys.append(ChainKey(Path(path).read_bytes().strip()))
        except (OSError, AuditCryptoError, AuditKeyError) as exc:
            raise CommandError(f"--previous-secret-file {path}: {exc}") from None
    verifier = Verifier(witnesses, chain_keys, progress=_progress)
    checkpoints = list(read_checkpoints(Path(args.checkpoint))) if args.checkpoint else []
    queued = 0
    if args.export:
        try:
            _, rows = read_export(Path(args.export))
            report = verifier.verify(rows, checkpoints, from_genesis=False)
        except (OSError, ExportError) as exc:
            raise CommandError(str(exc)) from None
    else:
        open_deps(settings)
        report = verifier.verify(rows_from_store(), checkpoints)
        queued = AuditQueue.select().count()
    _print_report(report, queued)
    if not report.ok:
        raise SystemExit(1)


def _print_report(report: Report, queued: int) -> None:
    rate = report.rows / report.seconds if report.seconds else 0
    if report.ok:
        print("audit log: OK")
    else:
        print(f"audit log: BROKEN: {report.failure}")
    if report.rows:
        print(f"rows verified: {report.rows} (row {report.first_seq} at {report.first_time} "
              f"to row {report.last_seq} at {report.last_time})")
    else:
        print("rows verified: 0")
    if not report.anchored_at_genesis:
        print(f"note: starts at row {report.first_seq}; its prev_mac is taken on trust")
    print(f"checkpoints: {report.checkpoints} checked")
    if queued:
        print(f"note: {queued} event(s) queued, not yet sealed (`weco audit seal`)")
    print(f"time: {report.seconds:.2f} s ({rate:,.0f} rows/s)")


def register(groups) -> None:
    audit = groups.add_parser("audit", help="the audit log").add_subparsers(required=True)
    keygen = audit.add_parser("witness-keygen", help="write a witness key pair (private half 0600)")
    keygen.add_argument("--out", required=True, help="directory for witness.key and witness.pub")
    keygen.set_defaults(fn=cmd_audit_keygen)
    verify = audit.add_parser("verify", help="check every MAC, signature and checkpoint")
    verify.add_argument("--witness-pub", required=True, action="append",
                        help="witness public key (PEM); repeat for rotated keys")
    verify.add_argument("--checkpoint", help="checkpoint file to check the log against")
    verify.add_argument("--export", help="verify this export file instead of the store")
    verify.add_argument("--previous-secret-file", action="append",
                        help="a file (0600) holding an earlier FF_AUDIT_SECRET; repeat for each")
    verify.set_defaults(fn=cmd_audit_verify)
    exp = audit.add_parser("export", help="write sealed rows as JSON lines")
    exp.add_argument("--since", default="30d", help="Nd, Nh or an ISO 8601 time (default 30d)")
    exp.add_argument("--out", help="file to create (0600); default stdout")
    exp.set_defaults(fn=cmd_audit_export)
    audit.add_parser("checkpoint", help="seal, then sign and append a checkpoint").set_defaults(
        fn=cmd_audit_checkpoint)
    audit.add_parser("seal", help="seal queued events into the chain").set_defaults(fn=cmd_audit_seal)
