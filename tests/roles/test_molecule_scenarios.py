"""Every Molecule scenario, run for real on systemd-nspawn test hosts (molecule/_hosts).

`molecule test` runs create, converge, idempotence (a second converge that must report
no change), verify (behaviour checked from the targets and the controller) and destroy.
The scenarios use distinct host names and addresses, so they all start together the
first time one is asked for (most of their time is spent waiting on SSH and systemd);
each test then waits for its own. Whatever happens, every scenario's hosts are torn
down afterwards and none may be left.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import tempfile

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCENARIOS = sorted(p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml"))
RUN_DIR = pathlib.Path(os.environ.get("WECO_TESTHOSTS_RUN", "/run/weco-testhosts"))


def platforms(scenario: str) -> list[str]:
    config = yaml.safe_load((ROOT / "molecule" / scenario / "molecule.yml").read_text())
    return [p["name"] for p in config["platforms"]]


def selected_scenarios(session) -> list[str]:
    return sorted({item.callspec.params["scenario"] for item in session.items
                   if item.originalname == "test_molecule_scenario"})


@pytest.fixture(scope="session")
def scenario_runs(request):
    """Start every selected scenario at once; yield {scenario: (process, log file)}."""
    env = dict(os.environ, PATH=f"{pathlib.Path(sys.executable).parent}:{os.environ['PATH']}",
               ANSIBLE_FORCE_COLOR="0", PY_COLORS="0", NO_COLOR="1")
    # The base image is built once, before the scenarios race to build it.
    subprocess.run([ROOT / "molecule/_hosts/base.sh"], check=True, capture_output=True, timeout=900)
    runs = {}
    for scenario in selected_scenarios(request.session):
        log = tempfile.NamedTemporaryFile(mode="w+", prefix=f"molecule-{scenario}-", suffix=".log")
        process = subprocess.Popen(["molecule", "test", "-s", scenario], cwd=ROOT, env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
        runs[scenario] = (process, log)
    try:
        yield runs
    finally:
        for scenario, (process, log) in runs.items():
            if process.poll() is None:
                process.kill()
                process.wait()
            for name in platforms(scenario):
                subprocess.run([ROOT / "molecule/_hosts/down.sh", name], check=False)
            log.close()


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
    assert code == 0, f"molecule test -s {scenario} failed:\n{text[-6000:]}"
    assert "idempotence: Executed: Successful" in text, text[-3000:]
    assert "verify: Executed: Successful" in text, text[-3000:]
    for name in platforms(scenario):
        assert not (RUN_DIR / name).exists(), f"{name} was left behind"
        assert not pathlib.Path(f"/run/netns/{name}").exists(), f"netns {name} was left behind"
