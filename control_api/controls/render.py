"""SECURITY.md, controls.md and the threat model, rendered from the controls registry.

SECURITY.md follows the policy's layout (threat model, controls by section, disclosure,
how to verify, compliance posture, out of scope, what is not done) and points every
Shipped control at its evidence: the code, the settings and the tests that prove it.
It names no contact address or URL: those are the project's to decide.
"""

from __future__ import annotations

from control_api.controls.registry import CONTROLS, SECTIONS, STATUSES, THREATS, Control

HEADER = "<!-- Generated from control_api/controls/registry.py by scripts/security-md; do not edit. -->\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _evidence(control: Control) -> str:
    parts = []
    if control.code:
        parts.append("code: " + ", ".join(f"`{path}`" for path in control.code))
    if control.settings:
        parts.append("settings: " + ", ".join(f"`{name}`" for name in control.settings))
    if control.tests:
        parts.append("tests: " + ", ".join(f"`{test}`" for test in control.tests))
    return "; ".join(parts)


def controls_markdown(controls: tuple[Control, ...] = CONTROLS) -> str:
    lines = []
    for number, name in SECTIONS.items():
        lines += [f"### {number} {name}", "", "| Control | Status | What it is, or what is missing | "
                                              "Evidence |",
                  "|---|---|---|---|"]
        for control in (c for c in controls if c.section == number):
            lines.append(f"| {_cell(control.title)} | {control.status} | {_cell(control.note)} | "
                         f"{_cell(_evidence(control)) or '—'} |")
        lines.append("")
    counts = ", ".join(f"{sum(c.status == s for c in controls)} {s}" for s in STATUSES)
    lines.append(f"{len(controls)} controls: {counts}.")
    return "\n".join(lines) + "\n"


def threat_model_markdown() -> str:
    lines = ["The threats defended against, in priority order:", ""]
    lines += [f"{number}. **{name}**: {text}" for number, (name, text) in enumerate(THREATS, 1)]
    lines += ["", "What is not defended against is listed under Out of scope."]
    return "\n".join(lines) + "\n"


def security_md(controls: tuple[Control, ...] = CONTROLS) -> str:
    out_of_scope = [c for c in controls if c.status == "Out of scope"]
    not_done = [c for c in controls if c.status in ("Planned", "Partial")]
    parts = [
        HEADER,
        "# Security policy\n",
        "Every control of the platform's security policy, with what this release does about it. Statuses: "
        "**Shipped** (built, and proven by the tests named beside it, which CI runs and must pass), "
        "**Partial** (part built; the line says what is missing), **Planned** (not built), **Out of scope** "
        "(not this product's responsibility; the line says whose). Nothing is called Shipped unless a "
        "customer can verify it from this source tree: CI fails if a Shipped control names code or a test "
        "that does not exist, or a test that did not run and pass, or if this file is stale.\n",
        "## 1. Threat model\n",
        threat_model_markdown(),
        "## 2. Controls\n",
        controls_markdown(controls),
        "## 3. Vulnerability disclosure\n",
        "Report suspected vulnerabilities privately to the maintainers through the security contact of your "
        "support agreement, with a description, reproduction steps and, if you have one, a proof of concept. "
        "Do not open a public issue for a vulnerability.\n",
        "## 4. Verifying these claims\n",
        "- `scripts/test`: the whole suite, including every test named above, on SQLite and PostgreSQL.\n"
        "- `weco audit verify --witness-pub PATH`: the audit chain, signatures and checkpoints.\n"
        "- `weco evidence verify PACK --pub PATH`: a signed evidence pack (its `controls.md` is this "
        "table).\n"
        "- `weco backup verify FILE` and `weco backup drill --from DIR`: a backup opens, and restores.\n"
        "- `weco check security`: no encrypt/decrypt call without AAD.\n",
        "## 5. Compliance posture\n",
        "WECO is not independently certified (SOC 2, ISO 27001, PCI-DSS). It is built to sit inside a "
        "customer's certified perimeter: the audit export, the append-only audit log and the evidence pack "
        "map onto the customer's own control framework.\n",
        "## 6. Out of scope\n",
        "\n".join(f"- {c.title}: {c.note}" for c in out_of_scope) + "\n",
        "## 7. What this release does not do\n",
        "\n".join(f"- {c.title} ({c.status}): {c.note}" for c in not_done) + "\n",
    ]
    return "\n".join(parts)
