"""peewee models over the tables that `control_api/migrations` creates.

The migrations own the schema; these classes only map it (no create_table here).
"""

from __future__ import annotations

import peewee

from control_api.db import database_proxy

ROLES = ("superadmin", "admin")


class BaseModel(peewee.Model):
    class Meta:
        database = database_proxy
        legacy_table_names = False


class User(BaseModel):
    email = peewee.TextField()
    email_key = peewee.TextField(unique=True)
    role = peewee.TextField()
    password_hash = peewee.TextField()
    created_at = peewee.DateTimeField()
    disabled_at = peewee.DateTimeField(null=True)
    break_glass = peewee.BooleanField(default=False)
    email_2fa_at = peewee.DateTimeField(null=True)
    # Bumped by every credential change: what a session or challenge was made under.
    credential_epoch = peewee.IntegerField(default=0)

    class Meta:
        table_name = "users"

    def public(self) -> dict:
        return {"id": self.id, "email": self.email, "role": self.role}


class Session(BaseModel):
    token_hash = peewee.CharField(max_length=64, unique=True)
    user = peewee.ForeignKeyField(User, backref="sessions", on_delete="CASCADE")
    created_at = peewee.DateTimeField()
    last_seen_at = peewee.DateTimeField()
    expires_at = peewee.DateTimeField()
    revoked_at = peewee.DateTimeField(null=True)
    source_ip = peewee.TextField()
    user_agent = peewee.TextField()
    second_factor = peewee.TextField(null=True)  # the factor the login passed, if any
    credential_epoch = peewee.IntegerField(default=0)  # the user's, when the login checked it
    login_method = peewee.TextField(null=True)  # password, passkey, saml, oidc (None: before m0016)

    class Meta:
        table_name = "sessions"


class ApiToken(BaseModel):
    token_hash = peewee.CharField(max_length=64, unique=True)
    user = peewee.ForeignKeyField(User, backref="api_tokens", on_delete="CASCADE")
    name = peewee.TextField()
    created_at = peewee.DateTimeField()
    expires_at = peewee.DateTimeField(null=True)
    revoked_at = peewee.DateTimeField(null=True)
    last_used_at = peewee.DateTimeField(null=True)
    minted_via = peewee.TextField(null=True)  # operator, or the minting session's login_method

    class Meta:
        table_name = "api_tokens"


class AuditQueue(BaseModel):
    """Events recorded by committed mutations, waiting to be sealed into the chain."""

    event_json = peewee.TextField()
    witness_key_id = peewee.TextField()
    signature = peewee.TextField()
    queued_at = peewee.DateTimeField()

    class Meta:
        table_name = "audit_queue"


class AuditEvent(BaseModel):
    """A sealed audit row. Append-only: the database refuses UPDATE and DELETE."""

    seq = peewee.BigIntegerField(primary_key=True)
    event_id = peewee.TextField(unique=True)
    occurred_at = peewee.DateTimeField()
    actor = peewee.TextField()
    action = peewee.TextField()
    target = peewee.TextField()
    event_json = peewee.TextField()
    witness_key_id = peewee.TextField()
    signature = peewee.TextField()
    mac_key_id = peewee.TextField()
    prev_mac = peewee.CharField(max_length=64)
    mac = peewee.CharField(max_length=64)

    class Meta:
        table_name = "audit_events"

    CHAIN_FIELDS = ("seq", "event_id", "occurred_at", "actor", "action", "target", "event_json",
                    "witness_key_id", "signature", "mac_key_id", "prev_mac", "mac")


class MasterKey(BaseModel):
    """A master secret the store has used: active, the target of a rotation, or retired."""

    key_id = peewee.TextField(primary_key=True)
    provider_uri = peewee.TextField()
    state = peewee.TextField()
    created_at = peewee.DateTimeField()
    retired_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "master_keys"


class TotpCredential(BaseModel):
    """A user's TOTP seed, encrypted (AAD: totp_credentials.seed, the user id)."""

    user = peewee.ForeignKeyField(User, primary_key=True, on_delete="CASCADE")
    seed = peewee.TextField()
    confirmed_at = peewee.DateTimeField(null=True)
    last_step = peewee.BigIntegerField(default=0)
    created_at = peewee.DateTimeField()

    class Meta:
        table_name = "totp_credentials"


class RecoveryCode(BaseModel):
    user = peewee.ForeignKeyField(User, on_delete="CASCADE")
    code_hash = peewee.CharField(max_length=64)
    used_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "recovery_codes"


class LoginChallenge(BaseModel):
    token_hash = peewee.CharField(max_length=64, unique=True)
    user = peewee.ForeignKeyField(User, on_delete="CASCADE")
    expires_at = peewee.DateTimeField()
    attempts = peewee.IntegerField(default=0)
    used_at = peewee.DateTimeField(null=True)
    email_code_hash = peewee.CharField(max_length=64, null=True)
    email_code_expires_at = peewee.DateTimeField(null=True)
    email_code_sent_at = peewee.DateTimeField(null=True)
    created_at = peewee.DateTimeField(null=True)  # None: made before m0009, treated as expired
    credential_epoch = peewee.IntegerField(default=0)  # the user's, when the password was checked

    class Meta:
        table_name = "login_challenges"


class StepUpToken(BaseModel):
    token_hash = peewee.CharField(max_length=64, unique=True)
    user = peewee.ForeignKeyField(User, on_delete="CASCADE")
    session = peewee.ForeignKeyField(Session, on_delete="CASCADE")
    scope = peewee.TextField()
    expires_at = peewee.DateTimeField()

    class Meta:
        table_name = "step_up_tokens"


class SystemState(BaseModel):
    name = peewee.TextField(primary_key=True)
    value = peewee.TextField()

    class Meta:
        table_name = "system_state"


class Site(BaseModel):
    slug = peewee.TextField(unique=True)
    domain = peewee.TextField()
    created_at = peewee.DateTimeField()

    class Meta:
        table_name = "sites"


class Host(BaseModel):
    name = peewee.TextField(unique=True)
    address = peewee.TextField()
    port = peewee.IntegerField()
    ssh_user = peewee.TextField()
    connection = peewee.TextField()
    ssh_private_key = peewee.TextField()  # encrypted: AAD (hosts, ssh_private_key, id)
    ssh_key_fingerprint = peewee.TextField()
    vars_json = peewee.TextField()
    created_at = peewee.DateTimeField()
    ssh_host_key = peewee.TextField(default="")  # pinned: "TYPE BASE64", '' for none
    ssh_host_key_pending = peewee.TextField(default="")  # scanned, awaiting confirmation
    ssh_private_key_next = peewee.TextField(null=True)  # staged by a rotation: AAD (hosts, ..._next, id)

    class Meta:
        table_name = "hosts"


class SiteHost(BaseModel):
    site = peewee.ForeignKeyField(Site, on_delete="CASCADE")
    host = peewee.ForeignKeyField(Host, on_delete="CASCADE")

    class Meta:
        table_name = "site_hosts"
        primary_key = peewee.CompositeKey("site", "host")


class SiteGrant(BaseModel):
    site = peewee.ForeignKeyField(Site, on_delete="CASCADE")
    user = peewee.ForeignKeyField(User, on_delete="CASCADE")

    class Meta:
        table_name = "site_grants"
        primary_key = peewee.CompositeKey("site", "user")


class HostGrant(BaseModel):
    host = peewee.ForeignKeyField(Host, on_delete="CASCADE")
    user = peewee.ForeignKeyField(User, on_delete="CASCADE")

    class Meta:
        table_name = "host_grants"
        primary_key = peewee.CompositeKey("host", "user")


class ApprovalRequest(BaseModel):
    action = peewee.TextField()
    params_json = peewee.TextField()  # canonical JSON of the action's exact parameters
    digest = peewee.CharField(max_length=64)  # what an approval is bound to
    reason = peewee.TextField()
    requested_by = peewee.ForeignKeyField(User, column_name="requested_by")
    approvals_needed = peewee.IntegerField()
    created_at = peewee.DateTimeField()
    expires_at = peewee.DateTimeField()
    canceled_at = peewee.DateTimeField(null=True)
    consumed_at = peewee.DateTimeField(null=True)
    expiry_recorded_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "approval_requests"


class ApprovalVote(BaseModel):
    request = peewee.ForeignKeyField(ApprovalRequest, column_name="request_id")
    approver = peewee.ForeignKeyField(User, column_name="approver_id")
    approved_at = peewee.DateTimeField()
    withdrawn_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "approval_votes"


class Run(BaseModel):
    playbook = peewee.TextField()
    site = peewee.ForeignKeyField(Site, null=True, on_delete="SET NULL")
    target_json = peewee.TextField()
    extra_vars_json = peewee.TextField()
    status = peewee.TextField()
    requested_by = peewee.ForeignKeyField(User, column_name="requested_by")
    idempotency_key = peewee.TextField(null=True)
    request_digest = peewee.CharField(max_length=64)
    lock_slug = peewee.TextField(null=True)
    created_at = peewee.DateTimeField()
    started_at = peewee.DateTimeField(null=True)
    finished_at = peewee.DateTimeField(null=True)
    worker = peewee.TextField(null=True)
    lease_expires_at = peewee.DateTimeField(null=True)
    cancel_requested_at = peewee.DateTimeField(null=True)
    rc = peewee.IntegerField(null=True)
    stats_json = peewee.TextField(null=True)
    error = peewee.TextField(null=True)

    class Meta:
        table_name = "runs"


class RunEvent(BaseModel):
    run = peewee.ForeignKeyField(Run, on_delete="CASCADE")
    seq = peewee.IntegerField()
    event = peewee.TextField()
    host = peewee.TextField(null=True)
    task = peewee.TextField(null=True)
    stdout = peewee.TextField()
    data_json = peewee.TextField()
    created_at = peewee.DateTimeField()

    class Meta:
        table_name = "run_events"


class SlugLock(BaseModel):
    slug = peewee.TextField(primary_key=True)
    run = peewee.ForeignKeyField(Run)
    acquired_at = peewee.DateTimeField()

    class Meta:
        table_name = "slug_locks"
