"""`weco config`: the effective settings."""

from __future__ import annotations

import sys

from control_api.settings import Settings, effective_items, markdown_table


def cmd_config_show(settings: Settings, args) -> None:
    width = max(len(name) for name, _ in effective_items(settings))
    for name, shown in effective_items(settings):
        print(f"{name.ljust(width)}  {shown}")


def cmd_config_table(settings: Settings, args) -> None:
    sys.stdout.write(markdown_table())


def register(groups) -> None:
    config = groups.add_parser("config", help="effective settings").add_subparsers(required=True)
    config.add_parser("show", help="print settings, secrets redacted").set_defaults(fn=cmd_config_show)
    config.add_parser("table", help="print the settings reference as Markdown").set_defaults(
        fn=cmd_config_table
    )
