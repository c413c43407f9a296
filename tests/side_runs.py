"""Long end-to-end scenarios that run as pytest processes of their own, beside the suite.

Each is a pytest file not named test_*.py (so the suite does not collect it) that boots
its own test hosts. It starts when collection finishes (tests/conftest.py), if the test
that waits for it was selected, so its minutes of installs overlap everything else; that
test (`test_side_run`) then waits for it and reads its JUnit report. A stopped run kills
what it never waited for and takes the scenario's hosts down.
"""

from __future__ import annotations

import dataclasses
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class SideRun:
    path: str  # the scenario's pytest file, relative to the repository
    hosts: tuple[str, ...]  # the test hosts it boots (taken down again whatever happens)


SIDE_RUNS = {
    "bundle": SideRun("tests/release/bundle_scenario.py", ("rl63", "rl64", "rl65")),
}
_RUNS: dict[str, tuple[subprocess.Popen, object, pathlib.Path]] = {}


def selected(session) -> list[str]:
    return sorted({item.callspec.params["side_run"] for item in session.items
                   if getattr(item, "originalname", "") == "test_side_run"})


def start(names: list[str]) -> dict[str, tuple[subprocess.Popen, object, pathlib.Path]]:
    for name in names:
        if name in _RUNS:
            continue
        log = tempfile.NamedTemporaryFile(mode="w+", prefix=f"side-{name}-", suffix=".log")
        report = pathlib.Path(tempfile.mkdtemp(prefix=f"side-{name}-")) / "junit.xml"
        argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-s", "-rA", f"--junitxml={report}",
                SIDE_RUNS[name].path]
        _RUNS[name] = (subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT), log, report)
    return _RUNS


def stop() -> None:
    """Kill what still runs and take its hosts down; safe to call twice."""
    for name, (process, log, _) in list(_RUNS.items()):
        if process.poll() is None:
            process.kill()
            process.wait()
        for host in SIDE_RUNS[name].hosts:
            subprocess.run([ROOT / "molecule/_hosts/down.sh", host], check=False)
        log.close()
        _RUNS.pop(name)
