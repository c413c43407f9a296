"""control_api/release/signing.py: the minisign CLI wrappers, run for real."""

import base64
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from control_api.release.minisign import verify_file
from control_api.release.signing import SigningError, generate_keypair, public_key_line, sign

ROOT = Path(__file__).resolve().parents[2]


def test_a_generated_key_signs_what_minisign_and_our_verifier_accept(keys, tmp_path):
    assert keys.public.read_text().startswith("untrusted comment: minisign public key ")
    assert keys.line == keys.public.read_text().splitlines()[1]
    bundle = tmp_path / "weco.tar"
    bundle.write_bytes(b"bundle bytes")
    out = sign(bundle, keys.secret, "weco 1.2.3")
    assert out == tmp_path / "weco.tar.minisig"
    assert base64.b64decode(out.read_text().splitlines()[1])[:2] == b"ED"  # prehashed
    cli = subprocess.run(
        ["minisign", "-V", "-Q", "-P", keys.line, "-m", str(bundle)], capture_output=True, text=True
    )
    assert (cli.returncode, cli.stdout) == (0, "weco 1.2.3\n"), cli.stderr
    assert verify_file(keys.line, bundle, out.read_text()) == "weco 1.2.3"


@pytest.mark.parametrize("existing", ["release.pub", "release.key"])
def test_generate_keypair_refuses_to_overwrite(tmp_path, existing):
    (tmp_path / existing).write_text("keep me")
    with pytest.raises(SigningError, match=f"{existing} already exists: refusing to overwrite a key"):
        generate_keypair(tmp_path / "release.pub", tmp_path / "release.key", password=False)
    assert (tmp_path / existing).read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir()] == [existing]


def test_sign_refuses_a_multi_line_trusted_comment(keys, tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(SigningError, match="one line"):
        sign(tmp_path / "f", keys.secret, "weco 1.2.3\ntrusted comment: forged")
    assert not (tmp_path / "f.minisig").exists()


def test_minisign_failures_are_one_line_signing_errors(keys, tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(SigningError) as caught:
        sign(tmp_path / "f", tmp_path / "nokey", "c")
    said = f"{tmp_path}/nokey: No such file or directory"
    assert str(caught.value) == f"minisign could not sign {tmp_path}/f: {said}"
    with pytest.raises(SigningError) as caught:
        sign(tmp_path / "missing", keys.secret, "c")
    assert str(caught.value).endswith("/missing: No such file or directory")


def test_a_missing_minisign_binary_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SigningError, match=r"apt-get install minisign"):
        generate_keypair(tmp_path / "k.pub", tmp_path / "k.key", password=False)


def test_public_key_line_refuses_what_is_not_a_minisign_key(tmp_path):
    (tmp_path / "bad.pub").write_text("untrusted comment: x\nnot base64\n")
    with pytest.raises(SigningError, match=r"bad\.pub: malformed public key"):
        public_key_line(tmp_path / "bad.pub")
    with pytest.raises(SigningError, match="cannot read public key"):
        public_key_line(tmp_path / "absent.pub")


def test_a_password_protected_key_reads_its_password(tmp_path):
    """Without a terminal minisign reads the password from stdin, as CI would feed it."""
    script = textwrap.dedent(
        f"""
        import sys
        from control_api.release.signing import SigningError, generate_keypair, sign
        if sys.argv[1] == "generate":
            generate_keypair({str(tmp_path / "p.pub")!r}, {str(tmp_path / "p.key")!r}, password=True)
        else:
            try:
                sign({str(tmp_path / "f")!r}, {str(tmp_path / "p.key")!r}, "with password")
            except SigningError as e:
                sys.exit(str(e))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def run(step: str, stdin: str):
        return subprocess.run(
            [sys.executable, "-c", script, step], input=stdin, capture_output=True, text=True, env=env
        )

    assert run("generate", "s3cret\ns3cret\n").returncode == 0
    (tmp_path / "f").write_text("x")
    # No password to read: minisign fails before its (slow, scrypt) key derivation, and the
    # error keeps minisign's words without its "Password: " prompt.
    no_password = run("sign", "")
    assert (no_password.returncode, no_password.stderr) == (
        1,
        f"minisign could not sign {tmp_path / 'f'}: get_password()\n",
    )
    assert run("sign", "s3cret\n").returncode == 0
    line = public_key_line(tmp_path / "p.pub")
    signature = (tmp_path / "f.minisig").read_text()
    assert verify_file(line, tmp_path / "f", signature) == "with password"
