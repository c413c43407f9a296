"""The one place that speaks to ansible-runner: a job in, events out, an outcome back.

ansible-runner's file contract is kept (a private data dir per run, its artifacts
beside it), with two changes for secrets: `suppress_env_files` so no env/ files are
written, and no `ssh_key` (the worker hands keys to ssh-agents; see sshagent.py).
Events are reduced to what an operator reads (event name, host, task, stdout, and the
result of failed or final events) before anyone stores them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import ansible_runner.interface

_STDOUT_LIMIT = 8192
_RESULT_LIMIT = 16384
_FIELDS = ("play", "task", "task_action", "role", "host", "duration")


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


# What a playbook may see of the worker's environment: the roles' FF_* switches and
# plain process basics. Everything else (store URL, audit secret, provider tokens,
# cloud credentials) stays with the worker.
_PASSED_ENV = {"PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "USER", "LOGNAME", "TMPDIR", "TERM",
               "SSL_CERT_FILE", "SSL_CERT_DIR", "FF_ENV", "FF_ALLOW_UNENCRYPTED", "FF_DISK_ENCRYPTION",
               "FF_ACME_SERVER"}
_PASSED_PREFIXES = ("ANSIBLE_", "RUNNER_", "AWX_")


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


class AnsibleRunnerAdapter:
    def run(self, job: PlaybookJob, on_event: Callable[[dict], None],
            should_cancel: Callable[[], bool]) -> Outcome:
        job.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

        def handle(event: dict) -> bool:
            on_event(stored_event(event))
            return True  # also keep it in the run's artifacts

        # ansible-playbook is installed beside the Python running us (our venv or bundle).
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        env = dict(job.env, PATH=path, ANSIBLE_ROLES_PATH=str(job.project_dir / "roles"),
                   ANSIBLE_CONFIG=str(job.project_dir / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
        try:
            runner = ansible_runner.interface.init_runner(
                private_data_dir=str(job.run_dir), project_dir=str(job.project_dir),
                playbook=str(job.project_dir / "playbooks" / job.playbook), inventory=job.inventory,
                extravars=job.extra_vars, envvars=env, suppress_env_files=True, quiet=True,
                event_handler=handle, cancel_callback=should_cancel, timeout=job.timeout,
            )
            # ansible-runner seeds the playbook's environment with the worker's own (and
            # writes it to artifacts/command): keep only what a playbook needs.
            runner.config.env = playbook_env(runner.config.env)
            runner.run()
            result = runner
        finally:
            # The inventory names agent sockets and addresses: the run's record is in the
            # store and its artifacts; nothing else needs to stay.
            for leftover in ("inventory", "env", "project"):
                shutil.rmtree(job.run_dir / leftover, ignore_errors=True)
        known = ("successful", "failed", "canceled", "timeout")
        status = result.status if result.status in known else "failed"
        return Outcome(status, result.rc, result.stats or {})
