"""A FIDO2 authenticator in software, with the browser's part of WebAuthn: it answers the
options our API gives with the PublicKeyCredential JSON a browser's toJSON() returns.

Built on cryptography and cbor2 (soft-webauthn 0.1.4, the PyPI one, cannot serve: it
always sets flags 0x41, user presence without user verification, and attests with
`none`). Registration makes an ES256 (P-256) key pair and a `packed` self-attestation
(W3C WebAuthn §8.2: the attestation signed with the credential's own key, alg -7) or
`none`; assertions sign authenticatorData || SHA-256(clientDataJSON) and count up.
Credentials are discoverable (they keep the user handle), so passwordless logins work.

Everything a test needs to misbehave is a keyword: no user verification, another origin
or RP id, the backup flags, the counter; `clone()` copies a credential, key and counter
and all, as an attacker who extracted it would.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import struct

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40
AAGUID = bytes.fromhex("77656330" + "00" * 12)  # 'wec0': a made-up model id for tests


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclasses.dataclass
class Credential:
    credential_id: bytes
    key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0


def _cose(key: ec.EllipticCurvePrivateKey) -> bytes:
    numbers = key.public_key().public_numbers()
    x, y = numbers.x.to_bytes(32, "big"), numbers.y.to_bytes(32, "big")
    return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: x, -3: y})  # COSE EC2 key, P-256, ES256


class SoftAuthenticator:
    def __init__(self, origin: str, backup_eligible: bool = False, backed_up: bool = False,
                 counter_step: int = 1) -> None:
        self.origin = origin
        self.backup_eligible, self.backed_up = backup_eligible, backed_up
        self.counter_step = counter_step  # 0: an authenticator without a counter (synced passkeys)
        self.credentials: dict[bytes, Credential] = {}

    def _flags(self, uv: bool, extra: int = 0, backup_eligible: bool | None = None,
               backed_up: bool | None = None) -> int:
        be = self.backup_eligible if backup_eligible is None else backup_eligible
        bs = self.backed_up if backed_up is None else backed_up
        return UP | (UV if uv else 0) | (BE if be else 0) | (BS if bs else 0) | extra

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": origin or self.origin,
                           "crossOrigin": False}, separators=(",", ":")).encode()

    def create(self, options: dict, *, uv: bool = True, origin: str | None = None, rp_id: str | None = None,
               fmt: str = "packed") -> dict:
        """navigator.credentials.create({publicKey: options}), as toJSON()."""
        rp = rp_id or options["rp"]["id"]
        assert {"type": "public-key", "alg": -7} in options["pubKeyCredParams"]
        excluded = {unb64u(c["id"]) for c in options.get("excludeCredentials", [])}
        assert not excluded & set(self.credentials), "InvalidStateError: already registered here"
        key = ec.generate_private_key(ec.SECP256R1())
        credential = Credential(os.urandom(32), key, rp, unb64u(options["user"]["id"]), self.counter_step)
        self.credentials[credential.credential_id] = credential
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        auth_data = (hashlib.sha256(rp.encode()).digest() + bytes([self._flags(uv, AT)])
                     + struct.pack(">I", credential.sign_count) + AAGUID
                     + struct.pack(">H", len(credential.credential_id)) + credential.credential_id
                     + _cose(key))
        if fmt == "packed":
            signature = key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
            statement = {"alg": -7, "sig": signature}
        else:
            statement = {}
        attestation = cbor2.dumps({"fmt": fmt, "attStmt": statement, "authData": auth_data})
        return {"id": b64u(credential.credential_id), "rawId": b64u(credential.credential_id),
                "type": "public-key", "authenticatorAttachment": "cross-platform",
                "clientExtensionResults": {},
                "response": {"clientDataJSON": b64u(client_data), "attestationObject": b64u(attestation),
                             "transports": ["usb"]}}

    def get(self, options: dict, *, uv: bool = True, origin: str | None = None, rp_id: str | None = None,
            credential_id: bytes | None = None, backup_eligible: bool | None = None,
            backed_up: bool | None = None, sign_count: int | None = None) -> dict:
        """navigator.credentials.get({publicKey: options}), as toJSON(). With no
        allowCredentials, a discoverable credential for the RP id is chosen."""
        rp = options["rpId"]
        if credential_id is None:
            allowed = [unb64u(c["id"]) for c in options.get("allowCredentials", [])]
            mine = [c for c in self.credentials.values() if c.rp_id == rp
                    and (not allowed or c.credential_id in allowed)]
            assert mine, "NotAllowedError: no credential for this RP here"
            credential_id = mine[0].credential_id
        credential = self.credentials[credential_id]
        credential.sign_count += self.counter_step
        count = credential.sign_count if sign_count is None else sign_count
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        auth_data = (hashlib.sha256((rp_id or credential.rp_id).encode()).digest()
                     + bytes([self._flags(uv, 0, backup_eligible, backed_up)]) + struct.pack(">I", count))
        signature = credential.key.sign(auth_data + hashlib.sha256(client_data).digest(),
                                        ec.ECDSA(hashes.SHA256()))
        return {"id": b64u(credential.credential_id), "rawId": b64u(credential.credential_id),
                "type": "public-key", "authenticatorAttachment": "cross-platform",
                "clientExtensionResults": {},
                "response": {"clientDataJSON": b64u(client_data), "authenticatorData": b64u(auth_data),
                             "signature": b64u(signature), "userHandle": b64u(credential.user_handle)}}

    def clone(self) -> SoftAuthenticator:
        """Another authenticator holding copies of these credentials (key and counter)."""
        twin = SoftAuthenticator(self.origin, self.backup_eligible, self.backed_up, self.counter_step)
        twin.credentials = {k: dataclasses.replace(v) for k, v in self.credentials.items()}
        return twin
