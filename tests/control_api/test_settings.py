"""Settings: validated once, frozen, bad values stop start-up with one clear line."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from control_api.settings import REDACTED, SettingsError, effective_items, load_settings


def test_defaults_give_the_embedded_sqlite_setup(tmp_path):
    settings = load_settings({})
    assert settings.env == "production"
    assert str(settings.data_dir) == "var"
    assert settings.effective_database_url.startswith("sqlite:///")
    assert settings.effective_database_url.endswith("/var/weco.sqlite3")


def test_settings_are_frozen():
    settings = load_settings({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.env = "dev"


@pytest.mark.parametrize("name,value,message", [
    ("FF_ENV", "staging", "FF_ENV='staging' is not allowed: expected dev | production"),
    ("FF_WORKERS", "0", "FF_WORKERS='0' is not allowed: expected 1..64"),
    ("FF_WORKERS", "two", "FF_WORKERS='two' is not allowed: expected 1..64"),
    ("FF_BIND", "8080", "FF_BIND='8080' is not allowed: expected HOST:PORT"),
    ("FF_BIND", "127.0.0.1:70000", "FF_BIND='127.0.0.1:70000' is not allowed"),
    ("FF_LOG_LEVEL", "chatty", "FF_LOG_LEVEL='chatty' is not allowed"),
    ("FF_DATA_DIR", "", "FF_DATA_DIR='' is not allowed: expected a directory path"),
    ("FF_MAX_BODY_BYTES", "10", "FF_MAX_BODY_BYTES='10' is not allowed: expected 1024..104857600"),
])
def test_bad_values_name_the_variable_and_what_is_allowed(name, value, message):
    with pytest.raises(SettingsError) as error:
        load_settings({name: value})
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_a_bad_secret_value_is_not_echoed():
    with pytest.raises(SettingsError) as error:
        load_settings({"FF_DATABASE_URL": "mysql://root:hunter2hunter2@db/weco"})
    assert "hunter2" not in str(error.value)
    assert str(error.value) == (
        "FF_DATABASE_URL=<redacted> is not allowed: expected empty, sqlite:///PATH "
        "or postgresql://USER:PASS@HOST:PORT/DB"
    )


def test_an_unknown_ff_variable_is_refused_rather_than_ignored():
    with pytest.raises(SettingsError, match="FF_SEALED_MOD is not a setting of this release"):
        load_settings({"FF_SEALED_MOD": "1"})


def test_effective_items_redact_the_database_password():
    settings = load_settings({"FF_DATABASE_URL": "postgresql://weco:s3cret-pw@db.internal:5433/weco"})
    shown = dict(effective_items(settings))
    assert shown["FF_DATABASE_URL"] == f"postgresql://weco:{REDACTED}@db.internal:5433/weco"


def _weco(*args, env):
    return subprocess.run([sys.executable, "-m", "control_api.cli", *args],
                          env=env, capture_output=True, text=True, timeout=60)


def test_weco_stops_with_one_line_and_exit_2_on_a_bad_setting(tmp_path):
    result = _weco("config", "show", env={"PATH": "/usr/bin:/bin", "FF_WORKERS": "-1"})
    assert result.returncode == 2
    assert result.stderr == "weco: FF_WORKERS='-1' is not allowed: expected 1..64\n"
    assert result.stdout == ""


def test_config_show_prints_every_setting_with_secrets_redacted(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "FF_DATABASE_URL": "postgresql://u:pa55word@h:5432/d"}
    result = _weco("config", "show", env=env)
    assert result.returncode == 0
    assert "pa55word" not in result.stdout
    names = [line.split()[0] for line in result.stdout.splitlines()]
    from control_api.settings import SPECS
    assert names == [spec.name for spec in SPECS]


def test_smtp_ca_file_must_be_a_readable_pem_certificate_file(tmp_path):
    for bad in (tmp_path / "missing.pem", tmp_path):
        with pytest.raises(SettingsError, match=r"^FF_SMTP_CA_FILE=.* is not allowed: expected empty or "):
            load_settings({"FF_SMTP_CA_FILE": str(bad)})
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(SettingsError, match="FF_SMTP_CA_FILE"):
        load_settings({"FF_SMTP_CA_FILE": str(garbage)})
    from tests.peers.testca import TestCA

    ca = TestCA(tmp_path / "ca")
    settings = load_settings({"FF_SMTP_CA_FILE": str(ca.cert_path), "FF_SMTP_URL": "smtps://mail.example.test:465"})
    assert settings.smtp_ca_file == str(ca.cert_path)


@pytest.mark.parametrize("url", ["smtp://mail.example.test:25", "smtp://user:pw@127.0.0.1:25",
                                 "smtp://10.0.0.5:25"])
def test_plain_smtp_that_leaves_the_machine_is_refused_in_production(url):
    with pytest.raises(SettingsError, match="FF_SMTP_URL: plain smtp://"):
        load_settings({"FF_SMTP_URL": url})
    assert load_settings({"FF_SMTP_URL": url, "FF_ENV": "dev"}).smtp_url == url


@pytest.mark.parametrize("url", ["smtp://127.0.0.1:25", "smtp://localhost:25", "smtp://[::1]:25",
                                 "smtp+starttls://user:pw@mail.example.test:587"])
def test_a_local_relay_or_tls_is_accepted_in_production(url):
    assert load_settings({"FF_SMTP_URL": url}).smtp_url == url
