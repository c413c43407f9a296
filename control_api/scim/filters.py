"""SCIM filters (RFC 7644 section 3.4.2.2) parsed into a predicate over a resource's
JSON representation: attribute expressions (eq ne co sw ew gt ge lt le pr), and/or/not,
parentheses, value paths (`emails[type eq "work"]`) and the form the big IdPs send,
`emails[type eq "work"].value eq "..."`.

Attributes are named case-insensitively, with or without their schema URN; a filter
naming an attribute the resource type does not have is refused (invalidFilter), as is
any text that is not of the grammar. Strings compare case-insensitively except for the
case-exact attributes (id, externalId), as RFC 7643 declares them."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from control_api.scim.errors import invalid_filter

MAX_FILTER = 2000
_TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<punct>[()\[\]])|'
                    r'(?P<word>[A-Za-z0-9_$:.\-+]+))')
_COMPARE = {"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"}
CASE_EXACT = {"id", "externalid"}

Predicate = Callable[[dict], bool]


def tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None:
            raise invalid_filter(f"the filter cannot be read at character {pos + 1}")
        kind = match.lastgroup
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


class _Parser:
    def __init__(self, text: str, attributes: dict[str, set[str]], urns: tuple[str, ...]) -> None:
        self.items, self.at = tokens(text), 0
        self.attributes, self.urns = attributes, urns

    def peek(self) -> tuple[str, str] | None:
        return self.items[self.at] if self.at < len(self.items) else None

    def take(self) -> tuple[str, str]:
        item = self.peek()
        if item is None:
            raise invalid_filter("the filter ends too early")
        self.at += 1
        return item

    def expect(self, value: str) -> None:
        _kind, got = self.take()
        if got != value:
            raise invalid_filter(f"expected {value!r} in the filter, not {got!r}")

    def keyword(self, *words: str) -> str | None:
        item = self.peek()
        if item and item[0] == "word" and item[1].lower() in words:
            self.at += 1
            return item[1].lower()
        return None

    def parse(self) -> Predicate:
        predicate = self.disjunction(())
        if self.peek() is not None:
            raise invalid_filter(f"unexpected {self.peek()[1]!r} in the filter")
        return predicate

    def disjunction(self, scope: tuple[str, ...]) -> Predicate:
        left = self.conjunction(scope)
        while self.keyword("or"):
            right, first = self.conjunction(scope), left
            left = lambda r, a=first, b=right: a(r) or b(r)  # noqa: E731
        return left

    def conjunction(self, scope: tuple[str, ...]) -> Predicate:
        left = self.unary(scope)
        while self.keyword("and"):
            right, first = self.unary(scope), left
            left = lambda r, a=first, b=right: a(r) and b(r)  # noqa: E731
        return left

    def unary(self, scope: tuple[str, ...]) -> Predicate:
        if self.keyword("not"):
            self.expect("(")
            inner = self.disjunction(scope)
            self.expect(")")
            return lambda r: not inner(r)
        item = self.peek()
        if item and item[1] == "(":
            self.take()
            inner = self.disjunction(scope)
            self.expect(")")
            return inner
        return self.expression(scope)

    def path(self, scope: tuple[str, ...]) -> tuple[str, ...]:
        kind, word = self.take()
        if kind != "word":
            raise invalid_filter(f"expected an attribute name in the filter, not {word!r}")
        return resolve(word, self.attributes, self.urns, scope, invalid_filter)

    def expression(self, scope: tuple[str, ...]) -> Predicate:
        path = self.path(scope)
        item = self.peek()
        if item and item[1] == "[":
            if scope or len(path) != 1:
                raise invalid_filter("a value path cannot be nested")
            self.take()
            inner = self.disjunction(path)
            self.expect("]")
            sub = None
            following = self.peek()
            if following and following[0] == "word" and following[1].startswith("."):
                self.take()
                sub = resolve(path[0] + following[1], self.attributes, self.urns, (), invalid_filter)
            if sub is None:
                return lambda r: any(inner(e) for e in _elements(r, path[0]))
            test = self.comparison(sub[1:])
            return lambda r: any(inner(e) and test(e) for e in _elements(r, path[0]))
        # Inside [ ], the attribute is the element's own (type, value ...).
        return self.comparison(path[len(scope):])

    def comparison(self, path: tuple[str, ...]) -> Predicate:
        op = self.keyword("pr", *_COMPARE)
        if op is None:
            raise invalid_filter("expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr)")
        if op == "pr":
            return lambda r: any(v not in (None, "", [], {}) for v in values(r, path))
        kind, raw = self.take()
        literal = kind == "word" and (raw in ("true", "false", "null") or re.fullmatch(r"-?\d+(\.\d+)?", raw))
        if kind == "str" or literal:
            value = json.loads(raw)
        else:
            raise invalid_filter(f"{raw!r} is not a value (strings are quoted)")
        exact = path[-1] in CASE_EXACT
        return lambda r: any(_compare(op, v, value, exact) for v in values(r, path))


def resolve(word: str, attributes: dict[str, set[str]], urns: tuple[str, ...], scope: tuple[str, ...],
            error: Callable) -> tuple[str, ...]:
    """A lower-cased attribute path (top, sub) the resource type has, or `error`."""
    # A URN has dots of its own (2.0): split it off at its last colon first. The core
    # schema's URN is dropped; an extension's stays part of the attribute's name.
    prefix, colon, rest = word.lower().rpartition(":")
    dotted = rest.split(".")
    if colon and prefix not in {u.lower() for u in urns}:
        dotted[0] = f"{prefix}:{dotted[0]}"
    parts = tuple(dotted)
    if scope:
        parts = scope + parts
    known = parts[0] in attributes and (len(parts) == 1 or parts[1] in attributes[parts[0]])
    if len(parts) > 2 or not known:
        raise error(f"{word!r} is not an attribute of this resource type")
    return parts


def _elements(resource: dict, top: str) -> list[dict]:
    value = _get(resource, top)
    if isinstance(value, list):
        return [e for e in value if isinstance(e, dict)]
    return [value] if isinstance(value, dict) else []


def _get(obj: dict, name: str):
    for key, value in obj.items():
        if key.lower() == name:
            return value
    return None


def values(resource: dict, path: tuple[str, ...]) -> list:
    value = _get(resource, path[0])
    items = value if isinstance(value, list) else [value]
    if len(path) == 1:
        return [v.get("value") if isinstance(v, dict) and isinstance(value, list) else v for v in items]
    return [_get(v, path[1]) for v in items if isinstance(v, dict)]


def _compare(op: str, have, want, exact: bool) -> bool:
    if op == "ne":
        return not _compare("eq", have, want, exact)
    if have is None:
        return False
    if isinstance(want, bool) or isinstance(have, bool):
        return op == "eq" and isinstance(have, bool) and have is want
    if isinstance(have, str) and isinstance(want, str):
        if not exact:
            have, want = have.lower(), want.lower()
        return {"eq": have == want, "co": want in have, "sw": have.startswith(want),
                "ew": have.endswith(want), "gt": have > want, "ge": have >= want,
                "lt": have < want, "le": have <= want}[op]
    if op == "eq":
        return have == want
    return False


def parse(text: str, attributes: dict[str, set[str]], urns: tuple[str, ...]) -> Predicate:
    if len(text) > MAX_FILTER:
        raise invalid_filter(f"a filter may be at most {MAX_FILTER} characters")
    return _Parser(text, attributes, urns).parse()
