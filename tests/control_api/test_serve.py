"""`weco serve` with its embedded worker, as a real process tree on SQLite: SIGTERM
stops all of it within seconds and restarts nothing, a worker that dies is restarted,
and a run in progress is canceled and recorded as stopped by the worker, with no
playbook process left."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import signal
import time

import pytest
import requests

from control_api.db import open_database
from control_api.models import Run
from tests.control_api.runs.test_worker import SLOW_PROJECT, _processes_with
from tests.peers.server import WecoServer, superadmin_token

STOP_SECONDS = 5.0


def log_records(server: WecoServer) -> list[dict]:
    return [json.loads(line) for line in server._read_log().splitlines() if line.startswith("{")]


def worker_starts(server: WecoServer) -> list[int]:
    return [r["pid"] for r in log_records(server)
            if r["logger"] == "control_api.cli.runs" and r["message"].endswith(" started")]


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def terminate(server: WecoServer, target: str) -> float:
    """SIGTERM the master alone (systemd's KillMode=mixed) or the whole process group
    (KillMode=control-group, Ctrl-C's SIGINT likewise); return how long it took to exit."""
    started = time.monotonic()
    if target == "master":
        server.process.send_signal(signal.SIGTERM)
    else:
        os.killpg(server.process.pid, signal.SIGTERM)
    server.process.wait(timeout=60)
    return time.monotonic() - started


@pytest.fixture
def sqlite_env(tmp_path):
    return {"FF_ENV": "dev", "FF_DATA_DIR": str(tmp_path / "var")}


@pytest.mark.parametrize("target", ["master", "group"])
def test_sigterm_stops_an_idle_serve_and_its_worker_within_seconds_and_restarts_nothing(sqlite_env, target):
    superadmin_token(sqlite_env)  # migrates the store
    server = WecoServer(sqlite_env, workers=2).start()
    worker_pid = wait_for(lambda: worker_starts(server), what="the embedded worker")[0]
    took = terminate(server, target)
    starts = worker_starts(server)
    log = server._read_log()
    server.log.close()
    assert took < STOP_SECONDS, f"weco serve took {took:.1f} s to stop"
    assert starts == [worker_pid], f"the worker was restarted: {starts}"
    assert "restarting" not in log
    assert not alive(worker_pid)


def test_a_worker_that_dies_is_restarted_and_its_exit_status_logged(sqlite_env):
    superadmin_token(sqlite_env)
    server = WecoServer(sqlite_env, workers=1).start()
    first = wait_for(lambda: worker_starts(server), what="the embedded worker")[0]
    os.kill(first, signal.SIGKILL)
    second = wait_for(lambda: worker_starts(server)[1:], what="a restarted worker")[0]
    took = terminate(server, "master")
    log = server._read_log()
    server.log.close()
    assert second != first and not alive(second) and took < STOP_SECONDS
    assert "the embedded worker exited with -9; restarting it" in log


def test_sigterm_cancels_a_run_in_progress_and_records_that_the_worker_was_stopped(sqlite_env):
    env = dict(sqlite_env, FF_ANSIBLE_DIR=str(SLOW_PROJECT))
    headers = {"Authorization": f"Bearer {superadmin_token(env)}"}
    server = WecoServer(env, workers=1).start()
    host = requests.post(f"{server.base}/api/hosts", headers=headers, timeout=10,
                         json={"name": "here", "connection": "local"}).json()
    run = requests.post(f"{server.base}/api/runs", headers=headers, timeout=10,
                        json={"playbook": "check_hosts", "hosts": [host["id"]]}).json()

    def task_started() -> bool:
        events = requests.get(f"{server.base}/api/runs/{run['id']}/events", headers=headers, timeout=10)
        return any(e["event"] == "runner_on_start" for e in events.json()["events"])

    wait_for(task_started, what="the playbook's task")
    worker_pid = worker_starts(server)[0]
    took = terminate(server, "master")
    starts = worker_starts(server)
    server.log.close()
    # Not bounded by the playbook (a minute): the adapter polls for cancellation twice
    # a second and stops the guard at once (measured here: under a second).
    assert took < STOP_SECONDS, f"weco serve took {took:.1f} s to stop with a run in progress"
    assert starts == [worker_pid] and not alive(worker_pid)
    db = open_database(f"sqlite:///{pathlib.Path(env['FF_DATA_DIR']).resolve() / 'weco.sqlite3'}")
    stopped = Run.get_by_id(run["id"])
    assert (stopped.status, stopped.error) == ("canceled", "the worker was stopped")
    db.close()
    assert not _processes_with(f"runs/{run['id']}/")


def test_two_instances_on_one_machine_share_no_runtime_file(tmp_path):
    # gunicorn's default control socket is one path per user ($XDG_RUNTIME_DIR or
    # ~/.gunicorn/gunicorn.ctl): each instance took the other's. Nothing uses it.
    home = tmp_path / "home"
    home.mkdir()
    servers = []
    for name in ("a", "b"):
        env = {"FF_ENV": "dev", "FF_DATA_DIR": str(tmp_path / name / "var"), "HOME": str(home)}
        superadmin_token(env)
        servers.append(WecoServer(env, workers=1).start())
    first, second = servers
    assert all(requests.get(f"{s.base}/readyz", timeout=10).status_code == 200 for s in servers)
    assert list(home.iterdir()) == []
    first_log = first.stop()
    assert requests.get(f"{second.base}/readyz", timeout=10).status_code == 200
    second_log = second.stop()
    assert "Control socket" not in first_log + second_log
    assert list(home.iterdir()) == []


def test_a_gunicorn_worker_quits_once_when_two_stop_signals_arrive_together():
    # Ctrl-C sends SIGINT to the whole process group, and the master, stopping on it,
    # sends its workers SIGQUIT: the second arrived inside gunicorn's handler for the
    # first, waited forever on a lock that one held, and the worker was SIGKILLed after
    # the 20 s graceful timeout ("Perhaps out of memory?").
    from control_api.serve import quit_once

    calls = []

    class Worker:
        def handle_quit(self, signum, frame):
            calls.append(signum)
            if len(calls) == 1:
                os.kill(os.getpid(), signal.SIGQUIT)  # the master's, mid-handler
                time.sleep(0.05)  # the nested handler runs here

    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGQUIT)}
    try:
        quit_once(Worker())
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    assert calls == [signal.SIGINT]


def test_a_stop_signal_that_comes_late_does_not_cut_a_clean_exit(sqlite_env):
    # Ctrl-C reaches weco serve and the script around it (scripts/demo), which passes a
    # SIGTERM on as well: however late it comes, the exit stays clean (0, not 143).
    superadmin_token(sqlite_env)
    server = WecoServer(sqlite_env, workers=1).start()
    wait_for(lambda: worker_starts(server), what="the embedded worker")
    os.killpg(server.process.pid, signal.SIGINT)
    while server.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            server.process.send_signal(signal.SIGTERM)
        time.sleep(0.002)
    server.log.close()
    assert server.process.returncode == 0
