"""A throwaway minisign key pair made by the real CLI, and signing helpers over it."""

import subprocess
from pathlib import Path

import pytest

from control_api.release import signing


class Keys:
    def __init__(self, directory: Path, name: str) -> None:
        self.public, self.secret = directory / f"{name}.pub", directory / f"{name}.key"
        signing.generate_keypair(self.public, self.secret, password=False)
        self.text = self.public.read_text()
        self.line = signing.public_key_line(self.public)

    def sign(self, path: Path, comment: str, *, legacy: bool = False) -> str:
        """The signature text minisign writes for `path` (legacy: minisign -l, algorithm Ed)."""
        if not legacy:
            return signing.sign(path, self.secret, comment).read_text()
        out = Path(f"{path}.legacy.minisig")
        args = ["-S", "-l", "-s", str(self.secret), "-m", str(path), "-t", comment, "-x", str(out)]
        subprocess.run(["minisign", *args], check=True, stdout=subprocess.DEVNULL)
        return out.read_text()


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return Keys(tmp_path, "release")


@pytest.fixture
def other_keys(tmp_path: Path) -> Keys:
    return Keys(tmp_path, "other")
