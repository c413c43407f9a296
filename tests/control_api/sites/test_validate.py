"""What an admin may send for sites and hosts, including the negative vectors."""

from __future__ import annotations

import subprocess

import pytest

from control_api.sites import validate
from control_api.sites.validate import InvalidInput
from tests.control_api.sites.keys import openssh_key


@pytest.mark.parametrize("slug", ["a", "acme-spv-1", "x" * 63, "0day"])
def test_good_slugs(slug):
    assert validate.slug(slug) == slug


@pytest.mark.parametrize("slug", ["", "-a", "a-", "A", "a_b", "a.b", "../etc", "x" * 64, "a b", None, 7,
                                  "é", "a\n"])
def test_bad_slugs(slug):
    with pytest.raises(InvalidInput, match="'slug'"):
        validate.slug(slug)


@pytest.mark.parametrize("domain", ["disclosures.example.com", "a.b", "x-1.example.co.uk"])
def test_good_domains(domain):
    assert validate.domain(domain) == domain


@pytest.mark.parametrize("domain", ["localhost", "Example.com", "-a.com", "a..com", "a.com.", "a b.com",
                                    "a.com/x", "", None, "x" * 64 + ".com"])
def test_bad_domains(domain):
    with pytest.raises(InvalidInput, match="'domain'"):
        validate.domain(domain)


def test_addresses_are_ips_or_dns_names():
    assert validate.address("10.200.1.2") == "10.200.1.2"
    assert validate.address("::1") == "::1"
    assert validate.address("host.internal") == "host.internal"
    for bad in ("host name", "-o ProxyCommand=x", "a;b", "", None):
        with pytest.raises(InvalidInput):
            validate.address(bad)


def test_local_connection_only_in_development():
    assert validate.connection("local", development=True) == "local"
    with pytest.raises(InvalidInput, match="FF_ENV=dev"):
        validate.connection("local", development=False)
    with pytest.raises(InvalidInput):
        validate.connection("winrm", development=True)


def test_host_vars_are_an_allowlist_with_types():
    assert validate.host_vars({"site_deploy_root": "/srv/x", "site_deploy_tls": False}) == {
        "site_deploy_root": "/srv/x", "site_deploy_tls": False}
    for bad, message in (({"ansible_become_pass": "x"}, "not a host variable"),
                         ({"site_deploy_tls": "yes"}, "type bool"),
                         ({"site_deploy_root": "relative"}, "absolute"),
                         ({"site_deploy_http_port": 0}, "'port'"),
                         ([], "object")):
        with pytest.raises(InvalidInput, match=message):
            validate.host_vars(bad)


def test_private_key_fingerprint_matches_ssh_keygen(tmp_path):
    pem = openssh_key()
    data, fingerprint = validate.private_key(pem)
    path = tmp_path / "key"
    path.write_bytes(data)
    path.chmod(0o600)
    printed = subprocess.run(["ssh-keygen", "-lf", str(path)], capture_output=True, text=True, check=True)
    assert printed.stdout.split()[1] == fingerprint


def test_passphrase_protected_and_garbage_keys_are_refused():
    with pytest.raises(InvalidInput, match="passphrase-protected"):
        validate.private_key(openssh_key(password=b"hunter2hunter2"))
    truncated = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----"
    for bad in ("", "not a key", truncated, None, "x" * 20000):
        with pytest.raises(InvalidInput, match="ssh_private_key"):
            validate.private_key(bad)
