"""vault:KEY: Vault (or OpenBao) Transit unwraps the envelope-encrypted master secret.

Authenticates with VAULT_TOKEN, or with AppRole (VAULT_ROLE_ID and VAULT_SECRET_ID),
at VAULT_ADDR; the Transit mount is `transit` unless `mount=` says otherwise.
"""

from __future__ import annotations

import base64

import hvac
import requests
from hvac import exceptions as hvac_errors

from keyproviders.base import Envelope, KeyProviderError, ProviderContext

TIMEOUT_SECONDS = 10


class VaultTransitProvider:
    local = False

    def __init__(self, key: str, options: dict[str, str], context: ProviderContext, uri: str) -> None:
        if not key:
            raise KeyProviderError("vault: needs a Transit key name, as in vault:weco-master")
        self.key, self.uri = key, uri
        self.mount = options.get("mount", "transit")
        self.address = context.env.get("VAULT_ADDR", "")
        if not self.address:
            raise KeyProviderError("vault: VAULT_ADDR is not set")
        self.env = context.env
        self.envelope = Envelope(options["wrapped"], "vault", f"{self.mount}/{key}")

    def _client(self) -> hvac.Client:
        client = hvac.Client(url=self.address, timeout=TIMEOUT_SECONDS,
                             verify=self.env.get("VAULT_CACERT") or True)
        try:
            if self.env.get("VAULT_ROLE_ID"):
                client.auth.approle.login(role_id=self.env["VAULT_ROLE_ID"],
                                          secret_id=self.env.get("VAULT_SECRET_ID", ""))
            elif self.env.get("VAULT_TOKEN"):
                client.token = self.env["VAULT_TOKEN"]
            else:
                raise KeyProviderError("vault: set VAULT_TOKEN, or VAULT_ROLE_ID and VAULT_SECRET_ID")
        except requests.RequestException as exc:
            raise KeyProviderError(f"vault: cannot reach {self.address}: {type(exc).__name__}") from None
        except hvac_errors.VaultError as exc:
            raise KeyProviderError(f"vault: AppRole login refused: {_first_line(exc)}") from None
        return client

    def _call(self, what: str, fn):
        try:
            return fn()
        except requests.RequestException as exc:
            raise KeyProviderError(f"vault: cannot reach {self.address}: {type(exc).__name__}") from None
        except hvac_errors.VaultError as exc:
            raise KeyProviderError(f"vault: Transit {what} with key {self.key!r} refused: "
                                   f"{_first_line(exc)}") from None

    def unwrap(self) -> bytes:
        ciphertext = self.envelope.read().decode("ascii", errors="replace")
        client = self._client()
        response = self._call("decrypt", lambda: client.secrets.transit.decrypt_data(
            name=self.key, ciphertext=ciphertext, mount_point=self.mount))
        return base64.b64decode(response["data"]["plaintext"])

    def store(self, secret: bytes) -> None:
        client = self._client()
        response = self._call("encrypt", lambda: client.secrets.transit.encrypt_data(
            name=self.key, plaintext=base64.b64encode(secret).decode("ascii"), mount_point=self.mount))
        self.envelope.write(response["data"]["ciphertext"].encode("ascii"))


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
