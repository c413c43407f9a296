"""vault:, aws-kms: and gcp-kms: against real servers (OpenBao, moto_server) and the
Cloud KMS REST endpoint driven by the real google-cloud-kms client."""

from __future__ import annotations

import base64
import json

import pytest

from keyproviders import KeyProviderError, ProviderContext, resolve
from tests.keyproviders.conftest import GCP_KEY, GCP_OTHER, SECRET, tamper
from tests.peers.openbao import ROOT_TOKEN
from tests.peers.postgres import free_port

# -- Vault / OpenBao Transit -------------------------------------------------------------


def test_vault_round_trip(vault_context, tmp_path):
    provider = resolve(f"vault:weco-master?wrapped={tmp_path}/w.json", vault_context)
    provider.store(SECRET)
    envelope = json.loads((tmp_path / "w.json").read_text())
    assert base64.b64decode(envelope["ciphertext"]).startswith(b"vault:v1:")
    assert provider.unwrap() == SECRET
    assert SECRET.hex() not in (tmp_path / "w.json").read_text()


def test_vault_wrong_key_is_refused(vault_context, tmp_path):
    resolve(f"vault:weco-master?wrapped={tmp_path}/w.json", vault_context).store(SECRET)
    (tmp_path / "w.json").write_text((tmp_path / "w.json").read_text().replace("transit/weco-master",
                                                                             "transit/other"))
    with pytest.raises(KeyProviderError, match="vault: Transit decrypt with key 'other' refused"):
        resolve(f"vault:other?wrapped={tmp_path}/w.json", vault_context).unwrap()


def test_vault_tampered_wrapped_secret_is_refused(vault_context, tmp_path):
    provider = resolve(f"vault:weco-master?wrapped={tmp_path}/w.json", vault_context)
    provider.store(SECRET)
    tamper(tmp_path / "w.json")
    with pytest.raises(KeyProviderError, match="refused"):
        provider.unwrap()


def test_vault_unreachable_and_unauthenticated(tmp_path, openbao):
    down = ProviderContext(tmp_path, {"VAULT_ADDR": f"http://127.0.0.1:{free_port()}", "VAULT_TOKEN": "x"})
    provider = resolve(f"vault:weco-master?wrapped={tmp_path}/w.json", down)
    with pytest.raises(KeyProviderError, match=r"vault: cannot reach http://127\.0\.0\.1:"):
        provider.store(SECRET)
    bad_token = ProviderContext(tmp_path, {"VAULT_ADDR": openbao.address, "VAULT_TOKEN": "wrong"})
    with pytest.raises(KeyProviderError, match="refused"):
        resolve(f"vault:weco-master?wrapped={tmp_path}/w.json", bad_token).store(SECRET)
    with pytest.raises(KeyProviderError, match="VAULT_ADDR is not set"):
        resolve("vault:weco-master", ProviderContext(tmp_path, {"VAULT_TOKEN": ROOT_TOKEN}))


def test_vault_approle_login(openbao, tmp_path):
    client = openbao.client()
    client.sys.enable_auth_method("approle")
    client.sys.create_or_update_policy("weco-transit", """
        path "transit/encrypt/weco-master" { capabilities = ["update"] }
        path "transit/decrypt/weco-master" { capabilities = ["update"] }""")
    client.auth.approle.create_or_update_approle("weco", token_policies=["weco-transit"])
    role_id = client.auth.approle.read_role_id("weco")["data"]["role_id"]
    secret_id = client.auth.approle.generate_secret_id("weco")["data"]["secret_id"]
    context = ProviderContext(tmp_path, {"VAULT_ADDR": openbao.address, "VAULT_ROLE_ID": role_id,
                                         "VAULT_SECRET_ID": secret_id})
    provider = resolve(f"vault:weco-master?wrapped={tmp_path}/w.json", context)
    provider.store(SECRET)
    assert provider.unwrap() == SECRET
    # The policy allows this key only.
    with pytest.raises(KeyProviderError, match="refused"):
        resolve(f"vault:other?wrapped={tmp_path}/o.json", context).store(SECRET)
    wrong = ProviderContext(tmp_path, {**context.env, "VAULT_SECRET_ID": "not-the-secret"})
    with pytest.raises(KeyProviderError, match="AppRole login refused"):
        resolve(f"vault:weco-master?wrapped={tmp_path}/w.json", wrong).unwrap()


# -- AWS KMS (moto_server) -------------------------------------------------------------------


def test_aws_round_trip(moto, aws_credentials, context, tmp_path):
    key = moto.create_key()
    provider = resolve(f"aws-kms:{key}?endpoint={moto.endpoint}&region=us-east-1", context)
    provider.store(SECRET)
    assert provider.unwrap() == SECRET


def test_aws_wrong_key_is_refused(moto, aws_credentials, context, tmp_path):
    first, second = moto.create_key(), moto.create_key()
    wrapped = tmp_path / "w.json"
    resolve(f"aws-kms:{first}?endpoint={moto.endpoint}&region=us-east-1&wrapped={wrapped}",
            context).store(SECRET)
    wrapped.write_text(wrapped.read_text().replace(first, second))
    with pytest.raises(KeyProviderError, match="aws-kms: "):
        resolve(f"aws-kms:{second}?endpoint={moto.endpoint}&region=us-east-1&wrapped={wrapped}",
                context).unwrap()


def test_aws_tampered_wrapped_secret_is_refused(moto, aws_credentials, context, tmp_path):
    key = moto.create_key()
    wrapped = tmp_path / "w.json"
    provider = resolve(f"aws-kms:{key}?endpoint={moto.endpoint}&region=us-east-1&wrapped={wrapped}",
                       context)
    provider.store(SECRET)
    tamper(wrapped)
    with pytest.raises(KeyProviderError, match=r"aws-kms: decrypt with key .* refused"):
        provider.unwrap()


def test_aws_unreachable(aws_credentials, context):
    provider = resolve(f"aws-kms:k?endpoint=http://127.0.0.1:{free_port()}&region=us-east-1", context)
    with pytest.raises(KeyProviderError, match=r"aws-kms: cannot reach http://127\.0\.0\.1:"):
        provider.store(SECRET)


# -- Cloud KMS (REST endpoint, real client) -------------------------------------------------


def gcp_provider(gcp, context, key=GCP_KEY, wrapped=None):
    wrapped_opt = f"&wrapped={wrapped}" if wrapped else ""
    return resolve(f"gcp-kms:{key}?endpoint={gcp.endpoint}{wrapped_opt}", context)


def test_gcp_round_trip(gcp, context):
    provider = gcp_provider(gcp, context)
    provider.store(SECRET)
    assert provider.unwrap() == SECRET


def test_gcp_wrong_key_is_refused(gcp, context, tmp_path):
    wrapped = tmp_path / "w.json"
    gcp_provider(gcp, context, wrapped=wrapped).store(SECRET)
    wrapped.write_text(wrapped.read_text().replace(GCP_KEY, GCP_OTHER))
    with pytest.raises(KeyProviderError, match=r"gcp-kms: decrypt with key .* refused: 400"):
        gcp_provider(gcp, context, GCP_OTHER, wrapped).unwrap()


def test_gcp_tampered_wrapped_secret_is_refused(gcp, context, tmp_path):
    wrapped = tmp_path / "w.json"
    provider = gcp_provider(gcp, context, wrapped=wrapped)
    provider.store(SECRET)
    tamper(wrapped)
    with pytest.raises(KeyProviderError, match="refused: 400"):
        provider.unwrap()


@pytest.mark.parametrize("corruption,action,message", [
    ("plaintext", "unwrap", "the decrypted secret failed its CRC32C check"),
    ("ciphertext", "store", "the ciphertext failed its CRC32C check"),
    ("unverified", "store", "did not verify the request checksums"),
])
def test_gcp_answers_failing_integrity_checks_are_refused(gcp, context, tmp_path, corruption, action,
                                                         message):
    provider = gcp_provider(gcp, context, wrapped=tmp_path / f"{corruption}.json")
    if action == "unwrap":
        provider.store(SECRET)
    gcp.corrupt = corruption
    try:
        with pytest.raises(KeyProviderError, match=message):
            provider.unwrap() if action == "unwrap" else provider.store(SECRET)
    finally:
        gcp.corrupt = None


def test_gcp_unknown_key_and_unreachable(gcp, context, tmp_path):
    missing = "projects/weco/locations/global/keyRings/ops/cryptoKeys/missing"
    with pytest.raises(KeyProviderError, match="refused: 404"):
        gcp_provider(gcp, context, missing).store(SECRET)
    down = resolve(f"gcp-kms:{GCP_KEY}?endpoint=http://127.0.0.1:{free_port()}", context)
    with pytest.raises(KeyProviderError, match="gcp-kms: "):
        down.store(SECRET)
