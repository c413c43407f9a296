"""Per-host grants beside the per-site ones, and four-eyes approvals: a request for one
destructive action with its exact parameters (bound by their digest), the approvals
other superadmins gave it (withdrawn ones kept, with when), and its consumption."""

from control_api.migrations.sqltypes import BIGINT, PK

VERSION = 13
NAME = "host_grants_approvals"


def up(db, dialect: str) -> None:
    pk, ref = PK[dialect], BIGINT[dialect]
    for sql in (
        f"""CREATE TABLE host_grants (
            host_id {ref} NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
            user_id {ref} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            PRIMARY KEY (host_id, user_id)
        )""",
        # No ON DELETE CASCADE from users: a request's history outlives its people.
        f"""CREATE TABLE approval_requests (
            id {pk},
            action TEXT NOT NULL,
            params_json TEXT NOT NULL,
            digest CHAR(64) NOT NULL,
            reason TEXT NOT NULL,
            requested_by {ref} NOT NULL REFERENCES users (id),
            approvals_needed INTEGER NOT NULL CHECK (approvals_needed >= 1),
            created_at TIMESTAMP NOT NULL,
            expires_at TIMESTAMP NOT NULL,
            canceled_at TIMESTAMP NULL,
            consumed_at TIMESTAMP NULL,
            expiry_recorded_at TIMESTAMP NULL
        )""",
        f"""CREATE TABLE approval_votes (
            id {pk},
            request_id {ref} NOT NULL REFERENCES approval_requests (id),
            approver_id {ref} NOT NULL REFERENCES users (id),
            approved_at TIMESTAMP NOT NULL,
            withdrawn_at TIMESTAMP NULL
        )""",
        "CREATE INDEX approval_votes_request ON approval_votes (request_id)",
        "CREATE INDEX host_grants_user ON host_grants (user_id)",
    ):
        db.execute_sql(sql)
