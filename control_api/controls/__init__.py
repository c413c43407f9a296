"""The controls registry: every control of the security policy with its status, the
settings that govern it, the code that implements it and the tests that prove it
(registry.py); SECURITY.md, controls.md and the threat model rendered from it
(render.py); and the checks CI runs on it (check.py, with tests/controls_gate.py)."""
