"""The outage test: `weco siem watch` forwarding to rsyslog over TLS while events arrive
at a steady rate; the receiver stopped (about a minute on PostgreSQL, 10 s on SQLite,
to bound CI time), then restarted; then the watcher killed with SIGKILL mid-batch and
started again. Every row arrives, in order, as `weco siem check` verifies.

Run beside the suite (tests/side_runs.py); test_outage.py waits for it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from control_api.audit.log import Actor
from control_api.db import open_database
from control_api.settings import load_settings
from control_api.siem import cursor
from control_api.wiring import build_deps
from tests.conftest import run_weco
from tests.peers.rsyslog import Rsyslog
from tests.peers.testca import TestCA

OUTAGE = {"postgresql": 60.0, "sqlite": 10.0}
RATE = 20  # events/s while the receiver is down and back


def watcher(env: dict, log) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "control_api.cli", "siem", "watch"],
                            env={"PATH": os.environ["PATH"], **env}, stdout=log, stderr=log)


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.002)


def test_outage_and_sigkill_lose_nothing(env, tmp_path, request):
    backend = "postgresql" if env["FF_DATABASE_URL"].startswith("postgres") else "sqlite"
    ca = TestCA(tmp_path / "ca")
    receiver = Rsyslog(ca).start()
    env = {**env, "FF_AUDIT_SIEM_URL": receiver.url, "FF_AUDIT_SIEM_CA_FILE": str(ca.cert_path),
           "FF_AUDIT_SIEM_BATCH": "200", "FF_BUSINESS_HOURS": ""}
    assert run_weco(env, "db", "upgrade").returncode == 0
    db = open_database(env["FF_DATABASE_URL"])
    deps = build_deps(load_settings(env), db)
    name = f"siem:syslog+tls://localhost:{receiver.port}"
    log = (tmp_path / "watch.log").open("w")
    process = watcher(env, log)
    stop = threading.Event()
    sent = [0]

    def steady() -> None:
        actor = Actor("user:1", "192.0.2.1", "outage-test")
        while not stop.is_set():
            deps.audit.record_alone(actor, "site.create", "site:x", {"at": time.time()})
            sent[0] += 1
            time.sleep(1 / RATE)

    sender = threading.Thread(target=steady)
    sender.start()
    try:
        time.sleep(3)
        receiver.stop()
        before = sent[0]
        time.sleep(OUTAGE[backend])
        behind = cursor.head(db).seq - cursor.read(db, name).seq
        # What was recorded while the receiver was down waits (a loaded machine records
        # fewer than RATE a second: count what was sent, not what was meant to be).
        during = sent[0] - before
        assert during >= RATE * OUTAGE[backend] * 0.25 and behind >= during, \
            ("the outage should have built a backlog", during, behind)
        receiver.start()
        time.sleep(3)
        stop.set()
        sender.join()
        head = cursor.head(db).seq
        wait_for(lambda: cursor.read(db, name).seq >= head, 60, "the backlog to drain")
        # SIGKILL mid-batch: a backlog built while the watcher was stopped, and the
        # restarted watcher killed once rows of a batch not yet acknowledged have
        # reached the receiver.
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        for start in range(0, 3000, 100):
            with deps.audit.mutation():
                for number in range(start, start + 100):
                    deps.audit.record(Actor("user:1"), "site.create", f"site:{number}")
        process = watcher(env, log)
        wait_for(lambda: len(receiver.lines()) > cursor.read(db, name).seq + 1 > head + 1,
                 60, "a batch in flight")
        process.send_signal(signal.SIGKILL)
        process.wait()
        killed_at = cursor.read(db, name).seq
        process = watcher(env, log)
        head = cursor.head(db).seq
        wait_for(lambda: cursor.read(db, name).seq >= head, 60, "the restarted watcher to catch up")
        assert killed_at < head
    finally:
        stop.set()
        sender.join()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        receiver.stop()
    pub = tmp_path / "var" / "audit" / "witness.pub"
    checked = run_weco(env, "siem", "check", str(receiver.out), "--expect-last", str(head),
                       "--witness-pub", str(pub))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"OK: rows 1 to {head}, in order, no gap" in checked.stdout
    request.node.user_properties.append(("rows", head))
    print(checked.stdout)
    db.close()
    receiver.cleanup()

