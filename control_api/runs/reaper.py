"""`weco-playbook`: ansible-playbook under a guard that leaves no process behind.

Ansible forks a worker per task that calls setsid(), so killing ansible-playbook's
process group (what ansible-runner does on cancel and timeout) misses them, and a
worker killed with SIGKILL kills nothing at all. This guard makes itself the child
subreaper of everything ansible-playbook starts (orphans are re-parented to it, not to
init) and asks the kernel to send it SIGTERM when the worker that started it dies. On
SIGTERM, SIGHUP or SIGINT, and when ansible-playbook exits, it SIGKILLs every process
below it, then exits. Linux only (prctl).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
PIDFILE_ENV = "WECO_RUN_PIDFILE"


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                # The command name may hold spaces and parentheses: split after the last ')'.
                ppid = int(stat.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, stack = [], list(children.get(root, ()))
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, ()))
    return found


def kill_descendants() -> None:
    for _ in range(100):
        pids = descendants(os.getpid())
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _reap()
        if not pids:
            return
        time.sleep(0.02)


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def main() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    parent = os.getppid()
    pidfile = os.environ.pop(PIDFILE_ENV, None)
    if pidfile:
        with open(pidfile, "w") as out:
            out.write(str(os.getpid()))

    def stop(signum, frame) -> None:
        kill_descendants()
        os._exit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, stop)
    if parent == 1 or os.getppid() != parent:
        sys.exit(1)  # the worker died before the guard was in place
    playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    child = subprocess.Popen([playbook, *sys.argv[1:]])
    code = child.wait()
    kill_descendants()
    sys.exit(code)


if __name__ == "__main__":
    main()
