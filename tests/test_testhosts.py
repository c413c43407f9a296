"""The test-host harness (molecule/_hosts) refuses what would make two hosts collide."""

from __future__ import annotations

import os
import subprocess

from tests.peers.testhosts import HOSTS


def test_a_host_is_not_brought_up_on_an_index_another_host_holds(tmp_path):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "index").write_text("5\n")
    done = subprocess.run([HOSTS / "up.sh", "newer", "5"], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, WECO_TESTHOSTS_RUN=str(tmp_path)))
    assert done.returncode == 2
    assert "index 5 is taken by test host other" in done.stderr
    assert [entry.name for entry in tmp_path.iterdir()] == ["other"]  # nothing made
