"""Checking what an admin sends for sites and hosts. Each check returns the clean
value or raises InvalidInput naming the field and what it must be."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import re

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from control_api.errors import InvalidInput
from control_api.sites import patterns

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
HOST_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{0,62}")
SSH_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
CONNECTIONS = ("ssh", "local")
# Host variables an admin may set, with their types: what the roles let a host vary.
HOST_VARS = {
    "site_deploy_root": str,
    "site_deploy_nginx": bool,
    "site_deploy_tls": bool,
    "site_deploy_http_port": int,
    "site_deploy_install_packages": bool,
    "site_deploy_bwlimit": int,  # KB/s for the transfer; 0 = no limit
}
_MAX_KEY_BYTES = 16384


def slug(value) -> str:
    if not patterns.matches(patterns.SLUG, value):
        raise InvalidInput("'slug' must be 1-63 lowercase letters, digits or '-', "
                           "starting and ending with a letter or digit")
    return value


def domain(value) -> str:
    # The role's pattern, and stricter: lowercase, and a name with a dot in it.
    if (not patterns.matches(patterns.DOMAIN, value) or len(value) > patterns.DOMAIN_MAX
            or value != value.lower() or "." not in value):
        raise InvalidInput("'domain' must be a lowercase DNS name such as disclosures.example.com")
    return value


def host_name(value) -> str:
    if not isinstance(value, str) or not HOST_NAME.fullmatch(value):
        raise InvalidInput("'name' must be 1-63 lowercase letters, digits, '.' or '-'")
    return value


def address(value) -> str:
    # No IPv6 zone ids ("fe80::1%eth0"): ipaddress accepts any text after the %, and the
    # address ends up in ssh's and rsync's arguments.
    if isinstance(value, str) and "%" not in value:
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            labels = value.split(".")
            if len(value) <= 253 and all(_LABEL.fullmatch(label) for label in labels):
                return value
    raise InvalidInput("'address' must be an IP address or a lowercase DNS name")


def port(value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise InvalidInput("'port' must be an integer from 1 to 65535")
    return value


def ssh_user(value) -> str:
    if not isinstance(value, str) or not SSH_USER.fullmatch(value):
        raise InvalidInput("'ssh_user' must be a POSIX user name")
    return value


def connection(value, development: bool) -> str:
    if value not in CONNECTIONS:
        raise InvalidInput("'connection' must be 'ssh' or 'local'")
    if value == "local" and not development:
        # A local target runs playbooks on the worker's own machine as the worker's user.
        raise InvalidInput("'connection': 'local' is only allowed when FF_ENV=dev")
    return value


def host_vars(value) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput("'vars' must be an object")
    for name, item in value.items():
        kind = HOST_VARS.get(name)
        if kind is None:
            raise InvalidInput(f"'vars.{name}' is not a host variable this product accepts "
                               f"(accepted: {', '.join(sorted(HOST_VARS))})")
        if type(item) is not kind:
            raise InvalidInput(f"'vars.{name}' must be of type {kind.__name__}")
        if name == "site_deploy_root" and not _deploy_root(item):
            raise InvalidInput("'vars.site_deploy_root' must be an absolute path other than / "
                               "made of letters, digits, '.', '_', '-' and '/', without '.' or '..' parts")
        if name == "site_deploy_http_port":
            port(item)
        if name == "site_deploy_bwlimit" and not 0 <= item <= 10_000_000:
            raise InvalidInput("'vars.site_deploy_bwlimit' must be from 0 (no limit) to 10000000 KB/s")
    return value


def _deploy_root(value: str) -> bool:
    """The role's pattern, and stricter: no '.', '..' or empty parts, so the root an
    admin names is the directory the sites land in (the role accepts '..' for an
    operator's inventory, which may name a root relative to the playbook)."""
    parts = value.split("/")[1:]
    return patterns.matches(patterns.DEPLOY_ROOT, value) and all(p not in ("", ".", "..") for p in parts)


def private_key(value) -> tuple[bytes, str]:
    """An unencrypted OpenSSH or PEM private key: (its bytes, its SHA256 fingerprint)."""
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_KEY_BYTES:
        raise InvalidInput("'ssh_private_key' must be a private key in OpenSSH or PEM format")
    data = value.strip().encode() + b"\n"
    try:
        if b"OPENSSH PRIVATE KEY" in data:
            key = serialization.load_ssh_private_key(data, password=None)
        else:
            key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        encrypted = "encrypted" in str(exc).lower() or "password" in str(exc).lower()
        raise InvalidInput("'ssh_private_key' is passphrase-protected: store an unencrypted key "
                           "(it is encrypted at rest here)" if encrypted else
                           "'ssh_private_key' is not a readable private key") from None
    if not isinstance(key, (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise InvalidInput("'ssh_private_key' must be an Ed25519, ECDSA or RSA key")
    return data, fingerprint(key)


def fingerprint(key) -> str:
    """OpenSSH's SHA256 fingerprint of the public half (what `ssh-keygen -lf` prints)."""
    blob = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).split()[1]
    digest = hashlib.sha256(base64.b64decode(blob)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def stored_host(host, development: bool) -> dict:
    """The API's checks again, on a host row as the store holds it now (whoever can
    write the store must not hand Ansible anything the API would have refused);
    returns the host's variables."""
    host_name(host.name)
    connection(host.connection, development)
    address(host.address)
    port(host.port)
    ssh_user(host.ssh_user)
    return host_vars(json.loads(host.vars_json))
