"""From FF_MASTER_SECRET_PROVIDER to a master secret: parse URIs, try them in order."""

from __future__ import annotations

import importlib
import json
import logging
from pathlib import Path
from urllib.parse import parse_qsl

from keyproviders.base import (
    SECRET_BYTES,
    KeyProvider,
    KeyProviderError,
    ProviderContext,
    default_wrapped_path,
)
from keyproviders.envcmd import EnvCommandProvider
from keyproviders.file import FileProvider

log = logging.getLogger(__name__)

# Imported when first named: each KMS client library costs a tenth of a second to load,
# and most processes use one provider at most.
_KMS = {"vault": ("keyproviders.vault", "VaultTransitProvider"),
        "aws-kms": ("keyproviders.awskms", "AwsKmsProvider"),
        "gcp-kms": ("keyproviders.gcpkms", "GcpKmsProvider")}
SCHEMES = ("file", "env-cmd", *_KMS)


def resolve(uri: str, context: ProviderContext) -> KeyProvider:
    scheme, sep, rest = uri.partition(":")
    if not sep or scheme not in SCHEMES:
        raise KeyProviderError(f"unknown key provider {scheme!r}: expected one of {', '.join(SCHEMES)}")
    if scheme == "file":
        return FileProvider(rest)
    if scheme == "env-cmd":
        return EnvCommandProvider(rest)
    key, _, query = rest.partition("?")
    options = dict(parse_qsl(query, keep_blank_values=True))
    unknown = set(options) - {"wrapped", "mount", "region", "endpoint"}
    if unknown:
        raise KeyProviderError(f"{scheme}: unknown option(s) {', '.join(sorted(unknown))}")
    options["wrapped"] = Path(options["wrapped"]) if options.get("wrapped") else default_wrapped_path(
        context, scheme, key)
    module, name = _KMS[scheme]
    return getattr(importlib.import_module(module), name)(key, options, context, uri)


def parse_provider_list(value: str) -> list[str]:
    """One URI, or a JSON array of URIs tried in order."""
    value = value.strip()
    if not value.startswith("["):
        return [value]
    try:
        uris = json.loads(value)
    except ValueError:
        raise KeyProviderError("FF_MASTER_SECRET_PROVIDER looks like a list but is not JSON") from None
    if not uris or not all(isinstance(u, str) and u for u in uris):
        raise KeyProviderError("FF_MASTER_SECRET_PROVIDER must be a non-empty list of URIs")
    return uris


def load_master_secret(uris: list[str], context: ProviderContext, forbid_local: bool
                       ) -> tuple[bytes, KeyProvider]:
    """The secret from the first provider that yields one, and that provider."""
    providers = [resolve(uri, context) for uri in uris]
    if forbid_local:
        local = [p.uri.split(":", 1)[0] + ":" for p in providers if p.local]
        if local:
            raise KeyProviderError(f"FF_KEY_LOCAL_FORBID=1 refuses {', '.join(sorted(set(local)))} "
                                   "providers: use vault:, aws-kms: or gcp-kms:")
    failures = []
    for provider in providers:
        try:
            secret = provider.unwrap()
        except KeyProviderError as exc:
            log.warning("key provider %s failed: %s", _scheme(provider), exc)
            failures.append(str(exc))
            continue
        if len(secret) != SECRET_BYTES:
            failures.append(f"{_scheme(provider)}: unwrapped {len(secret)} bytes, not {SECRET_BYTES}")
            continue
        log.info("master secret served by the %s provider", _scheme(provider))
        return secret, provider
    raise KeyProviderError("no key provider could produce the master secret: " + "; ".join(failures))


def _scheme(provider: KeyProvider) -> str:
    return provider.uri.split(":", 1)[0]
