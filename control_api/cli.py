"""The `weco` command: settings, store, users, tokens, the audit log and serving."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import os
import sys
from pathlib import Path

from control_api import migrations
from control_api.app import Deps, build_audit_log, build_credentials, build_deps, build_users
from control_api.audit import keys
from control_api.audit.chain import AuditCryptoError, ChainKey, WitnessPublic
from control_api.audit.checkpoints import read_checkpoints
from control_api.audit.export import ExportError, export, parse_since, read_export
from control_api.audit.keys import AuditKeyError
from control_api.audit.log import Actor, AuditUnavailable
from control_api.audit.verify import Report, Verifier, rows_from_store
from control_api.auth.passwords import PasswordPolicyError, generate_password
from control_api.auth.totp import TotpService
from control_api.auth.users import UserError, find_by_email
from control_api.checks import check_tree
from control_api.clock import SystemClock
from control_api.crypto import master_key_id
from control_api.db import open_database
from control_api.logs import configure_logging
from control_api.masterkey import MasterKeyError, new_secret, provider_context
from control_api.models import ROLES, ApiToken, AuditQueue, MasterKey
from control_api.rotation import rotate
from control_api.settings import Settings, SettingsError, effective_items, load_settings, markdown_table
from keyproviders import KeyProviderError, resolve


class CommandError(Exception):
    """A command cannot do what was asked; str() is the message for the operator."""


def cli_actor() -> Actor:
    return Actor(f"cli:{getpass.getuser()}", "local", "weco-cli")


def _deps(settings: Settings) -> Deps:
    db = open_database(settings.effective_database_url)
    db.connect(reuse_if_open=True)
    behind = migrations.pending(db)
    if behind:
        raise CommandError(f"the store has {len(behind)} pending migration(s): run `weco db upgrade`")
    return build_deps(settings, db)


def cmd_config_show(settings: Settings, args) -> None:
    width = max(len(name) for name, _ in effective_items(settings))
    for name, shown in effective_items(settings):
        print(f"{name.ljust(width)}  {shown}")


def cmd_config_table(settings: Settings, args) -> None:
    sys.stdout.write(markdown_table())


def cmd_db_upgrade(settings: Settings, args) -> None:
    db = open_database(settings.effective_database_url)
    clock = SystemClock()
    # Keys first: an upgrade that could not be audited must not start.
    audit = build_audit_log(settings, db, clock)
    applied = migrations.upgrade(db, clock.now())
    for state in applied:
        print(f"applied {state.version:04d} {state.name}")
    if applied:
        audit.record_alone(cli_actor(), "db.upgrade", "store",
                           {"versions": [state.version for state in applied]})
    print("store is up to date" if not applied else f"{len(applied)} migration(s) applied")


def cmd_db_status(settings: Settings, args) -> None:
    db = open_database(settings.effective_database_url)
    for state in migrations.status(db):
        print(f"{state.version:04d} {state.name}  {state.applied_at or 'pending'}")
    if migrations.pending(db):
        raise SystemExit(1)


def _read_password_stdin() -> str:
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line


def cmd_user_create(settings: Settings, args) -> None:
    deps = _deps(settings)
    generated = not args.password_stdin
    password = generate_password() if generated else _read_password_stdin()
    try:
        user = build_users(deps).create(args.email, args.role, password, cli_actor())
    except (UserError, PasswordPolicyError) as exc:
        raise CommandError(str(exc)) from None
    print(f"created {user.role} {user.email} (id {user.id})")
    if generated:
        print(f"password (shown once, store it now): {password}")


def cmd_token_create(settings: Settings, args) -> None:
    deps = _deps(settings)
    user = find_by_email(args.email)
    if user is None:
        raise CommandError(f"no user with email {args.email}")
    expires = None
    if args.expires_days is not None:
        if not 1 <= args.expires_days <= 3650:
            raise CommandError("--expires-days must be between 1 and 3650")
        expires = deps.clock.now() + dt.timedelta(days=args.expires_days)
    try:
        value, token = build_credentials(deps).create_token(user, args.name, expires, cli_actor())
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    print(f"created token {token.id} {token.name!r} for {user.email}"
          + (f", expires {expires.isoformat()}Z" if expires else ""))
    print(f"token (shown once, store it now): {value}")


def cmd_token_revoke(settings: Settings, args) -> None:
    deps = _deps(settings)
    if not build_credentials(deps).revoke_token(args.id, cli_actor()):
        raise CommandError(f"no active token with id {args.id}")
    print(f"revoked token {args.id}")


def cmd_token_list(settings: Settings, args) -> None:
    _deps(settings)
    for token in ApiToken.select().order_by(ApiToken.id):
        state = "revoked" if token.revoked_at else "active"
        print(f"{token.id}\t{token.user.email}\t{token.name}\t{state}\t"
              f"expires={token.expires_at or 'never'}\tlast_used={token.last_used_at or 'never'}")


def cmd_audit_keygen(settings: Settings, args) -> None:
    private, public = keys.write_witness_pair(Path(args.out))
    print(f"witness private key: {private} (0600; set FF_AUDIT_WITNESS_KEY to it)")
    print(f"witness public key:  {public} (give it to verifiers: --witness-pub)")


def cmd_audit_seal(settings: Settings, args) -> None:
    result = _deps(settings).audit.seal()
    print(f"sealed {result.sealed} event(s); the log has {result.head_seq} rows")


def cmd_audit_checkpoint(settings: Settings, args) -> None:
    deps = _deps(settings)
    entry = deps.audit.checkpoint()
    if entry is None:
        raise CommandError("the audit log is empty: nothing to checkpoint")
    print(f"checkpoint: {entry['count']} rows, head {entry['head_mac']}, "
          f"appended to {deps.audit.checkpoints.path}")


def cmd_audit_export(settings: Settings, args) -> None:
    deps = _deps(settings)
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
        _deps(settings)
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


def cmd_master_init(settings: Settings, args) -> None:
    deps = _deps(settings)
    if MasterKey.select().exists():
        raise CommandError("the store already has a master secret: use `weco master-secret rotate --to URI`")
    provider = resolve(args.provider, provider_context(settings))
    secret = new_secret()
    provider.store(secret)
    key_id = master_key_id(secret)
    with deps.audit.mutation():
        MasterKey.create(key_id=key_id, provider_uri=provider.uri, state="active",
                         created_at=deps.clock.now())
        deps.audit.record(cli_actor(), "master_secret.init", f"master_key:{key_id}",
                          {"provider": provider.uri.split(":", 1)[0]})
    print(f"created master key {key_id}, stored by {args.provider}")
    print(f"now set FF_MASTER_SECRET_PROVIDER={args.provider}")


def cmd_master_rotate(settings: Settings, args) -> None:
    deps = _deps(settings)
    if args.batch_size < 1 or args.pause < 0:
        raise CommandError("--batch-size must be at least 1 and --pause at least 0")
    result = rotate(deps.keys, args.to, cli_actor(), args.batch_size, args.pause,
                    progress=lambda line: print(line, flush=True))
    print(f"{'resumed and finished' if result.resumed else 'finished'}: {result.rows} value(s) "
          f"re-encrypted under master key {result.target_key_id}")
    print(f"now set FF_MASTER_SECRET_PROVIDER={args.to} and restart every service")


def cmd_master_status(settings: Settings, args) -> None:
    _deps(settings)
    for row in MasterKey.select().order_by(MasterKey.created_at):
        print(f"{row.key_id}  {row.state:8}  {row.provider_uri}")


def cmd_check_security(settings: Settings, args) -> None:
    problems = check_tree(Path(__file__).resolve().parent.parent)
    for problem in problems:
        print(problem)
    if problems:
        raise SystemExit(1)
    print("AAD lint: every encrypt/decrypt call binds associated data")


def cmd_break_glass_create(settings: Settings, args) -> None:
    deps = _deps(settings)
    password = generate_password()
    totp = TotpService(deps.keys)
    try:
        with deps.audit.mutation():
            user = build_users(deps).create(args.email, "superadmin", password, cli_actor(), break_glass=True)
            seed, uri = totp.begin(user, deps.clock.now())
            codes = totp.confirm(user, deps.clock.now())
            deps.audit.record(cli_actor(), "user.break_glass_created", f"user:{user.id}",
                              {"severity": "critical", "email": user.email})
    except (UserError, PasswordPolicyError) as exc:
        raise CommandError(str(exc)) from None
    print("BREAK-GLASS ACCOUNT: print this once, seal it in an envelope, store it offline.")
    print(f"  email:          {user.email}")
    print(f"  password:       {password}")
    print(f"  TOTP secret:    {seed}")
    print(f"  TOTP URI:       {uri}")
    print("  recovery codes: " + "  ".join(codes))
    print("Every login with this account is audited as auth.break_glass_login (critical).")


def cmd_serve(settings: Settings, args) -> None:
    from control_api.serve import serve

    deps = _deps(settings)
    deps.keys.keyring()  # fails here, before forking, on a bad store, key or provider
    deps.db.close()
    serve(settings, bind=args.bind or settings.bind, workers=args.workers or settings.workers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="weco", description=__doc__)
    groups = parser.add_subparsers(dest="group", required=True)

    config = groups.add_parser("config", help="effective settings").add_subparsers(required=True)
    config.add_parser("show", help="print settings, secrets redacted").set_defaults(fn=cmd_config_show)
    config.add_parser("table", help="print the settings reference as Markdown").set_defaults(
        fn=cmd_config_table
    )

    db = groups.add_parser("db", help="the store's schema").add_subparsers(required=True)
    db.add_parser("upgrade", help="apply pending migrations").set_defaults(fn=cmd_db_upgrade)
    db.add_parser("status", help="list migrations; exit 1 if any pending").set_defaults(fn=cmd_db_status)

    user = groups.add_parser("user", help="admin accounts").add_subparsers(required=True)
    create = user.add_parser("create", help="create an admin account")
    create.add_argument("--email", required=True)
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--password-stdin", action="store_true",
                        help="read the password from the first line of stdin instead of generating one")
    create.set_defaults(fn=cmd_user_create)

    token = groups.add_parser("token", help="API tokens for scripts").add_subparsers(required=True)
    tcreate = token.add_parser("create", help="create a token; printed once")
    tcreate.add_argument("--email", required=True)
    tcreate.add_argument("--name", required=True)
    tcreate.add_argument("--expires-days", type=int)
    tcreate.set_defaults(fn=cmd_token_create)
    trevoke = token.add_parser("revoke", help="revoke a token by id")
    trevoke.add_argument("--id", type=int, required=True)
    trevoke.set_defaults(fn=cmd_token_revoke)
    token.add_parser("list", help="list tokens (never their values)").set_defaults(fn=cmd_token_list)

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

    master = groups.add_parser("master-secret", help="the MASTER_SECRET").add_subparsers(required=True)
    init = master.add_parser("init", help="create a master secret and store it with a provider")
    init.add_argument("--provider", required=True, help="file:PATH, vault:KEY, aws-kms:KEY or gcp-kms:KEY")
    init.set_defaults(fn=cmd_master_init)
    rot = master.add_parser("rotate", help="re-encrypt every encrypted column under a new secret")
    rot.add_argument("--to", required=True, help="provider URI that will hold the new secret")
    rot.add_argument("--batch-size", type=int, default=500)
    rot.add_argument("--pause", type=float, default=0.0, help="seconds between batches, to spare the store")
    rot.set_defaults(fn=cmd_master_rotate)
    master.add_parser("status", help="master keys the store knows").set_defaults(fn=cmd_master_status)

    glass = groups.add_parser("break-glass", help="the emergency superadmin").add_subparsers(required=True)
    bg = glass.add_parser("create", help="create it; its secrets are printed once")
    bg.add_argument("--email", default="break-glass@weco.invalid")
    bg.set_defaults(fn=cmd_break_glass_create)

    check = groups.add_parser("check", help="source checks").add_subparsers(required=True)
    check.add_parser("security", help="the AAD lint").set_defaults(fn=cmd_check_security)

    serve = groups.add_parser("serve", help="serve the API with gunicorn")
    serve.add_argument("--bind", help="HOST:PORT (default FF_BIND)")
    serve.add_argument("--workers", type=int, help="worker processes (default FF_WORKERS)")
    serve.set_defaults(fn=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"weco: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    try:
        args.fn(settings, args)
    except (CommandError, AuditKeyError, MasterKeyError, KeyProviderError) as exc:
        print(f"weco: {exc}", file=sys.stderr)
        return 1
    except AuditUnavailable as exc:
        print(f"weco: {exc}; nothing was changed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
