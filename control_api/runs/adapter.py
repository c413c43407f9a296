"""The one place that speaks to ansible-runner: a job in, events out, an outcome back.

ansible-runner's file contract is kept (a private data dir per run, its artifacts
beside it), with two changes for secrets: `suppress_env_files` so no env/ files are
written, and no `ssh_key` (the worker hands keys to ssh-agents; see sshagent.py).
Events are reduced to what an operator reads (event name, host, task, stdout, and the
result of failed or final events) before anyone stores them; the first task that
failed is also summed up in one line, for the run's own record.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import ansible_runner.interface
import ptyprocess

from control_api.runs.inputs import write_unsafe_yaml
from control_api.runs.reaper import PIDFILE_ENV

_STDOUT_LIMIT = 8192
_RESULT_LIMIT = 16384
_FIELDS = ("play", "task", "task_action", "role", "host", "duration")
_CANCEL_POLL_SECONDS = 0.5
_REASON_LIMIT = 500
_FAILURES = ("runner_on_failed", "runner_on_unreachable")


@dataclasses.dataclass(frozen=True)
class PlaybookJob:
    run_dir: Path  # ansible-runner's private data dir for this run
    project_dir: Path  # holds ansible.cfg, playbooks/ and roles/
    playbook: str  # a file in project_dir/playbooks
    inventory: dict
    extra_vars: dict
    env: dict[str, str]
    timeout: int


@dataclasses.dataclass(frozen=True)
class Outcome:
    status: str  # successful | failed | canceled | timeout
    rc: int | None
    stats: dict
    failure: str | None = None  # "HOST: TASK: MESSAGE" of the first task that failed


# What a playbook may see of the worker's environment: plain process basics. The
# roles' FF_* switches come from the worker's settings (PlaybookJob.env); everything
# else (store URL, audit secret, provider tokens, cloud credentials) stays behind.
_PASSED_ENV = {"PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "USER", "LOGNAME", "TMPDIR", "TERM",
               "SSL_CERT_FILE", "SSL_CERT_DIR"}
_PASSED_PREFIXES = ("ANSIBLE_", "RUNNER_", "AWX_")


def _without_close_delay() -> None:
    """ptyprocess sleeps 0.1 s after closing a pty, to give the child time to exit.
    ansible-runner closes the pty only once ansible-playbook has exited (EOF), so here
    the sleep only adds latency to every run (measured: about 0.08 s of 1.1 s).
    Applied once, by the first adapter set up in this process."""
    spawn = ptyprocess.PtyProcess.__init__
    if getattr(spawn, "weco_no_close_delay", False):
        return

    def init(self, *args, **kwargs) -> None:
        spawn(self, *args, **kwargs)
        self.delayafterclose = 0

    init.weco_no_close_delay = True
    ptyprocess.PtyProcess.__init__ = init


def playbook_env(env: dict) -> dict:
    kept = {name: value for name, value in env.items()
            if name in _PASSED_ENV or name.startswith(_PASSED_PREFIXES)}
    # ansible-runner turns host key checking off; we keep it on (the inventory's
    # known_hosts file records each host's key at first contact and pins it after).
    kept["ANSIBLE_HOST_KEY_CHECKING"] = "True"
    return kept


def stored_event(event: dict) -> dict:
    """The part of an ansible-runner event we keep."""
    data = event.get("event_data") or {}
    kept = {name: data[name] for name in _FIELDS if name in data}
    name = event.get("event", "")
    if name in ("runner_on_failed", "runner_on_unreachable", "playbook_on_stats") or data.get("changed"):
        result = data.get("res") if "res" in data else {k: data.get(k) for k in ("changed", "ok", "failures",
                                                                                  "dark", "skipped")}
        kept["result"] = json.dumps(result, default=str)[:_RESULT_LIMIT]
    return {
        "seq": int(event.get("counter", 0)),
        "event": name,
        "host": data.get("host"),
        "task": data.get("task"),
        "stdout": (event.get("stdout") or "")[:_STDOUT_LIMIT],
        "data_json": json.dumps(kept, sort_keys=True, default=str),
    }


def failure_reason(events) -> str | None:
    """One line for the first failed or unreachable task among ansible-runner events
    (ignored failures aside): its host, task and message, cut to _REASON_LIMIT."""
    for event in events:
        data = event.get("event_data") or {}
        if event.get("event") not in _FAILURES or data.get("ignore_errors"):
            continue
        result = data.get("res") if isinstance(data.get("res"), dict) else {}
        message = " ".join(str(result.get("msg") or "failed").split())
        reason = f"{data.get('host')}: {data.get('task')}: {message}"
        return reason if len(reason) <= _REASON_LIMIT else reason[:_REASON_LIMIT - 1] + "…"
    return None


class AnsibleRunnerAdapter:
    def __init__(self) -> None:
        _without_close_delay()

    def run(self, job: PlaybookJob, on_event: Callable[[dict], None],
            should_cancel: Callable[[], bool]) -> Outcome:
        job.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        pidfile = job.run_dir / "playbook.pid"
        stop = _Stopper(pidfile, job.timeout, should_cancel)
        failure: str | None = None

        def handle(event: dict) -> bool:
            nonlocal failure
            failure = failure or failure_reason([event])
            on_event(stored_event(event))
            return True  # also keep it in the run's artifacts

        # ansible-playbook is installed beside the Python running us (our venv or bundle).
        bindir = Path(sys.executable).parent
        env = dict(job.env, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
                   ANSIBLE_ROLES_PATH=str(job.project_dir / "roles"),
                   ANSIBLE_CONFIG=str(job.project_dir / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
        env[PIDFILE_ENV] = str(pidfile)
        # Our own files, not ansible-runner's JSON ones: every string marked !unsafe.
        inputs = job.run_dir / "inputs"
        try:
            inventory = write_unsafe_yaml(inputs / "hosts.yml", job.inventory)
            extra_vars = write_unsafe_yaml(inputs / "extravars.yml", job.extra_vars)
            runner = ansible_runner.interface.init_runner(
                private_data_dir=str(job.run_dir), project_dir=str(job.project_dir),
                playbook=str(job.project_dir / "playbooks" / job.playbook), inventory=str(inventory),
                extravars=str(extra_vars), envvars=env, suppress_env_files=True, quiet=True,
                event_handler=handle, cancel_callback=stop,
            )
            assert runner.config.command[0] == "ansible-playbook", runner.config.command
            runner.config.command = [str(bindir / "weco-playbook"), *runner.config.command[1:]]
            # Run under the guard (reaper.py) that leaves no process behind. ansible-runner
            # seeds the playbook's environment with the worker's own (and
            # writes it to artifacts/command): keep only what a playbook needs.
            runner.config.env = dict(playbook_env(runner.config.env), **env)
            # ansible-runner asks the cancel callback once per pexpect timeout (5 s by
            # default, and its settings= argument is ignored without an env/ file): a
            # cancel, a timeout or a stopping worker would wait that long to be seen.
            runner.config.pexpect_timeout = _CANCEL_POLL_SECONDS
            runner.run()
        finally:
            # The inventory names agent sockets and addresses: the run's record is in the
            # store and its artifacts; nothing else needs to stay.
            for leftover in ("inputs", "inventory", "env", "project"):
                shutil.rmtree(job.run_dir / leftover, ignore_errors=True)
            (job.run_dir / "playbook.pid").unlink(missing_ok=True)
        if stop.reason:
            return Outcome(stop.reason, runner.rc, runner.stats or {})
        status = "successful" if runner.status == "successful" else "failed"
        return Outcome(status, runner.rc, runner.stats or {}, failure if status == "failed" else None)


class _Stopper:
    """ansible-runner's cancel callback. On cancel or timeout it first has the guard
    (reaper.py) kill every process of the run, then lets ansible-runner finish: its own
    process-group kill would miss the processes Ansible detaches with setsid()."""

    def __init__(self, pidfile: Path, timeout: int, should_cancel: Callable[[], bool]) -> None:
        self.pidfile, self.should_cancel = pidfile, should_cancel
        self.deadline = time.monotonic() + timeout
        self.reason: str | None = None

    def __call__(self) -> bool:
        if self.reason is None:
            if time.monotonic() > self.deadline:
                self.reason = "timeout"
            elif self.should_cancel():
                self.reason = "canceled"
            else:
                return False
            self._stop_guard()
        return True

    def _stop_guard(self) -> None:
        try:
            pid = int(self.pidfile.read_text())
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError):
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _running(pid):
            time.sleep(0.05)


def _running(pid: int) -> bool:
    """True while the process exists and is not a zombie: the guard is a child that
    ansible-runner reaps only after the callback returns."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"
