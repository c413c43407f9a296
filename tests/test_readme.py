"""The README's promises: its two commands, and a settings table in step with the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from control_api.audit import actions
from control_api.settings import markdown_table
from tests import side_runs

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def readme_commands() -> list[str]:
    block = README.split("<!-- readme-commands -->")[1].split("<!-- /readme-commands -->")[0]
    lines = [line for line in block.splitlines() if line and not line.startswith("```")]
    return [line.split("#")[0].strip() for line in lines]


def test_readme_has_exactly_two_commands_and_ci_runs_the_second():
    demo, test = readme_commands()
    assert (demo, test) == ("scripts/demo", "scripts/test")
    ci = (ROOT / ".ci/run").read_text()
    assert f"exec {test}" in ci


def test_settings_table_matches_settings_py():
    table = README.split("<!-- settings-table")[1].split("-->", 1)[1].split("<!-- /settings-table -->")[0]
    assert table.strip() == markdown_table().strip()


def test_audit_actions_match_the_registry():
    block = README.split("<!-- audit-actions")[1].split("-->", 1)[1].split("<!-- /audit-actions -->")[0]
    assert block.strip() == actions.markdown_table().strip()


@pytest.mark.side_run("readme-demo")
def test_the_demo_as_a_newcomer_runs_it() -> None:
    """tests/demo_scenario.py: `scripts/demo` served, logged in to, its printed steps run,
    a second run deploying anew, and a taken address said plainly; beside the suite."""
    done = side_runs.wait("readme-demo", timeout=900)
    assert done.code == 0, done.output[-8000:]
    assert done.passed() == {"test_first_command_serves_the_api_and_the_printed_password_logs_in",
                             "test_the_printed_steps_work_and_a_second_run_deploys_anew",
                             "test_the_demo_says_so_when_its_address_is_taken"}, done.output[-4000:]
