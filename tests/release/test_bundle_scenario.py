"""The release bundle's end-to-end scenario (tests/release/bundle_scenario.py says what it
proves), run as its own pytest process beside the suite (tests/side_runs.py): this test
waits for it and requires every one of its tests to have passed."""

from __future__ import annotations

import pytest

from tests import side_runs

# The scenario's tests, each of which must pass (a renamed or lost test fails this one).
EXPECTED = {"test_two_builds_of_one_commit_are_the_same_bytes",
            "test_the_sbom_beside_the_tarball_validates_against_cyclonedx_1_6",
            "test_tampering_is_refused_before_anything_is_written",
            "test_install_sh_installs_the_admin_vm_and_site_hosts_offline",
            "test_install_sh_worker_installs_a_worker_machine_with_its_admin_vm",
            "test_a_newer_bundle_uploaded_through_the_api_is_applied_as_root"}


@pytest.mark.side_run("bundle-scenario")
def test_the_bundle_scenario_passes_on_bare_hosts() -> None:
    done = side_runs.wait("bundle-scenario", timeout=2400)
    assert done.code == 0, f"tests/release/bundle_scenario.py failed:\n{done.output[-8000:]}"
    assert done.passed() == EXPECTED, (done.passed(), done.output[-4000:])
    print(done.output[-3000:])
