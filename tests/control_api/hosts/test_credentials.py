"""A host's credentials as the worker reads them: no run reaches an SSH host without a
pinned key, a stored key the API would refuse stops the run before anything starts,
and the staged key of a rotation is encrypted and bound to its own row and column."""

from __future__ import annotations

import pytest

from control_api.crypto import Aad, CryptoError
from control_api.hosts import sshrun
from control_api.hosts.credentials import HostCredentials, NotPinned, staged_aad
from control_api.hosts.rotation import new_key_pair
from control_api.models import Host, Run, RunEvent
from control_api.runs.queue import RunQueue, RunRequest
from control_api.wiring import build_catalog, build_worker
from tests.conftest import ACTOR
from tests.control_api.hosts.test_hostkeys import ED
from tests.control_api.sites.keys import openssh_key


def ssh_host(deps, name="web-1", **extra) -> Host:
    data = {"name": name, "address": "192.0.2.10", "ssh_private_key": openssh_key(), **extra}
    return build_catalog(deps).create_host(data, ACTOR)


def check_hosts(deps, user, host) -> Run:
    queue = RunQueue(deps.db, deps.audit, deps.clock)
    request = RunRequest("check_hosts", {"hosts": [host.id]}, {}, None, None)
    return queue.request(user, request, None, ACTOR)[0]


@pytest.mark.parametrize("stored, refusal", [
    ("", "has no pinned SSH host key: give it (PUT /api/hosts/"),
    ("@revoked * " + ED, "a stored value fails its check"),
    (ED + "\nevil " + ED, "a stored value fails its check"),
])
def test_no_run_reaches_a_host_without_a_valid_pinned_key(deps, superadmin, stored, refusal):
    host = ssh_host(deps, ssh_host_key=ED)
    Host.update(ssh_host_key=stored).where(Host.id == host.id).execute()  # past the API
    run = check_hosts(deps, superadmin, host)
    assert build_worker(deps).run_once()
    run = Run.get_by_id(run.id)
    assert run.status == "error" and refusal in run.error, run.error
    assert not RunEvent.select().where(RunEvent.run == run.id).exists()  # Ansible never started


def test_the_staged_key_is_encrypted_bound_to_its_row_and_offered_after_the_current_one(deps, db):
    credentials = HostCredentials(deps.audit, deps.keys)
    first, second = ssh_host(deps, "web-1", ssh_host_key=ED), ssh_host(deps, "web-2", ssh_host_key=ED)
    with pytest.raises(NotPinned):
        credentials.access(ssh_host(deps, "web-3"))
    new, public = new_key_pair(f"weco-host-{first.id}")
    credentials.stage(first, new)
    stored = Host.get_by_id(first.id).ssh_private_key_next
    assert new.decode() not in stored and public.split()[1] not in stored
    access = credentials.access(Host.get_by_id(first.id))
    assert access.private_keys == (credentials.current(first), new)
    assert sshrun.public_line(new) == " ".join(public.split()[:2])
    # The same ciphertext on another row, or read as the current key, does not decrypt.
    Host.update(ssh_private_key_next=stored).where(Host.id == second.id).execute()
    with pytest.raises(CryptoError):
        credentials.staged(Host.get_by_id(second.id))
    with pytest.raises(CryptoError):
        deps.keys.decrypt(stored, aad=Aad("hosts", "ssh_private_key", first.id))
    assert deps.keys.decrypt(stored, aad=staged_aad(first.id)) == new
    previous = Host.get_by_id(first.id).ssh_key_fingerprint
    fingerprint = credentials.promote(Host.get_by_id(first.id), new, {"run": 7, "resumed": False}, ACTOR)
    row = Host.get_by_id(first.id)
    assert row.ssh_private_key_next is None and row.ssh_key_fingerprint == fingerprint != previous
    assert credentials.current(row) == new and credentials.access(row).private_keys == (new,)
