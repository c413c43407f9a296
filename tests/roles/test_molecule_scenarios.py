"""Every Molecule scenario, run for real on systemd-nspawn test hosts (molecule/_hosts).

`molecule test` runs create, converge, idempotence (a second converge that must report
no change), verify (behaviour checked from the targets and the controller) and destroy.
The scenarios use distinct host names and addresses, so they all start together as soon
as pytest has collected the suite (most of their time is spent waiting on SSH, apt and
systemd, beside the other tests); each test then waits for its own. Whatever happens,
every scenario's hosts are torn down afterwards and none may be left.
"""

from __future__ import annotations

import pathlib
import subprocess

import pytest

from tests.roles.molecule_runs import (
    ROOT,
    RUN_DIR,
    SCENARIOS,
    platforms,
    selected_scenarios,
    start_scenarios,
    stop_scenarios,
)


@pytest.fixture(scope="session")
def scenario_runs(request):
    """{scenario: (process, log file)} for every selected scenario, started when collection
    finished (tests/conftest.py), so they run beside the rest of the suite; torn down here."""
    runs = start_scenarios(selected_scenarios(request.session))
    try:
        yield runs
    finally:
        stop_scenarios(runs)


def _failures(log: str) -> str:
    """Each failed task with the lines around it: the log's tail alone often shows only the
    teardown (rescued failures, which the verify playbooks provoke on purpose, show too)."""
    lines = log.splitlines()
    shown = [i for i, line in enumerate(lines) if "fatal:" in line or "FAILED!" in line]
    return "".join("\n".join(lines[max(i - 3, 0):i + 4]) + "\n---\n" for i in shown)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario(scenario: str, scenario_runs) -> None:
    process, log = scenario_runs[scenario]
    try:
        code = process.wait(timeout=1500)
    finally:
        for name in platforms(scenario):
            subprocess.run([ROOT / "molecule/_hosts/down.sh", name], check=False)
    log.seek(0)
    text = log.read()
    assert code == 0, f"molecule test -s {scenario} failed:\n{_failures(text)}{text[-6000:]}"
    assert "idempotence: Executed: Successful" in text, text[-3000:]
    assert "verify: Executed: Successful" in text, text[-3000:]
    for name in platforms(scenario):
        assert not (RUN_DIR / name).exists(), f"{name} was left behind"
        assert not pathlib.Path(f"/run/netns/{name}").exists(), f"netns {name} was left behind"
