"""The SIEM outage scenario (outage_scenario.py says what it proves) on both backends, run
as its own pytest process beside the suite (tests/side_runs.py): its minute of waiting for
a stopped receiver overlaps the rest of the suite."""

from __future__ import annotations

import pytest

from tests import side_runs


@pytest.mark.side_run("siem-outage")
def test_outage_and_sigkill_lose_nothing() -> None:
    done = side_runs.wait("siem-outage", timeout=900)
    assert done.code == 0, done.output[-8000:]
    assert done.passed() == {"test_outage_and_sigkill_lose_nothing[sqlite]",
                             "test_outage_and_sigkill_lose_nothing[postgresql]"}, done.output[-4000:]
