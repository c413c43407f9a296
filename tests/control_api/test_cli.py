"""The `weco` command against a real store on both backends."""

from __future__ import annotations

import re
import subprocess
import sys

from control_api.auth.passwords import PasswordHasher
from control_api.models import ApiToken, User


def test_user_create_prints_a_generated_password_once_and_it_works(weco, store):
    result = weco("user", "create", "--email", "Ops@Example.test", "--role", "superadmin")
    assert result.returncode == 0, result.stderr
    password = re.search(r"password \(shown once, store it now\): (\S+)", result.stdout).group(1)
    user = User.get(User.email_key == "ops@example.test")
    assert user.role == "superadmin" and user.email == "Ops@Example.test"
    assert password not in user.password_hash
    assert "$2b$12$" in user.password_hash
    assert PasswordHasher().verify(password, user.password_hash)


def test_user_create_reads_the_password_from_stdin(weco, store):
    result = weco("user", "create", "--email", "a@example.test", "--role", "admin",
                  "--password-stdin", stdin="a long enough passphrase\n")
    assert result.returncode == 0, result.stderr
    assert "password" not in result.stdout
    stored = User.get().password_hash
    assert PasswordHasher().verify("a long enough passphrase", stored)


def test_bad_user_input_is_refused_and_changes_nothing(weco, store):
    weco("user", "create", "--email", "a@example.test", "--role", "admin")
    cases = [
        (["--email", "A@EXAMPLE.TEST", "--role", "admin"], None, "already exists"),
        (["--email", "not-an-email", "--role", "admin"], None, "email must look like"),
        (["--email", "b@example.test", "--role", "admin", "--password-stdin"], "short\n",
         "at least 12 characters"),
    ]
    for args, stdin, message in cases:
        result = weco("user", "create", *args, stdin=stdin)
        assert result.returncode == 1, args
        assert message in result.stderr
    assert weco("user", "create", "--email", "c@example.test", "--role", "root").returncode == 2
    assert User.select().count() == 1


def test_token_create_list_and_revoke(weco, store):
    weco("user", "create", "--email", "a@example.test", "--role", "admin")
    created = weco("token", "create", "--email", "a@example.test", "--name", "ci",
                   "--expires-days", "30")
    assert created.returncode == 0, created.stderr
    value = re.search(r"token \(shown once, store it now\): (weco_\S+)", created.stdout).group(1)
    token = ApiToken.get()
    assert token.token_hash != value and token.expires_at is not None
    listed = weco("token", "list")
    assert "ci" in listed.stdout and "active" in listed.stdout and value not in listed.stdout
    assert weco("token", "revoke", "--id", str(token.id)).returncode == 0
    again = weco("token", "revoke", "--id", str(token.id))
    assert again.returncode == 1 and "no active token" in again.stderr
    assert "revoked" in weco("token", "list").stdout


def test_token_create_refuses_bad_input(weco, store):
    weco("user", "create", "--email", "a@example.test", "--role", "admin")
    unknown = weco("token", "create", "--email", "b@example.test", "--name", "x")
    assert unknown.returncode == 1 and "no user with email" in unknown.stderr
    expiry = weco("token", "create", "--email", "a@example.test", "--name", "x", "--expires-days", "0")
    assert expiry.returncode == 1 and "--expires-days" in expiry.stderr
    assert ApiToken.select().count() == 0


def test_commands_refuse_a_store_that_is_behind(env):
    result = subprocess.run([sys.executable, "-m", "control_api.cli", "user", "create",
                             "--email", "a@example.test", "--role", "admin"],
                            env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True)
    assert result.returncode == 1
    assert "pending migration(s): run `weco db upgrade`" in result.stderr
