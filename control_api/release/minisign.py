"""Verify minisign signatures exactly as `minisign -V` does, with the standard library alone.

install.sh embeds this file verbatim and runs it with a bare Debian python3, so it imports
nothing outside the standard library. Formats follow minisign 0.11 (jedisct1/minisign,
"Signature format"); the Ed25519 check follows RFC 8032 section 5.1.7.

    python3 minisign.py PUBKEY FILE SIGFILE   prints the trusted comment, or exits 1
"""

import base64
import hashlib
import sys

# -- Ed25519 verification, RFC 8032 5.1 (points in extended coordinates X, Y, Z, T) --------
_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493  # order of the base point
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _add(p, q):
    a = (p[1] - p[0]) * (q[1] - q[0]) % _P
    b = (p[1] + p[0]) * (q[1] + q[0]) % _P
    c = 2 * p[3] * q[3] * _D % _P
    d = 2 * p[2] * q[2] % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return e * f % _P, g * h % _P, f * g % _P, e * h % _P


def _mul(s, p):
    q = (0, 1, 1, 0)  # the neutral element
    while s:
        if s & 1:
            q = _add(q, p)
        p = _add(p, p)
        s >>= 1
    return q


def _same_point(p, q):
    # Projective coordinates: compare X/Z and Y/Z without inverting Z.
    return (p[0] * q[2] - q[0] * p[2]) % _P == 0 and (p[1] * q[2] - q[1] * p[2]) % _P == 0


def _decode_point(s):
    """The point encoded by 32 bytes, or None when they encode no point (RFC 8032 5.1.3)."""
    y = int.from_bytes(s, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P or (x == 0 and sign):
        return None
    if x & 1 != sign:
        x = _P - x
    return x, y, 1, x * y % _P


_B = _decode_point((4 * pow(5, _P - 2, _P) % _P).to_bytes(32, "little"))


def ed25519_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """Cofactorless check [S]B == R + [k]A, as the RFC's reference code does."""
    if len(public) != 32 or len(signature) != 64:
        return False
    a, r = _decode_point(public), _decode_point(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= _L:  # S >= L would make signatures malleable
        return False
    k = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little") % _L
    return _same_point(_mul(s, _B), _add(r, _mul(k, a)))


# -- minisign files --------------------------------------------------------------------------
CHUNK = 1 << 20
LEGACY_MAX_BYTES = 64 << 20  # legacy "Ed" signs the whole file, which must then sit in memory
_UNTRUSTED, _TRUSTED = "untrusted comment: ", "trusted comment: "


class SignatureError(Exception):
    """The signature does not verify; the message is one line saying why."""


def _b64(line: str, size: int, what: str) -> bytes:
    # Like minisign: the padded alphabet only, and exactly `size` bytes (minisign 0.11 too
    # ignores set unused bits in the last character; the decoded bytes are what is signed).
    try:
        raw = base64.b64decode(line, validate=True)
    except ValueError:
        raw = b""
    if len(raw) != size:
        raise SignatureError(f"{what}: expected base64 of {size} bytes, got {line[:40]!r}")
    return raw


def _key_id(raw: bytes) -> str:
    # minisign prints key ids as a little-endian 64-bit number (the .pub comment shows it too).
    return f"{int.from_bytes(raw, 'little'):X}"


def parse_public_key(text: str) -> tuple[bytes, bytes]:
    """(key id, Ed25519 key) from a .pub file's text or its bare base64 line."""
    lines = [line.strip() for line in text.strip().splitlines()]
    if len(lines) == 2 and lines[0].startswith("untrusted comment:"):
        lines = lines[1:]
    if len(lines) != 1:
        raise SignatureError("malformed public key: expected the base64 line or a minisign .pub file")
    raw = _b64(lines[0], 42, "malformed public key")
    if raw[:2] != b"Ed":
        raise SignatureError(f"unknown public key algorithm {raw[:2]!r} (minisign keys start with Ed)")
    return raw[2:10], raw[10:]


def parse_signature(text: str) -> tuple[bytes, bytes, bytes, str, bytes]:
    """(algorithm, key id, signature, trusted comment, global signature) of a .minisig text."""
    # Split on "\n" only and cut each line at its first "\r", as minisign's fgets and trim() do.
    lines = [line.partition("\r")[0] for line in text.split("\n")]
    if len(lines) < 4 or not lines[3]:
        raise SignatureError("malformed signature file: expected 4 lines")
    if not lines[0].startswith(_UNTRUSTED):
        raise SignatureError(f"malformed signature file: line 1 does not start with {_UNTRUSTED!r}")
    if not lines[2].startswith(_TRUSTED):
        raise SignatureError(f"malformed signature file: line 3 does not start with {_TRUSTED!r}")
    raw = _b64(lines[1], 74, "malformed signature file: signature line")
    if raw[:2] not in (b"ED", b"Ed"):
        raise SignatureError(f"unknown signature algorithm {raw[:2]!r} (expected ED or legacy Ed)")
    global_sig = _b64(lines[3], 64, "malformed signature file: trusted comment signature line")
    return raw[:2], raw[2:10], raw[10:], lines[2][len(_TRUSTED) :], global_sig


def _message(path, prehashed: bool) -> bytes:
    """What the signature covers: BLAKE2b-512 of the file (ED), or the file itself (legacy Ed)."""
    try:
        with open(path, "rb") as f:
            if prehashed:
                h = hashlib.blake2b(digest_size=64)
                while chunk := f.read(CHUNK):
                    h.update(chunk)
                return h.digest()
            data = f.read(LEGACY_MAX_BYTES + 1)
    except OSError as e:
        raise SignatureError(f"cannot read {path}: {e.strerror or e}") from None
    if len(data) > LEGACY_MAX_BYTES:
        raise SignatureError(
            f"legacy (Ed) signature over a file larger than {LEGACY_MAX_BYTES >> 20} MiB: "
            "refused, re-sign it in minisign's default prehashed mode"
        )
    return data


def verify_file(public_key_text: str, path, signature_text: str) -> str:
    """Check `signature_text` (a .minisig) over the file at `path`; return its trusted comment."""
    key_id, key = parse_public_key(public_key_text)
    algorithm, sig_key_id, sig, comment, global_sig = parse_signature(signature_text)
    if sig_key_id != key_id:
        raise SignatureError(
            f"signed by key id {_key_id(sig_key_id)} but the trusted key is {_key_id(key_id)}"
        )
    if not ed25519_verify(key, _message(path, algorithm == b"ED"), sig):
        raise SignatureError(
            "the signature does not match the file (altered or truncated, or not signed by the trusted key)"
        )
    # surrogateescape keeps a comment that is not UTF-8 byte for byte, as minisign signs bytes.
    if not ed25519_verify(key, sig + comment.encode("utf-8", "surrogateescape"), global_sig):
        raise SignatureError("the trusted comment was altered")
    return comment


def _read_signature_file(path) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read(64 << 10)  # minisign reads only 4 short lines; ignore the rest
    except OSError as e:
        raise SignatureError(f"cannot read signature file {path}: {e.strerror or e}") from None
    return data.decode("utf-8", "surrogateescape")


def main(argv=None) -> int:
    """`minisign.py PUBKEY FILE SIGFILE` (argv without the program name)."""
    args = sys.argv[1:] if argv is None else list(argv)
    if len(args) != 3:
        print("usage: minisign.py PUBKEY_LINE FILE SIGFILE", file=sys.stderr)
        return 2
    try:
        comment = verify_file(args[0], args[1], _read_signature_file(args[2]))
    except SignatureError as e:
        print(f"minisign: {e}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(comment.encode("utf-8", "surrogateescape") + b"\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
