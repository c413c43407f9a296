"""Long runs that go as processes of their own, beside the suite: the benchmarks' smoke
runs and end-to-end scenarios that boot their own test hosts.

A test that needs one is marked `@pytest.mark.side_run(NAME)`. Every marked run of the
selected tests starts when collection finishes (tests/conftest.py), so its minutes of
waiting (servers starting, installs on test hosts) overlap the rest of the suite; the test
then calls `wait(NAME)` for its exit code and output (and, for a pytest scenario, its
JUnit report). A scenario is a pytest file not named test_*.py, so the suite does not
collect it. A stopped run kills what it never waited for and takes its hosts down.

Runs that mostly wait start at once. Runs that keep a core busy share one queue and go
one after another: on a machine of two cores, started together beside the suite and
the Molecule scenarios, they starved each other until servers missed their start-up
deadlines.
"""

from __future__ import annotations

import dataclasses
import pathlib
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ElementTree

ROOT = pathlib.Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class SideRun:
    args: tuple[str, ...]  # for this interpreter, from the repository's root
    hosts: tuple[str, ...] = ()  # the test hosts it boots, taken down again whatever happens
    busy: bool = False  # keeps a core busy: queued behind the other busy runs


def _scenario(*paths: str, hosts: tuple[str, ...] = (), busy: bool = False) -> SideRun:
    """Pytest files of end-to-end tests, reporting to a JUnit file of their own."""
    return SideRun(("-m", "pytest", "-p", "no:cacheprovider", "-s", "-rA", "--junitxml={report}", *paths),
                   hosts, busy)


def _bench(*args: str) -> SideRun:
    return SideRun(("-m", *args), busy=True)


SIDE_RUNS = {
    "bundle-scenario": _scenario("tests/release/bundle_scenario.py", hosts=("rl63", "rl64", "rl65", "rw68")),
    # The API fuzzed from its OpenAPI document, as two roles on two backends, and its SSO routes.
    "api-fuzz": _scenario("tests/control_api/openapi_fuzz_scenario.py",
                          "tests/control_api/sso/fuzz_scenario.py", busy=True),
    # `scripts/demo` started three times, as a newcomer would: waiting on servers, mostly.
    "readme-demo": _scenario("tests/demo_scenario.py"),
    # About a minute of a receiver's outage (on each backend): waiting, mostly.
    "siem-outage": _scenario("tests/control_api/siem/outage_scenario.py"),
    "bench-audit-append": _bench("bench.audit_append", "--clients", "2", "--seconds", "1"),
    "bench-audit-verify": _bench("bench.audit_verify", "--rows", "300"),
    "bench-login-throttle": _bench("bench.login_throttle", "--attempts", "60"),
    "bench-run-latency": _bench("bench.run_latency", "--runs", "1"),
    "bench-request-path-sqlite": _bench("bench.request_path", "--requests", "300", "--rounds", "1"),
    "bench-request-path-postgresql": _bench("bench.request_path", "--requests", "300", "--rounds", "1",
                                            "--postgres"),
}


@dataclasses.dataclass
class _Running:
    log: object
    report: pathlib.Path
    process: subprocess.Popen | None = None  # None until its turn comes (or if the session stopped first)
    launched: threading.Event = dataclasses.field(default_factory=threading.Event)


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
_LOCK = threading.Lock()  # a launch against stop()
_STOPPING = threading.Event()


def selected(session) -> list[str]:
    return sorted({marker.args[0] for item in session.items for marker in item.iter_markers("side_run")})


def start(names: list[str]) -> None:
    busy = []
    for name in sorted(names, key=list(SIDE_RUNS).index):
        if name in _RUNS:
            continue
        log = tempfile.NamedTemporaryFile(mode="w+", prefix=f"side-{name}-", suffix=".log")
        report = pathlib.Path(tempfile.mkdtemp(prefix=f"side-{name}-")) / "junit.xml"
        _RUNS[name] = _Running(log, report)
        if SIDE_RUNS[name].busy:
            busy.append(name)
        else:
            _launch(name)
    if busy:
        threading.Thread(target=_in_turn, args=(busy,), name="side-runs-busy", daemon=True).start()


def _launch(name: str) -> None:
    running = _RUNS[name]
    with _LOCK:
        if not _STOPPING.is_set():
            argv = [sys.executable, *(a.format(report=running.report) for a in SIDE_RUNS[name].args)]
            # A stdin of its own: ssh sets O_NONBLOCK on the stdin it inherits while it runs,
            # and ansible-playbook exits 1 on a non-blocking stdin ("requires blocking IO"),
            # so a side run's ssh could fail another side run's Ansible (CI saw molecule's
            # `ansible-playbook --version` do that).
            running.process = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=running.log,
                                               stderr=subprocess.STDOUT, text=True)
        running.launched.set()


def _in_turn(names: list[str]) -> None:
    for name in names:
        _launch(name)
        if _RUNS[name].process is None:
            return  # stopped
        _RUNS[name].process.wait()


def wait(name: str, timeout: float = 1800) -> Finished:
    """The run's outcome (started now if collection did not start it), within `timeout`
    seconds of this call, its wait for its turn included."""
    start([name])
    running = _RUNS[name]
    deadline = time.monotonic() + timeout
    try:
        if not running.launched.wait(timeout):
            return Finished(-1, f"{name} did not get its turn within {timeout} s", running.report)
        if running.process is None:
            return Finished(-1, f"{name} never started: the session was stopping", running.report)
        code = running.process.wait(timeout=max(deadline - time.monotonic(), 0))
    finally:
        _take_down(name)
    running.log.seek(0)
    return Finished(code, running.log.read(), running.report)


def _take_down(name: str) -> None:
    running = _RUNS[name]
    if running.process is not None and running.process.poll() is None:
        running.process.kill()
        running.process.wait()
    for host in SIDE_RUNS[name].hosts:
        subprocess.run([ROOT / "molecule/_hosts/down.sh", host], check=False)


def stop() -> None:
    """Kill what still runs, start nothing more, and take the hosts down; safe to call twice."""
    with _LOCK:
        _STOPPING.set()
    for name, running in list(_RUNS.items()):
        _take_down(name)
        running.log.close()
        _RUNS.pop(name)
