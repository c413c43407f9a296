"""The embedded worker: `weco worker` as a child of `weco serve`'s gunicorn master;
and the same for the audit watcher (`weco siem watch`), both driven as one group.

It is its own process: a long playbook never holds an API worker, and the API's
gunicorn workers never hold ssh-agents or decrypted host keys. The master's own loop
drives it (serve.py), never a thread of its own: gunicorn forks its workers from that
loop, and a fork taken while another thread is inside `subprocess.Popen` inherits the
pipe Popen waits on, which hangs the spawn (and so the stop) for good.

The master restarts the worker if it dies. To stop, it sends SIGTERM, on which the
worker cancels a run in progress and records it as `canceled` ("the worker was
stopped"); past a deadline the master kills it, and the next worker marks the run
`lost` once its lease lapses.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time

log = logging.getLogger(__name__)

# A SIGTERM sent to the whole process group (systemd's default, Ctrl-C's SIGINT)
# reaches the worker as soon as the master: the delay lets the master's own stop win.
RESTART_DELAY = 1.0


class EmbeddedWorker:
    def __init__(self, command: list[str] | None = None, name: str = "the embedded worker") -> None:
        self.command = command or [sys.executable, "-m", "control_api.cli", "worker"]
        self.name = name
        self.process: subprocess.Popen | None = None
        self.stopping = False
        self.exited_at = 0.0

    def start(self) -> None:
        self.process = subprocess.Popen(self.command)

    def reap(self) -> None:
        """Collect the exit status if it has exited (before gunicorn's waitpid(-1) does)."""
        if self.process is not None and self.process.returncode is None and self.process.poll() is not None:
            self.exited_at = time.monotonic()
            if not self.stopping:
                log.warning("%s exited with %s; restarting it", self.name, self.process.returncode)

    def maintain(self) -> None:
        """Restart a worker that died (never one being stopped), RESTART_DELAY after."""
        self.reap()
        if self.stopping or self.process is None or self.process.returncode is None:
            return
        if time.monotonic() - self.exited_at >= RESTART_DELAY:
            self.start()

    def stop(self) -> None:
        """Ask the worker to stop (SIGTERM) and never start another; returns at once."""
        self.stopping = True
        self.reap()
        if self.process is not None and self.process.returncode is None:
            log.info("stopping %s", self.name)
            self.process.terminate()

    def wait(self, deadline: float) -> None:
        """Wait for the worker until `deadline` (time.monotonic()); kill it past that."""
        if self.process is None:
            return
        try:
            self.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in time: killed (a run it held, if any, will be marked "
                        "lost by the next worker)", self.name)
            self.process.kill()
            self.process.wait()


def watcher(metrics_dir: str | None = None) -> EmbeddedWorker:
    """`weco siem watch`: the anomaly rules and the SIEM forwarder (one at a time across
    machines: the others wait for its lock)."""
    command = [sys.executable, "-m", "control_api.cli", "siem", "watch"]
    if metrics_dir:
        command += ["--metrics-dir", metrics_dir]
    return EmbeddedWorker(command, "the audit watcher")


class EmbeddedGroup:
    """Several children with EmbeddedWorker's interface: started, restarted and stopped together."""

    def __init__(self, children: list[EmbeddedWorker]) -> None:
        self.children = children

    def start(self) -> None:
        for child in self.children:
            child.start()

    def reap(self) -> None:
        for child in self.children:
            child.reap()

    def maintain(self) -> None:
        for child in self.children:
            child.maintain()

    def stop(self) -> None:
        for child in self.children:
            child.stop()

    def wait(self, deadline: float) -> None:
        for child in self.children:
            child.wait(deadline)
