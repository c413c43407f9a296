"""Building the watcher from settings (the CLI's `weco siem watch` and tests alike)."""

from __future__ import annotations

from pathlib import Path

from control_api.anomaly.detector import AnomalyDetector
from control_api.anomaly.hours import parse_business_hours
from control_api.audit.log import AuditLog
from control_api.settings import Settings
from control_api.siem.cursor import WatchLock
from control_api.siem.forwarder import Forwarder
from control_api.siem.transport import Transport, build_transport
from control_api.siem.watch import Watcher


def build_siem_transport(settings: Settings) -> Transport | None:
    if not settings.audit_siem_url:
        return None
    return build_transport(settings.audit_siem_url, settings.audit_siem_ca_file,
                           settings.audit_siem_client_cert, settings.audit_siem_client_key,
                           settings.audit_siem_token_file)


def build_watcher(settings: Settings, audit: AuditLog, transport: Transport | None = None,
                  **timing: float) -> Watcher:
    transport = transport or build_siem_transport(settings)
    forwarder = (Forwarder(audit.db, transport, settings.audit_siem_batch, audit.clock)
                 if transport is not None else None)
    detector = AnomalyDetector(audit, parse_business_hours(settings.business_hours))
    lock = WatchLock(audit.db, Path(settings.data_dir) / "watch.lock")
    return Watcher(lock, detector, forwarder, **timing)
