"""SCIM PATCH (RFC 7644 section 3.5.2) applied to a resource's JSON representation:
add, replace and remove, with or without a path; a path is an attribute, a sub-attribute
(`name.givenName`), a value path (`emails[type eq "work"].value`, `members[value eq "ID"]`)
or an extension's attribute or whole object (by its URN). Operation names are read
case-insensitively, as Entra ID sends them capitalised ("Replace").

The result is checked afterwards exactly as a PUT body is, so PATCH cannot store what a
replace would refuse."""

from __future__ import annotations

import dataclasses
import re

from control_api.scim import filters
from control_api.scim.errors import (
    invalid_path,
    invalid_syntax,
    invalid_value,
    mutability,
    names_schema,
    no_target,
)
from control_api.scim.schemas import PATCH

_PATH = re.compile(r"^(?P<attr>[^\[\]]+?)(?:\[(?P<filter>[^\[\]]*)\](?:\.(?P<sub>[A-Za-z$][\w$]*))?)?$")
MAX_OPERATIONS = 100


@dataclasses.dataclass(frozen=True)
class Shape:
    """What a resource type's representation holds, for PATCH."""

    names: dict[str, set[str]]  # lower-cased attribute -> its lower-cased sub-attributes
    canonical: dict[str, str]  # lower-cased attribute -> the key the representation uses
    urns: tuple[str, ...]  # the core schema, dropped from paths
    extensions: tuple[str, ...]  # extension schemas, kept in names (`urn:...:name`)
    read_only: frozenset[str]  # mutability error
    required: frozenset[str]  # may be replaced, not removed
    multi: frozenset[str]  # multi-valued complex attributes, the only ones a filter may select in


def apply(doc: dict, body: object, shape: Shape) -> dict:
    """`doc` with the PatchOp `body` applied."""
    if not names_schema(body, PATCH):
        raise invalid_syntax(f"a PATCH body must name the schema {PATCH}")
    operations = body.get("Operations", body.get("operations"))
    if not isinstance(operations, list) or not operations or len(operations) > MAX_OPERATIONS:
        raise invalid_syntax(f"'Operations' must be a list of 1..{MAX_OPERATIONS} operations")
    for operation in operations:
        if not isinstance(operation, dict):
            raise invalid_syntax("each operation must be an object")
        op = operation.get("op")
        if not isinstance(op, str) or op.lower() not in ("add", "replace", "remove"):
            raise invalid_syntax("each operation's 'op' must be add, replace or remove")
        path, value = operation.get("path"), operation.get("value")
        if path is not None and (not isinstance(path, str) or not path.strip()):
            raise invalid_path("'path' must be a non-empty string")
        if path is None:
            _without_path(doc, op.lower(), value, shape)
        else:
            _with_path(doc, op.lower(), path.strip(), value, "value" in operation, shape)
    return doc


def _without_path(doc: dict, op: str, value: object, shape: Shape) -> None:
    if op == "remove":
        raise no_target("a remove operation needs a 'path'")
    if not isinstance(value, dict):
        raise invalid_value(f"an {op} operation without a 'path' needs an object as its 'value'")
    for name, item in value.items():
        extension = next((u for u in shape.extensions if name.lower() == u.lower()), None)
        if extension is not None:
            if not isinstance(item, dict):
                raise invalid_value(f"{name!r} must be an object")
            for sub, sub_value in item.items():
                if sub.lower() != "schemas":  # a client's serialiser may repeat them here
                    _with_path(doc, op, f"{extension}:{sub}", sub_value, True, shape)
            continue
        _with_path(doc, op, name, item, True, shape)


def _with_path(doc: dict, op: str, path: str, value: object, has_value: bool, shape: Shape) -> None:
    extension = next((u.lower() for u in shape.extensions if path.lower() == u.lower()), None)
    if extension is not None:  # the whole extension object
        if op == "remove":
            for key in [k for k in doc if k.startswith(extension + ":")]:
                del doc[key]
            return
        _without_path(doc, op, {extension: value}, shape)
        return
    match = _PATH.match(path)
    if match is None:
        raise invalid_path(f"{path[:200]!r} is not a SCIM attribute path")
    parts = filters.resolve(match["attr"], shape.names, shape.urns, (), invalid_path)
    if parts[0] in shape.read_only:
        raise mutability(f"{match['attr']!r} cannot be changed")
    if op == "remove" and len(parts) == 1 and match["filter"] is None and parts[0] in shape.required:
        raise invalid_value(f"{match['attr']!r} is required: replace it instead of removing it")
    if op != "remove" and not has_value:
        raise invalid_value(f"an {op} operation needs a 'value'")
    key = shape.canonical.get(parts[0], parts[0])
    subs = shape.names[parts[0]]
    if match["filter"] is not None:
        if len(parts) != 1 or parts[0] not in shape.multi:
            raise invalid_path(f"{match['attr']!r} is not a multi-valued complex attribute")
        sub = match["sub"].lower() if match["sub"] else None
        if sub is not None and sub not in subs:
            raise invalid_path(f"{match['sub']!r} is not a sub-attribute of {match['attr']!r}")
        try:
            test = filters.parse(match["filter"], {s: set() for s in subs}, ())
        except Exception as exc:  # an invalidFilter inside a path is an invalidPath
            why = getattr(exc, "detail", exc)
            raise invalid_path(f"the filter in {path[:200]!r} is not valid: {why}") from None
        _filtered(doc, op, key, test, sub, value, match["filter"])
        return
    if len(parts) == 2:
        _sub_attribute(doc, op, key, parts[1], value, match["attr"])
        return
    current = doc.get(key)
    if op == "remove":
        if subs and isinstance(current, list) and isinstance(value, list):
            # Entra ID removes members by value: {"path": "members", "value": [{"value": ID}]}
            wanted = {str(v.get("value")) for v in value if isinstance(v, dict)}
            doc[key] = [e for e in current if not (isinstance(e, dict) and str(e.get("value")) in wanted)]
        else:
            doc.pop(key, None)
        return
    if op == "add" and subs and isinstance(current, list):
        items = value if isinstance(value, list) else [value]
        have = {str(e.get("value")) for e in current if isinstance(e, dict)}
        doc[key] = current + [v for v in items if not (isinstance(v, dict) and str(v.get("value")) in have)]
        return
    if op == "add" and isinstance(current, dict) and isinstance(value, dict):
        doc[key] = {**current, **value}
        return
    doc[key] = value


def _sub_attribute(doc: dict, op: str, key: str, sub: str, value: object, named: str) -> None:
    parent = doc.get(key)
    if op == "remove":
        for element in parent if isinstance(parent, list) else [parent]:
            if isinstance(element, dict):
                _pop(element, sub)
        return
    if parent is None:
        parent = doc[key] = {}
    if not isinstance(parent, dict):
        raise invalid_path(f"{named!r}: name a multi-valued attribute's elements with a filter")
    _pop(parent, sub)
    parent[sub] = value


def _filtered(doc: dict, op: str, key: str, test, sub: str | None, value: object, text: str) -> None:
    elements = doc.get(key) if isinstance(doc.get(key), list) else []
    matched = [e for e in elements if isinstance(e, dict) and test(e)]
    if op == "remove":
        if sub is None:
            doc[key] = [e for e in elements if not any(e is m for m in matched)]
        else:
            for element in matched:
                _pop(element, sub)
        return
    if not matched:
        # Entra ID replaces emails[type eq "work"].value on a user that has none yet.
        found = re.fullmatch(r'\s*type\s+eq\s+"([^"\\]*)"\s*', text, re.IGNORECASE)
        if found is None or sub is None:
            raise no_target(f"no element of {key!r} matches [{text[:200]}]")
        doc[key] = [*elements, {"type": found[1], sub: value}]
        return
    for element in matched:
        if sub is None:
            if not isinstance(value, dict):
                raise invalid_value("replacing a filtered element needs an object as its 'value'")
            element.clear()
            element.update(value)
        else:
            _pop(element, sub)
            element[sub] = value


def _pop(obj: dict, lowered: str) -> None:
    for name in [k for k in obj if k.lower() == lowered]:
        del obj[name]
