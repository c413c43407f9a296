"""control_api/cli/license.py: the issuer's commands (keypair, issue, revoke) and the admin
VM's (install, show), with one-line refusals that change nothing; `weco user create` and
`weco break-glass create` at the cap. In-process (control_api.cli.main), on SQLite, but
for one run of the real `weco` command."""

from __future__ import annotations

import json
import os
import stat

import pytest

from control_api.cli import main
from control_api.db import open_database
from control_api.license.token import PublicKey
from tests.conftest import run_weco


@pytest.fixture
def weco(tmp_path, monkeypatch, capsys, issuer_pub):
    for name in [name for name in os.environ if name.startswith("FF_")]:
        monkeypatch.delenv(name)
    env = {"FF_ENV": "dev", "FF_DATA_DIR": str(tmp_path / "var"), "FF_LICENSE_PUBLIC_KEY": str(issuer_pub)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    def weco(*args: str, stdin: str | None = None):
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", _Stdin(stdin))
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    weco.env = env
    assert weco("db", "upgrade")[0] == 0
    return weco


class _Stdin:
    def __init__(self, text: str) -> None:
        import io

        self.buffer = io.BytesIO(text.encode())

    def readline(self) -> str:
        return self.buffer.readline().decode()


@pytest.fixture
def issuer_files(issuer, tmp_path):
    key = tmp_path / "issuer.key"
    key.write_bytes(issuer.private_pem)
    key.chmod(0o600)
    return key


def actions(url: str, name: str) -> list[dict]:
    db = open_database(url)
    rows = [json.loads(text) for (text,) in db.execute_sql("SELECT event_json FROM audit_queue "
                                                            "UNION ALL SELECT event_json FROM audit_events")]
    db.close()
    return [row for row in rows if row["action"] == name]


def store_url(weco) -> str:
    return f"sqlite:///{weco.env['FF_DATA_DIR']}/weco.sqlite3"


def test_keypair_writes_a_private_key_only_its_owner_reads_and_never_overwrites(weco, tmp_path):
    code, out, _ = weco("license", "keypair", "--out-dir", str(tmp_path / "issuer"))
    assert code == 0 and "kid " in out
    private, public = tmp_path / "issuer" / "issuer.key", tmp_path / "issuer" / "issuer.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert PublicKey.from_pem(public.read_bytes()).key_id in out
    before = private.read_bytes()
    code, _, err = weco("license", "keypair", "--out-dir", str(tmp_path / "issuer"))
    assert code == 1 and "already exists; refusing to overwrite" in err and private.read_bytes() == before


def test_issue_install_show_revoke(weco, issuer_files, tmp_path):
    out_file = tmp_path / "acme.jwt"
    code, _, err = weco("license", "issue", "--key", str(issuer_files), "--customer", "ACME Ltd", "--tier",
                        "enterprise", "--sites", "4", "--hosts", "8", "--admins", "3", "--days", "365",
                        "--out", str(out_file))
    assert code == 0 and "issued a enterprise license for ACME Ltd" in err
    code, out, _ = weco("license", "install", str(out_file))
    assert code == 0 and out.startswith("installed enterprise license ")
    jti = out.split()[3]
    code, out, _ = weco("license", "show")
    assert code == 0
    assert "state:    active" in out and "tier:     enterprise" in out
    assert "usage:    sites 0/4, hosts 0/8, admins 0/3" in out and "no revocation list installed" in out
    assert weco("license", "install", str(out_file))[1].startswith("already installed:")
    code, token, _ = weco("license", "revoke", "--key", str(issuer_files), "--jti", jti)
    assert code == 0
    code, out, _ = weco("license", "install", "-", stdin=token)
    assert code == 0 and "1 revoked license id(s)" in out and "state:    revoked" in out
    assert "usage:    sites 0/1, hosts 0/2, admins 0/3" in out  # the community caps
    [event] = actions(store_url(weco), "license.install")
    assert event["actor"].startswith("cli:") and event["metadata"]["tier"] == "enterprise"
    assert len(actions(store_url(weco), "license.revocations_install")) == 1


def test_a_refused_install_says_why_on_one_line_and_changes_nothing(weco, tmp_path, clock):
    from tests.control_api.license.conftest import new_issuer

    forged = tmp_path / "forged.jwt"
    forged.write_text(new_issuer().license(clock.now().replace(year=2099)))
    code, out, err = weco("license", "install", str(forged))
    assert code == 1 and out == ""
    assert err.startswith("weco: license refused, nothing changed: ") and err.count("\n") == 1
    (tmp_path / "garbage").write_bytes(b"\xff\xfe")
    assert weco("license", "install", str(tmp_path / "garbage"))[2] == \
        f"weco: {tmp_path / 'garbage'}: not a license (a JWT is ASCII)\n"
    assert weco("license", "install", str(tmp_path / "missing"))[0] == 1
    db = open_database(store_url(weco))
    assert db.execute_sql("SELECT count(*) FROM licenses").fetchone() == (0,)
    db.close()
    assert "state:    dev" in weco("license", "show")[1]


def test_the_issuer_key_must_be_private_and_ed25519(weco, issuer_files, tmp_path):
    issuer_files.chmod(0o644)
    args = ("--customer", "A", "--tier", "standard", "--sites", "1", "--hosts", "1", "--admins", "1",
            "--days", "1")
    code, _, err = weco("license", "issue", "--key", str(issuer_files), *args)
    assert code == 1 and "readable by group or others" in err
    (tmp_path / "pub.key").write_bytes(b"junk")
    (tmp_path / "pub.key").chmod(0o600)
    junk = weco("license", "issue", "--key", str(tmp_path / "pub.key"), *args)
    assert "not an unencrypted PEM private key" in junk[2]


def test_account_commands_at_the_cap_refuse_on_one_line_and_audit_it(weco, issuer, clock, tmp_path):
    from control_api.clock import SystemClock

    lic = tmp_path / "lic.jwt"
    lic.write_text(issuer.license(SystemClock().now(), admins=1))
    assert weco("license", "install", str(lic))[0] == 0
    assert weco("user", "create", "--email", "one@example.test", "--role", "superadmin")[0] == 0
    code, out, err = weco("user", "create", "--email", "two@example.test", "--role", "admin")
    assert (code, out) == (1, "")
    assert err.startswith("weco: The standard license of ACME Disclosures Ltd") and err.count("\n") == 1
    code, out, err = weco("break-glass", "create", "--email", "glass@example.test")
    assert (code, out) == (1, "") and "allows 1 admin and superadmin accounts and 1 exist" in err
    refused = actions(store_url(weco), "license.cap_refused")
    assert [event["metadata"]["kind"] for event in refused] == ["admins", "admins"]
    assert actions(store_url(weco), "user.break_glass_created") == []


def test_the_real_weco_command_installs_and_shows(issuer, issuer_pub, tmp_path):
    from control_api.clock import SystemClock

    env = {"FF_ENV": "dev", "FF_DATA_DIR": str(tmp_path / "var"), "FF_LICENSE_PUBLIC_KEY": str(issuer_pub)}
    assert run_weco(env, "db", "upgrade").returncode == 0
    result = run_weco(env, "license", "install", "-", stdin=issuer.license(SystemClock().now(), sites=9))
    assert result.returncode == 0, result.stderr
    shown = run_weco(env, "license", "show")
    assert "state:    active" in shown.stdout and "sites 0/9" in shown.stdout


def test_production_refuses_another_key_at_start_up(weco, monkeypatch):
    monkeypatch.setenv("FF_ENV", "production")
    assert weco("license", "show") == (2, "", "weco: FF_LICENSE_PUBLIC_KEY is allowed only with FF_ENV=dev: "
                                              "production trusts the issuer key shipped in the release\n")
