"""The SCIM tables (migration 18): provisioning tokens, the SCIM view of the accounts
an IdP provisions, its groups and their members."""

from __future__ import annotations

import peewee

from control_api.models import BaseModel, User


class ScimToken(BaseModel):
    name = peewee.TextField(unique=True)
    token_hash = peewee.CharField(max_length=64, unique=True)  # SHA-256 of the value
    created_at = peewee.DateTimeField()
    revoked_at = peewee.DateTimeField(null=True)
    last_used_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "scim_tokens"


class ScimUser(BaseModel):
    scim_id = peewee.TextField(unique=True)
    user = peewee.ForeignKeyField(User, backref="scim", on_delete="CASCADE", unique=True)
    user_name = peewee.TextField()
    user_name_key = peewee.TextField(unique=True)
    external_id = peewee.TextField(null=True)
    attributes = peewee.TextField()  # JSON: the stored SCIM attributes besides the columns
    created_at = peewee.DateTimeField()
    updated_at = peewee.DateTimeField()
    version = peewee.IntegerField(default=1)

    class Meta:
        table_name = "scim_users"


class ScimGroup(BaseModel):
    scim_id = peewee.TextField(unique=True)
    display_name = peewee.TextField()
    display_key = peewee.TextField(unique=True)
    external_id = peewee.TextField(null=True)
    created_at = peewee.DateTimeField()
    updated_at = peewee.DateTimeField()
    version = peewee.IntegerField(default=1)

    class Meta:
        table_name = "scim_groups"


class ScimMember(BaseModel):
    group = peewee.ForeignKeyField(ScimGroup, backref="members", on_delete="CASCADE")
    member = peewee.ForeignKeyField(ScimUser, backref="memberships", on_delete="CASCADE")

    class Meta:
        table_name = "scim_members"
        primary_key = peewee.CompositeKey("group", "member")
