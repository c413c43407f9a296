"""Fixed test vectors in the repository: a good export and tampered copies, each with the
diagnosis the verifier must give. They pin the on-disk format as well."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from control_api.audit.chain import ChainKey, WitnessPublic
from control_api.audit.checkpoints import read_checkpoints
from control_api.audit.export import read_export
from control_api.audit.verify import Verifier
from tests.control_api.audit.vectors.generate import SECRET

VECTORS = Path(__file__).parent / "vectors"


def verify(name: str, checkpoint: str | None = None):
    verifier = Verifier([WitnessPublic.from_pem((VECTORS / "witness.pub").read_bytes())], [ChainKey(SECRET)])
    _, rows = read_export(VECTORS / name)
    checkpoints = list(read_checkpoints(VECTORS / checkpoint)) if checkpoint else []
    return verifier.verify(rows, checkpoints, from_genesis=False)


def test_the_good_vector_verifies_with_its_checkpoint():
    report = verify("good.jsonl", "checkpoint-good.jsonl")
    assert report.ok and report.rows == 5 and report.checkpoints == 1 and report.anchored_at_genesis


@pytest.mark.parametrize("name,expected", [
    ("bad-edited-event.jsonl", r"row 3: MAC expected [0-9a-f]{64}, found [0-9a-f]{64}"),
    ("bad-indexed-column.jsonl", r"row 2: action expected 'site.deploy' \(signed\), found 'site.delete'"),
    ("bad-deleted-row.jsonl", r"row 3: expected row 3, found row 4 \(row missing\)"),
    ("bad-reordered.jsonl", r"row 3: expected row 3, found row 4 \(row missing\)"),
    ("bad-prev-mac.jsonl", r"row 5: prev_mac expected [0-9a-f]{64}, found f{64}"),
    ("bad-unknown-mac-key.jsonl", r"row 1: unknown MAC key id 0123456789abcdef"),
    ("bad-signature.jsonl", r"row 4: witness signature does not verify"),
])
def test_each_bad_vector_gets_its_diagnosis(name, expected):
    report = verify(name)
    assert not report.ok
    assert re.fullmatch(expected, str(report.failure)), str(report.failure)


def test_a_checkpoint_beyond_the_log_reports_truncation():
    report = verify("good.jsonl", "checkpoint-truncating.jsonl")
    assert str(report.failure) == (
        f"log truncated: checkpoint line 1 (2026-11-29T13:00:00.000000Z) vouches for 7 rows "
        f"ending in MAC {'e' * 64}, but the log ends at row 5")


def test_a_forged_checkpoint_is_refused():
    assert str(verify("good.jsonl", "checkpoint-forged.jsonl").failure) == (
        "checkpoint line 1: signature does not verify")
