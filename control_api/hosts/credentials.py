"""A host's SSH credentials in the store, as the worker uses and rotates them.

A host has its current private key (`ssh_private_key`) and, while a credential
rotation is under way or was interrupted, a staged one (`ssh_private_key_next`). Both
are AES-256-GCM under the master key (control_api/crypto.py, NIST SP 800-38D) with
the AAD bound to (hosts, column, row id), as control_api/sites/catalog.py stores the
current one. Every run offers a host both keys, current first: whichever step a
rotation was stopped at, one of them is the one the host accepts.
"""

from __future__ import annotations

from control_api.audit.log import Actor, AuditLog
from control_api.crypto import Aad
from control_api.hosts import hostkeys
from control_api.hosts.sshrun import HostAccess
from control_api.masterkey import MasterKeys
from control_api.models import Host
from control_api.sites import validate


class NotPinned(Exception):
    """The host has no pinned host key: no run may reach it."""


def current_aad(host_id: int) -> Aad:
    return Aad("hosts", "ssh_private_key", host_id)


def staged_aad(host_id: int) -> Aad:
    return Aad("hosts", "ssh_private_key_next", host_id)


class HostCredentials:
    def __init__(self, audit: AuditLog, keys: MasterKeys) -> None:
        self.audit, self.keys = audit, keys

    def current(self, host: Host) -> bytes:
        return self.keys.decrypt(host.ssh_private_key, aad=current_aad(host.id))

    def staged(self, host: Host) -> bytes | None:
        if host.ssh_private_key_next is None:
            return None
        return self.keys.decrypt(host.ssh_private_key_next, aad=staged_aad(host.id))

    def access(self, host: Host) -> HostAccess:
        """What a run offers this SSH host and the host key it must present; NotPinned
        without one, InvalidInput for a stored key the API's checks refuse."""
        if not host.ssh_host_key:
            raise NotPinned(f"host '{host.name}' has no pinned SSH host key: give it "
                            f"(PUT /api/hosts/{host.id}/host-key) or scan and confirm it "
                            f"(POST /api/hosts/{host.id}/host-key/scan, then .../confirm); nothing was run")
        pinned = hostkeys.stored(host.ssh_host_key)
        staged = self.staged(host)
        return HostAccess(host.id, pinned, (self.current(host),) + ((staged,) if staged else ()))

    def stage(self, host: Host, key: bytes) -> None:
        """Keep a new key beside the current one, before anything on the host changes."""
        sealed = self.keys.encrypt(key, aad=staged_aad(host.id))
        Host.update(ssh_private_key_next=sealed).where(Host.id == host.id).execute()
        host.ssh_private_key_next = sealed

    def drop_staged(self, host: Host, why: str, actor: Actor) -> None:
        with self.audit.mutation():
            Host.update(ssh_private_key_next=None).where(Host.id == host.id).execute()
            self.audit.record(actor, "host.credentials_staged_dropped", f"host:{host.id}", {"reason": why})
        host.ssh_private_key_next = None

    def promote(self, host: Host, key: bytes, metadata: dict, actor: Actor) -> str:
        """Make `key` the host's current key (the staged one ends); its fingerprint."""
        _, fingerprint = validate.private_key(key.decode())
        with self.audit.mutation():
            sealed = self.keys.encrypt(key, aad=current_aad(host.id))
            Host.update(ssh_private_key=sealed, ssh_key_fingerprint=fingerprint,
                        ssh_private_key_next=None).where(Host.id == host.id).execute()
            self.audit.record(actor, "host.credentials_rotate", f"host:{host.id}",
                              dict(metadata, ssh_key_fingerprint=fingerprint,
                                   previous=host.ssh_key_fingerprint))
        host.ssh_private_key, host.ssh_key_fingerprint, host.ssh_private_key_next = sealed, fingerprint, None
        return fingerprint

