"""Shared by the commands: the error type, the CLI's audit actor, the wired services."""

from __future__ import annotations

import getpass

import peewee

from control_api import migrations
from control_api.audit.log import Actor
from control_api.db import open_database
from control_api.settings import Settings
from control_api.wiring import Deps, build_deps


class CommandError(Exception):
    """A command cannot do what was asked; str() is the message for the operator."""


def reason(exc: Exception) -> str:
    """One line saying why: an OSError's strerror, else the first line of the message."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def cli_actor() -> Actor:
    return Actor(f"cli:{getpass.getuser()}", "local", "weco-cli")


def open_store(settings: Settings) -> peewee.Database:
    """The store, connected, with its schema current; no key is loaded."""
    db = open_database(settings.effective_database_url)
    db.connect(reuse_if_open=True)
    behind = migrations.pending(db)
    if behind:
        raise CommandError(f"the store has {len(behind)} pending migration(s): run `weco db upgrade`")
    return db


def open_deps(settings: Settings) -> Deps:
    return build_deps(settings, open_store(settings))
