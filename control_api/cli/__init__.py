"""The `weco` command: settings, store, users, tokens, the audit log, the master
secret and serving. One module per command group; each registers its parsers."""

from __future__ import annotations

import argparse
import sys

from control_api.audit.keys import AuditKeyError
from control_api.audit.log import AuditUnavailable
from control_api.cli import accounts, audit, config, runs, secrets, server, store
from control_api.cli.common import CommandError
from control_api.logs import configure_logging
from control_api.masterkey import MasterKeyError
from control_api.settings import SettingsError, load_settings
from keyproviders import KeyProviderError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="weco", description=__doc__)
    groups = parser.add_subparsers(dest="group", required=True)
    for module in (config, store, accounts, audit, secrets, server, runs):
        module.register(groups)
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
    except SettingsError as exc:  # one that only some commands need (production's audit keys)
        print(f"weco: {exc}", file=sys.stderr)
        return 2
    except (CommandError, AuditKeyError, MasterKeyError, KeyProviderError) as exc:
        print(f"weco: {exc}", file=sys.stderr)
        return 1
    except AuditUnavailable as exc:
        print(f"weco: {exc}; nothing was changed", file=sys.stderr)
        return 1
    return 0
