"""The `weco` command: settings, store, users, tokens and serving."""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from control_api import migrations
from control_api.app import Deps, build_credentials
from control_api.auth.passwords import PasswordHasher, PasswordPolicyError, generate_password
from control_api.auth.users import UserError, UserService, find_by_email
from control_api.db import open_database
from control_api.logs import configure_logging
from control_api.models import ROLES, ApiToken
from control_api.settings import Settings, SettingsError, effective_items, load_settings, markdown_table


class CommandError(Exception):
    """A command cannot do what was asked; str() is the message for the operator."""


def _deps(settings: Settings) -> Deps:
    db = open_database(settings.effective_database_url)
    db.connect(reuse_if_open=True)
    return Deps(settings=settings, db=db)


def _require_current_schema(deps: Deps) -> None:
    behind = migrations.pending(deps.db)
    if behind:
        raise CommandError(f"the store has {len(behind)} pending migration(s): run `weco db upgrade`")


def cmd_config_show(settings: Settings, args) -> None:
    width = max(len(name) for name, _ in effective_items(settings))
    for name, shown in effective_items(settings):
        print(f"{name.ljust(width)}  {shown}")


def cmd_config_table(settings: Settings, args) -> None:
    sys.stdout.write(markdown_table())


def cmd_db_upgrade(settings: Settings, args) -> None:
    deps = _deps(settings)
    applied = migrations.upgrade(deps.db, deps.clock.now())
    for state in applied:
        print(f"applied {state.version:04d} {state.name}")
    print("store is up to date" if not applied else f"{len(applied)} migration(s) applied")


def cmd_db_status(settings: Settings, args) -> None:
    deps = _deps(settings)
    for state in migrations.status(deps.db):
        when = state.applied_at or "pending"
        print(f"{state.version:04d} {state.name}  {when}")
    if migrations.pending(deps.db):
        raise SystemExit(1)


def _read_password_stdin() -> str:
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line


def cmd_user_create(settings: Settings, args) -> None:
    deps = _deps(settings)
    _require_current_schema(deps)
    generated = not args.password_stdin
    password = generate_password() if generated else _read_password_stdin()
    users = UserService(deps.db, PasswordHasher(), deps.clock)
    try:
        user = users.create(args.email, args.role, password)
    except (UserError, PasswordPolicyError) as exc:
        raise CommandError(str(exc)) from None
    print(f"created {user.role} {user.email} (id {user.id})")
    if generated:
        print(f"password (shown once, store it now): {password}")


def cmd_token_create(settings: Settings, args) -> None:
    deps = _deps(settings)
    _require_current_schema(deps)
    user = find_by_email(args.email)
    if user is None:
        raise CommandError(f"no user with email {args.email}")
    expires = None
    if args.expires_days is not None:
        if not 1 <= args.expires_days <= 3650:
            raise CommandError("--expires-days must be between 1 and 3650")
        expires = deps.clock.now() + dt.timedelta(days=args.expires_days)
    try:
        value, token = build_credentials(deps).create_token(user, args.name, expires)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    print(f"created token {token.id} {token.name!r} for {user.email}"
          + (f", expires {expires.isoformat()}Z" if expires else ""))
    print(f"token (shown once, store it now): {value}")


def cmd_token_revoke(settings: Settings, args) -> None:
    deps = _deps(settings)
    _require_current_schema(deps)
    if not build_credentials(deps).revoke_token(args.id):
        raise CommandError(f"no active token with id {args.id}")
    print(f"revoked token {args.id}")


def cmd_token_list(settings: Settings, args) -> None:
    deps = _deps(settings)
    _require_current_schema(deps)
    for token in ApiToken.select().order_by(ApiToken.id):
        state = "revoked" if token.revoked_at else "active"
        print(f"{token.id}\t{token.user.email}\t{token.name}\t{state}\t"
              f"expires={token.expires_at or 'never'}\tlast_used={token.last_used_at or 'never'}")


def cmd_serve(settings: Settings, args) -> None:
    from control_api.serve import serve

    deps = _deps(settings)
    _require_current_schema(deps)
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
    except CommandError as exc:
        print(f"weco: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
