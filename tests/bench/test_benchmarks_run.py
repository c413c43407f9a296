"""The benchmarks keep running (tiny sizes, no timing asserted: figures live in bench/).
Each runs as a process of its own beside the suite (tests/side_runs.py)."""

from __future__ import annotations

import re

import pytest

from tests import side_runs


def _bench(name: str) -> str:
    done = side_runs.wait(name, timeout=1800)  # its turn in the queue included
    assert done.code == 0, done.output
    return done.output


@pytest.mark.side_run("bench-audit-append")
def test_audit_append_benchmark_runs_and_both_chains_verify():
    out = _bench("bench-audit-append")
    assert re.search(r"naive per-row-lock chain: +\d+ audited mutations/s \(\d+ rows verified\)", out)
    assert re.search(r"ratio ours/naive: \d+\.\d\d", out)


@pytest.mark.side_run("bench-audit-verify")
def test_audit_verify_benchmark_runs():
    out = _bench("bench-audit-verify")
    assert re.search(r"ratio verifier/raw: \d+\.\d\d", out)
    assert re.search(r"audit verifier, \d+ cores?: +\d+ rows/s", out)
    assert re.search(r"ratio multi-core/raw: \d+\.\d\d", out)


@pytest.mark.side_run("bench-login-throttle")
def test_login_throttle_benchmark_runs():
    out = _bench("bench-login-throttle")
    assert "60 attempts from one address" in out and "10 reached the password check" in out
    assert "5 password checks, then locked" in out


@pytest.mark.side_run("bench-run-latency")
def test_run_latency_benchmark_runs():
    out = _bench("bench-run-latency")
    assert re.search(r"ratio ours/bare: \d+\.\d\d", out)


@pytest.mark.side_run("bench-request-path-sqlite")
@pytest.mark.side_run("bench-request-path-postgresql")
def test_request_path_benchmark_runs_on_both_backends():
    for backend in ("sqlite", "postgresql"):
        out = _bench(f"bench-request-path-{backend}")
        assert re.search(r"bare Falcon app: +\d+ requests/s", out)
        assert re.search(r"weco GET /healthz \(no store\): +\d+ requests/s", out)
        assert re.search(r"ratio ours/bare: \d+\.\d\d", out)
