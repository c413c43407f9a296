"""env-cmd:COMMAND: run a command (no shell, with a timeout) that prints the secret."""

from __future__ import annotations

import shlex
import subprocess

from keyproviders.base import KeyProviderError, decode_secret

TIMEOUT_SECONDS = 15


class EnvCommandProvider:
    local = True

    def __init__(self, command: str) -> None:
        try:
            self.argv = shlex.split(command)
        except ValueError as exc:
            raise KeyProviderError(f"env-cmd: cannot parse the command: {exc}") from None
        if not self.argv:
            raise KeyProviderError("env-cmd: needs a command, as in env-cmd:pass show weco/master")
        self.uri = f"env-cmd:{command}"

    def unwrap(self) -> bytes:
        name = self.argv[0]
        try:
            result = subprocess.run(self.argv, capture_output=True, timeout=TIMEOUT_SECONDS,
                                    stdin=subprocess.DEVNULL, check=False)
        except FileNotFoundError:
            raise KeyProviderError(f"env-cmd: {name} not found") from None
        except subprocess.TimeoutExpired:
            raise KeyProviderError(f"env-cmd: {name} did not finish within {TIMEOUT_SECONDS} s") from None
        if result.returncode != 0:
            # stderr may be useful, but it is the command's: show its first line only.
            first = result.stderr.decode(errors="replace").strip().splitlines()[:1]
            raise KeyProviderError(f"env-cmd: {name} exited {result.returncode}"
                                   + (f": {first[0][:200]}" if first else ""))
        return decode_secret(result.stdout.decode(errors="replace"), f"the output of {name}")

    def store(self, secret: bytes) -> None:
        raise KeyProviderError("env-cmd: is read-only: store the secret in the system the command "
                               "reads from, then point env-cmd: at it")
