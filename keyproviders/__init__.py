"""MASTER_SECRET key providers, named by URI.

    file:PATH                 the secret itself, base64, in a 0600 file (local)
    env-cmd:COMMAND ARGS      a command's stdout, base64 (local; run without a shell)
    vault:KEY                 Vault/OpenBao Transit unwraps an envelope file
    aws-kms:KEY               AWS KMS Decrypt unwraps an envelope file
    gcp-kms:KEY               Cloud KMS unwraps an envelope file (CRC32C checked here)

KMS URIs take query options: `wrapped=PATH` (default under FF_DATA_DIR/keys),
`mount=` (vault), `region=` and `endpoint=` (aws), `endpoint=` (gcp).
`resolve` turns a URI into a provider; `load_master_secret` walks an ordered list.
"""

from keyproviders.base import KeyProvider, KeyProviderError, ProviderContext
from keyproviders.resolver import load_master_secret, parse_provider_list, resolve

__all__ = ["KeyProvider", "KeyProviderError", "ProviderContext", "load_master_secret",
           "parse_provider_list", "resolve"]
