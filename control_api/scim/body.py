"""A SCIM request body: application/scim+json (or application/json), at most 1 MiB,
parsed as JSON; anything else is a SCIM error (RFC 7644 section 3.12)."""

from __future__ import annotations

import json
from typing import BinaryIO

from control_api.scim.errors import ScimError, invalid_syntax

BODY_TYPES = ("application/scim+json", "application/json")
MAX_BODY = 1 << 20


def read(content_type: str | None, stream: BinaryIO) -> object:
    kind = (content_type or "").partition(";")[0].strip().lower()
    if kind not in BODY_TYPES:
        raise ScimError(415, "send the body as application/scim+json")
    raw = stream.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise ScimError(413, "the body is too large")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise invalid_syntax("the body is not JSON") from None
