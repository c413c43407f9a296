"""The store's connections: the PostgreSQL pool hands a connection handed back moments
ago out again without a liveness round trip, pings one idle longer and replaces a dead
one; a request's connection goes back to the pool at its end on PostgreSQL and stays
with its thread on SQLite, and a transaction a request left open is rolled back."""

from __future__ import annotations

import peewee
import pytest
from playhouse.pool import PooledPostgresqlDatabase

from control_api.db import PostgresPool, dialect
from control_api.models import User


@pytest.fixture
def pings(monkeypatch):
    """Counts peewee's own liveness check (a `SELECT 1` round trip per call)."""
    calls = []
    parent = PooledPostgresqlDatabase._is_closed

    def counted(self, conn):
        calls.append(conn)
        return parent(self, conn)

    monkeypatch.setattr(PooledPostgresqlDatabase, "_is_closed", counted)
    return calls


def one_request(db: peewee.Database) -> int:
    db.connect(reuse_if_open=True)
    backend = db.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
    db.close()
    return backend


@pytest.mark.postgres_only
def test_a_connection_just_handed_back_is_reused_without_a_ping(db, pings):
    assert isinstance(db, PostgresPool)
    db.close()
    first = one_request(db)
    pings.clear()
    assert [one_request(db) for _ in range(20)] == [first] * 20
    assert pings == []


@pytest.mark.postgres_only
def test_an_idle_connection_is_pinged_and_a_dead_one_replaced(db, pings, postgres, monkeypatch):
    db.close()
    first = one_request(db)
    postgres.admin_sql(f"SELECT pg_terminate_backend({first})")
    monkeypatch.setattr(db, "fresh_seconds", 0.0)  # as if it had been idle for a while
    pings.clear()
    second = one_request(db)  # the ping finds it dead; a new connection answers
    assert second != first and len(pings) == 1


@pytest.mark.postgres_only
def test_within_the_window_a_dead_connection_fails_once_and_is_not_reused(db, postgres):
    db.close()
    first = one_request(db)
    postgres.admin_sql(f"SELECT pg_terminate_backend({first})")
    db.connect()
    with pytest.raises(peewee.OperationalError):
        db.execute_sql("SELECT 1")
    db.close()
    assert one_request(db) != first  # dropped at check-in, never handed out again


@pytest.mark.postgres_only
def test_a_socket_directory_may_be_the_host_percent_encoded(postgres, database_url):
    # As the installed admin VM connects: over the local socket, no TCP at all.
    from urllib.parse import urlsplit

    from control_api.db import open_database

    db = open_database(postgres.socket_url(urlsplit(database_url).path.lstrip("/")))
    try:
        db.connect()
        address = db.execute_sql("SELECT inet_server_addr()").fetchone()[0]
        assert address is None  # a unix socket has no server address
    finally:
        db.close()
        db.close_all()


@pytest.mark.postgres_only
def test_the_token_look_up_is_prepared_once_per_connection_and_sees_every_change(deps, db, admin, postgres):
    from control_api.wiring import build_credentials
    from tests.conftest import ACTOR

    credentials = build_credentials(deps)
    value, token = credentials.create_token(admin, "ci", None, ACTOR)

    def look_up():
        db.connect(reuse_if_open=True)
        try:
            return credentials.token_principal(value), db.connection()
        finally:
            db.close()

    db.close()
    first, conn = look_up()
    assert first.credential_id == token.id and conn.prepared == {"weco_token_by_hash"}
    again, same = look_up()  # the pool hands the same connection out: no second PREPARE
    assert again.credential_id == token.id and same is conn
    # A change committed elsewhere is seen by the prepared statement's next run.
    postgres.admin_sql(f"UPDATE api_tokens SET revoked_at = now() WHERE id = {token.id}",
                       database=db.database)
    assert look_up()[0] is None
    # A closed connection takes its prepared statement with it; a new one prepares anew.
    db.close_all()
    principal, fresh = look_up()
    assert principal is None and fresh is not conn and fresh.prepared == {"weco_token_by_hash"}


class _Careless:
    """A route that leaves a transaction open with a change in it (as a bug might)."""

    def __init__(self, db: peewee.Database) -> None:
        self.db = db

    def on_get(self, req, resp) -> None:
        self.db.execute_sql("BEGIN")
        User.update(email="changed@example.test").execute()


class _Read:
    def __init__(self, db: peewee.Database) -> None:
        self.db = db

    def on_get(self, req, resp) -> None:
        resp.media = {"email": User.get().email, "connection": id(self.db.connection())}


def test_a_transaction_a_request_left_open_is_rolled_back(app, client, db, admin):
    app.add_route("/test/careless", _Careless(db))
    app.add_route("/test/read", _Read(db))
    for _ in range(2):
        assert client.simulate_get("/test/careless").status_code == 200
        # On SQLite, read on the thread's own connection: it would see its uncommitted change.
        assert client.simulate_get("/test/read").json["email"] == "admin@example.test"
    db.close()
    db.connect()
    assert User.get_by_id(admin.id).email == "admin@example.test"


def test_a_requests_connection_stays_with_its_thread_on_sqlite_and_goes_back_to_the_pool_on_postgresql(
        app, client, db, admin):
    app.add_route("/test/read", _Read(db))
    connections = {client.simulate_get("/test/read").json["connection"] for _ in range(3)}
    if dialect(db) == "sqlite":
        assert not db.is_closed() and len(connections) == 1
    else:
        assert db.is_closed()
