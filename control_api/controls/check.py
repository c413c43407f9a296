"""The checks CI runs on the controls registry: statically (names, paths, tests and
settings exist; every non-Shipped control says what is missing), against a test run
(every test a Shipped control names ran and passed, in every parametrisation), and
SECURITY.md is what the registry renders."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from control_api.controls.registry import SECTIONS, STATUSES, Control
from control_api.controls.render import security_md
from control_api.settings import SPECS

SETTING_NAMES = frozenset(spec.name for spec in SPECS)


def test_exists(root: Path, node_id: str) -> bool:
    """FILE::FUNCTION or FILE::CLASS::FUNCTION names a test defined in that file."""
    file, _, rest = node_id.partition("::")
    path = root / file
    if not rest or not path.is_file():
        return False
    names = rest.split("::")
    body = ast.parse(path.read_text(encoding="utf-8")).body
    for name in names:
        found = next((n for n in body
                      if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == name), None)
        if found is None:
            return False
        body = found.body if isinstance(found, ast.ClassDef) else []
    return True


def static_problems(controls: Iterable[Control], root: Path) -> list[str]:
    problems, titles = [], set()
    for control in controls:
        where = f"{control.section} {control.title!r}"
        if control.title in titles:
            problems.append(f"{where}: listed twice")
        titles.add(control.title)
        if control.status not in STATUSES:
            problems.append(f"{where}: status {control.status!r} is not one of {', '.join(STATUSES)}")
        if control.section not in SECTIONS:
            problems.append(f"{where}: section {control.section} is not one of the policy's")
        if control.status in ("Partial", "Planned") and not control.note.startswith("Missing: "):
            problems.append(f"{where}: a {control.status} control says what is missing (`Missing: ...`)")
        if not control.note.strip():
            problems.append(f"{where}: no note")
        for name in control.settings:
            if name not in SETTING_NAMES:
                problems.append(f"{where}: setting {name} is not declared in control_api/settings.py")
        for path in control.code:
            if not (root / path).exists():
                problems.append(f"{where}: code path {path} does not exist")
        for node_id in control.tests:
            if not test_exists(root, node_id):
                problems.append(f"{where}: test {node_id} does not exist")
        if control.status == "Shipped" and (not control.code or not control.tests):
            problems.append(f"{where}: Shipped needs the code that implements it and the tests that prove it")
    return problems


def base_node_id(node_id: str) -> str:
    """A node id without its parameters: `f.py::test_x[sqlite]` -> `f.py::test_x`."""
    return re.sub(r"\[.*\]$", "", node_id)


def run_problems(controls: Iterable[Control], outcomes: Mapping[str, list[str]]) -> list[str]:
    """`outcomes`: base node id -> the outcome of each of its runs in this session."""
    problems = []
    for control in controls:
        if control.status != "Shipped":
            continue
        for node_id in control.tests:
            results = outcomes.get(node_id, [])
            if not results:
                problems.append(f"Shipped control {control.title!r}: its test {node_id} did not run")
            elif any(result != "passed" for result in results):
                problems.append(f"Shipped control {control.title!r}: its test {node_id} did not pass "
                                f"({', '.join(sorted(set(results)))})")
    return problems


def stale_security_md(root: Path) -> list[str]:
    path = root / "SECURITY.md"
    if not path.exists() or path.read_text(encoding="utf-8") != security_md():
        return ["SECURITY.md is stale: run scripts/security-md"]
    return []
