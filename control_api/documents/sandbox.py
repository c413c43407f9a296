"""Running one PDF check in a forked child, bounded in time and memory.

qpdf (under pikepdf) parses hostile input; a crafted file could make it loop or grow
without end. So each check runs in a child forked from this process (cheap: pikepdf is
already loaded, no interpreter start), with RLIMIT_AS set to what the process already
maps plus the budget, and RLIMIT_CPU; the parent kills it at the deadline. The child
only parses and writes a JSON answer to a pipe, then leaves with os._exit, touching none
of the parent's locks, connections or threads.
"""

from __future__ import annotations

import json
import math
import os
import resource
import select
import signal
import time
from collections.abc import Callable

ANSWER_MAX = 1 << 20


class SandboxFailure(Exception):
    """The check did not finish: it ran out of time or memory, or crashed. str() says which."""


class CheckFailed(Exception):
    """The check ran and refused the input; str() is its reason."""


def _mapped_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _child(write_fd: int, fn: Callable, args: tuple, timeout: float, memory_bytes: int) -> None:
    try:
        limit = _mapped_bytes() + memory_bytes
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        cpu = math.ceil(timeout)
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        answer = {"ok": fn(*args)}
    except MemoryError:
        answer = {"failure": "it needed more memory than allowed"}
    except CheckFailed as exc:
        answer = {"refused": str(exc)[:500]}
    except BaseException as exc:
        answer = {"refused": f"{type(exc).__name__}: {exc}"[:500]}
    data = json.dumps(answer).encode()[:ANSWER_MAX]
    try:
        while data:
            data = data[os.write(write_fd, data):]
    finally:
        os._exit(0)


def run_bounded(fn: Callable, *args, timeout: float, memory_bytes: int) -> object:
    """fn(*args) in a bounded child: its JSON-able result, CheckFailed with the reason the
    check gave (or the exception it raised), or SandboxFailure."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child's coverage is not collected)
        os.close(read_fd)
        _child(write_fd, fn, args, timeout, memory_bytes)
    os.close(write_fd)
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SandboxFailure(f"it took longer than {timeout:g} s")
            ready, _, _ = select.select([read_fd], [], [], left)
            if ready:
                block = os.read(read_fd, 1 << 16)
                if not block:
                    break
                chunks.append(block)
    finally:
        os.close(read_fd)
        _reap(pid)
    try:
        answer = json.loads(b"".join(chunks))
    except ValueError:
        raise SandboxFailure("the check stopped without an answer (killed at its CPU or memory "
                             "limit, or crashed)") from None
    if "failure" in answer:
        raise SandboxFailure(answer["failure"])
    if "refused" in answer:
        raise CheckFailed(answer["refused"])
    return answer["ok"]


def _reap(pid: int) -> None:
    done, _ = os.waitpid(pid, os.WNOHANG)
    if done == 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
