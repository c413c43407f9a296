"""Real Debian 12 test hosts (systemd-nspawn, molecule/_hosts) for tests and benchmarks.

`booted(prefix, first_index, count)` brings hosts up and always tears them down. The
harness reaches them as root with its own key (molecule/_hosts/key.sh); tests give the
product a different key of their own with `authorize`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import subprocess
from collections.abc import Iterator

ROOT = pathlib.Path(__file__).resolve().parents[2]
HOSTS = ROOT / "molecule" / "_hosts"


@dataclasses.dataclass(frozen=True)
class TestHost:
    name: str
    index: int
    address: str

    @property
    def controller_address(self) -> str:
        return f"10.200.{self.index}.1"

    def ssh(self, command: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        key = harness_key()
        argv = ["ssh", "-q", "-i", key, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", f"root@{self.address}", command]
        # Never the caller's stdin: see tests/side_runs.py.
        return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def copy_in(self, paths: list[pathlib.Path], directory: str, timeout: float = 300) -> None:
        """scp files into a directory of the host (made if missing)."""
        self.ssh(f"mkdir -p {directory}")
        argv = ["scp", "-q", "-i", harness_key(), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", *map(str, paths), f"root@{self.address}:{directory}/"]
        subprocess.run(argv, capture_output=True, text=True, check=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)

    def authorize(self, public_key: str) -> None:
        self.ssh(f"echo '{public_key.strip()}' >> /root/.ssh/authorized_keys")

    def host_key_line(self) -> str:
        """The host's Ed25519 host public key, read through the harness (out of band)."""
        return self.ssh("cat /etc/ssh/ssh_host_ed25519_key.pub").stdout.strip()

    def host_key_fingerprint(self) -> str:
        return self.ssh("ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[1]


def harness_key() -> str:
    return subprocess.run([HOSTS / "key.sh"], capture_output=True, text=True, check=True).stdout.strip()


@contextlib.contextmanager
def booted(prefix: str, first_index: int, count: int, base: str = "base") -> Iterator[list[TestHost]]:
    """`count` hosts; base "bare" boots the bare flavour (systemd, sshd and python3 only) that
    install tests start from."""
    hosts: list[TestHost] = []
    env = dict(os.environ, WECO_TESTHOSTS_BASE=base)
    try:
        for offset in range(count):
            name, index = f"{prefix}{first_index + offset}", first_index + offset
            done = subprocess.run([HOSTS / "up.sh", name, str(index)], capture_output=True, text=True,
                                  timeout=300, env=env)
            if done.returncode != 0:
                raise RuntimeError(f"test host {name} did not come up: {done.stderr}")
            hosts.append(TestHost(name, index, done.stdout.strip().splitlines()[-1]))
        yield hosts
    finally:
        for offset in range(count):
            subprocess.run([HOSTS / "down.sh", f"{prefix}{first_index + offset}"], check=False)
