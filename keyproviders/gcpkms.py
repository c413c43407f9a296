"""gcp-kms:KEY: Cloud KMS unwraps the envelope-encrypted master secret.

KEY is projects/P/locations/L/keyRings/R/cryptoKeys/K. The request carries
additional authenticated data and CRC32C checksums; the client library does not
check the checksums of the answer, so this module does (as Google's integrity
guide asks): a corrupted request or response is refused, never used.
"""

from __future__ import annotations

import re

import google_crc32c
from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials

from keyproviders.base import Envelope, KeyProviderError, ProviderContext

AAD = b"weco/master-secret/v1"
_KEY = re.compile(r"projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+")


def crc32c(data: bytes) -> int:
    return int(google_crc32c.value(data))


class GcpKmsProvider:
    local = False

    def __init__(self, key: str, options: dict[str, str], context: ProviderContext, uri: str) -> None:
        if not _KEY.fullmatch(key):
            raise KeyProviderError("gcp-kms: needs projects/P/locations/L/keyRings/R/cryptoKeys/K")
        self.key, self.uri = key, uri
        self.endpoint = options.get("endpoint")
        self.envelope = Envelope(options["wrapped"], "gcp-kms", key)

    def _client(self):
        from google.cloud import kms

        if self.endpoint:
            # A private or test endpoint speaks plain REST without Google credentials.
            return kms.KeyManagementServiceClient(
                transport="rest", credentials=AnonymousCredentials(),
                client_options=ClientOptions(api_endpoint=self.endpoint))
        return kms.KeyManagementServiceClient()

    def _call(self, what: str, fn):
        try:
            return fn()
        except (gexc.ServiceUnavailable, gexc.RetryError, gexc.DeadlineExceeded):
            raise KeyProviderError(f"gcp-kms: cannot reach {self.endpoint or 'Cloud KMS'}") from None
        except gexc.GoogleAPICallError as exc:
            raise KeyProviderError(f"gcp-kms: {what} with key {self.key!r} refused: "
                                   f"{exc.code} {exc.message[:200]}") from None
        except Exception as exc:  # transport errors of the REST client (requests)
            raise KeyProviderError(f"gcp-kms: {what} failed: {type(exc).__name__}") from None

    def unwrap(self) -> bytes:
        ciphertext = self.envelope.read()
        response = self._call("decrypt", lambda: self._client().decrypt(
            request={"name": self.key, "ciphertext": ciphertext, "ciphertext_crc32c": crc32c(ciphertext),
                     "additional_authenticated_data": AAD,
                     "additional_authenticated_data_crc32c": crc32c(AAD)},
            timeout=10))
        if crc32c(response.plaintext) != response.plaintext_crc32c:
            raise KeyProviderError("gcp-kms: the decrypted secret failed its CRC32C check")
        return response.plaintext

    def store(self, secret: bytes) -> None:
        response = self._call("encrypt", lambda: self._client().encrypt(
            request={"name": self.key, "plaintext": secret, "plaintext_crc32c": crc32c(secret),
                     "additional_authenticated_data": AAD,
                     "additional_authenticated_data_crc32c": crc32c(AAD)},
            timeout=10))
        if not (response.verified_plaintext_crc32c
                and response.verified_additional_authenticated_data_crc32c):
            raise KeyProviderError("gcp-kms: the service did not verify the request checksums")
        if crc32c(response.ciphertext) != response.ciphertext_crc32c:
            raise KeyProviderError("gcp-kms: the ciphertext failed its CRC32C check")
        if not response.name.startswith(self.key + "/cryptoKeyVersions/") and response.name != self.key:
            raise KeyProviderError(f"gcp-kms: answered by {response.name}, not {self.key}")
        self.envelope.write(response.ciphertext)
