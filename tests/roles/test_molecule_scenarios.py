"""Every Molecule scenario, run for real on systemd-nspawn test hosts (molecule/_hosts).

`molecule test` runs create, converge, idempotence (a second converge that must report
no change), verify (behaviour checked from the targets and the controller) and destroy.
Whatever happens, the scenario's hosts are torn down afterwards and none may be left.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCENARIOS = sorted(p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml"))
RUN_DIR = pathlib.Path(os.environ.get("WECO_TESTHOSTS_RUN", "/run/weco-testhosts"))


def platforms(scenario: str) -> list[str]:
    config = yaml.safe_load((ROOT / "molecule" / scenario / "molecule.yml").read_text())
    return [p["name"] for p in config["platforms"]]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario(scenario: str, tmp_path: pathlib.Path) -> None:
    env = dict(os.environ, PATH=f"{pathlib.Path(sys.executable).parent}:{os.environ['PATH']}",
               ANSIBLE_FORCE_COLOR="0", PY_COLORS="0", NO_COLOR="1")
    log = tmp_path / "molecule.log"
    try:
        with log.open("w") as out:
            done = subprocess.run(["molecule", "test", "-s", scenario], cwd=ROOT, env=env,
                                  stdout=out, stderr=subprocess.STDOUT, timeout=900)
    finally:
        for name in platforms(scenario):
            subprocess.run([ROOT / "molecule/_hosts/down.sh", name], check=False)
    text = log.read_text()
    assert done.returncode == 0, f"molecule test -s {scenario} failed:\n{text[-6000:]}"
    assert "idempotence: Executed: Successful" in text, text[-3000:]
    assert "verify: Executed: Successful" in text, text[-3000:]
    for name in platforms(scenario):
        assert not (RUN_DIR / name).exists(), f"{name} was left behind"
        assert not pathlib.Path(f"/run/netns/{name}").exists(), f"netns {name} was left behind"
