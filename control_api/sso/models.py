"""The SSO tables (migration 17): identity links, pending logins, accepted assertion ids."""

from __future__ import annotations

import peewee

from control_api.models import BaseModel, User


class SsoIdentity(BaseModel):
    user = peewee.ForeignKeyField(User, backref="sso_identities", on_delete="CASCADE")
    protocol = peewee.TextField()  # "saml" | "oidc"
    issuer = peewee.TextField()
    subject = peewee.TextField()
    created_at = peewee.DateTimeField()
    last_login_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "sso_identities"


class SsoLogin(BaseModel):
    """A login this browser started: the SAML AuthnRequest id, or for OIDC the digest
    of the state (the nonce and the PKCE verifier derive from the cookie)."""

    binding_hash = peewee.CharField(max_length=64, unique=True)
    protocol = peewee.TextField()
    request_id = peewee.TextField()
    created_at = peewee.DateTimeField()
    expires_at = peewee.DateTimeField()
    used_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "sso_logins"


class SsoSeen(BaseModel):
    """An assertion id (SAML) or ID token jti/hash (OIDC) accepted once, kept until it
    could no longer be valid anyway."""

    protocol = peewee.TextField()
    issuer = peewee.TextField()
    item = peewee.TextField()
    expires_at = peewee.DateTimeField()

    class Meta:
        table_name = "sso_seen"
