"""License caps enforced when a site, a host or an account is created, race-free.

`reserve(kind, actor)` runs inside the creating transaction, before the row is written:
it serialises the creates of that kind, counts what exists, and refuses at the cap. On
SQLite the store's write transactions begin IMMEDIATE (control_api/db.py), so the
transaction already holds the one write lock and no other create can count between our
count and our commit. On PostgreSQL a transaction-level advisory lock per kind does the
same: the next create waits for our commit, and its count (READ COMMITTED, a new snapshot
per statement) sees our row. So N concurrent creates one below the cap let exactly one
through on either backend (tests/control_api/license/test_caps_concurrent.py).

A refusal is LicenseLimit (403). Its audit event (`license.cap_refused`) cannot commit
inside the transaction it rolls back, so `audit_cap_refusals` records it once the
outermost transaction has ended.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import peewee

from control_api.audit.log import Actor, AuditLog
from control_api.db import dialect
from control_api.errors import Forbidden
from control_api.license.entitlement import Entitlement
from control_api.license.store import LicenseStore
from control_api.license.token import CAP_KINDS
from control_api.models import Host, Site, User

# Any fixed int4: the advisory lock class of license caps (the kind's index is the key).
_PG_LOCK_CLASS = 0x7765634C

COUNTERS: dict[str, Callable[[], int]] = {
    "sites": lambda: Site.select().count(),
    "hosts": lambda: Host.select().count(),
    # Disabled accounts do not count: disabling one (`weco user disable`, which needs no
    # login) frees its place, so an emergency account can always be made.
    "admins": lambda: User.select().where(User.disabled_at.is_null()).count(),
}

_NOUN = {"sites": "sites", "hosts": "hosts", "admins": "admin and superadmin accounts"}


class LicenseLimit(Forbidden):
    title = "License limit reached"

    def __init__(self, kind: str, cap: int, count: int, granted: Entitlement, actor: Actor,
                 caps: LicenseCaps) -> None:
        super().__init__(f"{_explain(granted)} allows {cap} {_NOUN[kind]} and {count} exist; "
                         f"remove one or install a license with more")
        self.kind, self.cap, self.count, self.granted, self.actor = kind, cap, count, granted, actor
        self._caps = caps
        self.audited = False

    def record(self) -> None:
        """Audit the refusal, once, after the transaction it rolled back has ended."""
        if not self.audited and not self._caps.db.in_transaction():
            self.audited = True
            lic = self.granted.license
            self._caps.audit.record_alone(self.actor, "license.cap_refused", f"license:{self.kind}", {
                "kind": self.kind, "cap": self.cap, "count": self.count, "state": self.granted.state,
                "tier": self.granted.tier, "license": lic.jti if lic else None})


def _explain(granted: Entitlement) -> str:
    text = granted.explain()
    return text[0].upper() + text[1:]


class LicenseCaps:
    def __init__(self, db: peewee.Database, audit: AuditLog, licenses: LicenseStore) -> None:
        self.db, self.audit, self.licenses = db, audit, licenses

    def reserve(self, kind: str, actor: Actor) -> None:
        """Inside the transaction that creates one `kind`: wait for any other create of
        that kind to commit, then raise LicenseLimit if the cap is reached."""
        if kind not in CAP_KINDS:
            raise ValueError(f"unknown cap {kind!r}")
        if not self.db.in_transaction():
            raise RuntimeError("LicenseCaps.reserve must run inside the creating transaction")
        if dialect(self.db) == "postgresql":
            self.db.execute_sql("SELECT pg_advisory_xact_lock(%s, %s)",
                                (_PG_LOCK_CLASS, CAP_KINDS.index(kind)))
        granted = self.licenses.entitlement()
        cap = granted.cap(kind)
        if cap is None:
            return
        count = COUNTERS[kind]()
        if count >= cap:
            raise LicenseLimit(kind, cap, count, granted, actor, self)


def audit_cap_refusals(fn):
    """Decorate a create (a service method or a command): a LicenseLimit raised inside it
    is audited once its transaction has rolled back, then raised on."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except LicenseLimit as exc:
            exc.record()
            raise

    return wrapper
