"""Long runs that go as processes of their own, beside the suite: the benchmarks' smoke
runs and end-to-end scenarios that boot their own test hosts.

A test that needs one is marked `@pytest.mark.side_run(NAME)`. Every marked run of the
selected tests starts when collection finishes (tests/conftest.py), so its minutes of
waiting (servers starting, installs on test hosts) overlap the rest of the suite; the test
then calls `wait(NAME)` for its exit code and output (and, for a pytest scenario, its
JUnit report). A scenario is a pytest file not named test_*.py, so the suite does not
collect it. A stopped run kills what it never waited for and takes its hosts down.
"""

from __future__ import annotations

import dataclasses
import pathlib
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree

ROOT = pathlib.Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class SideRun:
    args: tuple[str, ...]  # for this interpreter, from the repository's root
    hosts: tuple[str, ...] = ()  # the test hosts it boots, taken down again whatever happens


def _scenario(*paths: str, hosts: tuple[str, ...] = ()) -> SideRun:
    """Pytest files of end-to-end tests, reporting to a JUnit file of their own."""
    return SideRun(("-m", "pytest", "-p", "no:cacheprovider", "-s", "-rA", "--junitxml={report}", *paths),
                   hosts)


SIDE_RUNS = {
    "bundle-scenario": _scenario("tests/release/bundle_scenario.py", hosts=("rl63", "rl64", "rl65")),
    # The API fuzzed from its OpenAPI document, as two roles on two backends, and its SSO routes.
    "api-fuzz": _scenario("tests/control_api/openapi_fuzz_scenario.py",
                          "tests/control_api/sso/fuzz_scenario.py"),
    # `scripts/demo` started three times, as a newcomer would: waiting on servers, mostly.
    "readme-demo": _scenario("tests/demo_scenario.py"),
    # About a minute of a receiver's outage (on each backend): waiting, mostly.
    "siem-outage": _scenario("tests/control_api/siem/outage_scenario.py"),
    "bench-audit-append": SideRun(("-m", "bench.audit_append", "--clients", "2", "--seconds", "1")),
    "bench-audit-verify": SideRun(("-m", "bench.audit_verify", "--rows", "300")),
    "bench-login-throttle": SideRun(("-m", "bench.login_throttle", "--attempts", "60")),
    "bench-run-latency": SideRun(("-m", "bench.run_latency", "--runs", "1")),
    "bench-request-path-sqlite": SideRun(("-m", "bench.request_path", "--requests", "300")),
    "bench-request-path-postgresql": SideRun(("-m", "bench.request_path", "--requests", "300", "--postgres")),
}


@dataclasses.dataclass
class _Running:
    process: subprocess.Popen
    log: object
    report: pathlib.Path


@dataclasses.dataclass(frozen=True)
class Finished:
    code: int
    output: str
    report: pathlib.Path  # a scenario's JUnit XML

    def passed(self) -> set[str]:
        """The names of a scenario's tests that passed (with their parameters)."""
        cases = ElementTree.parse(self.report).getroot().iter("testcase")  # noqa: S314 (our own pytest's)
        return {case.get("name") for case in cases
                if not any(case.find(verdict) is not None for verdict in ("failure", "error", "skipped"))}


_RUNS: dict[str, _Running] = {}


def selected(session) -> list[str]:
    return sorted({marker.args[0] for item in session.items for marker in item.iter_markers("side_run")})


def start(names: list[str]) -> None:
    for name in names:
        if name in _RUNS:
            continue
        log = tempfile.NamedTemporaryFile(mode="w+", prefix=f"side-{name}-", suffix=".log")
        report = pathlib.Path(tempfile.mkdtemp(prefix=f"side-{name}-")) / "junit.xml"
        argv = [sys.executable, *(a.format(report=report) for a in SIDE_RUNS[name].args)]
        process = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True)
        _RUNS[name] = _Running(process, log, report)


def wait(name: str, timeout: float = 1800) -> Finished:
    """The run's outcome (started now if collection did not start it)."""
    start([name])
    running = _RUNS[name]
    try:
        code = running.process.wait(timeout=timeout)
    finally:
        _take_down(name)
    running.log.seek(0)
    return Finished(code, running.log.read(), running.report)


def _take_down(name: str) -> None:
    running = _RUNS[name]
    if running.process.poll() is None:
        running.process.kill()
        running.process.wait()
    for host in SIDE_RUNS[name].hosts:
        subprocess.run([ROOT / "molecule/_hosts/down.sh", host], check=False)


def stop() -> None:
    """Kill what still runs and take its hosts down; safe to call twice."""
    for name, running in list(_RUNS.items()):
        _take_down(name)
        running.log.close()
        _RUNS.pop(name)
