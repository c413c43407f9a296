"""Sites and their hosts (SSH keys encrypted), per-site grants, and audited runs:
the run queue, each run's stored Ansible events, and the per-slug run locks."""

from control_api.migrations.sqltypes import BIGINT, PK

VERSION = 6
NAME = "sites_runs"


def up(db, dialect: str) -> None:
    pk, ref = PK[dialect], BIGINT[dialect]
    for sql in (
        f"""CREATE TABLE sites (
            id {pk},
            slug TEXT NOT NULL UNIQUE,
            domain TEXT NOT NULL,
            created_at TIMESTAMP NOT NULL
        )""",
        f"""CREATE TABLE hosts (
            id {pk},
            name TEXT NOT NULL UNIQUE,
            address TEXT NOT NULL,
            port INTEGER NOT NULL,
            ssh_user TEXT NOT NULL,
            connection TEXT NOT NULL,
            ssh_private_key TEXT NOT NULL,
            ssh_key_fingerprint TEXT NOT NULL,
            vars_json TEXT NOT NULL,
            created_at TIMESTAMP NOT NULL
        )""",
        f"""CREATE TABLE site_hosts (
            site_id {ref} NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
            host_id {ref} NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
            PRIMARY KEY (site_id, host_id)
        )""",
        f"""CREATE TABLE site_grants (
            site_id {ref} NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
            user_id {ref} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            PRIMARY KEY (site_id, user_id)
        )""",
        f"""CREATE TABLE runs (
            id {pk},
            playbook TEXT NOT NULL,
            site_id {ref} NULL REFERENCES sites (id) ON DELETE SET NULL,
            target_json TEXT NOT NULL,
            extra_vars_json TEXT NOT NULL,
            status TEXT NOT NULL,
            requested_by {ref} NOT NULL REFERENCES users (id),
            idempotency_key TEXT NULL,
            request_digest CHAR(64) NOT NULL,
            lock_slug TEXT NULL,
            created_at TIMESTAMP NOT NULL,
            started_at TIMESTAMP NULL,
            finished_at TIMESTAMP NULL,
            worker TEXT NULL,
            lease_expires_at TIMESTAMP NULL,
            cancel_requested_at TIMESTAMP NULL,
            rc INTEGER NULL,
            stats_json TEXT NULL,
            error TEXT NULL,
            UNIQUE (requested_by, idempotency_key)
        )""",
        "CREATE INDEX runs_status ON runs (status, id)",
        f"""CREATE TABLE run_events (
            id {pk},
            run_id {ref} NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            event TEXT NOT NULL,
            host TEXT NULL,
            task TEXT NULL,
            stdout TEXT NOT NULL,
            data_json TEXT NOT NULL,
            created_at TIMESTAMP NOT NULL,
            UNIQUE (run_id, seq)
        )""",
        f"""CREATE TABLE slug_locks (
            slug TEXT PRIMARY KEY,
            run_id {ref} NOT NULL REFERENCES runs (id),
            acquired_at TIMESTAMP NOT NULL
        )""",
    ):
        db.execute_sql(sql)
