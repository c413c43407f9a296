"""No `weco` command answers a user's mistake with a traceback: a bad argument, a file
that is missing or unusable, a store that cannot be reached. Each gets its exit code
(2: a bad argument or setting; 1: the command cannot do what was asked) and one line
on stderr saying why (JSON log lines aside)."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import run_weco
from tests.peers.postgres import free_port

BIGGER_THAN_A_STORE_ID = str(2**63)


def one_line(result: subprocess.CompletedProcess) -> str:
    """The one line a failed command wrote (log lines are JSON and start with '{')."""
    lines = [line for line in result.stderr.splitlines() if not line.startswith("{")]
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def dev_env(tmp_path):
    return {"FF_ENV": "dev", "FF_DATA_DIR": str(tmp_path / "var")}


# Refused by the argument parser, before any setting, file or store is used.
ARGUMENT_CASES = [
    (["token", "revoke", "--id", BIGGER_THAN_A_STORE_ID], "argument --id"),
    (["token", "revoke", "--id", "0"], "argument --id"),
    (["token", "create", "--email", "a@example.test", "--name", "x", "--expires-days", "1e3"],
     "argument --expires-days"),
    (["audit", "verify", "--witness-pub", "w.pub", "--reviewed-quarantine", BIGGER_THAN_A_STORE_ID],
     "argument --reviewed-quarantine"),
    (["audit", "verify", "--witness-pub", "w.pub", "--max-queued-age", "99999999999999999999"],
     "argument --max-queued-age"),
    (["master-secret", "rotate", "--to", "file:new.key", "--pause", "nan"], "argument --pause"),
    (["master-secret", "rotate", "--to", "file:new.key", "--batch-size", "0"], "argument --batch-size"),
    (["serve", "--workers", "0"], "argument --workers"),
    (["serve", "--threads", "65"], "argument --threads"),
    (["serve", "--bind", "nonsense"], "argument --bind"),
    (["user", "create", "--email", "a@example.test", "--role", "root"], "argument --role"),
    (["user", "disable", "--email", "\udcff@example.test"], "not valid UTF-8"),
    (["no-such-command"], "invalid choice"),
    (["user"], "required"),
]


@pytest.mark.parametrize(("args", "says"), ARGUMENT_CASES, ids=[" ".join(c[0][:3]) for c in ARGUMENT_CASES])
def test_a_bad_argument_exits_2_with_one_line(dev_env, args, says):
    result = run_weco(dev_env, *args)
    assert result.returncode == 2, result.stderr
    line = one_line(result)
    assert line.startswith("weco") and says in line, line


def test_files_that_are_missing_or_unusable_exit_1_with_one_line(weco, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory\n")
    pub = str(tmp_path / "var" / "audit" / "witness.pub")
    cases = [
        (["audit", "witness-keygen", "--out", f"{a_file}/keys"], {}, "Not a directory"),
        (["audit", "export", "--out", str(a_file)], {}, "File exists"),
        (["audit", "export", "--out", str(tmp_path / "missing" / "x")], {}, "No such file or directory"),
        (["audit", "checkpoint"], {"FF_AUDIT_CHECKPOINT_FILE": f"{a_file}/checkpoints.jsonl"}, str(a_file)),
        (["user", "create", "--email", "b@example.test", "--role", "admin"],
         {"FF_AUDIT_WITNESS_KEY": str(tmp_path / "var" / "audit")}, "Is a directory"),
        (["audit", "verify", "--witness-pub", pub, "--previous-secret-file", str(tmp_path)], {},
         f"--previous-secret-file {tmp_path}: Is a directory"),
    ]
    for args, extra, says in cases:
        result = weco(*args, **extra)
        assert result.returncode == 1, (args, result.stderr)
        line = one_line(result)
        assert line.startswith("weco: ") and says in line, (args, line)


def test_a_data_dir_that_is_a_file_exits_1_with_one_line(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory\n")
    result = run_weco({"FF_ENV": "dev", "FF_DATA_DIR": str(a_file)}, "db", "upgrade")
    assert result.returncode == 1
    assert str(a_file) in one_line(result)


@pytest.mark.parametrize("args", [
    ["db", "upgrade"],
    ["db", "status"],
    ["user", "create", "--email", "a@example.test", "--role", "admin"],
    ["token", "list"],
    ["worker", "--once"],
    ["serve"],
    ["audit", "verify", "--witness-pub", "WITNESS_PUB"],
], ids=lambda args: " ".join(args[:2]))
def test_a_store_that_cannot_be_reached_exits_1_with_one_line(dev_env, tmp_path, args):
    keys = run_weco(dev_env, "audit", "witness-keygen", "--out", str(tmp_path / "keys"))
    assert keys.returncode == 0, keys.stderr
    args = [str(tmp_path / "keys" / "witness.pub") if arg == "WITNESS_PUB" else arg for arg in args]
    nobody = f"postgresql://weco:hunter2-store-password@127.0.0.1:{free_port()}/weco"
    result = run_weco(dev_env, *args, FF_DATABASE_URL=nobody)
    assert result.returncode == 1, result.stderr
    line = one_line(result)
    assert line.startswith("weco: cannot use the store: ") and "Connection refused" in line, line
    assert "hunter2" not in result.stderr
