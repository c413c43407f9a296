"""`weco master-secret` and `weco check security`."""

from __future__ import annotations

from pathlib import Path

from control_api.checks import check_store_role, check_tree
from control_api.cli.args import bounded_int, seconds
from control_api.cli.common import CommandError, cli_actor, open_deps
from control_api.crypto import master_key_id
from control_api.masterkey import new_secret, provider_context
from control_api.models import MasterKey
from control_api.rotation import rotate
from control_api.settings import Settings
from keyproviders import resolve


def cmd_master_init(settings: Settings, args) -> None:
    deps = open_deps(settings)
    if MasterKey.select().exists():
        raise CommandError("the store already has a master secret: use `weco master-secret rotate --to URI`")
    provider = resolve(args.provider, provider_context(settings))
    if provider.local and settings.key_local_forbid:
        raise CommandError(f"FF_KEY_LOCAL_FORBID=1 refuses {args.provider.split(':', 1)[0]}: providers")
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
    deps = open_deps(settings)
    result = rotate(deps.keys, args.to, cli_actor(), args.batch_size, args.pause,
                    progress=lambda line: print(line, flush=True))
    print(f"{'resumed and finished' if result.resumed else 'finished'}: {result.rows} value(s) "
          f"re-encrypted under master key {result.target_key_id}")
    print(f"now set FF_MASTER_SECRET_PROVIDER={args.to} and restart every service")


def cmd_master_status(settings: Settings, args) -> None:
    open_deps(settings)
    for row in MasterKey.select().order_by(MasterKey.created_at):
        print(f"{row.key_id}  {row.state:8}  {row.provider_uri}")


def cmd_check_security(settings: Settings, args) -> None:
    problems = check_tree(Path(__file__).resolve().parents[2])
    for problem in problems:
        print(problem)
    if not problems:
        print("AAD lint: every encrypt/decrypt call binds associated data")
    role, role_problems = check_store_role(settings)
    for problem in role_problems:
        print(f"store role: {problem}")
    if role and not role_problems:
        print(f"store role: {role} cannot disable or bypass the audit triggers")
    elif not role and not role_problems:
        print("store role: not checked (SQLite has no roles)")
    if problems or role_problems:
        raise SystemExit(1)


def register(groups) -> None:
    master = groups.add_parser("master-secret", help="the MASTER_SECRET").add_subparsers(required=True)
    init = master.add_parser("init", help="create a master secret and store it with a provider")
    init.add_argument("--provider", required=True, help="file:PATH, vault:KEY, aws-kms:KEY or gcp-kms:KEY")
    init.set_defaults(fn=cmd_master_init)
    rot = master.add_parser("rotate", help="re-encrypt every encrypted column under a new secret")
    rot.add_argument("--to", required=True, help="provider URI that will hold the new secret")
    rot.add_argument("--batch-size", type=bounded_int(1, 100_000), default=500)
    rot.add_argument("--pause", type=seconds(0, 3600), default=0.0,
                     help="seconds between batches, to spare the store")
    rot.set_defaults(fn=cmd_master_rotate)
    master.add_parser("status", help="master keys the store knows").set_defaults(fn=cmd_master_status)
    check = groups.add_parser("check", help="source checks").add_subparsers(required=True)
    check.add_parser("security", help="the AAD lint and the store role").set_defaults(fn=cmd_check_security)
