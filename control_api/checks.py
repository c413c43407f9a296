"""`weco check security`: source checks that gate every change, and the store role.

The store role: on PostgreSQL, the role FF_DATABASE_URL connects as must not be able
to disable or bypass the audit triggers (see pgroles.py).

The AAD lint: every encrypt/decrypt call in the shipped packages must bind
associated data: `aad=` (our crypto module), `EncryptionContext=` (AWS KMS), a
request carrying `additional_authenticated_data` (Cloud KMS), or a third positional
argument that is not None (an AEAD primitive: nonce, data, aad).
"""

from __future__ import annotations

import ast
from pathlib import Path

import peewee

from control_api import pgroles
from control_api.db import open_database
from control_api.settings import Settings

CHECKED_PACKAGES = ("control_api", "keyproviders")
_AAD_KEYWORDS = {"aad", "EncryptionContext"}


def _name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


def _binds_aad(call: ast.Call) -> bool:
    for keyword in call.keywords:
        if keyword.arg in _AAD_KEYWORDS:
            return not (isinstance(keyword.value, ast.Constant) and keyword.value.value is None)
        if keyword.arg == "request" and isinstance(keyword.value, ast.Dict):
            keys = {k.value for k in keyword.value.keys if isinstance(k, ast.Constant)}
            if "additional_authenticated_data" in keys:
                return True
    third = call.args[2] if len(call.args) >= 3 else None
    return third is not None and not (isinstance(third, ast.Constant) and third.value is None)


def aad_violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        f"{path}:{node.lineno}: {_name(node.func)}() without associated data (aad=)"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and _name(node.func) in {"encrypt", "decrypt"} and not _binds_aad(node)
    ]


def check_tree(root: Path) -> list[str]:
    problems: list[str] = []
    for package in CHECKED_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            problems += aad_violations(path)
    return problems


def check_store_role(settings: Settings) -> tuple[str | None, list[str]]:
    """(the role FF_DATABASE_URL connects as, why it is too strong); (None, []) on SQLite,
    which has no roles: whoever can write its file can rewrite it."""
    url = settings.effective_database_url
    if not url.startswith(("postgresql:", "postgres:")):
        return None, []
    db = open_database(url)
    try:
        role = db.execute_sql("SELECT current_user").fetchone()[0]
        return role, pgroles.service_role_problems(db)
    except peewee.DatabaseError as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return None, [f"could not ask the store: {reason}"]
    finally:
        db.close()
