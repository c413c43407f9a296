"""Regenerate the minisign vectors in this folder (README.md says why and how).

    python tests/release/vectors/make_vectors.py

Signs with the real minisign CLI under two throwaway keys made in a temporary directory that
is deleted at the end: only key.pub, the data files, the .minisig files and vectors.json are
written here. Running it again replaces every vector with one under new keys.
"""

import base64
import json
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
L = 2**252 + 27742317777372353535851937790883648493  # Ed25519 group order (RFC 8032)
DATA = b"WECO release bundle test vector\n" + bytes(range(256)) * 4


def minisign(*args: str) -> None:
    subprocess.run(["minisign", *args], check=True, stdout=subprocess.DEVNULL)


def sig_lines(name: str) -> list[str]:
    return (HERE / name).read_text().split("\n")


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def write_sig(name: str, lines: list[str], newline: str = "\n") -> None:
    (HERE / name).write_bytes(newline.join(lines).encode())


def main() -> None:
    (HERE / "data.bin").write_bytes(DATA)
    (HERE / "data-flipped.bin").write_bytes(DATA[:100] + bytes([DATA[100] ^ 0x01]) + DATA[101:])
    (HERE / "data-truncated.bin").write_bytes(DATA[:-1])
    (HERE / "empty.bin").write_bytes(b"")
    (HERE / "empty-plus-one-byte.bin").write_bytes(b"\0")
    with tempfile.TemporaryDirectory() as tmp:
        key, other = f"{tmp}/key", f"{tmp}/other"
        minisign("-G", "-W", "-p", str(HERE / "key.pub"), "-s", key)
        minisign("-G", "-W", "-p", f"{other}.pub", "-s", other)
        for sig, flags, file, comment in [
            ("data.bin.minisig", [], "data.bin", "vector: prehashed (ED)"),
            ("data.legacy.minisig", ["-l"], "data.bin", "vector: legacy (Ed)"),
            ("empty.bin.minisig", [], "empty.bin", "vector: empty file"),
            ("other-key.minisig", [], "data.bin", "vector: another key"),
        ]:
            secret = other if sig == "other-key.minisig" else key
            minisign("-S", *flags, "-s", secret, "-m", str(HERE / file), "-t", comment, "-x", str(HERE / sig))

    good, legacy = sig_lines("data.bin.minisig"), sig_lines("data.legacy.minisig")
    foreign = sig_lines("other-key.minisig")
    raw, foreign_raw = base64.b64decode(good[1]), base64.b64decode(foreign[1])

    forged = foreign_raw[:2] + raw[2:10] + foreign_raw[10:]  # the other key's signature, our key id
    write_sig("forged-key-id.minisig", [foreign[0], b64(forged), *foreign[2:]])
    write_sig("comment-altered.minisig", [*good[:2], good[2] + " (edited)", *good[3:]])
    write_sig("comment-altered-legacy.minisig", [*legacy[:2], "trusted comment: vector: other", *legacy[3:]])
    write_sig("global-sig-from-legacy.minisig", [*good[:3], legacy[3], *good[4:]])
    s = int.from_bytes(raw[42:], "little") + L  # same point equation, S no longer below L
    write_sig("non-canonical-s.minisig", [good[0], b64(raw[:42] + s.to_bytes(32, "little")), *good[2:]])
    write_sig("unknown-algorithm.minisig", [good[0], b64(b"XX" + raw[2:]), *good[2:]])
    write_sig("three-lines.minisig", good[:3])
    write_sig("no-untrusted-prefix.minisig", ["comment: x", *good[1:]])
    write_sig("not-base64.minisig", [good[0], good[1][:-5] + "!!!!=", *good[2:]])
    write_sig("unpadded-base64.minisig", [good[0], good[1].rstrip("="), *good[2:]])
    # 74 bytes end in "x=" with 2 unused bits; setting one gives a non-canonical encoding, which
    # minisign 0.11 accepts (the decoded bytes are unchanged).
    last = base64.b64encode(raw)[-2:-1].decode()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    odd = alphabet[alphabet.index(last) | 1]
    write_sig("non-canonical-base64.minisig", [good[0], good[1][:-2] + odd + "=", *good[2:]])
    write_sig("crlf.minisig", good, newline="\r\n")

    vectors = [
        ("data.bin", "data.bin.minisig", "ok", "vector: prehashed (ED)"),
        ("data.bin", "data.legacy.minisig", "ok", "vector: legacy (Ed)"),
        ("empty.bin", "empty.bin.minisig", "ok", "vector: empty file"),
        ("data.bin", "crlf.minisig", "ok", "vector: prehashed (ED)"),
        ("data-flipped.bin", "data.bin.minisig", "does not match the file", None),
        ("data-truncated.bin", "data.bin.minisig", "does not match the file", None),
        ("data-flipped.bin", "data.legacy.minisig", "does not match the file", None),
        ("empty-plus-one-byte.bin", "empty.bin.minisig", "does not match the file", None),
        ("data.bin", "other-key.minisig", "signed by key id", None),
        ("data.bin", "forged-key-id.minisig", "does not match the file", None),
        ("data.bin", "non-canonical-s.minisig", "does not match the file", None),
        ("data.bin", "comment-altered.minisig", "the trusted comment was altered", None),
        ("data.bin", "comment-altered-legacy.minisig", "the trusted comment was altered", None),
        ("data.bin", "global-sig-from-legacy.minisig", "the trusted comment was altered", None),
        ("data.bin", "unknown-algorithm.minisig", "unknown signature algorithm", None),
        ("data.bin", "three-lines.minisig", "malformed signature file", None),
        ("data.bin", "no-untrusted-prefix.minisig", "malformed signature file", None),
        ("data.bin", "not-base64.minisig", "malformed signature file", None),
        ("data.bin", "unpadded-base64.minisig", "malformed signature file", None),
        ("data.bin", "non-canonical-base64.minisig", "ok", "vector: prehashed (ED)"),
    ]
    manifest = [
        {"file": f, "sig": s, "expect": e, **({"trusted_comment": c} if c else {})} for f, s, e, c in vectors
    ]
    (HERE / "vectors.json").write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
