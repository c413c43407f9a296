"""peewee models over the tables m0012_documents creates (the migration owns the schema)."""

from __future__ import annotations

import peewee

from control_api.models import BaseModel, Site, User


class DocumentFile(BaseModel):
    """Content the store holds: an original PDF and the flattened copy made from it."""

    original_sha256 = peewee.CharField(max_length=64, primary_key=True)
    original_size = peewee.BigIntegerField()
    sha256 = peewee.CharField(max_length=64)  # the flattened copy: what is published
    size = peewee.BigIntegerField()
    pages = peewee.IntegerField()
    created_at = peewee.DateTimeField()

    class Meta:
        table_name = "document_files"


class Document(BaseModel):
    """One document of a site, at a position in the site's order."""

    site = peewee.ForeignKeyField(Site, on_delete="CASCADE")
    position = peewee.IntegerField()
    title = peewee.TextField()
    filename = peewee.TextField()
    file = peewee.ForeignKeyField(DocumentFile, column_name="original_sha256", field="original_sha256")
    scanned = peewee.BooleanField()
    uploaded_by = peewee.ForeignKeyField(User, column_name="uploaded_by", null=True, on_delete="SET NULL")
    created_at = peewee.DateTimeField()

    class Meta:
        table_name = "documents"
