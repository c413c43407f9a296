"""What an evidence pack holds, written into a working directory: the audit verifier's
report (text and JSON), the audit export of the last N days, the redacted settings,
controls.md and the threat model from the controls registry, the recorded restore
drills, and, when given or shipped, the release's SBOM and a test run's results."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

from control_api.audit.chain import ChainKey, WitnessPublic
from control_api.audit.checkpoints import read_checkpoints
from control_api.audit.export import export
from control_api.audit.verify import Verifier, rows_from_store
from control_api.controls.render import controls_markdown, threat_model_markdown
from control_api.models import AuditEvent
from control_api.settings import Settings, effective_items


def audit_report(witnesses: list[WitnessPublic], chain_key: ChainKey, checkpoint_path: Path) -> dict:
    checkpoints = list(read_checkpoints(checkpoint_path)) if checkpoint_path.exists() else []
    report = Verifier(witnesses, [chain_key], workers=1).verify(rows_from_store(), checkpoints)
    return {"ok": report.ok, "failure": str(report.failure) if report.failure else None, "rows": report.rows,
            "first_seq": report.first_seq, "last_seq": report.last_seq,
            "first_time": str(report.first_time) if report.first_time else None,
            "last_time": str(report.last_time) if report.last_time else None,
            "checkpoints_checked": report.checkpoints, "checkpoint_file": str(checkpoint_path),
            "witness_key_ids": sorted(w.key_id for w in witnesses), "seconds": round(report.seconds, 3)}


def _report_text(report: dict) -> str:
    lines = [f"audit log: {'OK' if report['ok'] else 'BROKEN: ' + str(report['failure'])}",
             f"rows verified: {report['rows']} (row {report['first_seq']} at {report['first_time']} to row "
             f"{report['last_seq']} at {report['last_time']})",
             f"checkpoints checked: {report['checkpoints_checked']} ({report['checkpoint_file']})",
             f"witness keys: {', '.join(report['witness_key_ids'])}"]
    return "\n".join(lines) + "\n"


def write_contents(directory: Path, settings: Settings, now: dt.datetime, days: int, report: dict,
                   sbom: Path | None, test_results: Path | None) -> dict[str, Path]:
    files: dict[str, Path] = {}

    def put(name: str, text: str) -> None:
        files[name] = directory / name
        files[name].write_text(text, encoding="utf-8")

    put("audit-verify-report.json", json.dumps(report, indent=2, sort_keys=True) + "\n")
    put("audit-verify-report.txt", _report_text(report))
    export_path = directory / f"audit-export-{days}d.jsonl"
    with export_path.open("w", encoding="utf-8") as out:
        export(out, now - dt.timedelta(days=days), now)
    files[export_path.name] = export_path
    put("settings-redacted.txt", "".join(f"{name}={value}\n" for name, value in effective_items(settings)))
    put("controls.md", controls_markdown())
    put("threat-model.md", threat_model_markdown())
    recent = (AuditEvent.select().where(AuditEvent.action == "backup.drill")
              .order_by(AuditEvent.seq.desc()).limit(20))
    drills = [json.loads(row.event_json) for row in recent]
    put("backup-drills.json", json.dumps(drills, indent=2, sort_keys=True) + "\n")
    shipped_sbom = settings.project_dir / "SBOM.cdx.json"
    for name, source in (("sbom.cdx.json", sbom or (shipped_sbom if shipped_sbom.exists() else None)),
                         ("test-results.xml", test_results)):
        if source is not None:
            files[name] = directory / name
            shutil.copyfile(source, files[name])
    return files
