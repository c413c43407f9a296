"""`weco backup`: create, verify and restore encrypted backups, and the restore drill."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from control_api.audit import keys
from control_api.backup import service
from control_api.backup.drill_checks import keys_fit, restored_store_checker
from control_api.backup.passphrase import PassphraseError, load_passphrase, refuse_shared
from control_api.backup.targets import open_source
from control_api.cli.common import CommandError, cli_actor, open_deps, reason
from control_api.crypto import master_key_id
from control_api.masterkey import configured_uris, provider_context
from control_api.settings import Settings
from keyproviders import load_master_secret, parse_provider_list


def s3_client(settings: Settings):
    def make():
        import boto3  # only for s3:// targets

        return boto3.client("s3", endpoint_url=settings.backup_s3_endpoint or None,
                            region_name=settings.backup_s3_region)

    return make


@contextlib.contextmanager
def _one_line() -> Iterator[None]:
    """Every refusal of the backup code, and the S3 client's, as the command's one line."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (service.BackupError, *service.ERRORS) as exc:
        raise CommandError(str(exc)) from None
    except ClientError as exc:
        raise CommandError(f"S3: {exc.response.get('Error', {}).get('Code', 'error')}: "
                           f"{exc.response.get('Error', {}).get('Message', '')}") from None
    except BotoCoreError as exc:
        raise CommandError(f"S3: {reason(exc)}") from None


def _passphrase(settings: Settings) -> bytes:
    try:
        return load_passphrase(settings.backup_passphrase_file)
    except PassphraseError as exc:
        raise CommandError(str(exc)) from None


def cmd_backup_create(settings: Settings, args) -> None:
    passphrase = _passphrase(settings)
    deps = open_deps(settings)
    with _one_line():
        refuse_shared(passphrase, deps.keys.keyring().key_ids, keys.load_chain_key(settings))
        created = service.create(settings.effective_database_url, args.out, passphrase, deps.clock.now(),
                                 keys.checkpoint_file(settings).path, s3_client(settings),
                                 settings.backup_retention_days)
    rows = sum(created.manifest["counts"].values())
    deps.audit.record_alone(cli_actor(), "backup.create", created.location,
                            {"bytes": created.stored_bytes, "rows": rows,
                             "audit_head": created.manifest["audit_head"]})
    print(f"backup written: {created.location} ({created.stored_bytes} bytes, {rows} rows, "
          f"{created.seconds:.2f} s)")


def cmd_backup_verify(settings: Settings, args) -> None:
    passphrase = _passphrase(settings)
    with _one_line(), open_source(args.backup, s3_client(settings)) as source:
        manifest, sizes = service.verify(source, passphrase)
    head = manifest.get("audit_head") or {}
    print(f"backup OK: {args.backup}: {manifest['backend']} store of {manifest['created_at']}, "
          f"{sum(manifest['counts'].values())} rows, audit log to row {head.get('seq', 0)}, "
          f"{sizes[manifest['store']]} bytes of store")


def _configured_master_ids(settings: Settings) -> set[str]:
    """The key ids of the master secrets this deployment is configured with (the store
    being empty, they cannot come from it)."""
    uris = [configured_uris(settings)]
    if settings.master_secret_rotation_provider:
        uris.append(parse_provider_list(settings.master_secret_rotation_provider))
    context = provider_context(settings)
    return {master_key_id(load_master_secret(u, context, settings.key_local_forbid)[0]) for u in uris}


def cmd_backup_restore(settings: Settings, args) -> None:
    passphrase = _passphrase(settings)
    precheck = keys_fit(keys.load_chain_key(settings), _configured_master_ids(settings))
    keys.load_witness(settings)  # the restored log is extended by this witness: it must load
    with _one_line():
        manifest = service.restore(settings.effective_database_url,
                                   lambda: open_source(args.backup, s3_client(settings)), passphrase,
                                   keys.checkpoint_file(settings).path, precheck)
    deps = open_deps(settings)
    deps.audit.record_alone(cli_actor(), "backup.restore", args.backup,
                            {"created_at": manifest["created_at"], "rows": sum(manifest["counts"].values())})
    print(f"restored {sum(manifest['counts'].values())} rows from {args.backup} "
          f"(made {manifest['created_at']})")


def cmd_backup_drill(settings: Settings, args) -> None:
    passphrase = _passphrase(settings)
    deps = open_deps(settings)
    chain_key, keyring = keys.load_chain_key(settings), deps.keys.keyring()
    checker = restored_store_checker(chain_key, keys.load_witness(settings).public, keyring)
    with _one_line():
        result = service.drill(settings.effective_database_url, args.source, passphrase,
                               s3_client(settings), checker, keys_fit(chain_key, keyring.key_ids))
    deps = open_deps(settings)  # the drill pointed the models at its scratch store
    deps.audit.record_alone(cli_actor(), "backup.drill", result.location,
                            {"ok": result.ok, "seconds": round(result.seconds, 3), "rows": result.rows,
                             "audit_rows": result.audit_rows, "failure": result.failure})
    if not result.ok:
        raise CommandError(f"restore drill FAILED for {result.location}: {result.failure} (recorded)")
    print(f"restore drill OK: {result.location}: {result.rows} rows restored and counted, "
          f"{result.audit_rows} audit rows verified, secrets decrypt; {result.seconds:.2f} s (recorded)")


def register(groups) -> None:
    backup = groups.add_parser("backup", help="encrypted backups and the restore drill").add_subparsers(
        required=True)
    create = backup.add_parser("create", help="snapshot the store and its checkpoint file, encrypted")
    create.add_argument("--out", required=True, metavar="FILE|s3://BUCKET/PREFIX",
                        help="a new file, or a bucket with Object Lock (retention FF_BACKUP_RETENTION_DAYS)")
    create.set_defaults(fn=cmd_backup_create)
    verify = backup.add_parser("verify", help="decrypt and check a whole backup, writing nothing")
    verify.add_argument("backup", metavar="FILE|s3://BUCKET/KEY")
    verify.set_defaults(fn=cmd_backup_verify)
    restore = backup.add_parser("restore", help="restore into an empty store (FF_DATABASE_URL)")
    restore.add_argument("backup", metavar="FILE|s3://BUCKET/KEY")
    restore.set_defaults(fn=cmd_backup_restore)
    drill = backup.add_parser("drill", help="restore the newest backup into a scratch store, check it, "
                                            "and record the result")
    drill.add_argument("--from", dest="source", required=True, metavar="DIR|s3://BUCKET/PREFIX",
                       help="where the backups are (the newest is drilled)")
    drill.set_defaults(fn=cmd_backup_drill)
