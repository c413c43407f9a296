"""PostgreSQL roles, for real: `weco db upgrade` checks what its role may do before it
changes anything, and `weco check security` reports a service that connects as a role
able to disable or bypass the audit triggers."""

from __future__ import annotations

import itertools

import psycopg2
import pytest

from control_api.migrations import APP_ROLE
from tests.conftest import run_weco
from tests.peers.postgres import PostgresCluster

_names = itertools.count()


def query(cluster: PostgresCluster, database: str, sql: str) -> list[tuple]:
    conn = psycopg2.connect(host="127.0.0.1", port=cluster.port, user="postgres", dbname=database)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


def owned_database(cluster: PostgresCluster, *role_options: str) -> tuple[str, str]:
    """A new database owned by a new login role that is not a superuser: (role, database)."""
    n = next(_names)
    role, database = f"weco_owner_{n}", f"weco_roles_{n}"
    cluster.admin_sql(f"CREATE ROLE {role} LOGIN {' '.join(role_options)}")
    cluster.admin_sql(f"CREATE DATABASE {database} OWNER {role}")
    return role, database


def env_for(tmp_path, cluster: PostgresCluster, database: str, user: str) -> dict:
    return {"FF_ENV": "dev", "FF_DATA_DIR": str(tmp_path / "var"),
            "FF_DATABASE_URL": cluster.url(database, user)}


# -- weco db upgrade ------------------------------------------------------------------------


@pytest.fixture
def bare_postgres():
    """A cluster of its own: roles are cluster-wide, and this one has no weco_app yet."""
    cluster = PostgresCluster().start()
    yield cluster
    cluster.stop()


def test_an_owner_without_createrole_is_told_what_is_missing_and_nothing_changes(tmp_path, bare_postgres):
    owner, database = owned_database(bare_postgres)
    env = env_for(tmp_path, bare_postgres, database, owner)
    refused = run_weco(env, "db", "upgrade")
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert "CREATEROLE" in refused.stderr and APP_ROLE in refused.stderr and owner in refused.stderr
    assert "nothing was changed" in refused.stderr
    assert query(bare_postgres, database, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'") == []
    assert query(bare_postgres, "postgres", f"SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}'") == []

    # Once an administrator has created the role, the owner needs no CREATEROLE.
    bare_postgres.admin_sql(f"CREATE ROLE {APP_ROLE} NOLOGIN")
    done = run_weco(env, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    privileges = query(bare_postgres, database, f"""
        SELECT has_table_privilege('{APP_ROLE}', 'users', 'INSERT'),
               has_table_privilege('{APP_ROLE}', 'audit_events', 'INSERT'),
               has_table_privilege('{APP_ROLE}', 'audit_events', 'UPDATE')""")
    assert privileges == [(True, True, False)]
    assert query(bare_postgres, database, "SELECT action FROM audit_events") == [("db.upgrade",)]


def test_a_role_that_does_not_own_the_tables_is_refused(tmp_path, postgres):
    _, database = owned_database(postgres)
    superuser_env = env_for(tmp_path, postgres, database, "postgres")
    assert run_weco(superuser_env, "db", "upgrade").returncode == 0  # tables owned by postgres
    other = f"weco_other_{next(_names)}"
    postgres.admin_sql(f"CREATE ROLE {other} LOGIN CREATEROLE")
    postgres.admin_sql(f"GRANT CREATE ON SCHEMA public TO {other}", database=database)
    refused = run_weco(env_for(tmp_path, postgres, database, other), "db", "upgrade")
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1, refused.stderr
    assert "audit_events" in refused.stderr and "owned by postgres" in refused.stderr


# -- weco check security --------------------------------------------------------------------


def check_security(tmp_path, cluster, database, user):
    return run_weco(env_for(tmp_path, cluster, database, user), "check", "security")


def test_check_security_reports_a_service_connected_as_the_owner(tmp_path, postgres):
    owner, database = owned_database(postgres)
    assert run_weco(env_for(tmp_path, postgres, database, owner), "db", "upgrade").returncode == 0
    result = check_security(tmp_path, postgres, database, owner)
    assert result.returncode == 1
    assert f"{owner} owns audit_events" in result.stdout and "DISABLE TRIGGER" in result.stdout


def test_check_security_reports_a_superuser(tmp_path, postgres):
    _, database = owned_database(postgres)
    assert run_weco(env_for(tmp_path, postgres, database, "postgres"), "db", "upgrade").returncode == 0
    result = check_security(tmp_path, postgres, database, "postgres")
    assert result.returncode == 1 and "postgres is a superuser" in result.stdout


def test_check_security_accepts_a_login_role_that_is_only_a_member_of_weco_app(tmp_path, postgres):
    owner, database = owned_database(postgres)
    assert run_weco(env_for(tmp_path, postgres, database, owner), "db", "upgrade").returncode == 0
    service = f"weco_service_{next(_names)}"
    postgres.admin_sql(f"CREATE ROLE {service} LOGIN IN ROLE {APP_ROLE}")
    result = check_security(tmp_path, postgres, database, service)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"store role: {service} cannot" in result.stdout


def test_check_security_reports_a_service_that_owns_or_truncates_the_queue_or_quarantine(tmp_path, postgres):
    """The queue and the quarantine are guarded by triggers too: whoever owns them, or
    holds TRUNCATE on them, can undo those guards."""
    owner, database = owned_database(postgres)
    assert run_weco(env_for(tmp_path, postgres, database, owner), "db", "upgrade").returncode == 0
    service = f"weco_service_{next(_names)}"
    postgres.admin_sql(f"CREATE ROLE {service} LOGIN IN ROLE {APP_ROLE}")
    postgres.admin_sql(f"GRANT TRUNCATE ON audit_queue TO {service}", database=database)
    postgres.admin_sql(f"ALTER TABLE audit_quarantine OWNER TO {service}", database=database)
    result = check_security(tmp_path, postgres, database, service)
    assert result.returncode == 1, result.stdout
    assert f"{service} holds TRUNCATE on audit_queue" in result.stdout
    assert f"{service} owns audit_quarantine" in result.stdout
