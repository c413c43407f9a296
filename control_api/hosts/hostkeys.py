"""SSH host public keys as data: parsing a key line strictly, its fingerprint, scanning
one with ssh-keyscan, and reading ssh's host-key refusal out of a run's events.

A pinned key is stored as exactly "TYPE BASE64" (RFC 4253 section 6.6 public key
blob, the format of OpenSSH's *.pub files and of known_hosts, sshd(8) "SSH_KNOWN_HOSTS
FILE FORMAT"). Everything else a known_hosts line may carry is refused: markers
(@cert-authority, @revoked), host name patterns, options, certificates, a second line.
The comment a *.pub file ends with is accepted and dropped, so what reaches a
known_hosts file is only ever the two fields written by known_hosts_line().
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import re
import struct
import subprocess

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from control_api.errors import InvalidInput

KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa")
# ssh-keyscan's -t names, most preferred first: the key pinned from a scan.
_SCAN_TYPES = {"ed25519": "ssh-ed25519", "ecdsa": "ecdsa-sha2-nistp256", "rsa": "ssh-rsa"}
_LINE = re.compile(r"(?P<type>[a-z0-9-]{1,40}) (?P<blob>[A-Za-z0-9+/]{1,4000}={0,2})"
                   r"(?: [A-Za-z0-9@._:+-]{1,100})?")
_MAX_LINE = 4200
_MIN_RSA_BITS = 2048
SCAN_TIMEOUT_SECONDS = 5
# What ssh prints when the host's key is not the one known_hosts holds for it.
MISMATCH_SIGNS = ("REMOTE HOST IDENTIFICATION HAS CHANGED", "Host key verification failed")
# The events hold ssh's text JSON-encoded (once or twice): a newline may be "\\n".
_OFFERED = re.compile(r"sent by the remote host is(?:\s|\\+[rn])+(SHA256:[A-Za-z0-9+/]{43})")


@dataclasses.dataclass(frozen=True)
class HostKey:
    type: str
    blob: str  # base64, as in a *.pub file

    @property
    def line(self) -> str:
        return f"{self.type} {self.blob}"

    @property
    def fingerprint(self) -> str:
        """OpenSSH's SHA256 fingerprint (what `ssh-keygen -lf` and ssh's warnings print)."""
        digest = hashlib.sha256(base64.b64decode(self.blob)).digest()
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")

    def as_json(self) -> dict:
        return {"key": self.line, "fingerprint": self.fingerprint}


class ScanFailed(Exception):
    """ssh-keyscan got no usable key from the host; the message says why."""


def parse(value: object, field: str = "ssh_host_key") -> HostKey:
    """A host public key line ("TYPE BASE64 [COMMENT]"), or InvalidInput naming `field`."""
    problem = f"'{field}' must be one SSH host public key line: TYPE BASE64 [COMMENT], TYPE one of " \
              f"{', '.join(KEY_TYPES)} (no markers, host names or options)"
    if not isinstance(value, str) or len(value) > _MAX_LINE:
        raise InvalidInput(problem)
    match = _LINE.fullmatch(value.strip(" "))
    if match is None or match["type"] not in KEY_TYPES:
        raise InvalidInput(problem)
    try:
        blob = base64.b64decode(match["blob"], validate=True)
        # The blob names its own type first (RFC 4253 6.6): it must be the line's.
        (length,) = struct.unpack(">I", blob[:4])
        inner = blob[4:4 + length].decode("ascii")
        key = serialization.load_ssh_public_key(f"{match['type']} {match['blob']}".encode())
    except (binascii.Error, struct.error, UnicodeDecodeError, ValueError, UnsupportedAlgorithm):
        raise InvalidInput(f"'{field}' is not a readable SSH public key") from None
    if inner != match["type"]:
        raise InvalidInput(f"'{field}' says {match['type']} but holds a {inner} key")
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < _MIN_RSA_BITS:
        raise InvalidInput(f"'{field}': an RSA host key must have at least {_MIN_RSA_BITS} bits")
    # Canonical base64: the fingerprint and the known_hosts line are of these bytes.
    return HostKey(match["type"], base64.b64encode(blob).decode())


def stored(value: str) -> HostKey | None:
    """A key as the store holds it, checked again (a row written past the API gets no
    further than this); None for no key."""
    if value == "":
        return None
    return parse(value, "stored host key")


def known_hosts_line(alias: str, key: HostKey) -> str:
    """A known_hosts line for `alias`, a name the worker makes (never from input)."""
    assert re.fullmatch(r"weco-host-[0-9]+", alias), alias
    return f"{alias} {key.line}\n"


def scan(address: str, port: int, timeout: int = SCAN_TIMEOUT_SECONDS) -> HostKey:
    """The host's preferred public key as ssh-keyscan reads it (unauthenticated: the
    caller must have a person confirm its fingerprint). `address` and `port` are
    checked values; they go in an argument vector, never a shell."""
    argv = ["ssh-keyscan", "-T", str(timeout), "-p", str(port), "-t", ",".join(_SCAN_TYPES), "--", address]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout * 3 + 5, check=False)
    except subprocess.TimeoutExpired:
        raise ScanFailed(f"ssh-keyscan got no answer from {address}:{port}") from None
    found: dict[str, HostKey] = {}
    for raw in done.stdout.splitlines():
        if raw.startswith("#") or not raw.strip():
            continue
        fields = raw.split(" ")
        if len(fields) != 3:
            continue
        try:
            key = parse(" ".join(fields[1:]))
        except InvalidInput:
            continue
        found.setdefault(key.type, key)
    for wanted in _SCAN_TYPES.values():
        for key_type, key in found.items():
            if key_type == wanted or (wanted.startswith("ecdsa") and key_type.startswith("ecdsa")):
                return key
    raise ScanFailed(f"ssh-keyscan got no host key from {address}:{port}")


def mismatch_in(event: dict) -> str | None:
    """For a stored run event that is ssh's host-key refusal: the fingerprint the host
    offered ("" when ssh did not print one); otherwise None."""
    if event.get("event") != "runner_on_unreachable":
        return None
    text = f"{event.get('stdout') or ''}\n{event.get('data_json') or ''}"
    if not any(sign in text for sign in MISMATCH_SIGNS):
        return None
    offered = _OFFERED.search(text)
    return offered.group(1) if offered else ""
