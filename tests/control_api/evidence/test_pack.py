"""The signed evidence pack (control_api/evidence/): `weco evidence pack` writes it with
what the policy lists, `weco evidence verify` accepts it under the pinned public key,
and refuses it, with one line, once a byte of it changed, a member was swapped, the
key is another, or its signing key is the audit witness's."""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import pytest

from control_api.controls.render import controls_markdown
from tests.conftest import PASSWORD, run_weco
from tests.control_api.backup.test_restore_drill import _one_line


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evidence")
    env = {"FF_ENV": "dev", "FF_DATA_DIR": str(tmp / "var"), "FF_LOG_LEVEL": "WARNING"}
    assert run_weco(env, "db", "upgrade").returncode == 0
    assert run_weco(env, "user", "create", "--email", "a@example.test", "--role", "admin", "--password-stdin",
                    stdin=PASSWORD + "\n").returncode == 0
    keygen = run_weco(env, "evidence", "keygen", "--out", str(tmp / "keys"))
    assert keygen.returncode == 0, keygen.stderr
    assert (tmp / "keys" / "signing.key").stat().st_mode & 0o777 == 0o600
    env["FF_EVIDENCE_SIGNING_KEY"] = str(tmp / "keys" / "signing.key")
    results = tmp / "junit.xml"
    results.write_text('<testsuite name="pytest" tests="1" failures="0"/>\n')
    pack = tmp / "pack.tar.gz"
    made = run_weco(env, "evidence", "pack", "--out", str(pack), "--test-results", str(results))
    assert made.returncode == 0 and "evidence pack:" in made.stdout, made.stderr
    return env, tmp, pack


def _members(pack) -> dict[str, bytes]:
    with tarfile.open(pack, "r:gz") as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers()}


def test_a_pack_verifies_and_a_changed_byte_is_refused(made):
    env, tmp, pack = made
    pub = str(tmp / "keys" / "signing.pub")
    ok = run_weco(env, "evidence", "verify", str(pack), "--pub", pub)
    assert ok.returncode == 0 and "evidence pack OK" in ok.stdout, ok.stderr
    members = _members(pack)
    assert {"audit-verify-report.txt", "audit-verify-report.json", "audit-export-30d.jsonl",
            "settings-redacted.txt", "controls.md", "threat-model.md", "backup-drills.json",
            "test-results.xml", "SHA256SUMS", "SHA256SUMS.sig", "signing-key.pub"} <= set(members)
    assert json.loads(members["audit-verify-report.json"])["ok"] is True
    assert members["audit-verify-report.txt"].startswith(b"audit log: OK")
    assert b'"action": "user.create"' in members["audit-export-30d.jsonl"]
    assert members["controls.md"].decode() == controls_markdown()
    assert b"FF_DATABASE_URL=sqlite" in members["settings-redacted.txt"]

    raw = pack.read_bytes()
    # A byte anywhere: the gzip header's time, the compressed data, the padding, the trailer's CRC.
    for offset in (5, len(raw) // 3, len(raw) // 2, len(raw) - 12, len(raw) - 6):
        changed = tmp / f"changed-{offset}.tar.gz"
        changed.write_bytes(raw[:offset] + bytes([raw[offset] ^ 0x01]) + raw[offset + 1:])
        refused = _one_line(run_weco(env, "evidence", "verify", str(changed), "--pub", pub))
        assert "evidence pack REFUSED" in refused


def _repacked(pack, path, change) -> None:
    members = change(_members(pack))
    with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped, \
            tarfile.open(fileobj=zipped, mode="w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("change, words", [
    (lambda m: {**m, "controls.md": m["controls.md"].replace(b"Planned", b"Shipped")},
     "controls.md does not match"),
    (lambda m: {k: v for k, v in m.items() if k != "threat-model.md"}, "threat-model.md is listed"),
    (lambda m: {**m, "extra.txt": b"slipped in"}, "extra.txt is in the pack but not listed"),
    (lambda m: {**m, "SHA256SUMS": m["SHA256SUMS"].replace(b"  controls.md", b"  controls.mdx")},
     "signature over SHA256SUMS does not verify"),
])
def test_a_swapped_member_is_refused(made, change, words):
    env, tmp, pack = made
    changed = tmp / "repacked.tar.gz"
    _repacked(pack, changed, change)
    pub = str(tmp / "keys" / "signing.pub")
    assert words in _one_line(run_weco(env, "evidence", "verify", str(changed), "--pub", pub))


def test_another_key_and_the_witness_key_are_refused(made):
    env, tmp, pack = made
    assert run_weco(env, "evidence", "keygen", "--out", str(tmp / "other")).returncode == 0
    assert "does not verify" in _one_line(
        run_weco(env, "evidence", "verify", str(pack), "--pub", str(tmp / "other" / "signing.pub")))
    witness = dict(env, FF_EVIDENCE_SIGNING_KEY=str(tmp / "var" / "audit" / "witness.key"))
    assert "is the audit witness key" in _one_line(
        run_weco(witness, "evidence", "pack", "--out", str(tmp / "witness.tar.gz")))
    assert not (tmp / "witness.tar.gz").exists()
