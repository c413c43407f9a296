"""Starting and stopping every selected Molecule scenario in the background.

Started once, when pytest has finished collecting (tests/conftest.py), so the scenarios'
minutes of waiting on SSH, apt and systemd overlap the rest of the suite instead of
following it; tests/roles/test_molecule_scenarios.py then waits for each and tears its
hosts down. Idempotent: the second call returns the runs the first one started.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import tempfile

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCENARIOS = sorted(p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml"))
RUN_DIR = pathlib.Path(os.environ.get("WECO_TESTHOSTS_RUN", "/run/weco-testhosts"))
_RUNS: dict[str, tuple[subprocess.Popen, object]] = {}


def platforms(scenario: str) -> list[str]:
    config = yaml.safe_load((ROOT / "molecule" / scenario / "molecule.yml").read_text())
    return [p["name"] for p in config["platforms"]]


def selected_scenarios(session) -> list[str]:
    return sorted({item.callspec.params["scenario"] for item in session.items
                   if getattr(item, "originalname", "") == "test_molecule_scenario"})


def start_scenarios(scenarios: list[str]) -> dict[str, tuple[subprocess.Popen, object]]:
    if _RUNS or not scenarios:
        return _RUNS
    env = dict(os.environ, PATH=f"{pathlib.Path(sys.executable).parent}:{os.environ['PATH']}",
               ANSIBLE_FORCE_COLOR="0", PY_COLORS="0", NO_COLOR="1")
    # The base image is built once, before the scenarios race to build it.
    subprocess.run([ROOT / "molecule/_hosts/base.sh"], check=True, capture_output=True, timeout=900)
    for scenario in scenarios:
        log = tempfile.NamedTemporaryFile(mode="w+", prefix=f"molecule-{scenario}-", suffix=".log")
        # A stdin of its own: see tests/side_runs.py.
        process = subprocess.Popen(["molecule", "test", "-s", scenario], cwd=ROOT, env=env,
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        _RUNS[scenario] = (process, log)
    return _RUNS


def stop_scenarios(runs: dict[str, tuple[subprocess.Popen, object]]) -> None:
    """Kill what still runs and take every scenario's hosts down; safe to call twice."""
    for scenario, (process, log) in list(runs.items()):
        if process.poll() is None:
            process.kill()
            process.wait()
        for name in platforms(scenario):
            subprocess.run([ROOT / "molecule/_hosts/down.sh", name], check=False)
        log.close()
        runs.pop(scenario)
