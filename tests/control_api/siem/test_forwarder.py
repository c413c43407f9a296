"""Forwarding to real receivers: rsyslog (rsyslog-gnutls) over TLS, with and without
client certificates, and a small HTTPS receiver; what a failure costs (delay, never a
row), what `weco siem check` finds in what they wrote, and the one-watcher lock."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import pytest

from control_api.audit.log import Actor
from control_api.db import dialect, open_database
from control_api.siem import cursor
from control_api.siem.check import check_stream, read_lines
from control_api.siem.cursor import WatchLock
from control_api.siem.forwarder import Forwarder
from control_api.siem.transport import build_transport
from tests.peers.https_receiver import HttpsReceiver
from tests.peers.rsyslog import Rsyslog
from tests.peers.testca import TestCA

HOSTILE = 'quote " back \\ bracket ] newline \n tab \t del \x7f nel \u0085 ls \u2028 é 🙂'


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return TestCA(tmp_path_factory.mktemp("siem-ca"))


@pytest.fixture(scope="module")
def rsyslog(ca):
    receiver = Rsyslog(ca).start()
    yield receiver
    receiver.cleanup()


def fill(deps, count: int, start: int = 0) -> None:
    for number in range(start, start + count):
        deps.audit.record_alone(Actor("user:1", "192.0.2.1", HOSTILE), "site.create", f"site:{number}",
                                {"n": number, "note": HOSTILE})


def received_since(path: Path, offset: int, scratch: Path) -> Path:
    """What the receiver wrote after `offset` bytes (the module's receiver is shared)."""
    data = path.read_bytes()[offset:] if path.exists() else b""
    scratch.write_bytes(data)
    return scratch


def wait_for(predicate, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def drain(forwarder: Forwarder) -> None:
    while forwarder.forward_once().sent:
        pass


def test_every_row_reaches_rsyslog_over_tls_and_checks_out(deps, rsyslog, ca, tmp_path):
    offset = rsyslog.out.stat().st_size if rsyslog.out.exists() else 0
    fill(deps, 120)
    forwarder = Forwarder(deps.db, build_transport(rsyslog.url, str(ca.cert_path)), batch=50)
    drain(forwarder)
    assert cursor.read(deps.db, forwarder.cursor_name) == cursor.head(deps.db)
    assert cursor.head(deps.db).seq == 120
    got = tmp_path / "got.log"
    wait_for(lambda: received_since(rsyslog.out, offset, got).read_bytes().count(b"\n") >= 120)
    report = check_stream(read_lines(got), [deps.audit.chain_key], [deps.audit.witness.public])
    assert report.ok, report.failure
    assert (report.first_seq, report.last_seq, report.duplicates) == (1, 120, 0)
    # Hostile text stayed data: one line a row, the event byte for byte (its MAC holds).
    assert got.read_bytes().count(b"\n") == 120


def test_a_receiver_that_is_down_costs_delay_and_no_row(deps, ca, tmp_path):
    receiver = Rsyslog(ca)  # not started yet
    clock = [0.0]
    forwarder = Forwarder(deps.db, build_transport(receiver.url, str(ca.cert_path)), batch=500,
                          monotonic=lambda: clock[0])
    fill(deps, 10)
    delays = []
    for _ in range(5):
        assert forwarder.due()
        outcome = forwarder.forward_once()
        assert outcome.sent == 0 and "cannot connect" in outcome.error
        assert not forwarder.due()
        delays.append(forwarder.backoff.not_before - clock[0])
        clock[0] = forwarder.backoff.not_before
    assert cursor.read(deps.db, forwarder.cursor_name) == cursor.START  # nothing counted as sent
    # Exponential: each wait about twice the last (with jitter of at most 20 %).
    assert all(1.5 < later / earlier < 2.6 for earlier, later in itertools.pairwise(delays))
    try:
        receiver.start()
        fill(deps, 5, start=10)
        drain(forwarder)
        assert forwarder.backoff.failures == 0
        wait_for(lambda: len(receiver.lines()) >= 15)
        report = check_stream(read_lines(receiver.out), [deps.audit.chain_key])
        assert report.ok and report.last_seq == 15, report.failure
    finally:
        receiver.cleanup()


def test_a_receiver_with_another_ca_is_refused_and_nothing_moves(deps, rsyslog, tmp_path):
    other = TestCA(tmp_path / "other", "someone else")
    fill(deps, 3)
    forwarder = Forwarder(deps.db, build_transport(rsyslog.url, str(other.cert_path)))
    outcome = forwarder.forward_once()
    assert outcome.sent == 0 and "certificate refused" in outcome.error
    assert cursor.read(deps.db, forwarder.cursor_name) == cursor.START


def test_mutual_tls_needs_the_client_certificate(deps, ca, tmp_path):
    receiver = Rsyslog(ca, mutual=True).start()
    try:
        fill(deps, 4)
        bare = Forwarder(deps.db, build_transport(receiver.url, str(ca.cert_path)))
        assert bare.forward_once().sent == 0
        cert, key = ca.issue("weco-client", ["weco-client"])
        client = Forwarder(deps.db, build_transport(receiver.url, str(ca.cert_path), str(cert), str(key)))
        assert client.forward_once().sent == 4
        wait_for(lambda: len(receiver.lines()) >= 4)
        report = check_stream(read_lines(receiver.out), [deps.audit.chain_key])
        assert report.ok and report.last_seq == 4, report.failure
    finally:
        receiver.cleanup()


def test_https_batches_with_a_bearer_token_and_retries(deps, ca, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    receiver = HttpsReceiver(ca, tmp_path, "s3cret-token").start()
    try:
        fill(deps, 7)
        forwarder = Forwarder(deps.db, build_transport(receiver.url, str(ca.cert_path),
                                                       token_file=str(token_file)), batch=5)
        receiver.fail_next = 1
        outcome = forwarder.forward_once()
        assert outcome.sent == 0 and "503" in outcome.error
        forwarder.backoff.not_before = 0
        drain(forwarder)
        assert receiver.requests[-1]["authorization"] == "Bearer s3cret-token"
        assert receiver.requests[-1]["path"] == "/services/collector/event"
        lines = receiver.out.read_text().splitlines()
        assert len(lines) == 7 and json.loads(lines[0])["sourcetype"] == "weco:audit"
        report = check_stream(read_lines(receiver.out), [deps.audit.chain_key], [deps.audit.witness.public])
        assert report.ok and report.last_seq == 7, report.failure
        # A wrong token is a 401: delay, nothing moves. A token that could split a header is refused.
        token_file.write_text("wrong")
        deps.audit.record_alone(Actor("user:1"), "site.create", "site:x")
        assert "401" in forwarder.forward_once().error
        token_file.write_text("two\r\nX-Injected: 1")
        assert "printable ASCII word" in forwarder.forward_once().error
        assert cursor.read(deps.db, forwarder.cursor_name).seq == 7
    finally:
        receiver.stop()


def test_one_watcher_at_a_time(deps, settings, tmp_path):
    first = WatchLock(deps.db, tmp_path / "watch.lock")
    assert first.try_acquire()
    # PostgreSQL: another connection, another session; SQLite: the lock file is per open.
    other_db = open_database(settings.effective_database_url) if dialect(deps.db) == "postgresql" else deps.db
    second = WatchLock(other_db, tmp_path / "watch.lock")
    try:
        assert not second.try_acquire()
        first.release()
        assert second.try_acquire()
    finally:
        second.release()
        first.release()


def test_the_cursor_only_moves_forward_from_where_it_was_read(deps):
    fill(deps, 3)
    rows = cursor.rows_after(deps.db, 0, 10)
    one = cursor.Position(rows[0].seq, rows[0].mac)
    cursor.advance(deps.db, "siem:x", cursor.START, one, deps.clock.now())
    with pytest.raises(cursor.CursorMoved):  # another process read it at the start too
        cursor.advance(deps.db, "siem:x", cursor.START, cursor.Position(3, rows[2].mac), deps.clock.now())
    with pytest.raises(ValueError):
        cursor.advance(deps.db, "siem:x", one, cursor.START, deps.clock.now())
    assert cursor.read(deps.db, "siem:x") == one
