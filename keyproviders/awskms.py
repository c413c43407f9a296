"""aws-kms:KEY: AWS KMS Decrypt unwraps the envelope-encrypted master secret.

Credentials come from boto3's usual chain (environment, profile, instance role). The
encryption context binds the ciphertext to this purpose; the key that answered
must be the configured one.
"""

from __future__ import annotations

import boto3
import botocore.config
import botocore.exceptions

from keyproviders.base import Envelope, KeyProviderError, ProviderContext

ENCRYPTION_CONTEXT = {"application": "weco", "purpose": "master-secret"}


class AwsKmsProvider:
    local = False

    def __init__(self, key: str, options: dict[str, str], context: ProviderContext, uri: str) -> None:
        if not key:
            raise KeyProviderError("aws-kms: needs a key id, ARN or alias, as in aws-kms:alias/weco")
        self.key, self.uri = key, uri
        self.region = options.get("region")
        self.endpoint = options.get("endpoint")
        self.envelope = Envelope(options["wrapped"], "aws-kms", key)

    def _client(self):
        config = botocore.config.Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 2})
        return boto3.client("kms", region_name=self.region, endpoint_url=self.endpoint, config=config)

    def _call(self, what: str, fn):
        try:
            return fn()
        except botocore.exceptions.EndpointConnectionError:
            raise KeyProviderError(f"aws-kms: cannot reach {self.endpoint or 'AWS KMS'}") from None
        except botocore.exceptions.NoCredentialsError:
            raise KeyProviderError("aws-kms: no AWS credentials found") from None
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            raise KeyProviderError(f"aws-kms: {what} with key {self.key!r} refused: {code}") from None
        except botocore.exceptions.BotoCoreError as exc:
            raise KeyProviderError(f"aws-kms: {what} failed: {type(exc).__name__}") from None

    def _resolve_arn(self, client) -> str:
        return self._call("describe", lambda: client.describe_key(KeyId=self.key))["KeyMetadata"]["Arn"]

    def unwrap(self) -> bytes:
        blob = self.envelope.read()
        client = self._client()
        response = self._call("decrypt", lambda: client.decrypt(
            CiphertextBlob=blob, KeyId=self.key, EncryptionContext=ENCRYPTION_CONTEXT))
        # A service that ignores KeyId on decrypt must still not hand us a secret
        # wrapped under another key.
        if response.get("KeyId") != self._resolve_arn(client):
            raise KeyProviderError(f"aws-kms: the wrapped secret was made with another key, not {self.key!r}")
        return response["Plaintext"]

    def store(self, secret: bytes) -> None:
        client = self._client()
        response = self._call("encrypt", lambda: client.encrypt(
            KeyId=self.key, Plaintext=secret, EncryptionContext=ENCRYPTION_CONTEXT))
        self.envelope.write(response["CiphertextBlob"])
