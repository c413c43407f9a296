"""Host credential rotation: a new SSH key pair for a host, swapped in so that a worker
killed at any moment leaves a key that works.

The API queues a run of the `rotate_credentials` playbook for one host (`request`);
the worker, seeing the playbook's declared need (Playbook.rotates_credentials), hands
it to `CredentialRotation.run`, which takes these steps, each durable before the next:

1. staged:  a new Ed25519 key pair is made on the worker; its private half is stored
            encrypted beside the current key (hosts/credentials.py).
2. added:   the playbook appends its public half to the host's authorized_keys,
            logging in with the current key.
3. proven:  a fresh ssh connection offering only the new key runs `true` on the host.
4. removed: the playbook, logging in with only the new key, deletes the old key's line.
5. stored:  the new key becomes the host's current key in the store.

The host never lacks both keys (the old line goes only after the new one proved a
login), and until step 5 the store holds both, and every run offers both. A later
rotation that finds a staged key first settles it: if it logs in, the interrupted
rotation is finished from step 4; if the host definitely refuses it while the current
key logs in, it is dropped; if neither is certain, nothing changes and the run fails.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from control_api.audit.log import Actor
from control_api.errors import Conflict
from control_api.hosts import sshrun
from control_api.hosts.credentials import HostCredentials
from control_api.hosts.sshrun import HostAccess, Probe
from control_api.models import Host, Run, User
from control_api.runs.adapter import Outcome
from control_api.runs.queue import RunQueue, RunRequest

PLAYBOOK = "rotate_credentials"
STEPS = ("staged", "added", "proven", "removed", "stored")


def checkpoint(step: str) -> None:
    """Step `step` has taken effect. Nothing to do in the product: the rotation tests'
    driver replaces this to SIGKILL the worker at exactly this point."""


def lock_name(host_id: int) -> str:
    """The run lock a rotation holds: two rotations of one host never overlap. A site
    slug has no ':', so this never meets a site's lock."""
    return f"host:{int(host_id)}"


class RotationRequests:
    """The API side: queue the rotation run (audited as any run request)."""

    def __init__(self, queue: RunQueue) -> None:
        self.queue = queue

    def request(self, host: Host, user: User, actor: Actor) -> Run:
        if host.connection != "ssh":
            raise Conflict(f"host '{host.name}' uses a local connection: it has no SSH key to rotate",
                           title="No SSH key")
        if not host.ssh_host_key:
            raise Conflict(f"host '{host.name}' has no pinned SSH host key: pin it before rotating its key",
                           title="Host key not pinned")
        request = RunRequest(PLAYBOOK, {"hosts": [host.id]}, {}, None, lock_name(host.id))
        run, _ = self.queue.request(user, request, None, actor)
        return run


def new_key_pair(comment: str) -> tuple[bytes, str]:
    """(OpenSSH private key, "TYPE BASE64 COMMENT" public line)."""
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private, f"{public.decode()} {comment}"


def line_pattern(public_line: str) -> str:
    """A Python regular expression matching an authorized_keys line that holds this key,
    whatever options precede it or comment follows it (lineinfile's `regexp`)."""
    key_type, blob = public_line.split()[:2]
    return rf"(^|\s){re.escape(key_type)}\s+{re.escape(blob)}(\s|$)"


@dataclasses.dataclass(frozen=True)
class Steps:
    """What the rotation needs from the worker running it."""

    play: Callable[[HostAccess, dict], Outcome]  # the run's playbook, these keys, these variables
    note: Callable[[str], None]  # one line in the run's events
    probe: Callable[[HostAccess, Host], Probe]


class CredentialRotation:
    def __init__(self, credentials: HostCredentials, actor: Actor) -> None:
        self.credentials, self.actor = credentials, actor

    def run(self, run_id: int, host: Host, steps: Steps) -> Outcome:
        access = self.credentials.access(host)  # NotPinned: the caller's refusal
        current, staged = access.private_keys[0], self.credentials.staged(host)
        pinned = access.host_key

        def only(key: bytes) -> HostAccess:
            return HostAccess(host.id, pinned, (key,))

        to_remove = [line_pattern(sshrun.public_line(current))]
        resumed = False
        if staged is not None:
            verdict = self._settle(host, only(current), only(staged), steps)
            if isinstance(verdict, Outcome):
                return verdict
            resumed = verdict
            if not resumed:
                to_remove.append(line_pattern(sshrun.public_line(staged)))
        if resumed:
            new = staged
            steps.note("an earlier rotation was interrupted after its key was added: finishing it")
        else:
            new, public = new_key_pair(f"weco-host-{host.id}")
            self.credentials.stage(host, new)
            self._done("staged", steps, "a new key was made and stored, staged beside the current one")
            added = steps.play(only(current), {"host_rotation_add": public})
            if added.status != "successful":
                return added
            self._done("added", steps, "the new key's public half is in the host's authorized_keys")
            proof = steps.probe(only(new), host)
            if proof.status != "ok":
                return _failed(f"{host.name}: a login with the new key failed ({proof.detail}); the current "
                               "key still works and stays in use")
            self._done("proven", steps, "a fresh login with only the new key succeeded")
        removed = steps.play(only(new), {"host_rotation_remove": to_remove})
        if removed.status != "successful":
            return removed
        self._done("removed", steps, "the old key's line is gone from the host's authorized_keys")
        self.credentials.promote(host, new, {"run": run_id, "resumed": resumed}, self.actor)
        self._done("stored", steps, "the new key is the host's current key")
        return removed

    def _settle(self, host: Host, current: HostAccess, staged: HostAccess, steps: Steps) -> bool | Outcome:
        """A staged key from an interrupted rotation: True to finish that rotation, False
        once it is dropped, or the failed Outcome when neither key is certain."""
        with_staged = steps.probe(staged, host)
        if with_staged.status == "ok":
            return True
        with_current = steps.probe(current, host)
        if with_current.status == "ok" and with_staged.status == "refused":
            self.credentials.drop_staged(host, "the host refused it and accepts the current key", self.actor)
            steps.note("an earlier rotation's staged key was refused by the host: dropped")
            return False
        return _failed(f"{host.name}: an earlier rotation left a staged key, and neither it "
                       f"({with_staged.detail or with_staged.status}) nor the current key "
                       f"({with_current.detail or with_current.status}) could be shown to log in; "
                       "nothing was changed")

    def _done(self, step: str, steps: Steps, text: str) -> None:
        steps.note(f"rotation step {STEPS.index(step) + 1}/{len(STEPS)} ({step}): {text}")
        checkpoint(step)


def _failed(reason: str) -> Outcome:
    return Outcome("failed", None, {}, reason)
