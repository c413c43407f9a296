"""The SSH side of one run: which keys each host is offered, which host key it must
present, and the ssh options that bind both.

For every SSH host the run writes, into a fresh 0700 directory that ends with it:
- a known_hosts file holding each host's pinned key under a name the worker makes
  (`weco-host-ID`, used as ssh's HostKeyAlias), so no address, pattern or marker from
  anywhere reaches the file and two hosts at one address keep their own keys;
- the public halves of the host's private keys, named as ssh's IdentityFile with
  IdentitiesOnly, so only those keys are offered (never the worker user's ~/.ssh/id_*),
  while the private halves stay in the host's ssh-agent (runs/sshagent.py).
ssh then checks strictly (StrictHostKeyChecking=yes, no global known_hosts, no
learning of new keys): a host presenting any other key is refused before anything runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from control_api.hosts.hostkeys import HostKey, known_hosts_line
from control_api.runs import sshagent

PROBE_TIMEOUT_SECONDS = 20
# Never a prompt, never a password: a key the host refuses fails at once.
_UNATTENDED = ["-o", "BatchMode=yes", "-o", "PasswordAuthentication=no",
               "-o", "KbdInteractiveAuthentication=no", "-o", "ConnectTimeout=10"]


@dataclasses.dataclass(frozen=True)
class HostAccess:
    host_id: int
    host_key: HostKey  # the pinned one
    private_keys: tuple[bytes, ...]  # what the host is offered, in this order

    @property
    def alias(self) -> str:
        return alias(self.host_id)


def alias(host_id: int) -> str:
    return f"weco-host-{int(host_id)}"


def public_line(private_key: bytes) -> str:
    """The OpenSSH public line ("TYPE BASE64") of a private key the store holds."""
    if b"OPENSSH PRIVATE KEY" in private_key:
        key = serialization.load_ssh_private_key(private_key, password=None)
    else:
        key = serialization.load_pem_private_key(private_key, password=None)
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode()


@contextlib.contextmanager
def session(hosts: list[HostAccess], lifetime: int) -> Iterator[dict[int, list[str]]]:
    """For the run's SSH hosts, yield {host id: ssh options ("-o", "NAME=VALUE", ...)};
    the files and agents end on exit."""
    base = Path(tempfile.mkdtemp(prefix="weco-ssh-"))
    try:
        os.chmod(base, 0o700)
        known_hosts = base / "known_hosts"
        known_hosts.write_text("".join(known_hosts_line(h.alias, h.host_key) for h in hosts))
        identities: dict[int, list[Path]] = {}
        for h in hosts:
            identities[h.host_id] = []
            for index, key in enumerate(h.private_keys):
                path = base / f"h{h.host_id}-{index}.pub"
                path.write_text(public_line(key) + "\n")
                identities[h.host_id].append(path)
        agent_keys = {f"h{h.host_id}": list(h.private_keys) for h in hosts}
        with sshagent.agents(agent_keys, lifetime) as sockets:
            yield {h.host_id: options(h.alias, known_hosts, sockets[f"h{h.host_id}"], identities[h.host_id],
                                      base / f"cp{h.host_id}-%C")
                   for h in hosts}
    finally:
        shutil.rmtree(base, ignore_errors=True)


def options(host_alias: str, known_hosts: Path, agent: str, identity_files: list[Path],
            control_path: Path) -> list[str]:
    settings = [f"IdentityAgent={agent}", "IdentitiesOnly=yes",
                *(f"IdentityFile={path}" for path in identity_files),
                f"HostKeyAlias={host_alias}", f"UserKnownHostsFile={known_hosts}",
                "GlobalKnownHostsFile=/dev/null", "StrictHostKeyChecking=yes", "CheckHostIP=no",
                "UpdateHostKeys=no", f"ControlPath={control_path}"]
    return [part for setting in settings for part in ("-o", setting)]


def common_args(ssh_options: list[str]) -> str:
    """The options as Ansible's ansible_ssh_common_args (split with shlex by Ansible)."""
    return shlex.join(ssh_options)


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """Where Ansible connects for a host: with the run's options, the same ControlPath."""
    options: list[str]
    address: str
    port: int
    user: str


@contextlib.contextmanager
def masters(endpoints: list[Endpoint]) -> Iterator[None]:
    """Log in to every host now, in the background, as a master connection at the run's
    ControlPath: Ansible's ssh (ControlMaster=auto) then opens its sessions through it,
    so the logins (about 0.25 s a host here) overlap ansible-playbook's start instead of
    delaying its first task. A master has exactly the run's options (the pinned host key,
    the host's own agent), so it can reach no more than Ansible could. One that fails (a
    host down, another host key) just ends, silently: Ansible then connects on its own
    and reports why, as it would without masters. They end with the block, or with the
    worker if it dies (PDEATHSIG)."""
    processes: list[subprocess.Popen] = []
    try:
        for end in endpoints:
            argv = ["ssh", *end.options, "-o", "ControlMaster=yes", "-o", "ControlPersist=no", *_UNATTENDED,
                    "-N", "-p", str(end.port), "-l", end.user, "--", end.address]
            processes.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL, preexec_fn=sshagent.die_with_parent))
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclasses.dataclass(frozen=True)
class Probe:
    status: str  # "ok" | "refused" (the key was not accepted) | "failed" (anything else)
    detail: str


def probe(access: HostAccess, address: str, port: int, user: str) -> Probe:
    """Log in once with exactly the keys of `access` (a fresh connection, no shared
    master) and run `true`: does the host accept them?"""
    with session([access], lifetime=PROBE_TIMEOUT_SECONDS * 2) as opts:
        argv = ["ssh", "-F", "/dev/null", *opts[access.host_id], "-o", "ControlMaster=no",
                "-o", "ControlPath=none", *_UNATTENDED, "-p", str(port), "-l", user, "--", address, "true"]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT_SECONDS,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return Probe("failed", "ssh timed out")
    detail = " ".join(done.stderr.split())[-300:]
    if done.returncode == 0:
        return Probe("ok", "")
    if "Permission denied" in done.stderr:
        return Probe("refused", detail)
    return Probe("failed", detail or f"ssh exited with {done.returncode}")
