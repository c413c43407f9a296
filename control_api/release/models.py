"""The row of each release bundle received for self-update (migration m0019)."""

from __future__ import annotations

import peewee

from control_api.models import BaseModel, User

STATES = ("received", "apply_requested", "applied", "failed")


class Release(BaseModel):
    version = peewee.TextField(unique=True)
    sha256 = peewee.CharField(max_length=64)
    tag = peewee.TextField()  # "" when untagged (the trusted comment's "-")
    state = peewee.TextField()
    received_by = peewee.ForeignKeyField(User, column_name="received_by")
    received_at = peewee.DateTimeField()
    apply_requested_by = peewee.ForeignKeyField(User, column_name="apply_requested_by", null=True)
    apply_requested_at = peewee.DateTimeField(null=True)
    finished_at = peewee.DateTimeField(null=True)
    error = peewee.TextField(null=True)

    class Meta:
        table_name = "releases"
