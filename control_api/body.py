"""Reading a JSON request body: right content type, bounded size, an object."""

from __future__ import annotations

import json

import falcon


def read_json(req: falcon.Request) -> dict:
    media_type = (req.content_type or "").split(";", 1)[0].strip().lower()
    if media_type != falcon.MEDIA_JSON:
        raise falcon.HTTPUnsupportedMediaType(
            title="Unsupported media type", description="send the body as application/json"
        )
    limit = req.context.max_body_bytes
    # The middleware already refused a declared length over the limit. A chunked body
    # declares none; gunicorn then marks the input terminated and we read the raw
    # stream, still never more than one byte past the limit.
    chunked = req.content_length is None and req.env.get("wsgi.input_terminated")
    raw = (req.stream if chunked else req.bounded_stream).read(limit + 1)
    if len(raw) > limit:
        raise falcon.HTTPContentTooLarge(
            title="Body too large", description=f"the body must be at most {limit} bytes"
        )
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise falcon.HTTPBadRequest(
            title="Malformed JSON", description="the body is not valid JSON"
        ) from None
    if not isinstance(data, dict):
        raise falcon.HTTPBadRequest(title="Malformed JSON", description="the body must be a JSON object")
    return data


def require_str(data: dict, field: str, max_len: int = 1024) -> str:
    value = data.get(field)
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise falcon.HTTPBadRequest(
            title="Invalid request",
            description=f"'{field}' must be a non-empty string of at most {max_len} characters",
        )
    return value
