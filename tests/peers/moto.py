"""moto's real HTTP server standing in for AWS KMS (boto3 speaks to it over HTTP)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3

from tests.peers.postgres import free_port

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1"}


class MotoServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        binary = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
        self.process = subprocess.Popen([binary, "-H", "127.0.0.1", "-p", str(self.port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        return self

    def kms(self):
        return boto3.client("kms", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def create_key(self) -> str:
        return self.kms().create_key(Description="weco test")["KeyMetadata"]["KeyId"]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
