"""`weco license`: the issuer's commands (keypair, issue, revoke), run on its offline
machine with the signing key, and the admin VM's (install, show), which only ever use
the public key shipped with the release."""

from __future__ import annotations

import datetime as dt
import os
import stat
import sys
from pathlib import Path

from control_api.cli.args import bounded_int
from control_api.cli.common import CommandError, cli_actor, open_deps, reason
from control_api.clock import SystemClock
from control_api.license.caps import COUNTERS
from control_api.license.store import SHIPPED_KEY, LicenseError
from control_api.license.token import (
    MAX_CAP,
    MAX_REVOCATIONS_BYTES,
    REVOCATIONS_TYP,
    Caps,
    PublicKey,
    SigningKey,
    TokenError,
    generate_keypair,
    peek_typ,
    read_revocations,
    sign_license,
    sign_revocations,
)
from control_api.settings import Settings
from control_api.wiring import build_licenses

_CAP = bounded_int(0, MAX_CAP)


def _create_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _signing_key(path: str) -> SigningKey:
    key_path = Path(path)
    try:
        if key_path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise CommandError(f"--key {key_path} is readable by group or others: chmod 600 it")
        return SigningKey.from_pem(key_path.read_bytes(), f"--key {key_path}")
    except OSError as exc:
        raise CommandError(f"--key {key_path}: {reason(exc)}") from None
    except TokenError as exc:
        raise CommandError(str(exc)) from None


def _write_token(token: str, out: str | None) -> None:
    if out is None:
        print(token)
        return
    try:
        with open(out, "x", encoding="ascii") as handle:
            handle.write(token + "\n")
    except FileExistsError:
        raise CommandError(f"--out {out}: already exists") from None


def _read_input(path: str) -> str:
    try:
        raw = sys.stdin.buffer.read(MAX_REVOCATIONS_BYTES + 1) if path == "-" else \
            Path(path).read_bytes()[: MAX_REVOCATIONS_BYTES + 1]
    except OSError as exc:
        raise CommandError(f"{path}: {reason(exc)}") from None
    try:
        return raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise CommandError(f"{path}: not a license (a JWT is ASCII)") from None


# -- the issuer's machine -------------------------------------------------------------


def cmd_keypair(settings: Settings, args) -> None:
    directory = Path(args.out_dir)
    private, public = directory / "issuer.key", directory / "issuer.pub"
    for path in (private, public):
        if path.exists():
            raise CommandError(f"{path} already exists; refusing to overwrite an issuer key")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    private_pem, public_pem = generate_keypair()
    _create_private(private, private_pem)
    public.write_bytes(public_pem)
    key_id = PublicKey.from_pem(public_pem).key_id
    print(f"issuer signing key: {private} (0600; keep it on this offline machine only)")
    print(f"public key:         {public} (kid {key_id}; ships in the release as "
          "control_api/license/issuer.pub)")


def cmd_issue(settings: Settings, args) -> None:
    key = _signing_key(args.key)
    now = SystemClock().now().replace(microsecond=0)
    if args.expires:
        try:
            expires = dt.datetime.strptime(args.expires, "%Y-%m-%d")
        except ValueError:
            raise CommandError(f"--expires {args.expires!r}: expected YYYY-MM-DD") from None
    else:
        expires = now + dt.timedelta(days=args.days)
    if expires <= now:
        raise CommandError("the license would already be expired")
    try:
        token = sign_license(key, args.customer, args.tier, Caps(args.sites, args.hosts, args.admins),
                             now, expires)
    except TokenError as exc:
        raise CommandError(str(exc)) from None
    _write_token(token, args.out)
    print(f"issued a {args.tier} license for {args.customer}, expires {expires:%Y-%m-%d %H:%M} UTC, "
          f"signed by kid {key.key_id}", file=sys.stderr)


def cmd_revoke(settings: Settings, args) -> None:
    key = _signing_key(args.key)
    revoked = set(args.jti)
    if args.previous:
        try:
            previous = read_revocations(_read_input(args.previous), PublicKey.from_pem(key.public_pem()))
        except TokenError as exc:
            raise CommandError(f"--from {args.previous}: {exc}") from None
        revoked |= previous.revoked
    try:
        token = sign_revocations(key, revoked, SystemClock().now().replace(microsecond=0))
    except TokenError as exc:
        raise CommandError(str(exc)) from None
    _write_token(token, args.out)
    print(f"revocation list of {len(revoked)} license id(s), signed by kid {key.key_id}", file=sys.stderr)


# -- the admin VM ---------------------------------------------------------------------


def cmd_install(settings: Settings, args) -> None:
    token = _read_input(args.file)
    deps = open_deps(settings)
    licenses = build_licenses(deps)
    try:
        if peek_typ(token) == REVOCATIONS_TYP:
            revocations, new = licenses.install_revocations(token, cli_actor())
            print(("installed" if new else "already installed:") +
                  f" revocation list issued {revocations.issued_at:%Y-%m-%d %H:%M:%S} UTC, "
                  f"{len(revocations.revoked)} revoked license id(s)")
        else:
            lic, new = licenses.install_license(token, cli_actor())
            print(("installed" if new else "already installed:") + f" {lic.tier} license {lic.jti} for "
                  f"{lic.customer}, expires {lic.expires_at:%Y-%m-%d %H:%M} UTC")
    except (LicenseError, TokenError) as exc:
        raise CommandError(f"license refused, nothing changed: {exc}") from None
    _print_state(licenses.entitlement())


def _print_state(granted) -> None:
    lic = granted.license
    print(f"state:    {granted.state}" + (f" ({granted.note})" if granted.note else ""))
    print(f"tier:     {granted.tier}")
    if lic is not None:
        print(f"license:  {lic.jti} for {lic.customer} ({lic.tier}), "
              f"issued {lic.issued_at:%Y-%m-%d %H:%M} UTC")
        print(f"expires:  {lic.expires_at:%Y-%m-%d %H:%M} UTC; "
              f"grace until {granted.grace_ends_at:%Y-%m-%d %H:%M} UTC")
    usage = []
    for kind, count in ((kind, counter()) for kind, counter in COUNTERS.items()):
        cap = granted.cap(kind)
        usage.append(f"{kind} {count}/{'no cap' if cap is None else cap}")
    print("usage:    " + ", ".join(usage))


def cmd_show(settings: Settings, args) -> None:
    licenses = build_licenses(open_deps(settings))
    found = licenses.installed()
    _print_state(licenses.entitlement())
    rev = found.revocations
    print("revoked:  " + ("no revocation list installed" if rev is None else
                          f"list issued {rev.issued_at:%Y-%m-%d %H:%M:%S} UTC, {len(rev.revoked)} id(s)"))
    source = settings.license_public_key or f"{SHIPPED_KEY} (shipped)"
    print(f"key:      kid {licenses.key.key_id}, {source}")


def register(groups) -> None:
    lic = groups.add_parser("license", help="license: issue (offline), install, show").add_subparsers(
        required=True)
    keypair = lic.add_parser("keypair", help="issuer: make the Ed25519 signing key and its public half")
    keypair.add_argument("--out-dir", required=True)
    keypair.set_defaults(fn=cmd_keypair)
    issue = lic.add_parser("issue", help="issuer: sign a license (on the offline machine)")
    issue.add_argument("--key", required=True, help="the issuer's signing key (PEM, mode 0600)")
    issue.add_argument("--customer", required=True)
    issue.add_argument("--tier", required=True, help="e.g. standard, enterprise")
    issue.add_argument("--sites", required=True, type=_CAP)
    issue.add_argument("--hosts", required=True, type=_CAP)
    issue.add_argument("--admins", required=True, type=_CAP, help="admin and superadmin accounts")
    when = issue.add_mutually_exclusive_group(required=True)
    when.add_argument("--days", type=bounded_int(1, 3660), help="valid this many days from now")
    when.add_argument("--expires", help="valid until YYYY-MM-DD 00:00 UTC")
    issue.add_argument("--out", help="write the license here (never overwritten); default: stdout")
    issue.set_defaults(fn=cmd_issue)
    revoke = lic.add_parser("revoke", help="issuer: sign a revocation list")
    revoke.add_argument("--key", required=True)
    revoke.add_argument("--jti", action="append", default=[], help="a license id to revoke (repeatable)")
    revoke.add_argument("--from", dest="previous", help="the previous list, whose ids are kept")
    revoke.add_argument("--out", help="default: stdout")
    revoke.set_defaults(fn=cmd_revoke)
    install = lic.add_parser("install", help="install a license or a revocation list (FILE, or - for stdin)")
    install.add_argument("file")
    install.set_defaults(fn=cmd_install)
    show = lic.add_parser("show", help="the license in force, its state and the usage against its caps")
    show.set_defaults(fn=cmd_show)
