"""SIEM forwarding against rsyslog over TLS (rsyslog-gnutls), on an SQLite store.

throughput: N sealed rows forwarded by the Forwarder (batches, each acknowledged by
the receiver's close) versus the same N messages from a plain sender (one TLS
connection, sendall, no acknowledgement), both timed until rsyslog has written every
line. Prints both rates and the ratio ours/plain.

outage: `weco siem watch` forwarding while events are recorded at --rate per second;
the receiver stopped for --outage-seconds, then restarted; prints lost (goal 0),
duplicated and the catch-up time (restart until the SIEM acknowledged the head).

    .venv/bin/python -m bench.siem_forwarding throughput [--rows 20000]
    .venv/bin/python -m bench.siem_forwarding outage [--outage-seconds 600 --rate 50]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from control_api import migrations
from control_api.audit.log import Actor
from control_api.clock import SystemClock
from control_api.db import open_database
from control_api.settings import load_settings
from control_api.siem import cursor
from control_api.siem.check import check_stream, read_lines
from control_api.siem.forwarder import Forwarder
from control_api.siem.message import frame, to_syslog
from control_api.siem.transport import build_transport, tls_context
from control_api.wiring import build_deps
from tests.peers.rsyslog import Rsyslog
from tests.peers.testca import TestCA

ACTOR = Actor("user:1", "192.0.2.1", "bench")


def _store(directory: Path, extra: dict | None = None):
    env = {"FF_ENV": "dev", "FF_DATA_DIR": str(directory / "var"),
           "FF_DATABASE_URL": f"sqlite:///{directory / 'weco.sqlite3'}", "FF_BUSINESS_HOURS": "",
           **(extra or {})}
    db = open_database(env["FF_DATABASE_URL"])
    db.connect(reuse_if_open=True)
    migrations.upgrade(db, SystemClock().now())
    return env, build_deps(load_settings(env), db)


def _wait_lines(receiver: Rsyslog, count: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while len(receiver.lines()) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"rsyslog wrote {len(receiver.lines())} of {count} lines")
        time.sleep(0.01)


def throughput(rows: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        ca = TestCA(directory / "ca")
        _, deps = _store(directory)
        for start in range(0, rows, 1000):
            with deps.audit.mutation():
                for number in range(start, min(rows, start + 1000)):
                    deps.audit.record(ACTOR, "site.create", f"site:{number}", {"n": number})
        sealed = cursor.rows_after(deps.db, 0, rows)
        receiver = Rsyslog(ca).start()
        try:
            forwarder = Forwarder(deps.db, build_transport(receiver.url, str(ca.cert_path)), batch=1000)
            started = time.perf_counter()
            while forwarder.forward_once().sent:
                pass
            _wait_lines(receiver, rows)
            ours = rows / (time.perf_counter() - started)
            report = check_stream(read_lines(receiver.out), [deps.audit.chain_key])
            assert report.ok and report.last_seq == rows, report.failure
            data = b"".join(frame(to_syslog(row, "bench")) for row in sealed)
            before = len(receiver.lines())
            started = time.perf_counter()
            context = tls_context(str(ca.cert_path), "", "")
            with socket.create_connection(("localhost", receiver.port)) as raw, \
                    context.wrap_socket(raw, server_hostname="localhost") as stream:
                stream.sendall(data)
                _wait_lines(receiver, before + rows)
            plain = rows / (time.perf_counter() - started)
        finally:
            receiver.cleanup()
    print(f"forwarded to rsyslog (batches of 1000, acknowledged): {ours:8.0f} events/s ({rows} rows, "
          "weco siem check OK)")
    print(f"plain sender to rsyslog (one connection, no ack):     {plain:8.0f} events/s")
    print(f"ratio ours/plain: {ours / plain:.2f}")


def outage(seconds: float, rate: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        ca = TestCA(directory / "ca")
        receiver = Rsyslog(ca).start()
        env, deps = _store(directory, {"FF_AUDIT_SIEM_URL": receiver.url,
                                       "FF_AUDIT_SIEM_CA_FILE": str(ca.cert_path)})
        name = f"siem:syslog+tls://localhost:{receiver.port}"
        log = (directory / "watch.log").open("w")
        watcher = subprocess.Popen([sys.executable, "-m", "control_api.cli", "siem", "watch"],
                                   env={"PATH": os.environ["PATH"], **env}, stdout=log, stderr=log)
        stop = threading.Event()

        def steady() -> None:
            next_at = time.monotonic()
            while not stop.is_set():
                deps.audit.record_alone(ACTOR, "site.create", "site:x")
                next_at += 1 / rate
                time.sleep(max(0.0, next_at - time.monotonic()))

        sender = threading.Thread(target=steady)
        sender.start()
        try:
            time.sleep(5)
            receiver.stop()
            time.sleep(seconds)
            receiver.start()
            restarted = time.monotonic()
            time.sleep(5)
            stop.set()
            sender.join()
            head = cursor.head(deps.db).seq
            while cursor.read(deps.db, name).seq < head:
                time.sleep(0.05)
            catch_up = time.monotonic() - restarted
        finally:
            stop.set()
            watcher.send_signal(signal.SIGTERM)
            watcher.wait()
            receiver.stop()
        report = check_stream(read_lines(receiver.out), [deps.audit.chain_key])
        lost = head - report.rows if report.ok else "?"
        print(f"outage {seconds:.0f} s at {rate:.0f} events/s: {head} rows recorded")
        print(f"lost: {lost} (goal 0)   duplicated: {report.duplicates}   "
              f"catch-up after restart: {catch_up:.1f} s   check: {'OK' if report.ok else report.failure}")
        receiver.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = parser.add_subparsers(dest="mode", required=True)
    modes.add_parser("throughput").add_argument("--rows", type=int, default=20000)
    run = modes.add_parser("outage")
    run.add_argument("--outage-seconds", type=float, default=600)
    run.add_argument("--rate", type=float, default=50)
    args = parser.parse_args()
    if args.mode == "throughput":
        throughput(args.rows)
    else:
        outage(args.outage_seconds, args.rate)


if __name__ == "__main__":
    main()
