"""The restore drill of issue 18, on both backends: data of every kind (users, a second
factor, sites, hosts with encrypted keys, runs, audit rows), `weco backup create`, wipe
the store, `weco backup restore`, then `weco audit verify` passes, every count matches,
and an admin logs in (password and TOTP) and queues a deploy; `weco backup drill` then
proves the newest backup again and records it. And every bad backup or passphrase is
refused with one line, writing nothing."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import falcon.testing
import pytest

from control_api import migrations
from control_api.app import create_app
from control_api.audit import keys
from control_api.crypto import Aad
from control_api.db import open_database
from control_api.models import AuditEvent, Host
from control_api.settings import load_settings
from control_api.sites.sample import write_sample_site
from control_api.wiring import build_credentials, build_deps, build_users, build_worker
from tests.conftest import ACTOR, PASSWORD, run_weco
from tests.control_api.auth.test_second_factor import cookie_of, enrol, login, now_code, second
from tests.control_api.resources.conftest import bearer
from tests.control_api.resources.test_sites_hosts import make_host

PASSPHRASE = "a backup passphrase of its own, 2026"
CHUNK = 65536 + 16


def _counts(db) -> dict[str, int]:
    return {table: db.execute_sql(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            for table in db.get_tables()}


def _passphrase_file(directory: Path, text: str) -> Path:
    path = directory / f"passphrase-{abs(hash(text))}"
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path


def _wipe(settings, db, postgres) -> None:
    db.close()
    db.close_all()
    if settings.effective_database_url.startswith("sqlite"):
        path = Path(settings.effective_database_url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    else:
        name = settings.effective_database_url.rsplit("/", 1)[1]
        postgres.admin_sql(f"DROP DATABASE {name} WITH (FORCE)")
        postgres.admin_sql(f"CREATE DATABASE {name}")
    keys.checkpoint_file(settings).path.unlink()


def _one_line(result) -> str:
    # The JSON log lines (a key provider saying which served) are logs, not the answer.
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith('{"time"')]
    assert result.returncode == 1 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_backup_wipe_restore_then_verify_login_and_deploy(env, tmp_path, clock, fast_hasher, request):
    env = dict(env, FF_BACKUP_PASSPHRASE_FILE=str(_passphrase_file(tmp_path, PASSPHRASE)))
    assert run_weco(env, "db", "upgrade").returncode == 0
    settings = load_settings(env)
    db = open_database(settings.effective_database_url)
    deps = build_deps(settings, db, clock=clock, hasher=fast_hasher)
    client = falcon.testing.TestClient(create_app(deps))
    users = build_users(deps)
    root_user = users.create("root@example.test", "superadmin", PASSWORD, ACTOR)
    admin = users.create("admin@example.test", "admin", PASSWORD, ACTOR)
    root = bearer(build_credentials(deps).create_token(root_user, "root", None, ACTOR)[0])
    assert client.simulate_post("/api/sites", json={"slug": "acme", "domain": "acme.example.com"},
                                headers=root).status_code == 201
    host, pem = make_host(client, root)
    assert client.simulate_put(f"/api/sites/acme/hosts/{host['id']}", headers=root).status_code == 201
    assert client.simulate_put(f"/api/sites/acme/grants/{admin.id}", headers=root).status_code in (200, 201)
    # A site on this machine (a local-connection host), so the restored store can really deploy.
    served = tmp_path / "served"
    local_vars = {"site_deploy_root": str(served), "site_deploy_nginx": False,
                  "site_deploy_install_packages": False}
    here = client.simulate_post("/api/hosts", headers=root,
                                json={"name": "here", "connection": "local", "vars": local_vars})
    assert client.simulate_post("/api/sites", json={"slug": "local", "domain": "local.example.com"},
                                headers=root).status_code == 201
    assert client.simulate_put(f"/api/sites/local/hosts/{here.json['id']}", headers=root).status_code == 201
    assert client.simulate_put(f"/api/sites/local/grants/{admin.id}", headers=root).status_code == 201
    write_sample_site(settings.sources_dir / "local", count=2, size=5_000)
    seed, _ = enrol(client, clock, cookie_of(login(client)))
    clock.advance(seconds=30)
    assert client.simulate_post("/api/runs", json={"playbook": "deploy_site", "site": "acme"},
                                headers=root).status_code == 201
    deps.audit.seal()
    deps.audit.checkpoint()
    before = _counts(db)
    assert all(before[t] for t in ("users", "totp_credentials", "recovery_codes", "sites", "hosts", "runs",
                                   "audit_events", "site_grants"))

    backups = tmp_path / "backups"
    backups.mkdir()
    made = run_weco(env, "backup", "create", "--out", str(backups / "one.wecobak"))
    assert made.returncode == 0 and "backup written" in made.stdout, made.stderr
    raw = (backups / "one.wecobak").read_bytes()
    assert pem.split("\n")[1].encode() not in raw and b"acme.example.com" not in raw  # encrypted

    on_postgres = "postgresql" in env["FF_DATABASE_URL"]
    _wipe(settings, db, request.getfixturevalue("postgres") if on_postgres else None)
    restored = run_weco(env, "backup", "restore", str(backups / "one.wecobak"))
    assert restored.returncode == 0 and "restored" in restored.stdout, restored.stderr
    witness_pub = tmp_path / "witness.pub"
    witness_pub.write_bytes(keys.load_witness(settings).public.pem())
    verified = run_weco(env, "audit", "verify", "--witness-pub", str(witness_pub))
    assert verified.returncode == 0 and "audit log: OK" in verified.stdout, verified.stdout + verified.stderr

    db = open_database(settings.effective_database_url)
    db.connect(reuse_if_open=True)
    after = _counts(db)
    restore_events = after["audit_events"] - before["audit_events"]
    assert restore_events == 1 and {k: v for k, v in after.items() if k != "audit_events"} == {
        k: v for k, v in before.items() if k != "audit_events"}
    assert AuditEvent.select().order_by(AuditEvent.seq.desc()).first().action == "backup.restore"
    assert not migrations.pending(db)

    deps = build_deps(settings, db, clock=clock, hasher=fast_hasher)
    client = falcon.testing.TestClient(create_app(deps))
    assert deps.keys.decrypt(Host.get().ssh_private_key, aad=Aad("hosts", "ssh_private_key", host["id"]))
    first = login(client)
    done = second(client, first.json["challenge"], "totp", now_code(clock, seed))
    assert done.status_code == 200, done.text
    deploy = client.simulate_post("/api/runs", json={"playbook": "deploy_site", "site": "local"},
                                  headers=cookie_of(done))
    assert deploy.status_code == 201 and deploy.json["status"] == "queued", deploy.text
    worker = build_worker(deps, name="after-restore")
    while worker.run_once():  # the run queued before the backup comes first
        pass
    ran = client.simulate_get(f"/api/runs/{deploy.json['id']}", headers=cookie_of(done)).json
    assert ran["status"] == "successful", ran
    assert (served / "local" / "current" / "index.html").is_file()

    drill = run_weco(env, "backup", "drill", "--from", str(backups))
    assert drill.returncode == 0 and "restore drill OK" in drill.stdout, drill.stdout + drill.stderr
    db.connect(reuse_if_open=True)
    deps.audit.seal()
    event = AuditEvent.select().where(AuditEvent.action == "backup.drill").first()
    assert event is not None and '"ok":true' in event.event_json and '"seconds":' in event.event_json
    db.close()


@pytest.fixture
def sqlite_env(tmp_path):
    env = {"FF_ENV": "dev", "FF_DATA_DIR": str(tmp_path / "var"),
           "FF_BACKUP_PASSPHRASE_FILE": str(_passphrase_file(tmp_path, PASSPHRASE))}
    assert run_weco(env, "db", "upgrade").returncode == 0
    for email in ("a@example.test", "b@example.test"):
        assert run_weco(env, "user", "create", "--email", email, "--role", "admin", "--password-stdin",
                        stdin=PASSWORD + "\n").returncode == 0
    return env


def test_bad_backups_and_passphrases_are_refused_with_one_line(sqlite_env, tmp_path):
    env = sqlite_env
    good = tmp_path / "good.wecobak"
    assert run_weco(env, "backup", "create", "--out", str(good)).returncode == 0
    raw = good.read_bytes()
    assert len(raw) > 3 * CHUNK  # several chunks, so dropping the last leaves a plausible file
    flipped = tmp_path / "flipped.wecobak"
    flipped.write_bytes(raw[:CHUNK + 500] + bytes([raw[CHUNK + 500] ^ 0x40]) + raw[CHUNK + 501:])
    dropped = tmp_path / "dropped.wecobak"
    dropped.write_bytes(raw[:62 + (len(raw) - 62 - 1) // CHUNK * CHUNK])

    assert "does not authenticate" in _one_line(run_weco(env, "backup", "verify", str(flipped)))
    assert "truncated" in _one_line(run_weco(env, "backup", "verify", str(dropped)))
    wrong = dict(env, FF_BACKUP_PASSPHRASE_FILE=str(_passphrase_file(tmp_path, "some other passphrase!")))
    assert "passphrase does not open" in _one_line(run_weco(wrong, "backup", "verify", str(good)))

    settings = load_settings(env)
    master_text = (settings.data_dir / "keys" / "master.key").read_text().strip()
    audit_text = (settings.data_dir / "audit" / "chain.secret").read_text().strip()
    master_raw = base64.b64decode(master_text)
    for shared, what in ((master_text, "master secret"), (master_raw.hex(), "master secret"),
                         (audit_text, "audit secret")):
        same = dict(env, FF_BACKUP_PASSPHRASE_FILE=str(_passphrase_file(tmp_path, shared)))
        out = tmp_path / f"shared-{what[:5]}.wecobak"
        assert f"is the {what}" in _one_line(run_weco(same, "backup", "create", "--out", str(out)))
        assert not out.exists() and not list(tmp_path.glob(".*partial"))
    loose = _passphrase_file(tmp_path, "loose permissions passphrase")
    loose.chmod(0o644)
    loose_env = dict(env, FF_BACKUP_PASSPHRASE_FILE=str(loose))
    assert "chmod 600" in _one_line(run_weco(loose_env, "backup", "verify", str(good)))
    assert "already exists" in _one_line(run_weco(env, "backup", "create", "--out", str(good)))

    # Restores: nothing is written from a bad backup, and a store with data is never overwritten.
    empty = dict(env, FF_DATA_DIR=str(tmp_path / "empty"), FF_AUDIT_SECRET=audit_text,
                 FF_MASTER_SECRET_PROVIDER=f"file:{settings.data_dir / 'keys' / 'master.key'}",
                 FF_AUDIT_WITNESS_KEY=str(settings.data_dir / "audit" / "witness.key"))
    target = tmp_path / "empty" / "weco.sqlite3"
    for bad, words in ((flipped, "does not authenticate"), (dropped, "truncated")):
        assert words in _one_line(run_weco(empty, "backup", "restore", str(bad)))
        assert not target.exists() and not [p for p in target.parent.glob("*") if p.suffix == ".sqlite3"]
    assert "not empty" in _one_line(run_weco(env, "backup", "restore", str(good)))
    assert os.path.getsize(settings.data_dir / "weco.sqlite3") > 0
