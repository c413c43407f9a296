"""`weco user`, `weco token`, `weco break-glass`: accounts and their credentials."""

from __future__ import annotations

import datetime as dt
import sys

from control_api.auth.passwords import PasswordPolicyError, generate_password
from control_api.auth.totp import TotpService
from control_api.auth.users import UserError, find_by_email
from control_api.cli.args import store_id
from control_api.cli.common import CommandError, cli_actor, open_deps
from control_api.license.caps import audit_cap_refusals
from control_api.models import ROLES, ApiToken
from control_api.settings import Settings
from control_api.wiring import build_credentials, build_users


def _read_password_stdin() -> str:
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line


def cmd_user_create(settings: Settings, args) -> None:
    deps = open_deps(settings)
    generated = not args.password_stdin
    password = generate_password() if generated else _read_password_stdin()
    try:
        user = build_users(deps).create(args.email, args.role, password, cli_actor())
    except (UserError, PasswordPolicyError) as exc:
        raise CommandError(str(exc)) from None
    print(f"created {user.role} {user.email} (id {user.id})")
    if generated:
        print(f"password (shown once, store it now): {password}")


def cmd_user_disable(settings: Settings, args) -> None:
    deps = open_deps(settings)
    user = find_by_email(args.email)
    if user is None:
        raise CommandError(f"no user with email {args.email}")
    try:
        build_users(deps).disable(user, cli_actor(), build_credentials(deps))
    except UserError as exc:
        raise CommandError(str(exc)) from None
    print(f"disabled {user.email} (id {user.id}); its sessions ended and its API tokens were revoked")


def cmd_token_create(settings: Settings, args) -> None:
    # The operator on the machine: no session or second factor asked, but the same
    # longest life as tokens minted through the API.
    deps = open_deps(settings)
    user = find_by_email(args.email)
    if user is None:
        raise CommandError(f"no user with email {args.email}")
    longest = settings.token_max_days
    days = longest if args.expires_days is None else args.expires_days
    if not 1 <= days <= longest:
        raise CommandError(f"--expires-days must be between 1 and {longest} (FF_TOKEN_MAX_DAYS)")
    expires = deps.clock.now() + dt.timedelta(days=days)
    try:
        value, token = build_credentials(deps).create_token(user, args.name, expires, cli_actor())
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    print(f"created token {token.id} {token.name!r} for {user.email}, expires {expires.isoformat()}Z")
    print(f"token (shown once, store it now): {value}")


def cmd_token_revoke(settings: Settings, args) -> None:
    deps = open_deps(settings)
    if not build_credentials(deps).revoke_token(args.id, cli_actor()):
        raise CommandError(f"no active token with id {args.id}")
    print(f"revoked token {args.id}")


def cmd_token_list(settings: Settings, args) -> None:
    credentials = build_credentials(open_deps(settings))
    for token in ApiToken.select().order_by(ApiToken.id):
        state = "revoked" if token.revoked_at else "active"
        print(f"{token.id}\t{token.user.email}\t{token.name}\t{state}\t"
              f"expires={credentials.token_expiry(token)}\tlast_used={token.last_used_at or 'never'}")


@audit_cap_refusals  # the account's create runs inside this command's transaction
def cmd_break_glass_create(settings: Settings, args) -> None:
    deps = open_deps(settings)
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


def register(groups) -> None:
    user = groups.add_parser("user", help="admin accounts").add_subparsers(required=True)
    create = user.add_parser("create", help="create an admin account")
    create.add_argument("--email", required=True)
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--password-stdin", action="store_true",
                        help="read the password from the first line of stdin instead of generating one")
    create.set_defaults(fn=cmd_user_create)
    disable = user.add_parser("disable", help="disable an account: its sessions end, its tokens are revoked")
    disable.add_argument("--email", required=True)
    disable.set_defaults(fn=cmd_user_disable)
    token = groups.add_parser("token", help="API tokens for scripts").add_subparsers(required=True)
    tcreate = token.add_parser("create", help="create a token; printed once")
    tcreate.add_argument("--email", required=True)
    tcreate.add_argument("--name", required=True)
    tcreate.add_argument("--expires-days", type=int, help="at most FF_TOKEN_MAX_DAYS, the default")
    tcreate.set_defaults(fn=cmd_token_create)
    trevoke = token.add_parser("revoke", help="revoke a token by id")
    trevoke.add_argument("--id", type=store_id, required=True)
    trevoke.set_defaults(fn=cmd_token_revoke)
    token.add_parser("list", help="list tokens (never their values)").set_defaults(fn=cmd_token_list)
    glass = groups.add_parser("break-glass", help="the emergency superadmin").add_subparsers(required=True)
    bg = glass.add_parser("create", help="create it; its secrets are printed once")
    bg.add_argument("--email", default="break-glass@weco.invalid")
    bg.set_defaults(fn=cmd_break_glass_create)
