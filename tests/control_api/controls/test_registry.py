"""The controls registry (control_api/controls/): it covers every control of the security
policy, passes its own checks, SECURITY.md is what it renders, and the CI gate
(tests/controls_gate.py) fails on each kind of broken entry: shown on the pure checks
and on a real pytest run of a small project with a deliberately broken registry."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from control_api.controls.check import run_problems, stale_security_md, static_problems
from control_api.controls.registry import CONTROLS, Control
from control_api.controls.render import security_md

ROOT = Path(__file__).resolve().parents[3]
POLICY = Path(__file__).with_name("policy_controls.txt")


def test_every_control_of_the_policy_is_in_the_registry_once():
    listed = [tuple(part.strip() for part in line.split("|", 1)) for line in POLICY.read_text().splitlines()
              if line and not line.startswith("#")]
    registry = [(c.section, c.title) for c in CONTROLS]
    assert len(listed) == 44 and len(set(registry)) == len(registry)
    assert [entry for entry in listed if entry not in registry] == []
    assert [entry for entry in registry if entry not in listed and entry[0] != "2.7"] == []


def test_the_registry_passes_its_checks_and_security_md_is_current():
    assert static_problems(CONTROLS, ROOT) == []
    assert stale_security_md(ROOT) == [], "run scripts/security-md"
    text = security_md()
    assert "@" not in text and "://" not in text  # the policy's contacts and URLs are not ours
    for control in CONTROLS:
        assert control.title in text
        if control.status == "Shipped":
            assert all(f"`{test}`" in text for test in control.tests)


SHIPPED = Control("2.1", "Demo", "Shipped", "demo", ("FF_ENV",), ("control_api/crypto.py",),
                  ("tests/control_api/test_crypto.py::test_wrong_aad_is_refused",))


def test_the_checks_name_each_broken_entry():
    broken = (
        Control("2.1", "Missing code", "Shipped", "x", (), ("control_api/nowhere.py",), SHIPPED.tests),
        Control("2.1", "Missing test", "Shipped", "x", (), SHIPPED.code,
                ("tests/control_api/test_crypto.py::test_nope",)),
        Control("2.1", "No tests", "Shipped", "x", (), SHIPPED.code, ()),
        Control("2.1", "Unknown setting", "Partial", "Missing: y", ("FF_NO_SUCH",)),
        Control("2.1", "Silent plan", "Planned", "someday"),
        Control("2.1", "Made-up status", "Done", "x"),
        Control("9.9", "Unknown section", "Planned", "Missing: z"),
    )
    problems = "\n".join(static_problems(broken, ROOT))
    for words in ("code path control_api/nowhere.py does not exist",
                  "test_crypto.py::test_nope does not exist",
                  "Shipped needs the code", "FF_NO_SUCH is not declared", "says what is missing",
                  "status 'Done'", "section 9.9"):
        assert words in problems
    assert static_problems((SHIPPED,), ROOT) == []
    node = SHIPPED.tests[0]
    assert run_problems((SHIPPED,), {node: ["passed", "passed"]}) == []
    assert "did not run" in run_problems((SHIPPED,), {})[0]
    assert "did not pass (failed, passed)" in run_problems((SHIPPED,), {node: ["passed", "failed"]})[0]
    assert "did not pass (skipped)" in run_problems((SHIPPED,), {node: ["skipped"]})[0]


def _run_gate(tmp_path: Path, registry: str, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "demo_registry.py").write_text(textwrap.dedent(registry))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.controls_gate", "--controls-gate",
         "--controls-registry=demo_registry:CONTROLS", "-p", "no:cacheprovider", "-q", *args, "demo_tests"],
        cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{ROOT}:{tmp_path}"},
        capture_output=True, text=True, timeout=120)


def test_the_gate_fails_a_test_run_on_a_broken_entry(tmp_path):
    (tmp_path / "demo_tests").mkdir()
    (tmp_path / "demo_tests" / "test_demo.py").write_text(textwrap.dedent("""
        import pytest

        def test_holds():
            assert True

        @pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
        def test_breaks_on_one_backend(backend):
            assert backend == "sqlite"
    """))
    (tmp_path / "demo_code.py").write_text("")
    header = """
        from control_api.controls.registry import Control
        T = "demo_tests/test_demo.py::"
    """
    good = _run_gate(tmp_path, header + """
        CONTROLS = (Control("2.1", "Holds", "Shipped", "x", (), ("demo_code.py",), (T + "test_holds",)),)
    """, "-k", "holds")
    assert good.returncode == 0 and "controls gate" not in good.stdout, good.stdout
    broken = _run_gate(tmp_path, header + """
        CONTROLS = (
            Control("2.1", "Holds", "Shipped", "x", (), ("demo_code.py",), (T + "test_holds",)),
            Control("2.1", "Half", "Shipped", "x", (), ("demo_code.py",),
                    (T + "test_breaks_on_one_backend",)),
            Control("2.1", "Ghost", "Shipped", "x", (), ("gone.py",), (T + "test_never_written",)),
        )
    """)
    assert broken.returncode == 1
    assert "controls gate FAILED" in broken.stdout
    assert "test_breaks_on_one_backend did not pass (failed, passed)" in broken.stdout
    assert "test_never_written does not exist" in broken.stdout and "code path gone.py" in broken.stdout
