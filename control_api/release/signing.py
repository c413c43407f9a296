"""Release signing: thin wrappers over Debian's minisign CLI (0.11).

Keys and signatures are minisign's own formats, so both `minisign -V` and our stdlib verifier
(release/minisign.py, embedded in install.sh) check what these produce. Signatures use
minisign's default prehashed mode (algorithm ED), which the verifier streams.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

from control_api.release.minisign import SignatureError, parse_public_key


class SigningError(Exception):
    """minisign refused or failed; the message is one line."""


_PROMPTS = re.compile(r"^(Password(?: \(one more time\))?: )+")


def _run(action: str, args: list[str]) -> None:
    # A password-protected key makes minisign prompt on stderr and read the terminal, so when a
    # person is at the terminal its output is shown live; stderr is also kept for the error.
    interactive = sys.stdin is not None and sys.stdin.isatty()
    stdout = None if interactive else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(["minisign", *args], stdout=stdout, stderr=subprocess.PIPE)
    except FileNotFoundError:
        raise SigningError("minisign is not installed (apt-get install minisign)") from None
    err = bytearray()
    with proc:
        while chunk := os.read(proc.stderr.fileno(), 4096):
            err += chunk
            if interactive:
                sys.stderr.buffer.write(chunk)
                sys.stderr.flush()
    if proc.returncode != 0:
        # Drop the password prompts, which share a line with what follows them.
        lines = [_PROMPTS.sub("", line).strip() for line in err.decode(errors="replace").splitlines()]
        said = " ".join(line for line in lines if line)
        raise SigningError(f"minisign could not {action}: {said or f'exit status {proc.returncode}'}")


def generate_keypair(public_path, secret_path, *, password: bool) -> None:
    """A new key pair; password=False (minisign -W) is for test keys and CI only."""
    for path in (Path(public_path), Path(secret_path)):
        if path.exists():
            raise SigningError(f"{path} already exists: refusing to overwrite a key")
    args = ["-G", "-p", str(public_path), "-s", str(secret_path)]
    _run("generate a key pair", [*args, *([] if password else ["-W"])])


def sign(path, secret_path, trusted_comment: str) -> Path:
    """Sign the file at `path` (prehashed); returns the signature path, path + ".minisig"."""
    if "\n" in trusted_comment or "\r" in trusted_comment:
        # minisign's signature file is line based: a line break would end the trusted comment.
        raise SigningError("the trusted comment must be one line")
    out = Path(f"{path}.minisig")
    args = ["-S", "-s", str(secret_path), "-m", str(path), "-t", trusted_comment, "-x", str(out)]
    _run(f"sign {path}", args)
    return out


def public_key_line(public_path) -> str:
    """The base64 line of a minisign .pub file (what `minisign -V -P` and install.sh take)."""
    try:
        text = Path(public_path).read_text(errors="replace")
        parse_public_key(text)
    except OSError as e:
        raise SigningError(f"cannot read public key {public_path}: {e.strerror or e}") from None
    except SignatureError as e:
        raise SigningError(f"{public_path}: {e}") from None
    return text.strip().splitlines()[-1].strip()
