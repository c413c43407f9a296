"""What the connected PostgreSQL role may do to the store, asked of the catalog.

Two questions, with opposite wishes. `weco db upgrade` needs a role strong enough
for the whole upgrade (create in the schema, own the tables it alters, create or at
least find weco_app), so it asks first and changes nothing when the answer is no.
The service needs a role too weak to undo the audit log's guards: the owner of
`audit_events` (or of its schema) can `ALTER TABLE ... DISABLE TRIGGER` or drop the
table, a superuser can do anything, and a CREATEROLE role can make itself a member
of the owner (PostgreSQL 15), so `weco check security` reports any of these.
"""

from __future__ import annotations

import peewee

from control_api.migrations import APP_ROLE

# The audit tables and the privileges on each that would let a role undo its guards.
# The service's sealer deletes sealed rows from the queue (a trigger lets it delete
# nothing else), so DELETE there is expected.
_AUDIT_TABLES = {
    "audit_events": ("UPDATE", "DELETE", "TRUNCATE", "TRIGGER"),
    "audit_queue": ("UPDATE", "TRUNCATE", "TRIGGER"),
    "audit_quarantine": ("UPDATE", "DELETE", "TRUNCATE", "TRIGGER"),
}


def _one(db: peewee.Database, sql: str, params: tuple = ()) -> tuple:
    return db.execute_sql(sql, params).fetchone()


def upgrade_shortfalls(db: peewee.Database) -> list[str]:
    """What the connected role lacks to run `weco db upgrade`; empty when it may."""
    role, superuser, createrole = _one(
        db, "SELECT rolname, rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user")
    if superuser:
        return []
    missing = []
    if not _one(db, "SELECT has_schema_privilege('public', 'CREATE')")[0]:
        missing.append(f"role {role} may not create in schema public "
                       f"(GRANT CREATE ON SCHEMA public TO {role})")
    app_role_exists = _one(db, "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = %s)", (APP_ROLE,))[0]
    if not app_role_exists and not createrole:
        missing.append(f"role {role} lacks CREATEROLE and the role {APP_ROLE} does not exist "
                       f"(have an administrator run CREATE ROLE {APP_ROLE} NOLOGIN, or grant CREATEROLE)")
    foreign = db.execute_sql(
        """SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'S')
             AND NOT pg_has_role(current_user, c.relowner, 'MEMBER')
           ORDER BY c.relname""").fetchall()
    by_owner: dict[str, list[str]] = {}
    for name, owner in foreign:
        by_owner.setdefault(owner, []).append(name)
    for owner, names in by_owner.items():
        missing.append(f"role {role} does not own the tables and sequences owned by {owner}: "
                       f"{', '.join(names)}")
    return missing


def service_role_problems(db: peewee.Database) -> list[str]:
    """Why the connected role could disable or bypass the audit triggers; empty when it cannot."""
    role, superuser, createrole = _one(
        db, "SELECT rolname, rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user")
    if superuser:
        return [f"{role} is a superuser: it can disable the audit triggers and rewrite audit rows"]
    problems = []
    if createrole:
        problems.append(f"{role} has CREATEROLE: it can join the role that owns the audit tables")
    for table, writes in _AUDIT_TABLES.items():
        problems += _table_problems(db, role, table, writes)
    return problems


def _table_problems(db: peewee.Database, role: str, table: str, writes: tuple[str, ...]) -> list[str]:
    row = _one(db, """SELECT pg_get_userbyid(c.relowner), pg_has_role(current_user, c.relowner, 'MEMBER'),
                             pg_get_userbyid(n.nspowner), pg_has_role(current_user, n.nspowner, 'MEMBER')
                      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE c.oid = to_regclass(%s)""", (table,))
    if row is None:
        return [f"{table} does not exist: run `weco db upgrade`"]
    problems = []
    table_owner, owns_table, schema_owner, owns_schema = row
    if owns_table:
        via = "" if table_owner == role else f" (as a member of {table_owner})"
        problems.append(f"{role} owns {table}{via}: it can DISABLE TRIGGER and rewrite its rows")
    elif owns_schema:
        via = "" if schema_owner == role else f" (as a member of {schema_owner})"
        problems.append(f"{role} owns the schema of {table}{via}: it can drop the table")
    granted = [privilege for privilege in writes
               if _one(db, "SELECT has_table_privilege(%s, %s)", (table, privilege))[0]]
    if granted and not owns_table:
        problems.append(f"{role} holds {', '.join(granted)} on {table}")
    return problems
