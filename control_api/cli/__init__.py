"""The `weco` command: settings, store, users, tokens, the audit log, the master
secret and serving. One module per command group; each registers its parsers."""

from __future__ import annotations

import argparse
import sys

import peewee

from control_api.audit.keys import AuditKeyError
from control_api.audit.log import AuditUnavailable
from control_api.cli import (
    accounts,
    audit,
    backup,
    config,
    evidence,
    license,
    release,
    runs,
    scim,
    secrets,
    server,
    siem,
    store,
)
from control_api.cli.args import Parser, first_non_utf8
from control_api.cli.common import CommandError, reason
from control_api.license.caps import LicenseLimit
from control_api.logs import configure_logging
from control_api.masterkey import MasterKeyError
from control_api.settings import SettingsError, load_settings
from keyproviders import KeyProviderError


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="weco", description=__doc__)
    groups = parser.add_subparsers(dest="group", required=True)
    for module in (config, store, accounts, audit, secrets, server, runs, backup, evidence, siem, license,
                   scim, release):
        module.register(groups)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    bad = first_non_utf8(argv)
    if bad is not None:
        print(f"weco: the argument {bad} is not valid UTF-8", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        configure_logging(settings.log_level)
        args.fn(settings, args)
    except SettingsError as exc:  # at start-up, or one only some commands need (audit keys)
        print(f"weco: {exc}", file=sys.stderr)
        return 2
    except (CommandError, AuditKeyError, MasterKeyError, KeyProviderError) as exc:
        print(f"weco: {exc}", file=sys.stderr)
        return 1
    except LicenseLimit as exc:
        print(f"weco: {exc.description}", file=sys.stderr)
        return 1
    except AuditUnavailable as exc:
        print(f"weco: {exc}; nothing was changed", file=sys.stderr)
        return 1
    except OSError as exc:  # a file or directory the command needs cannot be used
        where = f"{exc.filename}: " if exc.filename is not None else ""
        print(f"weco: {where}{reason(exc)}", file=sys.stderr)
        return 1
    except (peewee.OperationalError, peewee.InterfaceError) as exc:
        # The driver's own words (it never repeats the store URL, so no password).
        print(f"weco: cannot use the store: {reason(exc)}", file=sys.stderr)
        return 1
    return 0
