"""Host key lines are data: only "TYPE BASE64 [COMMENT]" of a real key is accepted, and
what reaches a run's known_hosts file is exactly two fields under a name the worker
made. ssh's own refusal is read out of a run's events."""

from __future__ import annotations

import base64
import json
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from control_api.errors import InvalidInput
from control_api.hosts import hostkeys, sshrun
from control_api.hosts.sshrun import HostAccess
from tests.control_api.sites.keys import openssh_key


def public_line(key) -> str:
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode()


ED = public_line(ed25519.Ed25519PrivateKey.generate())
EC = public_line(ec.generate_private_key(ec.SECP384R1()))
RSA = public_line(rsa.generate_private_key(public_exponent=65537, key_size=2048))


def ssh_keygen_fingerprint(line: str, tmp_path) -> str:
    path = tmp_path / "k.pub"
    path.write_text(line + "\n")
    return subprocess.run(["ssh-keygen", "-lf", str(path)], capture_output=True, text=True,
                          check=True).stdout.split()[1]


@pytest.mark.parametrize("line", [ED, EC, RSA, ED + " root@web1", RSA + " weco-host-3"])
def test_a_host_key_line_is_kept_as_type_and_key_with_ssh_keygens_fingerprint(line, tmp_path):
    key = hostkeys.parse(line)
    assert key.line == " ".join(line.split()[:2])
    assert key.fingerprint == ssh_keygen_fingerprint(line, tmp_path)


ED_TYPE, ED_BLOB = ED.split()
HOSTILE = [
    ED + "\n@cert-authority * " + ED,  # a second line, with a marker
    ED + "\r\n",
    ED + " comment\nevil.example.com " + ED,
    "@cert-authority * " + ED,
    "@revoked * " + ED,
    "* " + ED,
    "web1,10.0.0.5 " + ED,
    "[10.0.0.5]:22 " + ED,
    "|1|c2FsdA==|aGFzaA== " + ED,  # a hashed host name
    'command="id" ' + ED,
    "cert-authority " + ED,
    ED + " two words",
    ED + " comment;rm",
    "ssh-rsa " + ED_BLOB,  # the line's type is not the blob's
    "ssh-ed25519-cert-v01@openssh.com " + ED_BLOB,
    "ssh-dss " + ED_BLOB,
    ED_TYPE + " " + ED_BLOB[:-8],  # cut short
    ED_TYPE + " " + ED_BLOB + "====",
    ED_TYPE + "  " + ED_BLOB,
    "{{ lookup('pipe', 'id') }}",
    "", " ", ED_TYPE, None, 7, ["ssh-ed25519", ED_BLOB], {"key": ED},
    ED + " " + "c" * 101,
    "ssh-ed25519 " + "A" * 5000,
]


@pytest.mark.parametrize("value", HOSTILE)
def test_markers_patterns_options_other_types_and_broken_keys_are_refused(value):
    with pytest.raises(InvalidInput):
        hostkeys.parse(value)


def test_a_short_rsa_host_key_is_refused():
    short = public_line(rsa.generate_private_key(public_exponent=65537, key_size=1024))  # noqa: S505
    with pytest.raises(InvalidInput, match="at least 2048 bits"):
        hostkeys.parse(short)


def test_a_stored_key_is_checked_again():
    assert hostkeys.stored("") is None
    assert hostkeys.stored(ED).line == ED
    with pytest.raises(InvalidInput):
        hostkeys.stored("@revoked * " + ED)


def test_a_runs_known_hosts_holds_only_the_pinned_keys_under_worker_made_names():
    key = hostkeys.parse(ED + " root@web1")
    access = [HostAccess(3, key, (openssh_key().encode(),)), HostAccess(12, hostkeys.parse(RSA), ())]
    with sshrun.session(access, lifetime=30) as options:
        known = options[3][options[3].index("-o") + 1:]
        path = next(o.split("=", 1)[1] for o in known if o.startswith("UserKnownHostsFile="))
        assert open(path).read() == f"weco-host-3 {ED}\nweco-host-12 {RSA}\n"
        assert "StrictHostKeyChecking=yes" in options[3] and "HostKeyAlias=weco-host-3" in options[3]
        assert "GlobalKnownHostsFile=/dev/null" in options[12] and "IdentitiesOnly=yes" in options[12]
    with pytest.raises(AssertionError):
        hostkeys.known_hosts_line("web1,* ", key)


def test_ssh_refusing_a_changed_host_key_is_read_from_the_runs_event():
    offered = "SHA256:" + base64.b64encode(b"x" * 32).decode().rstrip("=")
    message = ("Failed to connect to the host via ssh: @@@@@@@@@@@\r\n@    WARNING: REMOTE HOST "
               "IDENTIFICATION HAS CHANGED!     @\r\n...The fingerprint for the ED25519 key sent by the "
               f"remote host is\n{offered}.\r\nPlease contact your system administrator.\r\n"
               "Host key verification failed.")
    event = {"event": "runner_on_unreachable", "host": "web1", "stdout": "fatal: [web1]: UNREACHABLE!",
             "data_json": json.dumps({"result": json.dumps({"msg": message, "unreachable": True})})}
    assert hostkeys.mismatch_in(event) == offered
    strict = dict(event, data_json=json.dumps({"result": "No ED25519 host key is known for weco-host-3 and "
                                                         "you have requested strict checking.\r\nHost key "
                                                         "verification failed."}))
    assert hostkeys.mismatch_in(strict) == ""
    assert hostkeys.mismatch_in(dict(event, data_json="{}", stdout="Connection refused")) is None
    assert hostkeys.mismatch_in(dict(event, event="runner_on_failed")) is None
