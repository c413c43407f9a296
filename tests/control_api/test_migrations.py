"""Versioned migrations: idempotent on both backends, status reports, readiness follows."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from control_api import migrations
from control_api.db import open_database


def test_upgrade_twice_is_harmless(database_url, clock):
    db = open_database(database_url)
    assert [s.version for s in migrations.pending(db)] == [m.VERSION for m in migrations.MIGRATIONS]
    first = migrations.upgrade(db, clock.now())
    assert [s.version for s in first] == [m.VERSION for m in migrations.MIGRATIONS]
    assert migrations.upgrade(db, clock.now()) == []
    assert migrations.pending(db) == []
    assert {"users", "sessions", "api_tokens", "schema_migrations"} <= set(db.get_tables())
    db.close()


def _weco(*args, env):
    return subprocess.run([sys.executable, "-m", "control_api.cli", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_cli_upgrade_and_status(env):
    env = {"PATH": "/usr/bin:/bin", **env}
    before = _weco("db", "status", env=env)
    assert before.returncode == 1 and "pending" in before.stdout
    first = _weco("db", "upgrade", env=env)
    assert first.returncode == 0, first.stderr
    assert "applied 0001 users_sessions_tokens" in first.stdout
    second = _weco("db", "upgrade", env=env)
    assert second.returncode == 0 and second.stdout.strip() == "store is up to date"
    after = _weco("db", "status", env=env)
    assert after.returncode == 0 and "pending" not in after.stdout


def test_readyz_reports_pending_migrations(database_url, tmp_path, fast_hasher, clock):
    import falcon.testing

    from control_api.app import create_app
    from control_api.settings import load_settings
    from control_api.wiring import build_deps

    settings = load_settings({"FF_ENV": "dev", "FF_DATABASE_URL": database_url})
    db = open_database(database_url)
    client = falcon.testing.TestClient(create_app(build_deps(settings, db, clock=clock, hasher=fast_hasher)))
    behind = client.simulate_get("/readyz")
    assert behind.status_code == 503
    assert "pending" in behind.json["description"]
    migrations.upgrade(db, clock.now())
    assert client.simulate_get("/readyz").json == {"status": "ready"}


def test_an_upgrade_and_its_audit_event_commit_together_or_not_at_all(database_url, clock):
    db = open_database(database_url)
    seen = []

    def audit_fails(applied):
        seen.append([state.version for state in applied])
        raise RuntimeError("the audit event could not be recorded")

    with pytest.raises(RuntimeError, match="could not be recorded"):
        migrations.upgrade(db, clock.now(), record=audit_fails)
    # Called once, inside the transaction, with everything it applied: all rolled back.
    assert seen == [[m.VERSION for m in migrations.MIGRATIONS]]
    assert db.get_tables() == []
    assert len(migrations.pending(db)) == len(migrations.MIGRATIONS)
    db.close()


def test_cli_upgrade_records_db_upgrade_in_the_chain(env, store):
    from control_api.models import AuditEvent
    from tests.conftest import run_weco

    assert run_weco(env, "db", "upgrade").returncode == 0
    events = [(e.action, json.loads(e.event_json)["metadata"]) for e in AuditEvent.select()]
    assert events == [("db.upgrade", {"versions": [m.VERSION for m in migrations.MIGRATIONS]})]
    assert run_weco(env, "db", "upgrade").returncode == 0
    assert AuditEvent.select().count() == 1  # nothing applied, nothing to record


def test_every_migration_module_is_registered_in_order():
    """A migration file left out of MIGRATIONS would silently never run."""
    import pathlib

    folder = pathlib.Path(migrations.__file__).parent
    files = sorted(p.stem for p in folder.glob("m[0-9][0-9][0-9][0-9]_*.py"))
    assert [m.__name__.rsplit(".", 1)[1] for m in migrations.MIGRATIONS] == files
