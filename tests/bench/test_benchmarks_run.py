"""The benchmarks keep running (tiny sizes, no timing asserted: figures live in bench/)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bench(module: str, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_audit_append_benchmark_runs_and_both_chains_verify():
    out = _bench("bench.audit_append", "--clients", "2", "--seconds", "1")
    assert re.search(r"naive per-row-lock chain: +\d+ audited mutations/s \(\d+ rows verified\)", out)
    assert re.search(r"ratio ours/naive: \d+\.\d\d", out)


def test_audit_verify_benchmark_runs():
    out = _bench("bench.audit_verify", "--rows", "300")
    assert re.search(r"ratio verifier/raw: \d+\.\d\d", out)
    assert re.search(r"audit verifier, \d+ cores?: +\d+ rows/s", out)
    assert re.search(r"ratio multi-core/raw: \d+\.\d\d", out)


def test_login_throttle_benchmark_runs():
    out = _bench("bench.login_throttle", "--attempts", "60")
    assert "60 attempts from one address" in out and "10 reached the password check" in out
    assert "5 password checks, then locked" in out


def test_run_latency_benchmark_runs():
    out = _bench("bench.run_latency", "--runs", "1")
    assert re.search(r"ratio ours/bare: \d+\.\d\d", out)


def test_request_path_benchmark_runs_on_both_backends():
    for extra in ([], ["--postgres"]):
        out = _bench("bench.request_path", "--requests", "300", *extra)
        assert re.search(r"bare Falcon app: +\d+ requests/s", out)
        assert re.search(r"ratio ours/bare: \d+\.\d\d", out)
