"""`weco scim token`: the bearer tokens a customer's IdP provisions accounts with over
/scim/v2 (made, listed and revoked only here, on the machine; never through the API)."""

from __future__ import annotations

from control_api.cli.args import store_id
from control_api.cli.common import CommandError, cli_actor, open_deps
from control_api.scim.models import ScimToken
from control_api.scim.tokens import ScimTokenError
from control_api.settings import Settings
from control_api.wiring import build_scim_tokens


def cmd_create(settings: Settings, args) -> None:
    try:
        value, token = build_scim_tokens(open_deps(settings)).create(args.name, cli_actor())
    except ScimTokenError as exc:
        raise CommandError(str(exc)) from None
    print(f"created SCIM token {token.id} {token.name!r}")
    print(f"token (shown once, give it to the IdP now): {value}")


def cmd_revoke(settings: Settings, args) -> None:
    if not build_scim_tokens(open_deps(settings)).revoke(args.id, cli_actor()):
        raise CommandError(f"no active SCIM token with id {args.id}")
    print(f"revoked SCIM token {args.id}")


def cmd_list(settings: Settings, args) -> None:
    open_deps(settings)
    for token in ScimToken.select().order_by(ScimToken.id):
        state = "revoked" if token.revoked_at else "active"
        print(f"{token.id}\t{token.name}\t{state}\tlast_used={token.last_used_at or 'never'}")


def register(groups) -> None:
    scim = groups.add_parser("scim", help="SCIM 2.0 provisioning").add_subparsers(required=True)
    token = scim.add_parser("token", help="the IdP's SCIM bearer tokens").add_subparsers(required=True)
    create = token.add_parser("create", help="make a SCIM token; printed once")
    create.add_argument("name", help="what the token is for, e.g. the IdP's name")
    create.set_defaults(fn=cmd_create)
    revoke = token.add_parser("revoke", help="revoke a SCIM token by id")
    revoke.add_argument("id", type=store_id)
    revoke.set_defaults(fn=cmd_revoke)
    token.add_parser("list", help="list SCIM tokens (never their values)").set_defaults(fn=cmd_list)
