"""rsyslog from Debian as the SIEM's TLS receiver: imtcp with the gtls stream driver
(rsyslog-gnutls), RFC 5425 octet-counted framing, each message written as received
(%rawmsg%) to a file the tests read. Start, stop (SIGTERM, its queue drained) and
start again on the same port and file, for outages."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.peers.postgres import free_port
from tests.peers.testca import TestCA

RSYSLOGD = "/usr/sbin/rsyslogd"

_CONFIG = """
global(
  workDirectory="{dir}/work"
  maxMessageSize="256k"
  defaultNetstreamDriver="gtls"
  defaultNetstreamDriverCAFile="{ca}"
  defaultNetstreamDriverCertFile="{cert}"
  defaultNetstreamDriverKeyFile="{key}"
  parser.escapeControlCharactersOnReceive="off"
)
# A graceful stop writes out everything that was read (the default gives up after 1.5 s).
main_queue(queue.timeoutShutdown="60000" queue.size="100000")
module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="{auth}"
       {peers})
input(type="imtcp" port="{port}" address="127.0.0.1")
template(name="raw" type="string" string="%rawmsg%\\n")
action(type="omfile" file="{out}" template="raw")
"""


class RsyslogMissing(RuntimeError):
    pass


class Rsyslog:
    def __init__(self, ca: TestCA, mutual: bool = False, plain_tcp: bool = False) -> None:
        if not os.path.exists(RSYSLOGD):
            raise RsyslogMissing("rsyslogd not found: run scripts/setup --dev (rsyslog, rsyslog-gnutls)")
        self.dir = Path(tempfile.mkdtemp(prefix="weco-rsyslog-"))
        (self.dir / "work").mkdir()
        self.port = free_port()
        self.out = self.dir / "received.log"
        self.ca = ca
        cert, key = ca.issue(f"rsyslog-{self.port}", ["localhost", "127.0.0.1"])
        peers = 'permittedPeer=["weco-client"]' if mutual else ""
        auth = "x509/name" if mutual else "anon"
        self.config = self.dir / "rsyslog.conf"
        self.config.write_text(_CONFIG.format(dir=self.dir, ca=ca.cert_path, cert=cert, key=key, auth=auth,
                                              peers=peers, port=self.port, out=self.out))
        self.pidfile = self.dir / "rsyslogd.pid"
        self.process: subprocess.Popen | None = None
        self.url = f"syslog+tls://localhost:{self.port}"

    def start(self, timeout: float = 15) -> Rsyslog:
        self.log = (self.dir / "rsyslogd.stderr").open("ab")
        self.process = subprocess.Popen([RSYSLOGD, "-n", "-f", str(self.config), "-i", str(self.pidfile)],
                                        stdout=self.log, stderr=self.log, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"rsyslogd did not start: {self.stderr()}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def stderr(self) -> str:
        path = self.dir / "rsyslogd.stderr"
        return path.read_text(errors="replace") if path.exists() else ""

    def lines(self) -> list[bytes]:
        return self.out.read_bytes().splitlines() if self.out.exists() else []

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
