"""The controls gate: in a full test run (the README's test command, which CI runs),
fail the run when a Shipped control of control_api/controls/registry.py names code or
a test that does not exist, or a test that did not run and pass in this very run, or
when SECURITY.md is stale. A run of a few files (a developer's) is not judged, unless
--controls-gate asks for it."""

from __future__ import annotations

import importlib
from collections import defaultdict

import pytest

from control_api.controls.check import base_node_id, run_problems, stale_security_md, static_problems

_outcomes: dict[str, list[str]] = defaultdict(list)


def pytest_addoption(parser):
    group = parser.getgroup("controls")
    group.addoption("--controls-gate", action="store_true", help="judge the controls registry on this run")
    group.addoption("--controls-registry", default="control_api.controls.registry:CONTROLS",
                    help="MODULE:NAME of the controls to judge (tests of the gate use their own)")


def pytest_runtest_logreport(report):
    # A test's verdict is its call's; a failed or skipped setup means it never passed.
    if report.when == "call" or report.outcome != "passed":
        _outcomes[base_node_id(report.nodeid)].append(report.outcome)


def _full_run(config) -> bool:
    if config.getoption("controls_gate"):
        return True
    narrowed = any(config.getoption(name, None) for name in ("keyword", "markexpr", "deselect", "lf"))
    stops_early = (config.getoption("maxfail", 0) or 0) > 0
    return config.args_source == pytest.Config.ArgsSource.TESTPATHS and not narrowed and not stops_early


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if not _full_run(config):
        return
    module, _, name = config.getoption("controls_registry").partition(":")
    controls = getattr(importlib.import_module(module), name)
    root = config.rootpath
    problems = static_problems(controls, root) + run_problems(controls, _outcomes)
    if module == "control_api.controls.registry":
        problems += stale_security_md(root)
    if problems:
        session.exitstatus = 1
        print("\ncontrols gate FAILED:\n" + "\n".join(f"  {problem}" for problem in problems))
