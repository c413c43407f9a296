"""Master-secret rotation: a process killed half-way, then resumed, leaves every value
readable under the new key and none under the old; nothing lost, nothing doubled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from control_api.audit.verify import Verifier, rows_from_store
from control_api.crypto import Aad, CryptoError, Keyring, key_id_of
from control_api.db import dialect
from control_api.masterkey import MasterKeyError, MasterKeys
from control_api.models import AuditEvent, MasterKey
from control_api.settings import load_settings
from control_api.wiring import build_audit_log
from keyproviders import ProviderContext, resolve

ROOT = Path(__file__).resolve().parents[2]
ROWS = 240


@pytest.fixture
def notes(env, db, clock):
    """A table with one encrypted column, filled under the current master key."""
    pk = "BIGSERIAL PRIMARY KEY" if dialect(db) == "postgresql" else "INTEGER PRIMARY KEY AUTOINCREMENT"
    db.execute_sql(f"CREATE TABLE secret_notes (id {pk}, body TEXT)")
    settings = load_settings(env)
    keys = MasterKeys(settings, db, build_audit_log(settings, db, clock), clock)
    keyring = keys.keyring()
    for number in range(1, ROWS + 1):
        db.execute_sql(f"INSERT INTO secret_notes (id, body) VALUES ({db.param}, {db.param})",
                       (number, keyring.encrypt(f"note {number}".encode(), aad=Aad("secret_notes", "body",
                                                                                  number))))
    return keyring


def key_ids(db) -> list[str]:
    return [key_id_of(body) for (body,) in db.execute_sql("SELECT body FROM secret_notes ORDER BY id")]


def rotate(env, *args, wait=True):
    # As a module, not a script: a script's own directory goes first on sys.path, where the
    # test package tests/control_api/webauthn would hide the webauthn library.
    command = [sys.executable, "-m", "tests.control_api.rotation_driver", "master-secret", "rotate", *args]
    full_env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **env}
    if wait:
        return subprocess.run(command, env=full_env, capture_output=True, text=True, timeout=300)
    return subprocess.Popen(command, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_rotation_killed_half_way_then_resumed(env, db, clock, notes, tmp_path):
    old_id = notes.current_id
    target = f"file:{tmp_path}/new.key"
    process = rotate(env, "--to", target, "--batch-size", "10", "--pause", "0.05", wait=False)
    deadline = time.monotonic() + 60
    while sum(k != old_id for k in key_ids(db)) < 60:
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()

    # Half-way: some values under each key, all readable meanwhile by any process told
    # where the rotation's other key lives (settings name providers, the store never).
    ids = key_ids(db)
    assert old_id in ids and len(set(ids)) == 2
    assert MasterKey.get(MasterKey.key_id == old_id).state == "active"
    told = load_settings({**env, "FF_MASTER_SECRET_ROTATION_PROVIDER": target})
    meanwhile = MasterKeys(told, db, build_audit_log(told, db, clock), clock)
    assert meanwhile.keyring().current_id != old_id  # new values go under the target
    for number in range(1, ROWS + 1):
        (body,) = db.execute_sql(f"SELECT body FROM secret_notes WHERE id = {number}").fetchone()
        assert meanwhile.decrypt(body, aad=Aad("secret_notes", "body", number)) == f"note {number}".encode()
    untold = MasterKeys(load_settings(env), db, build_audit_log(load_settings(env), db, clock), clock)
    new_id = next(k for k in ids if k != old_id)
    (body, number) = next((b, n) for n, (b,) in enumerate(
        db.execute_sql("SELECT body FROM secret_notes ORDER BY id"), 1) if key_id_of(b) == new_id)
    with pytest.raises(MasterKeyError, match="FF_MASTER_SECRET_ROTATION_PROVIDER"):
        untold.decrypt(body, aad=Aad("secret_notes", "body", number))

    resumed = rotate(env, "--to", target, "--batch-size", "25")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed and finished" in resumed.stdout
    assert f"now set FF_MASTER_SECRET_PROVIDER={target}" in resumed.stdout

    new_secret = resolve(target, ProviderContext(tmp_path)).unwrap()
    only_new, only_old = Keyring(new_secret), notes
    assert set(key_ids(db)) == {only_new.current_id}
    for number in range(1, ROWS + 1):
        (body,) = db.execute_sql(f"SELECT body FROM secret_notes WHERE id = {number}").fetchone()
        aad = Aad("secret_notes", "body", number)
        assert only_new.decrypt(body, aad=aad) == f"note {number}".encode()
        with pytest.raises(CryptoError):
            only_old.decrypt(body, aad=aad)
    states = {row.key_id: row.state for row in MasterKey.select()}
    assert states == {old_id: "retired", only_new.current_id: "active"}

    # Audited: the start, every committed batch, the finish; and the chain holds.
    actions = [row.action for row in AuditEvent.select().order_by(AuditEvent.seq)]
    assert actions.count("master_secret.rotate.start") == 1
    assert actions.count("master_secret.rotate.finish") == 1
    batches = [r for r in AuditEvent.select().where(AuditEvent.action == "master_secret.rotate.batch")]
    assert sum(json.loads(r.event_json)["metadata"]["rows"] for r in batches) == ROWS
    settings = load_settings(env)
    audit = build_audit_log(settings, db, clock)
    assert Verifier([audit.witness.public], [audit.chain_key]).verify(rows_from_store()).ok

    # The old configuration is now refused, with the fix in the message.
    with pytest.raises(MasterKeyError, match=r"was retired by a rotation.*set FF_MASTER_SECRET_PROVIDER"):
        MasterKeys(settings, db, audit, clock).keyring()
    switched = load_settings({**env, "FF_MASTER_SECRET_PROVIDER": target})
    assert MasterKeys(switched, db, audit, clock).keyring().current_id == only_new.current_id


def test_a_second_rotation_target_is_refused_while_one_is_under_way(env, db, clock, notes, tmp_path):
    process = rotate(env, "--to", f"file:{tmp_path}/a.key", "--batch-size", "5", "--pause", "0.2", wait=False)
    deadline = time.monotonic() + 60
    while not MasterKey.select().where(MasterKey.state == "rotating").exists():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    other = rotate(env, "--to", f"file:{tmp_path}/b.key")
    assert other.returncode == 1
    assert f"(recorded as file:{tmp_path}/a.key) is under way: resume it with --to" in other.stderr
    assert not (tmp_path / "b.key").exists()


def test_rotation_to_an_unreachable_provider_changes_nothing(env, db, clock, notes):
    before = key_ids(db)
    result = rotate({**env, "VAULT_ADDR": "http://127.0.0.1:9", "VAULT_TOKEN": "t"}, "--to", "vault:weco")
    assert result.returncode == 1 and "vault: cannot reach" in result.stderr
    assert key_ids(db) == before
    assert not MasterKey.select().where(MasterKey.state == "rotating").exists()
