"""peewee models over the WebAuthn tables of migration 16 (the migration owns the schema)."""

from __future__ import annotations

import peewee

from control_api.models import BaseModel, LoginChallenge, Session, User


class WebauthnUser(BaseModel):
    """A user's WebAuthn user handle: 32 random bytes (base64url), never the email, so an
    authenticator holds nothing that names the account (WebAuthn §14.6.1)."""

    user = peewee.ForeignKeyField(User, primary_key=True, on_delete="CASCADE")
    user_handle = peewee.TextField(unique=True)

    class Meta:
        table_name = "webauthn_users"


class WebauthnCredential(BaseModel):
    user = peewee.ForeignKeyField(User, backref="webauthn_credentials", on_delete="CASCADE")
    credential_id = peewee.TextField(unique=True)  # base64url
    public_key = peewee.TextField()  # base64url of the COSE key
    sign_count = peewee.BigIntegerField(default=0)
    aaguid = peewee.TextField()
    fmt = peewee.TextField()
    transports = peewee.TextField()  # JSON list
    backup_eligible = peewee.BooleanField()  # BE as registered: fixed for the credential's life
    backed_up = peewee.BooleanField()  # BS as last seen
    name = peewee.TextField()
    created_at = peewee.DateTimeField()
    last_used_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "webauthn_credentials"


class WebauthnChallenge(BaseModel):
    """One ceremony's challenge, stored as its SHA-256 only; used at most once."""

    challenge_hash = peewee.CharField(max_length=64, unique=True)
    purpose = peewee.TextField()  # register | second_factor | passwordless | step_up
    user = peewee.ForeignKeyField(User, null=True, on_delete="CASCADE")
    session = peewee.ForeignKeyField(Session, null=True, on_delete="CASCADE")
    login_challenge = peewee.ForeignKeyField(LoginChallenge, null=True, on_delete="CASCADE")
    scope = peewee.TextField(null=True)
    source_ip = peewee.TextField()
    created_at = peewee.DateTimeField()
    expires_at = peewee.DateTimeField()
    used_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "webauthn_challenges"
