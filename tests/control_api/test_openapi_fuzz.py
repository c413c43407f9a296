"""The fuzzing of the whole API from its OpenAPI document (openapi_fuzz_scenario.py) and
of its SSO routes when configured (sso/fuzz_scenario.py), on both backends: run as a
pytest process of their own beside the suite (tests/side_runs.py), waited for here."""

from __future__ import annotations

import pytest

from tests import side_runs

BACKENDS = ("sqlite", "postgresql")
EXPECTED = {f"test_every_operation_answers_as_declared[{backend}-{role}]"
            for backend in BACKENDS for role in ("superadmin", "admin")} | {
    f"test_sso_operations_answer_as_declared_when_configured[{backend}]" for backend in BACKENDS}


@pytest.mark.side_run("api-fuzz")
def test_every_operation_answers_as_declared_on_both_backends_as_both_roles() -> None:
    done = side_runs.wait("api-fuzz", timeout=1200)
    assert done.code == 0, done.output[-8000:]
    assert done.passed() == EXPECTED, (done.passed(), done.output[-4000:])
