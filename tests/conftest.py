"""Shared fixtures: both store backends, the app under a test client, a fake clock."""

from __future__ import annotations

import datetime as dt
import itertools
import subprocess
import sys

import falcon.testing
import pytest

from control_api import migrations
from control_api.app import create_app
from control_api.audit.log import Actor
from control_api.auth.passwords import PasswordHasher
from control_api.db import open_database
from control_api.settings import load_settings
from control_api.wiring import build_deps, build_users
from tests import side_runs
from tests.peers.clamd import Clamd
from tests.peers.gcpkms import FakeCloudKms
from tests.peers.moto import CREDENTIALS, MotoServer
from tests.peers.openbao import OpenBao
from tests.peers.postgres import PostgresCluster
from tests.roles import molecule_runs

pytest_plugins = ["tests.controls_gate"]  # the controls registry judged on a full run (CI)

BACKENDS = ("sqlite", "postgresql")
PASSWORD = "correct horse battery staple"


class FakeClock:
    def __init__(self, start: dt.datetime = dt.datetime(2026, 11, 29, 12, 0, 0)) -> None:
        self.current = start

    def now(self) -> dt.datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += dt.timedelta(**delta)


@pytest.fixture(scope="session")
def postgres():
    cluster = PostgresCluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def clamd():
    """Debian's clamd with our own signatures (EICAR and a test-only marker), shared by
    the session: the document tests and the upload fuzzing scan through it."""
    server = Clamd().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def openbao():
    server = OpenBao().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto():
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture
def aws_credentials(monkeypatch):
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="session")
def gcp():
    server = FakeCloudKms(GCP_KEYS).start()
    yield server
    server.stop()


GCP_KEYS = ["projects/weco/locations/global/keyRings/ops/cryptoKeys/master",
            "projects/weco/locations/global/keyRings/ops/cryptoKeys/other"]

_db_names = itertools.count()


def pytest_generate_tests(metafunc):
    """Every test that touches the store runs on both backends, unless marked
    postgres_only (roles, TRUNCATE: things SQLite does not have)."""
    if "database_url" in metafunc.fixturenames:
        only_pg = metafunc.definition.get_closest_marker("postgres_only")
        metafunc.parametrize("database_url", ["postgresql"] if only_pg else list(BACKENDS), indirect=True)


@pytest.fixture(scope="session")
def migrated_template(postgres) -> str:
    """A PostgreSQL database migrated once (at FakeClock's start, as the db fixture would):
    copying it costs a test less than running every migration again."""
    postgres.admin_sql("CREATE DATABASE weco_migrated")
    database = open_database(postgres.url("weco_migrated"))
    database.connect()
    migrations.upgrade(database, FakeClock().now())
    database.close()
    database.close_all()  # a template must have no connection when it is copied
    return "weco_migrated"


@pytest.fixture
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'weco.sqlite3'}"
    cluster = request.getfixturevalue("postgres")
    name = f"weco_test_{next(_db_names)}"
    # A test that takes the db fixture gets a migrated store anyway; any other starts empty.
    template = ""
    if "db" in request.fixturenames:
        template = f" TEMPLATE {request.getfixturevalue('migrated_template')}"
    cluster.admin_sql(f"CREATE DATABASE {name}{template}")
    return cluster.url(name)


@pytest.fixture
def env(database_url, tmp_path):
    """The environment of a dev deployment on the selected backend."""
    return {"FF_ENV": "dev", "FF_DATA_DIR": str(tmp_path / "var"), "FF_DATABASE_URL": database_url}


@pytest.fixture
def settings(env):
    return load_settings(env)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture(scope="session")
def fast_hasher():
    # Cost 4 keeps the suite fast; test_passwords proves production uses cost 12.
    return PasswordHasher(cost=4)


@pytest.fixture
def db(settings, clock):
    database = open_database(settings.effective_database_url)
    database.connect(reuse_if_open=True)
    migrations.upgrade(database, clock.now())
    yield database
    database.close()
    if hasattr(database, "close_all"):
        database.close_all()


@pytest.fixture
def deps(settings, db, clock, fast_hasher):
    return build_deps(settings, db, clock=clock, hasher=fast_hasher)


@pytest.fixture
def app(deps):
    return create_app(deps)


@pytest.fixture
def client(app):
    return falcon.testing.TestClient(app)


ACTOR = Actor("test", "127.0.0.1", "pytest")


@pytest.fixture
def users(deps):
    return build_users(deps)


@pytest.fixture
def admin(users):
    return users.create("admin@example.test", "admin", PASSWORD, ACTOR)


@pytest.fixture
def superadmin(users):
    return users.create("root@example.test", "superadmin", PASSWORD, ACTOR)


_skipped: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_collection_modifyitems(session, config, items):
    """Tests that only wait for a background run (a side run, a Molecule scenario) go last,
    so the rest of the suite runs while those runs work instead of idling behind them; the
    tests that load every core go just before them."""
    def place(item) -> int:
        if (item.get_closest_marker("side_run") is not None
                or getattr(item, "originalname", "") == "test_molecule_scenario"):
            return 2
        return 1 if item.get_closest_marker("many_cores") is not None else 0
    items.sort(key=place)  # stable: each group keeps its order


def pytest_collection_finish(session):
    """The Molecule scenarios and the side runs start now, in the background, and overlap
    everything else."""
    if not session.config.option.collectonly:
        side_runs.start(side_runs.selected(session))
        molecule_runs.start_scenarios(molecule_runs.selected_scenarios(session))


def pytest_sessionfinish(session, exitstatus):
    """A skipped test hides a missing peer or an untested backend: fail the run. Scenarios
    a stopped run never waited for are killed and their hosts taken down."""
    molecule_runs.stop_scenarios(molecule_runs._RUNS)
    side_runs.stop()
    if _skipped and exitstatus == 0:
        session.exitstatus = 1
        print(f"\nskipped tests are not allowed here: {', '.join(_skipped)}")


def run_weco(env: dict, *args: str, stdin: str | None = None, **extra: str) -> subprocess.CompletedProcess:
    """The `weco` command in a child process, with only `env` (and PATH) set."""
    return subprocess.run([sys.executable, "-m", "control_api.cli", *args],
                          env={"PATH": "/usr/bin:/bin", **env, **extra}, input=stdin,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def weco(env):
    """`weco` against a migrated store of the selected backend."""
    assert run_weco(env, "db", "upgrade").returncode == 0
    return lambda *args, stdin=None, **extra: run_weco(env, *args, stdin=stdin, **extra)


@pytest.fixture
def store(database_url):
    """A connection of the test's own to the store the child processes use."""
    database = open_database(database_url)
    yield database
    database.close()
