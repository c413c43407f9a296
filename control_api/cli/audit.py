"""`weco audit`: witness keys, sealing, checkpoints, export and the verifier."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

from control_api.audit import keys
from control_api.audit.chain import AuditCryptoError, ChainKey, WitnessPublic
from control_api.audit.checkpoints import read_checkpoints
from control_api.audit.export import ExportError, export, parse_since, read_export
from control_api.audit.keys import AuditKeyError
from control_api.audit.quarantine import QueueState, queue_state
from control_api.audit.verify import Report, Verifier, rows_from_store
from control_api.cli.args import STORE_ID_MAX, bounded_int
from control_api.cli.common import CommandError, open_deps, open_store, reason
from control_api.clock import SystemClock
from control_api.settings import Settings

MAX_QUEUED_AGE = 10 * 365 * 86400  # a bound a timedelta and the store's clock can hold


def cmd_audit_keygen(settings: Settings, args) -> None:
    private, public = keys.write_witness_pair(Path(args.out))
    print(f"witness private key: {private} (0600; set FF_AUDIT_WITNESS_KEY to it)")
    print(f"witness public key:  {public} (give it to verifiers: --witness-pub)")


def cmd_audit_seal(settings: Settings, args) -> None:
    result = open_deps(settings).audit.seal()
    print(f"sealed {result.sealed} event(s); the log has {result.head_seq} rows")
    if result.quarantined:
        print(f"quarantined {result.quarantined} queued row(s) that could not be sealed "
              "(`weco audit verify` lists them)")


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
        try:
            fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise _file_error("--out", args.out, exc) from None
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            count = export(out, since, now)
        print(f"exported {count} rows to {args.out}", file=sys.stderr)
    else:
        export(sys.stdout, since, now)


def _progress(rows: int) -> None:
    print(f"verified {rows} rows...", file=sys.stderr, flush=True)


def _file_error(flag: str, path: str, exc: Exception) -> CommandError:
    return CommandError(f"{flag} {path}: {reason(exc)}")


def _witnesses(paths: list[str]) -> list[WitnessPublic]:
    witnesses = []
    for path in paths:
        try:
            witnesses.append(WitnessPublic.from_pem(Path(path).read_bytes()))
        except (OSError, AuditCryptoError) as exc:
            raise _file_error("--witness-pub", path, exc) from None
    return witnesses


def _checkpoints(settings: Settings, args) -> tuple[Path | None, list, bool]:
    """(file, its entries, whether the configured file is missing). Without --checkpoint
    the store is checked against FF_AUDIT_CHECKPOINT_FILE; an export against nothing."""
    if args.checkpoint is None and args.export:
        return None, [], False
    path = Path(args.checkpoint) if args.checkpoint else keys.checkpoint_file(settings).path
    try:
        return path, list(read_checkpoints(path)), False
    except FileNotFoundError as exc:
        if args.checkpoint:
            raise _file_error("--checkpoint", args.checkpoint, exc) from None
        return path, [], True
    except OSError as exc:
        raise _file_error("--checkpoint", str(path), exc) from None


def cmd_audit_verify(settings: Settings, args) -> None:
    witnesses = _witnesses(args.witness_pub)
    chain_keys = [keys.load_chain_key(settings)]
    for path in args.previous_secret_file or ():
        # Rows sealed before FF_AUDIT_SECRET was rotated name the old key's id.
        try:
            keys.check_private_file(Path(path))
            chain_keys.append(ChainKey(Path(path).read_bytes().strip()))
        except (OSError, AuditCryptoError, AuditKeyError) as exc:
            raise _file_error("--previous-secret-file", path, exc) from None
    verifier = Verifier(witnesses, chain_keys, progress=_progress)
    checkpoint_path, checkpoints, no_checkpoint_file = _checkpoints(settings, args)
    state = None
    if args.export:
        try:
            _, rows = read_export(Path(args.export))
            report = verifier.verify(rows, checkpoints, from_genesis=False)
        except OSError as exc:
            raise _file_error("--export", args.export, exc) from None
        except ExportError as exc:
            raise CommandError(str(exc)) from None
    else:
        # Only the chain's secret and the witness's public keys: a verifier never needs
        # the witness's private key.
        db = open_store(settings)
        report = verifier.verify(rows_from_store(), checkpoints)
        state = queue_state(db, SystemClock().now(), dt.timedelta(seconds=args.max_queued_age),
                            args.reviewed_quarantine)
    problems = []
    if state and state.unreviewed:
        problems.append(f"{state.unreviewed} queued row(s) quarantined (not reviewed)")
    if state and state.overdue:
        problems.append(f"{state.overdue} event(s) queued for longer than {args.max_queued_age} s")
    every = settings.audit_checkpoint_every
    if no_checkpoint_file and every and (report.last_seq or 0) >= every:
        problems.append(f"no checkpoint file at {checkpoint_path}, though the log has passed "
                        f"FF_AUDIT_CHECKPOINT_EVERY ({every}) rows")
    if checkpoint_path is None:
        checked = "none given (--checkpoint FILE)"
    elif no_checkpoint_file:
        checked = f"none yet (no file at {checkpoint_path})"
    else:
        checked = f"{report.checkpoints} checked ({checkpoint_path})"
    _print_report(report, checked, state, problems, args)
    if not report.ok or problems:
        raise SystemExit(1)


def _print_report(report: Report, checked: str, state: QueueState | None, problems: list[str],
                  args) -> None:
    if not report.ok:
        print(f"audit log: BROKEN: {report.failure}")
    elif problems:
        print(f"audit log: NOT OK: {problems[0]}")
    else:
        print("audit log: OK")
    if report.rows:
        print(f"rows verified: {report.rows} (row {report.first_seq} at {report.first_time} "
              f"to row {report.last_seq} at {report.last_time})")
    else:
        print("rows verified: 0")
    if not report.anchored_at_genesis:
        print(f"note: starts at row {report.first_seq}; its prev_mac is taken on trust")
    print(f"checkpoints: {checked}")
    for problem in problems[1:]:
        print(f"also: {problem}")
    if state is not None:
        _print_queue(state, args)
    rate = report.rows / report.seconds if report.seconds else 0
    spread = f"; signatures checked by {report.workers} processes" if report.workers else ""
    print(f"time: {report.seconds:.2f} s ({rate:,.0f} rows/s{spread})")


def _print_queue(state: QueueState, args) -> None:
    if not state.quarantined:
        print("quarantine: empty")
    elif not state.unreviewed:
        print(f"quarantine: {state.quarantined} row(s), all reviewed "
              f"(--reviewed-quarantine {args.reviewed_quarantine})")
    else:
        print(f"quarantine: {state.quarantined} row(s), {state.unreviewed} not reviewed:")
        for row in state.listed:
            print(f"quarantined {row.id} at {row.quarantined_at}: queue row {row.queue_id}: {row.reason}")
        if state.unreviewed > len(state.listed):
            print(f"... and {state.unreviewed - len(state.listed)} more")
    if not state.queued:
        print("queue: empty")
    elif state.oldest_seconds is None:
        print(f"queue: {state.queued} event(s) waiting, queued at unreadable times")
    else:
        print(f"queue: {state.queued} event(s) waiting, the oldest queued {state.oldest_seconds:.0f} s "
              f"ago (bound: --max-queued-age {args.max_queued_age})")


def register(groups) -> None:
    audit = groups.add_parser("audit", help="the audit log").add_subparsers(required=True)
    keygen = audit.add_parser("witness-keygen", help="write a witness key pair (private half 0600)")
    keygen.add_argument("--out", required=True, help="directory for witness.key and witness.pub")
    keygen.set_defaults(fn=cmd_audit_keygen)
    verify = audit.add_parser("verify", help="check every MAC, signature and checkpoint")
    verify.add_argument("--witness-pub", required=True, action="append",
                        help="witness public key (PEM); repeat for rotated keys")
    verify.add_argument("--checkpoint", help="checkpoint file to check the log against "
                        "(default: FF_AUDIT_CHECKPOINT_FILE's, except with --export)")
    verify.add_argument("--export", help="verify this export file instead of the store")
    verify.add_argument("--max-queued-age", type=bounded_int(1, MAX_QUEUED_AGE), default=300,
                        metavar="SECONDS",
                        help="fail when an event has waited longer in the queue (default 300)")
    verify.add_argument("--reviewed-quarantine", type=bounded_int(0, STORE_ID_MAX), default=0, metavar="ID",
                        help="quarantined rows up to this id were reviewed: do not fail on them")
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
