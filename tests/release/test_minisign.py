"""control_api/release/minisign.py: the stdlib verifier install.sh embeds, checked against
RFC 8032 7.1, signatures made by the real minisign CLI, the vectors kept in vectors/, and
`minisign -V` itself."""

import ast
import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from control_api.release import minisign
from control_api.release.minisign import SignatureError, ed25519_verify, main, verify_file

MODULE = Path(minisign.__file__)
VECTORS = Path(__file__).parent / "vectors"
MISMATCH = "the signature does not match the file"

# RFC 8032 7.1: TEST 1, TEST 2, TEST 3 and TEST SHA(abc) as (public key, message, signature).
RFC8032 = [
    (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555f"
        "b8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da08"
        "5ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18"
        "ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
    (
        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        hashlib.sha512(b"abc").hexdigest(),
        "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589"
        "09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
    ),
]


def _rfc(vector):
    return tuple(bytes.fromhex(h) for h in vector)


def _flip(data: bytes, index: int, bit: int = 0) -> bytes:
    return data[:index] + bytes([data[index] ^ (1 << bit)]) + data[index + 1 :]


# -- Ed25519 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", RFC8032, ids=["test1", "test2", "test3", "sha-abc"])
def test_rfc8032_vectors_verify_and_any_flipped_bit_fails(vector):
    public, message, signature = _rfc(vector)
    assert ed25519_verify(public, message, signature)
    for index in (0, 31, 32, 63):  # in R and in S
        assert not ed25519_verify(public, message, _flip(signature, index, bit=3))
    assert not ed25519_verify(_flip(public, 5), message, signature)
    assert not ed25519_verify(public, message + b"\0", signature)


def test_a_non_canonical_s_is_rejected_though_the_equation_holds():
    public, message, signature = _rfc(RFC8032[1])
    s = int.from_bytes(signature[32:], "little")
    # [S + L]B is the same point as [S]B: only the S < L rule rejects this signature.
    assert minisign._same_point(minisign._mul(s + minisign._L, minisign._B), minisign._mul(s, minisign._B))
    malleated = signature[:32] + (s + minisign._L).to_bytes(32, "little")
    assert not ed25519_verify(public, message, malleated)


def test_undecodable_points_are_rejected():
    public, message, signature = _rfc(RFC8032[0])
    p = 2**255 - 19
    not_a_y = p.to_bytes(32, "little")  # y must be below p
    assert minisign._decode_point(not_a_y) is None
    assert not ed25519_verify(not_a_y, message, signature)
    assert not ed25519_verify(public, message, not_a_y + signature[32:])
    # y = 2 has no x on the curve (x^2 is not a square mod p).
    assert minisign._decode_point((2).to_bytes(32, "little")) is None
    # x = 0 with the sign bit set is not a valid encoding (RFC 8032 5.1.3 step 4).
    assert minisign._decode_point((1 | 1 << 255).to_bytes(32, "little")) is None
    assert not ed25519_verify(public[:31], message, signature)


# -- signatures made by the real minisign CLI --------------------------------------------------


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    path = tmp_path / "weco-bundle.tar"
    path.write_bytes(os.urandom(3 * minisign.CHUNK + 17))  # several chunks, a ragged end
    return path


@pytest.mark.parametrize("legacy", [False, True], ids=["prehashed", "legacy"])
def test_cli_signatures_verify_and_return_the_trusted_comment(keys, bundle, legacy):
    signature = keys.sign(bundle, "weco 1.2.3 bundle", legacy=legacy)
    algorithm = base64.b64decode(signature.splitlines()[1])[:2]
    assert algorithm == (b"Ed" if legacy else b"ED")
    assert verify_file(keys.text, bundle, signature) == "weco 1.2.3 bundle"
    assert verify_file(keys.line, str(bundle), signature) == "weco 1.2.3 bundle"


@pytest.mark.parametrize("legacy", [False, True], ids=["prehashed", "legacy"])
def test_a_flipped_byte_or_truncation_is_refused(keys, bundle, legacy):
    signature = keys.sign(bundle, "c", legacy=legacy)
    data = bundle.read_bytes()
    for altered in (_flip(data, len(data) - 3), data[:-1], data[: minisign.CHUNK]):
        bundle.write_bytes(altered)
        with pytest.raises(SignatureError, match=MISMATCH):
            verify_file(keys.text, bundle, signature)


def test_an_empty_file_signed_then_a_byte_appended(keys, tmp_path):
    path = tmp_path / "empty"
    path.write_bytes(b"")
    signature = keys.sign(path, "empty")
    assert verify_file(keys.line, path, signature) == "empty"
    path.write_bytes(b"\n")
    with pytest.raises(SignatureError, match=MISMATCH):
        verify_file(keys.line, path, signature)


def test_a_signature_from_another_key_names_both_key_ids(keys, other_keys, bundle):
    signature = other_keys.sign(bundle, "c")
    # The ids as minisign prints them in the .pub files' comments.
    ours, theirs = (k.text.splitlines()[0].split()[-1] for k in (keys, other_keys))
    with pytest.raises(SignatureError) as caught:
        verify_file(keys.text, bundle, signature)
    assert str(caught.value) == f"signed by key id {theirs} but the trusted key is {ours}"


def test_another_keys_signature_with_a_forged_key_id_fails_the_ed25519_check(keys, other_keys, bundle):
    lines = other_keys.sign(bundle, "c").splitlines()
    key_id = base64.b64decode(keys.line)[2:10]
    raw = base64.b64decode(lines[1])
    lines[1] = base64.b64encode(raw[:2] + key_id + raw[10:]).decode()
    with pytest.raises(SignatureError, match=MISMATCH):
        verify_file(keys.text, bundle, "\n".join(lines) + "\n")


@pytest.mark.parametrize("legacy", [False, True], ids=["prehashed", "legacy"])
def test_an_altered_trusted_comment_is_refused(keys, bundle, legacy):
    lines = keys.sign(bundle, "weco 1.2.3", legacy=legacy).splitlines()
    lines[2] = "trusted comment: weco 9.9.9"
    with pytest.raises(SignatureError, match=r"^the trusted comment was altered$"):
        verify_file(keys.text, bundle, "\n".join(lines) + "\n")


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda lines: lines[:3], "malformed signature file: expected 4 lines"),
        (lambda lines: ["", *lines[1:]], "malformed signature file: line 1"),
        (lambda lines: [*lines[:2], "comment: x", lines[3]], "malformed signature file: line 3"),
        (lambda lines: [lines[0], lines[1][:-8], *lines[2:]], "malformed signature file: signature line"),
        (lambda lines: [*lines[:3], lines[3][:-4]], "malformed signature file: trusted comment signature"),
        (lambda lines: [lines[0], "RVg" + lines[1][3:], *lines[2:]], "unknown signature algorithm b'EX'"),
        (lambda lines: [], "malformed signature file"),
    ],
    ids=["three-lines", "no-untrusted", "no-trusted", "short-sig", "short-global", "algorithm", "empty"],
)
def test_malformed_signature_files_say_what_is_wrong(keys, bundle, edit, expected):
    lines = keys.sign(bundle, "c").splitlines()
    with pytest.raises(SignatureError, match=f"^{expected}"):
        verify_file(keys.text, bundle, "\n".join(edit(lines)) + "\n")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", "malformed public key"),
        ("untrusted comment: x\nRWQ=\n", "malformed public key"),
        (base64.b64encode(b"XX" + bytes(40)).decode(), "unknown public key algorithm b'XX'"),
    ],
)
def test_malformed_public_keys_say_what_is_wrong(text, expected):
    with pytest.raises(SignatureError, match=f"^{expected}"):
        minisign.parse_public_key(text)


def test_legacy_signatures_over_large_files_are_refused_not_read(keys, tmp_path):
    path = tmp_path / "big"
    with path.open("wb") as f:
        f.truncate(minisign.LEGACY_MAX_BYTES + 1)  # sparse: cheap to make
    legacy = keys.sign(path, "big", legacy=True)
    with pytest.raises(SignatureError, match=r"^legacy \(Ed\) signature over a file larger than 64 MiB"):
        verify_file(keys.text, path, legacy)
    assert verify_file(keys.text, path, keys.sign(path, "big")) == "big"  # prehashed streams


def test_an_unreadable_file_is_a_signature_error(keys, bundle, tmp_path):
    signature = keys.sign(bundle, "c")
    with pytest.raises(SignatureError, match=r"^cannot read .*missing: No such file or directory$"):
        verify_file(keys.text, tmp_path / "missing", signature)


# -- the command line install.sh runs ----------------------------------------------------------


def test_main_prints_the_trusted_comment(keys, bundle, capsys):
    keys.sign(bundle, "weco 1.2.3\tbuilt 2026-12-01")
    assert main([keys.line, str(bundle), f"{bundle}.minisig"]) == 0
    out, err = capsys.readouterr()
    assert (out, err) == ("weco 1.2.3\tbuilt 2026-12-01\n", "")


def test_main_reports_failures_on_one_line(keys, bundle, tmp_path, capsys):
    keys.sign(bundle, "c")
    cases = [
        ([keys.line, str(bundle), str(tmp_path / "nope.minisig")], "cannot read signature file"),
        ([keys.line, str(tmp_path / "nope"), f"{bundle}.minisig"], "cannot read"),
        ([keys.line, str(bundle), str(tmp_path)], "cannot read signature file"),
        (["not a key", str(bundle), f"{bundle}.minisig"], "malformed public key"),
    ]
    for argv, expected in cases:
        assert main(argv) == 1
        out, err = capsys.readouterr()
        assert out == "" and err.startswith(f"minisign: {expected}") and err.count("\n") == 1, err


def test_the_file_runs_alone_under_the_system_python3(keys, bundle, tmp_path):
    """As install.sh runs it: Debian's bare python3, isolated from this venv and project."""
    keys.sign(bundle, "weco 1.2.3")
    alone = tmp_path / "alone" / "minisign.py"
    alone.parent.mkdir()
    alone.write_bytes(MODULE.read_bytes())

    def run(*args):
        return subprocess.run(["/usr/bin/python3", "-I", str(alone), *args], capture_output=True, text=True)

    ok = run(keys.line, str(bundle), f"{bundle}.minisig")
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "weco 1.2.3\n", "")
    missing = run(keys.line, str(bundle), str(tmp_path / "missing.minisig"))
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.startswith("minisign: cannot read signature file")
    assert missing.stderr.count("\n") == 1 and "Traceback" not in missing.stderr
    bundle.write_bytes(b"altered")
    altered = run(keys.line, str(bundle), f"{bundle}.minisig")
    assert altered.returncode == 1 and altered.stderr == f"minisign: {MISMATCH} " + (
        "(altered or truncated, or not signed by the trusted key)\n"
    )


def test_the_module_imports_only_the_standard_library():
    imported = set()
    for node in ast.walk(ast.parse(MODULE.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports"
            imported.add(node.module.split(".")[0])
    assert imported and imported <= sys.stdlib_module_names, imported - sys.stdlib_module_names


# -- the vectors kept in vectors/ --------------------------------------------------------------

MANIFEST = json.loads((VECTORS / "vectors.json").read_text())
PUBLIC = (VECTORS / "key.pub").read_text()


@pytest.mark.parametrize("vector", MANIFEST, ids=[f"{v['sig']}-{v['file']}" for v in MANIFEST])
def test_each_vector_has_its_expected_outcome(vector):
    signature = (VECTORS / vector["sig"]).read_bytes().decode()
    if vector["expect"] == "ok":
        assert verify_file(PUBLIC, VECTORS / vector["file"], signature) == vector["trusted_comment"]
    else:
        with pytest.raises(SignatureError) as caught:
            verify_file(PUBLIC, VECTORS / vector["file"], signature)
        assert vector["expect"] in str(caught.value)
        assert "\n" not in str(caught.value)


@pytest.mark.parametrize("vector", MANIFEST, ids=[f"{v['sig']}-{v['file']}" for v in MANIFEST])
def test_minisign_cli_agrees_on_each_vector(vector):
    file, sig = VECTORS / vector["file"], VECTORS / vector["sig"]
    args = ["-V", "-Q", "-P", PUBLIC.splitlines()[1], "-m", str(file), "-x", str(sig)]
    cli = subprocess.run(["minisign", *args], capture_output=True, text=True)
    try:
        ours = verify_file(PUBLIC, file, sig.read_bytes().decode())
    except SignatureError:
        ours = None
    if ours is None:
        assert cli.returncode != 0, cli.stdout
    else:
        assert (cli.returncode, cli.stdout) == (0, f"{ours}\n"), cli.stderr


def test_the_manifest_covers_every_signature_file():
    assert {v["sig"] for v in MANIFEST} == {p.name for p in VECTORS.glob("*.minisig")}
    assert not list(VECTORS.glob("*.key")), "a secret key must never be committed"
