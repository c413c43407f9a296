"""Reading request input, in one place: the JSON body (media type and charset, size,
nesting, an object), path ids, query parameters and headers.

What gets past these readers is what the services and the store can take: text is
valid Unicode without NUL (PostgreSQL refuses NUL, neither store takes a lone
surrogate), integers fit the store's 64-bit range, and nesting stays shallow enough to
walk. Anything else is a 400 (415 for a body that is not UTF-8 JSON) naming the input.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import urllib.parse
from collections.abc import Collection

import falcon
from falcon.routing.converters import BaseConverter

from control_api.errors import ApiError

STORE_INT_MAX = 2**63 - 1  # SQLite's INTEGER and PostgreSQL's bigint
STORE_INT_MIN = -(2**63)
MAX_DEPTH = 16  # the deepest body any route reads has 2 levels
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


class InvalidRequest(ApiError):
    title = "Invalid request"


class MalformedJson(ApiError):
    title = "Malformed JSON"


class UnsupportedMediaType(ApiError):
    status = 415
    title = "Unsupported media type"


class BodyTooLarge(ApiError):
    status = 413
    title = "Body too large"


def bad_text(value: str) -> bool:
    """NUL or a lone surrogate: text no store takes as it is."""
    return _BAD_TEXT.search(value) is not None


# -- the JSON body -----------------------------------------------------------------

def _check_media_type(req: falcon.Request) -> None:
    media_type, _, params = (req.content_type or "").partition(";")
    charset = re.search(r"charset\s*=\s*\"?([^\";\s]*)", params, re.IGNORECASE)
    if media_type.strip().lower() != falcon.MEDIA_JSON or (charset and charset[1].lower() != "utf-8"):
        raise UnsupportedMediaType("send the body as application/json in UTF-8 (charset=utf-8 or none)")


class _OutOfRange(ValueError):
    pass


def _bounded_int(text: str) -> int:
    value = int(text)
    if not STORE_INT_MIN <= value <= STORE_INT_MAX:
        raise _OutOfRange(text)
    return value


def _number(text: str) -> int | float:
    """JSON Schema counts 27.0 as an integer, and so do we; every number the API takes
    is one. Others stay floats (and are refused where an integer is due)."""
    value = float(text)
    if not math.isfinite(value):
        raise _OutOfRange(text)
    return _bounded_int(str(int(value))) if value.is_integer() else value


def _refuse_constant(name: str) -> None:
    raise _OutOfRange(name)  # NaN, Infinity: not JSON, though Python reads them


def _check_tree(data: object) -> None:
    """Depth, and every string (keys too), without recursion."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if bad_text(value):
                raise InvalidRequest("text in the body must hold no NUL and no lone surrogate")
        elif isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise MalformedJson(f"the body is nested more than {MAX_DEPTH} levels deep")
            items = value.items() if isinstance(value, dict) else ((None, v) for v in value)
            for key, item in items:
                if key is not None:
                    stack.append((key, depth))
                stack.append((item, depth + 1))


def _parse(raw: bytes) -> object:
    try:
        return json.loads(raw, parse_int=_bounded_int, parse_float=_number,
                          parse_constant=_refuse_constant)
    except _OutOfRange:
        raise InvalidRequest(f"numbers in the body must be finite, and integers from {STORE_INT_MIN} "
                             f"to {STORE_INT_MAX}") from None
    except RecursionError:
        raise MalformedJson(f"the body is nested more than {MAX_DEPTH} levels deep") from None
    except ValueError:  # UnicodeDecodeError too
        raise MalformedJson("the body is not valid JSON in UTF-8") from None


def read_json(req: falcon.Request, fields: Collection[str] | None = None) -> dict:
    """The body as a JSON object; with `fields`, a 400 for any other top-level name.
    Read once per request: a guard that needs the body (four-eyes) and the responder
    see the same object."""
    data = req.context.get("json_body")
    if data is None:
        data = req.context.json_body = _read_object(req)
    unknown = set(data) - set(fields) if fields is not None else ()
    if unknown:
        raise InvalidRequest(f"unknown field(s): {', '.join(sorted(unknown))}")
    return data


def _read_object(req: falcon.Request) -> dict:
    _check_media_type(req)
    limit = req.context.max_body_bytes
    # The middleware already refused a declared length over the limit. A chunked body
    # declares none; gunicorn then marks the input terminated and we read the raw
    # stream, still never more than one byte past the limit.
    chunked = req.content_length is None and req.env.get("wsgi.input_terminated")
    raw = (req.stream if chunked else req.bounded_stream).read(limit + 1)
    if len(raw) > limit:
        raise BodyTooLarge(f"the body must be at most {limit} bytes")
    data = _parse(raw)
    if not isinstance(data, dict):
        raise MalformedJson("the body must be a JSON object")
    _check_tree(data)
    return data


def read_form(req: falcon.Request, max_bytes: int, max_fields: int) -> dict[str, list[str]]:
    """An application/x-www-form-urlencoded body in ASCII (an IdP's form post), or InvalidRequest."""
    raw = req.bounded_stream.read(max_bytes)
    try:
        return urllib.parse.parse_qs(raw.decode("ascii"), strict_parsing=False, max_num_fields=max_fields)
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest(f"the form must be ASCII with at most {max_fields} fields") from None


def require_str(data: dict, field: str, max_len: int = 1024) -> str:
    value = data.get(field)
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise InvalidRequest(f"'{field}' must be a non-empty string of at most {max_len} characters")
    return value


# -- path, query and headers -------------------------------------------------------

def require_param(req: falcon.Request, name: str, max_len: int) -> str:
    """A required, non-empty query parameter of at most `max_len` characters."""
    value = req.get_param(name)
    if not value or len(value) > max_len:
        raise InvalidRequest(f"'{name}' is required: at most {max_len} characters", title="Invalid parameter")
    return value


class StoreId(BaseConverter):
    """`{name:id}` in a route: a row id, 1 to the store's largest integer, in ASCII
    digits. Anything else matches no route, so it is a 404 like an id with no row."""

    def convert(self, value: str) -> int | None:
        if not (value.isascii() and value.isdigit()) or len(value) > 19:
            return None
        number = int(value)
        return number if 1 <= number <= STORE_INT_MAX else None


def check_text(req: falcon.Request) -> None:
    """Refuse a path, query or header that holds NUL or a lone surrogate (the WSGI
    server passes header bytes through; the query is percent-decoded)."""
    parts = [req.path]
    for name, value in req.params.items():
        parts.append(name)
        parts.extend(value if isinstance(value, list) else (value,))
    parts.extend(value for name, value in req.env.items()
                 if name.startswith("HTTP_") and isinstance(value, str))
    if bad_text("".join(parts)):
        raise InvalidRequest("the path, query and headers must hold no NUL and no lone surrogate")


def _int_or_none(raw: str, low: int, high: int) -> int | None:
    if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(high)):
        return None
    number = int(raw)
    return number if low <= number <= high else None


def _bounded(raw: str, low: int, high: int, what: str) -> int:
    number = _int_or_none(raw, low, high)
    if number is None:
        raise InvalidRequest(f"{what} must be an integer from {low} to {high}")
    return number


def query_int(req: falcon.Request, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = req.get_param(name)
    return default if raw is None else _bounded(raw, low, high, f"'{name}'")


def header_int(req: falcon.Request, name: str, low: int, high: int) -> int | None:
    """An integer header, or None when it is absent."""
    raw = req.get_header(name)
    return None if raw is None else _bounded(raw, low, high, f"the {name} header")


def query_time(req: falcon.Request, name: str) -> dt.datetime | None:
    """An ISO 8601 time parameter as naive UTC (the store's form), or None when absent."""
    raw = req.get_param(name)
    if raw is None:
        return None
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if value.tzinfo is not None:
            # Year 1 or 9999 with an offset falls off the calendar here: OverflowError.
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        raise InvalidRequest(f"'{name}' must be an ISO 8601 time", title="Invalid parameter") from None
    return value
