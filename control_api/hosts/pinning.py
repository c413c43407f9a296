"""Pinned SSH host keys: what a host must present before any run acts on it.

A host gets its pinned key in one of two ways: given at registration (or later through
`repin`), or scanned with ssh-keyscan (`scan`, which only stores the key as *pending*)
and then confirmed by a superadmin who names its fingerprint (`confirm`), having
compared it out of band (`ssh-keygen -lf` on the host's console). Runs use only the
pinned key (hosts/sshrun.py); a pending one is never trusted. Changing a pinned key is
`repin` alone: one service method, so one guard covers it. Every change is audited in
its transaction, and a run refused for a key mismatch records a critical alert.
"""

from __future__ import annotations

from collections.abc import Callable

from control_api.audit.log import Actor, AuditLog
from control_api.errors import ApiError, Conflict, InvalidInput
from control_api.hosts import hostkeys
from control_api.hosts.hostkeys import HostKey, ScanFailed
from control_api.models import Host


class ScanUnanswered(ApiError):
    """ssh-keyscan got no host key from the host."""

    status = 502
    title = "Host did not answer"


def _ssh_only(host: Host) -> None:
    if host.connection != "ssh":
        raise Conflict(f"host '{host.name}' uses a local connection: it has no SSH host key",
                       title="No SSH host key")


class HostKeys:
    def __init__(self, audit: AuditLog,
                 scanner: Callable[[str, int], HostKey] = hostkeys.scan) -> None:
        self.audit, self.scanner = audit, scanner

    def scan(self, host: Host, actor: Actor) -> HostKey:
        """Read the host's key now and keep it as pending; the pinned key is untouched."""
        _ssh_only(host)
        try:
            key = self.scanner(host.address, host.port)
        except ScanFailed as exc:
            raise ScanUnanswered(f"{exc}; nothing was changed") from None
        with self.audit.mutation():
            Host.update(ssh_host_key_pending=key.line).where(Host.id == host.id).execute()
            self.audit.record(actor, "host.host_key_scan", f"host:{host.id}",
                              {"fingerprint": key.fingerprint,
                               "matches_pinned": key.line == host.ssh_host_key})
        host.ssh_host_key_pending = key.line
        return key

    def confirm(self, host: Host, fingerprint: object, actor: Actor) -> HostKey:
        """Pin the pending key of a host that has none pinned yet, if `fingerprint` is its
        fingerprint (what the superadmin compared)."""
        _ssh_only(host)
        if not isinstance(fingerprint, str):
            raise InvalidInput("'fingerprint' must be the pending key's SHA256 fingerprint")
        with self.audit.mutation():
            row = Host.get_by_id(host.id)
            if row.ssh_host_key:
                raise Conflict(f"host '{host.name}' already has a pinned key: changing it is a re-pin "
                               f"(PUT /api/hosts/{host.id}/host-key)", title="Already pinned")
            pending = hostkeys.stored(row.ssh_host_key_pending)
            if pending is None:
                raise Conflict(f"host '{host.name}' has no scanned key to confirm: scan it first",
                               title="Nothing to confirm")
            if fingerprint != pending.fingerprint:
                raise Conflict("the fingerprint does not match the scanned key "
                               f"({pending.fingerprint}); nothing was pinned", title="Fingerprint mismatch")
            Host.update(ssh_host_key=pending.line,
                        ssh_host_key_pending="").where(Host.id == host.id).execute()
            self.audit.record(actor, "host.host_key_pin", f"host:{host.id}",
                              {"fingerprint": pending.fingerprint, "source": "scan-confirmed"})
        host.ssh_host_key, host.ssh_host_key_pending = pending.line, ""
        return pending

    def repin(self, host: Host, key_line: object, actor: Actor) -> HostKey:
        """Set the host's pinned key to `key_line` (given in full), replacing any other.
        The one way to change a pinned key."""
        _ssh_only(host)
        key = hostkeys.parse(key_line)
        with self.audit.mutation():
            row = Host.get_by_id(host.id)
            old = hostkeys.stored(row.ssh_host_key) if row.ssh_host_key else None
            Host.update(ssh_host_key=key.line, ssh_host_key_pending="").where(Host.id == host.id).execute()
            self.audit.record(actor, "host.host_key_repin", f"host:{host.id}",
                              {"fingerprint": key.fingerprint, "previous": old.fingerprint if old else None})
        host.ssh_host_key, host.ssh_host_key_pending = key.line, ""
        return key

    def alert_mismatch(self, host: Host, run_id: int, offered: str, actor: Actor) -> None:
        """A run met a host presenting another key than its pinned one: a critical alert."""
        pinned = hostkeys.stored(host.ssh_host_key)
        self.audit.record_alone(actor, "host.host_key_mismatch", f"host:{host.id}", {
            "severity": "critical", "run": run_id, "host": host.name,
            "pinned": pinned.fingerprint if pinned else None, "offered": offered or None})


def registration_key(data: dict, connection: str) -> str:
    """The pinned key line for a host being registered: '' when none was given."""
    if "ssh_host_key" not in data:
        return ""
    given = data["ssh_host_key"]
    if connection != "ssh":
        raise InvalidInput("'ssh_host_key' is not used by a local connection")
    return hostkeys.parse(given).line


def fingerprint_of(line: str) -> str | None:
    return hostkeys.stored(line).fingerprint if line else None


def key_json(host: Host) -> dict:
    """How a host's pinned and pending keys are shown."""
    return {"ssh_host_key": _shown(host.ssh_host_key),
            "ssh_host_key_pending": _shown(host.ssh_host_key_pending)}


def _shown(value: str) -> dict | None:
    try:
        key = hostkeys.stored(value)
    except InvalidInput:  # written past the API: shown as absent; the worker refuses to run on it
        return None
    return key.as_json() if key else None
