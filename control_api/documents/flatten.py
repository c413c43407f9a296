"""Re-rendering a PDF through Ghostscript's pdfwrite, the way the security policy says:
`gs -dSAFER -sDEVICE=pdfwrite`, which rewrites the document from its drawing and drops
JavaScript, OpenAction, forms and attachments.

Ghostscript interprets hostile input, so it runs confined: in new user and network
namespaces (`unshare --user --net`: no interface but a down loopback, so no network),
under `prlimit` (address space, CPU seconds, size of the file it writes, open files),
with a wall-clock timeout after which its whole process group is killed, an empty
environment, and its working directory the upload's private one. -dPDFSTOPONERROR
makes it stop at an error in the file instead of writing a partial guess.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

ENV = {"PATH": "/usr/bin:/bin", "LANG": "C"}


class FlattenFailed(Exception):
    """Ghostscript refused or could not finish this file; str() says why."""


class FlattenUnavailable(Exception):
    """Ghostscript (or its confinement) cannot run here at all; str() says why."""


def confinement(timeout: int, memory_bytes: int, max_output: int) -> list[str]:
    """The command prefix that confines what follows it (tests run other programs under it)."""
    return ["unshare", "--user", "--net", "--",
            "prlimit", f"--as={memory_bytes}", f"--cpu={timeout}", f"--fsize={max_output}", "--nofile=64",
            "--core=0", "--"]


def command(source: Path, target: Path, timeout: int, memory_bytes: int, max_output: int) -> list[str]:
    return [*confinement(timeout, memory_bytes, max_output),
            "gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-dPDFSTOPONERROR", "-sDEVICE=pdfwrite",
            f"-sOutputFile={target.name}", "-f", source.name]


def flatten(source: Path, target: Path, timeout: int, memory_bytes: int) -> None:
    """Write Ghostscript's rendering of `source` (in the same directory) to `target`."""
    max_output = 8 * source.stat().st_size + (64 << 20)
    argv = command(source, target, timeout, memory_bytes, max_output)
    try:
        process = subprocess.Popen(argv, cwd=source.parent, env={**ENV, "HOME": str(source.parent),
                                                                 "TMPDIR": str(source.parent)},
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   start_new_session=True)
    except OSError as exc:
        raise FlattenUnavailable(f"cannot start {argv[0]}: {exc.strerror}") from None
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        raise FlattenFailed(f"Ghostscript took longer than {timeout} s") from None
    finally:
        _kill_group(process)
    if process.returncode != 0:
        # Ghostscript writes its error (/VMerror, ...) to stdout and its last word to stderr.
        text, said = (out + err).decode("utf-8", "replace").strip(), err.decode("utf-8", "replace")
        if said.startswith(("unshare:", "prlimit:")):
            raise FlattenUnavailable(f"Ghostscript's confinement failed: {said[:200]}")
        if process.returncode < 0:
            why = {signal.SIGXCPU: "used more CPU time than allowed", signal.SIGKILL: "was killed",
                   signal.SIGXFSZ: "wrote more than allowed", signal.SIGSEGV: "crashed"}
            raise FlattenFailed(f"Ghostscript {why.get(-process.returncode, 'was stopped by a signal')}")
        if "VMerror" in text or "memory" in text.lower():
            raise FlattenFailed("Ghostscript needed more memory than allowed")
        last = text.splitlines()[-1][:200] if text else f"exit status {process.returncode}"
        raise FlattenFailed(f"Ghostscript could not render it ({last})")
    if not target.is_file() or target.stat().st_size == 0:
        raise FlattenFailed("Ghostscript wrote nothing")
    target.chmod(0o600)


def _kill_group(process: subprocess.Popen) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
