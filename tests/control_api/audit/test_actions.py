"""The registry of audit actions (control_api/audit/actions.py) and the code agree: every
action the code records is registered, and every registered action is recorded
somewhere. Read from the source, so an action no test exercises is still checked."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from control_api import authz
from control_api.approvals import COVERED
from control_api.audit.actions import ACTIONS, NAMES
from control_api.auth.guard import KINDS

PACKAGE = Path(__file__).resolve().parents[3] / "control_api"
# Calls that record an action, and where the action is among their arguments.
RECORDERS = {"record": 1, "record_alone": 1, "end_session": 2}
# The one action built from parts: a failed credential check of each kind.
FAILED_CHECK = "auth.{}_failed"
# What actions are about; a string in the code shaped like NAMESPACE.verb is an action.
NAMESPACES = ("db", "user", "auth", "token", "site", "host", "run", "master_secret", "audit", "anomaly",
              "backup", "evidence", "approval", "license", "document", "sso", "scim", "release")


def _trees() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text(), str(path)) for path in sorted(PACKAGE.rglob("*.py"))}


def _action_argument(call: ast.Call) -> ast.expr | None:
    name = call.func.attr if isinstance(call.func, ast.Attribute) else None
    if name not in RECORDERS or (isinstance(call.func.value, ast.Attribute)
                                 and call.func.value.attr == "refusals"):  # RefusalLog.record: no action
        return None
    keyword = next((k.value for k in call.keywords if k.arg == "action"), None)
    position = RECORDERS[name]
    return keyword or (call.args[position] if len(call.args) > position else None)


def _template(node: ast.JoinedStr) -> str:
    return "".join(part.value if isinstance(part, ast.Constant) else "{}" for part in node.values)


def test_every_action_recorded_with_a_literal_is_registered():
    literals, templates = set(), set()
    for path, tree in _trees().items():
        for node in ast.walk(tree):
            argument = _action_argument(node) if isinstance(node, ast.Call) else None
            if isinstance(argument, ast.Constant):
                literals.add((argument.value, path.name))
            elif isinstance(argument, ast.JoinedStr):
                templates.add(_template(argument))
    assert literals, "no audit.record(..., 'action', ...) call found: has the API changed?"
    assert {name for name, _ in literals} - NAMES == set(), sorted(literals)
    assert templates == {FAILED_CHECK}, "an action built another way: register and check it here"
    assert {FAILED_CHECK.format(kind) for kind in KINDS} <= NAMES


def test_every_registered_action_is_recorded_somewhere():
    # Actions also reach record() through variables (an IfExp, a parameter's default, a
    # module constant): every string in the code that is shaped like an action of a
    # registered namespace counts, and must itself be registered.
    assert {name.split(".")[0] for name in NAMES} <= set(NAMESPACES)
    shaped = re.compile(rf"({'|'.join(NAMESPACES)})\.[a-z0-9_]+(\.[a-z0-9_]+)*")
    # Step-up scopes, authorization actions (control_api/authz.py) and actions under four-eyes
    # approval (control_api/approvals.py) that are not audit actions.
    scopes = {"session.revoke"} | set(authz.ACTIONS) | set(COVERED)
    found = {FAILED_CHECK.format(kind) for kind in KINDS}
    for tree in _trees().values():
        strings = (node.value for node in ast.walk(tree)
                   if isinstance(node, ast.Constant) and isinstance(node.value, str))
        found.update(text for text in strings if shaped.fullmatch(text))
    assert found - scopes - NAMES == set(), "shaped like actions but not registered"
    assert NAMES - found == set(), "registered but recorded nowhere"


def test_each_action_is_registered_once_with_one_line():
    names = [action.name for action in ACTIONS]
    assert len(names) == len(set(names))
    assert all(action.when and "\n" not in action.when and "|" not in action.when for action in ACTIONS)
