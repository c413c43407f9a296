"""The caps are race-free (control_api/license/caps.py): 16 creates started together, one
below the cap, let exactly one through, on SQLite and on PostgreSQL; with threads through
the services for sites, hosts and accounts, and with 16 processes for accounts."""

from __future__ import annotations

import multiprocessing
import os
import threading

from control_api.db import open_database
from control_api.license.caps import LicenseLimit
from control_api.models import Host, Site, User
from control_api.wiring import build_catalog, build_deps, build_users
from tests.conftest import ACTOR, PASSWORD

RACERS = 16


def race(db, create) -> tuple[int, int, list]:
    """Run create(i) in RACERS threads released together: (created, refused, other errors)."""
    barrier = threading.Barrier(RACERS)
    outcomes: list = [None] * RACERS

    def racer(i: int) -> None:
        try:
            barrier.wait()
            create(i)
            outcomes[i] = "created"
        except LicenseLimit:
            outcomes[i] = "refused"
        except Exception as exc:  # reported, and fails the test below
            outcomes[i] = exc
        finally:
            db.close()  # this thread's pooled connection

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return (outcomes.count("created"), outcomes.count("refused"),
            [o for o in outcomes if o not in ("created", "refused")])


def test_sites(deps, db, install):
    catalog = build_catalog(deps)
    install(sites=3)
    for n in range(2):
        catalog.create_site({"slug": f"before-{n}", "domain": f"b{n}.example.com"}, ACTOR)
    result = race(db, lambda i: catalog.create_site({"slug": f"race-{i}", "domain": f"r{i}.example.com"},
                                                    ACTOR))
    assert result == (1, RACERS - 1, [])
    assert Site.select().count() == 3


def test_hosts(deps, db, install):
    catalog = build_catalog(deps)
    install(hosts=2)
    catalog.create_host({"name": "before", "connection": "local"}, ACTOR)
    result = race(db, lambda i: catalog.create_host({"name": f"race-{i}", "connection": "local"}, ACTOR))
    assert result == (1, RACERS - 1, [])
    assert Host.select().count() == 2


def test_accounts(users, db, install, superadmin):
    install(admins=2)
    result = race(db, lambda i: users.create(f"race-{i}@example.test", "admin", PASSWORD, ACTOR))
    assert result == (1, RACERS - 1, [])
    assert User.select().count() == 2


def _child(settings, clock, hasher, barrier, index: int) -> None:
    """A forked process: a store connection of its own, then one create at the barrier."""
    code = 1
    try:
        database = open_database(settings.effective_database_url)
        deps = build_deps(settings, database, clock=clock, hasher=hasher)
        users = build_users(deps)
        barrier.wait(60)
        try:
            users.create(f"proc-{index}@example.test", "admin", PASSWORD, ACTOR)
            code = 0
        except LicenseLimit:
            code = 3
    finally:
        os._exit(code)  # no pytest teardown, no atexit in the child


def test_accounts_from_16_processes(settings, db, clock, fast_hasher, install, superadmin):
    """Real processes, each with its own connection, released together."""
    install(admins=2)
    db.close_all()  # a forked child must not share the parent's sockets or SQLite handles
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(RACERS)
    children = [context.Process(target=_child, args=(settings, clock, fast_hasher, barrier, i))
                for i in range(RACERS)]
    for child in children:
        child.start()
    for child in children:
        child.join(120)
    codes = sorted(child.exitcode for child in children)
    assert codes == [0] + [3] * (RACERS - 1)
    assert User.select().count() == 2
