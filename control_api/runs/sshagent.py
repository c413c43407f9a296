"""Private keys handed to Ansible through ssh-agent, never through a file.

ansible-runner's own `ssh_key` path writes the key to a fifo in the artifacts and its
`env/ssh_key` file lingers on disk; instead each distinct key gets its own short-lived
agent, fed through `ssh-add -` on stdin, with its socket in a 0700 directory. A host's
connection names its agent (`-o IdentityAgent=`), so a host is offered only its own
keys (its current one and, while a credential rotation is unfinished, the staged one).
The agents die with the run, and with the worker if it is killed (PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator

_PR_SET_PDEATHSIG = 1


class AgentError(Exception):
    """An agent could not be started or would not take a key."""


def die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@contextlib.contextmanager
def agents(keys: dict[str, list[bytes]], lifetime: int) -> Iterator[dict[str, str]]:
    """For {name: private keys}, yield {name: agent socket path}; everything ends on exit."""
    base = tempfile.mkdtemp(prefix="weco-agent-")
    os.chmod(base, 0o700)
    processes: list[subprocess.Popen] = []
    try:
        sockets = {}
        for index, (name, key) in enumerate(keys.items()):
            sockets[name] = _start(os.path.join(base, f"a{index}"), key, lifetime, processes)
        yield sockets
    finally:
        for process in processes:
            process.kill()
            process.wait()
        shutil.rmtree(base, ignore_errors=True)


def _start(socket: str, keys: list[bytes], lifetime: int, processes: list[subprocess.Popen]) -> str:
    process = subprocess.Popen(["ssh-agent", "-D", "-a", socket], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, preexec_fn=die_with_parent)
    processes.append(process)
    deadline = time.monotonic() + 5
    while not os.path.exists(socket):
        if process.poll() is not None or time.monotonic() > deadline:
            raise AgentError("ssh-agent did not start")
        time.sleep(0.01)
    for key in keys:
        added = subprocess.run(["ssh-add", "-q", "-t", str(lifetime), "-"], input=key,
                               env={"SSH_AUTH_SOCK": socket, "PATH": os.environ.get("PATH", "")},
                               capture_output=True, timeout=10)
        if added.returncode != 0:
            raise AgentError("ssh-agent refused the host's key")
    return socket
