"""Loading the master secret against the store's record, and the master-secret CLI."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from control_api.audit.log import AuditLog
from control_api.crypto import Aad
from control_api.masterkey import MasterKeyError, MasterKeys
from control_api.models import AuditEvent, MasterKey
from control_api.settings import SettingsError, load_settings
from tests.peers.postgres import free_port


def keys_for(env, db, clock, **overrides) -> MasterKeys:
    from control_api.wiring import build_audit_log

    settings = load_settings({**env, **overrides})
    audit: AuditLog = build_audit_log(settings, db, clock)
    return MasterKeys(settings, db, audit, clock)


def test_first_use_creates_a_0600_file_and_registers_it(env, db, clock, tmp_path):
    keyring = keys_for(env, db, clock).keyring()
    path = tmp_path / "var" / "keys" / "master.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    row = MasterKey.get()
    assert (row.key_id, row.state, row.provider_uri) == (keyring.current_id, "active", f"file:{path}")
    assert AuditEvent.get(AuditEvent.action == "master_secret.register").target == f"master_key:{row.key_id}"
    # Loading again changes nothing.
    assert keys_for(env, db, clock).keyring().current_id == keyring.current_id
    assert MasterKey.select().count() == 1


def test_local_forbid_refuses_the_default(env, db, clock):
    with pytest.raises(MasterKeyError, match="FF_KEY_LOCAL_FORBID=1 refuses file: providers"):
        keys_for(env, db, clock, FF_KEY_LOCAL_FORBID="1").keyring()
    assert MasterKey.select().count() == 0


def test_a_foreign_master_secret_is_refused(env, db, clock, tmp_path):
    keys_for(env, db, clock).keyring()
    other = tmp_path / "other.key"
    other.write_text("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n")
    os.chmod(other, 0o600)
    with pytest.raises(MasterKeyError, match=r"is not the store's \("):
        keys_for(env, db, clock, FF_MASTER_SECRET_PROVIDER=f"file:{other}").keyring()


def test_a_store_row_naming_a_command_never_runs_it(env, db, clock, tmp_path):
    """Issue 11, item 2: whoever can insert into master_keys (the service role can) must
    not get a command run by every API and worker process. Provider addresses come
    from settings; the store's record is only a note."""
    keys_for(env, db, clock).keyring()
    marker = tmp_path / "marker"
    MasterKey.insert(key_id="0123456789abcdef", provider_uri=f"env-cmd:/usr/bin/touch {marker}",
                     state="rotating", created_at=clock.now()).execute()
    keys = keys_for(env, db, clock)
    keyring = keys.keyring()  # loads the configured secret; the row's URI is never resolved
    assert "0123456789abcdef" not in keyring.key_ids
    with pytest.raises(MasterKeyError, match="FF_MASTER_SECRET_ROTATION_PROVIDER"):
        keys.decrypt("v1.0123456789abcdef.AAAA", aad=Aad("hosts", "ssh_private_key", 1))
    assert not marker.exists()


def test_the_rotation_provider_setting_obeys_local_forbid(env, db, clock, tmp_path):
    marker = tmp_path / "marker"
    with pytest.raises(SettingsError, match="FF_MASTER_SECRET_ROTATION_PROVIDER"):
        load_settings({**env, "FF_MASTER_SECRET_ROTATION_PROVIDER": "nonsense"})
    settings = {"FF_KEY_LOCAL_FORBID": "1", "FF_MASTER_SECRET_PROVIDER": "vault:k",
                "FF_MASTER_SECRET_ROTATION_PROVIDER": f"env-cmd:/usr/bin/touch {marker}"}
    MasterKey.insert(key_id="0123456789abcdef", provider_uri="vault:k", state="active",
                     created_at=clock.now()).execute()
    with pytest.raises(MasterKeyError, match="FF_KEY_LOCAL_FORBID=1 refuses env-cmd:"):
        keys_for(env, db, clock, **settings)._rotation_secret()
    assert not marker.exists()


def test_concurrent_first_starts_register_the_key_once(env, db, clock):
    """Issue 11, item 9: several processes starting on a fresh store record one
    master_secret.register, so the log never states something false."""
    first, second = keys_for(env, db, clock), keys_for(env, db, clock)
    secret, provider = first._configured_secret()
    from control_api.crypto import master_key_id

    first._register(master_key_id(secret), provider)
    second._register(master_key_id(secret), provider)  # lost the race: the row exists
    assert AuditEvent.select().where(AuditEvent.action == "master_secret.register").count() == 1
    assert MasterKey.select().count() == 1


def _weco(env, *args):
    return subprocess.run([sys.executable, "-m", "control_api.cli", *args],
                          env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True, timeout=120)


def test_init_stores_a_new_secret_once(env, tmp_path):
    assert _weco(env, "db", "upgrade").returncode == 0
    uri = f"file:{tmp_path}/init.key"
    made = _weco(env, "master-secret", "init", "--provider", uri)
    assert made.returncode == 0, made.stderr
    assert f"now set FF_MASTER_SECRET_PROVIDER={uri}" in made.stdout
    status = _weco({**env, "FF_MASTER_SECRET_PROVIDER": uri}, "master-secret", "status")
    assert status.returncode == 0 and "active" in status.stdout and uri in status.stdout
    again = _weco(env, "master-secret", "init", "--provider", f"file:{tmp_path}/second.key")
    assert again.returncode == 1 and "already has a master secret" in again.stderr
    assert not (tmp_path / "second.key").exists()


def test_vault_provider_end_to_end_and_a_clear_start_up_error_when_down(env, openbao):
    assert _weco(env, "db", "upgrade").returncode == 0
    vault = {**env, "VAULT_ADDR": openbao.address, "VAULT_TOKEN": "root"}
    made = _weco(vault, "master-secret", "init", "--provider", "vault:weco-master")
    assert made.returncode == 0, made.stderr
    configured = {**vault, "FF_MASTER_SECRET_PROVIDER": "vault:weco-master"}
    status = _weco(configured, "master-secret", "status")
    assert status.returncode == 0 and "active    vault:weco-master" in status.stdout
    # With local providers forbidden, a rotation to one is refused before anything is stored.
    marker = Path(env["FF_DATA_DIR"]) / "marker"
    forbid = {**configured, "FF_KEY_LOCAL_FORBID": "1"}
    for target in (f"file:{Path(env['FF_DATA_DIR']) / 'new.key'}", f"env-cmd:/usr/bin/touch {marker}"):
        refused = _weco(forbid, "master-secret", "rotate", "--to", target)
        assert refused.returncode == 1 and "FF_KEY_LOCAL_FORBID=1 refuses" in refused.stderr, refused.stderr
    assert not marker.exists() and not (Path(env["FF_DATA_DIR"]) / "new.key").exists()
    # And a local provider cannot be where a store's first secret goes either.
    fresh = {**env, "FF_DATABASE_URL": f"sqlite:///{Path(env['FF_DATA_DIR']) / 'other.sqlite3'}",
             "FF_KEY_LOCAL_FORBID": "1", "FF_MASTER_SECRET_PROVIDER": "vault:weco-master"}
    assert _weco(fresh, "db", "upgrade").returncode == 0
    refused = _weco({**vault, **fresh}, "master-secret", "init",
                    "--provider", f"env-cmd:/usr/bin/touch {marker}")
    assert refused.returncode == 1 and "FF_KEY_LOCAL_FORBID=1 refuses env-cmd:" in refused.stderr
    assert not marker.exists()
    assert "rotating" not in _weco(configured, "master-secret", "status").stdout
    down = {**configured, "VAULT_ADDR": f"http://127.0.0.1:{free_port()}"}
    result = _weco(down, "serve", "--bind", f"127.0.0.1:{free_port()}")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("weco: no key provider could produce the master secret: vault: cannot reach")
