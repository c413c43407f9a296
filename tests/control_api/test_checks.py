"""The AAD lint: clean on the shipped code, and it catches deliberate violations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from control_api.checks import aad_violations, check_tree

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests/control_api/fixtures/aad_violations.py"


def test_the_shipped_packages_pass():
    assert check_tree(ROOT) == []


def test_the_lint_catches_each_deliberate_violation():
    lines = [int(problem.split(":")[1]) for problem in aad_violations(FIXTURE)]
    assert lines == [5, 6, 7, 8, 9]


def test_weco_check_security_fails_on_a_violation(tmp_path):
    (tmp_path / "control_api").mkdir()
    (tmp_path / "keyproviders").mkdir()
    (tmp_path / "control_api" / "bad.py").write_text(FIXTURE.read_text())
    assert len(check_tree(tmp_path)) == 5
    result = subprocess.run([sys.executable, "-m", "control_api.cli", "check", "security"],
                            capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, cwd=ROOT)
    assert result.returncode == 0 and "every encrypt/decrypt call binds associated data" in result.stdout
