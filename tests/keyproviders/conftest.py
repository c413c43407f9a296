"""Real key-provider peers, started once per test session."""

from __future__ import annotations

import os

import pytest

from keyproviders import ProviderContext
from tests.conftest import GCP_KEYS
from tests.peers.openbao import ROOT_TOKEN

GCP_KEY, GCP_OTHER = GCP_KEYS
SECRET = bytes(range(32))


@pytest.fixture
def context(tmp_path):
    return ProviderContext(data_dir=tmp_path, env={})


@pytest.fixture
def vault_context(tmp_path, openbao):
    return ProviderContext(data_dir=tmp_path, env={"VAULT_ADDR": openbao.address, "VAULT_TOKEN": ROOT_TOKEN})


def tamper(path) -> None:
    """Flip one byte inside the wrapped ciphertext, keeping the file well-formed."""
    import base64
    import json

    data = json.loads(path.read_text())
    raw = bytearray(base64.b64decode(data["ciphertext"]))
    raw[len(raw) // 2] ^= 0x01
    data["ciphertext"] = base64.b64encode(bytes(raw)).decode()
    os.chmod(path, 0o600)
    path.write_text(json.dumps(data))
