"""file: and env-cmd:, and the resolver's rules."""

from __future__ import annotations

import base64
import os
import sys

import pytest

from keyproviders import KeyProviderError, load_master_secret, parse_provider_list, resolve
from tests.keyproviders.conftest import SECRET


def test_file_round_trip_creates_a_0600_file(tmp_path, context):
    provider = resolve(f"file:{tmp_path}/keys/master.key", context)
    provider.store(SECRET)
    assert oct((tmp_path / "keys/master.key").stat().st_mode & 0o777) == "0o600"
    assert provider.unwrap() == SECRET
    with pytest.raises(KeyProviderError, match="refusing to overwrite"):
        provider.store(bytes(32))
    assert provider.unwrap() == SECRET


def test_file_readable_by_others_is_refused(tmp_path, context):
    provider = resolve(f"file:{tmp_path}/master.key", context)
    provider.store(SECRET)
    os.chmod(tmp_path / "master.key", 0o640)
    with pytest.raises(KeyProviderError, match="readable by group or others: chmod 600 it"):
        provider.unwrap()


@pytest.mark.parametrize("content,message", [
    ("not base64 !!", "is not base64"),
    (base64.b64encode(b"short").decode(), "holds 5 bytes; a master secret is 32"),
])
def test_file_with_bad_content_is_refused(tmp_path, context, content, message):
    path = tmp_path / "master.key"
    path.write_text(content)
    os.chmod(path, 0o600)
    with pytest.raises(KeyProviderError, match=message):
        resolve(f"file:{path}", context).unwrap()


def test_missing_file_says_how_to_create_it(tmp_path, context):
    with pytest.raises(KeyProviderError, match="does not exist: run `weco master-secret init`"):
        resolve(f"file:{tmp_path}/none", context).unwrap()


def test_env_cmd_reads_stdout_without_a_shell(tmp_path, context):
    encoded = base64.b64encode(SECRET).decode()
    script = f'print("{encoded}")'
    provider = resolve(f"env-cmd:{sys.executable} -c '{script}'", context)
    assert provider.unwrap() == SECRET
    # Shell syntax is passed as plain arguments, never interpreted.
    marker = tmp_path / "pwned"
    provider = resolve(f"env-cmd:echo hi; touch {marker}", context)
    with pytest.raises(KeyProviderError):
        provider.unwrap()
    assert not marker.exists()


@pytest.mark.parametrize("command,message", [
    ("/nonexistent/cmd", "env-cmd: /nonexistent/cmd not found"),
    (f"{sys.executable} -c 'import sys; sys.stderr.write(\"vault sealed\\n\"); sys.exit(3)'",
     "exited 3: vault sealed"),
    (f"{sys.executable} -c 'import time; time.sleep(60)'", "did not finish within"),
])
def test_env_cmd_failures_are_clear(context, command, message, monkeypatch):
    monkeypatch.setattr("keyproviders.envcmd.TIMEOUT_SECONDS", 1)
    with pytest.raises(KeyProviderError, match=message):
        resolve(f"env-cmd:{command}", context).unwrap()


def test_env_cmd_cannot_store(context):
    with pytest.raises(KeyProviderError, match="read-only"):
        resolve("env-cmd:true", context).store(SECRET)


@pytest.mark.parametrize("uri,message", [
    ("s3:bucket", "unknown key provider 's3'"),
    ("nothing", "unknown key provider 'nothing'"),
    ("file:", "file: needs a path"),
    ("vault:weco?colour=blue", "unknown option"),
    ("gcp-kms:not/a/key", "gcp-kms: needs projects/P"),
])
def test_bad_uris_are_refused(context, uri, message):
    with pytest.raises(KeyProviderError, match=message):
        resolve(uri, context)


def test_local_forbid_refuses_file_and_env_cmd(tmp_path, context):
    resolve(f"file:{tmp_path}/m", context).store(SECRET)
    for uris in ([f"file:{tmp_path}/m"], ["env-cmd:true"]):
        with pytest.raises(KeyProviderError, match="FF_KEY_LOCAL_FORBID=1 refuses"):
            load_master_secret(uris, context, forbid_local=True)
    assert load_master_secret([f"file:{tmp_path}/m"], context, forbid_local=False)[0] == SECRET


def test_chain_falls_through_to_the_first_provider_that_works(tmp_path, context, caplog):
    caplog.set_level("INFO", logger="keyproviders")
    resolve(f"file:{tmp_path}/m", context).store(SECRET)
    secret, provider = load_master_secret([f"file:{tmp_path}/missing", f"file:{tmp_path}/m"],
                                          context, forbid_local=False)
    assert secret == SECRET and provider.uri == f"file:{tmp_path}/m"
    assert "master secret served by the file provider" in caplog.text
    assert base64.b64encode(SECRET).decode() not in caplog.text
    with pytest.raises(KeyProviderError, match="no key provider could produce the master secret"):
        load_master_secret([f"file:{tmp_path}/missing"], context, forbid_local=False)


def test_provider_lists(tmp_path):
    assert parse_provider_list("file:/x") == ["file:/x"]
    assert parse_provider_list('["vault:k", "file:/x"]') == ["vault:k", "file:/x"]
    with pytest.raises(KeyProviderError):
        parse_provider_list("[not json")
    with pytest.raises(KeyProviderError):
        parse_provider_list("[]")
