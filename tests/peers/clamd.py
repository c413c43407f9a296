"""Debian's clamd for the tests, with a signature database of our own (freshclam cannot
download here, and a test must not depend on what it would download).

The database holds two body signatures (.ndb, any offset): the official EICAR test
string, and a test-only marker that tests/control_api/documents/samples.py puts in a
compressed PDF content stream (found only if clamd decompresses PDF streams). clamd
listens on a unix socket in its own directory, with stream and scan limits raised so
that the suite's largest upload (and the benchmark's 100 MB one) is scanned whole.
A missing clamd is an error, not a skip: scripts/setup --dev installs clamav-daemon.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
MARKER = b"WECO-TEST-SIGNATURE-7f3a9c"  # test-only: no real file holds it
SIGNATURES = {"Weco.Test.Eicar": EICAR, "Weco.Test.PdfMarker": MARKER}


class ClamdMissing(RuntimeError):
    pass


class Clamd:
    def __init__(self) -> None:
        binary = shutil.which("clamd") or ("/usr/sbin/clamd" if Path("/usr/sbin/clamd").exists() else None)
        if binary is None:
            raise ClamdMissing("clamd not found: run scripts/setup --dev (it installs clamav-daemon)")
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="weco-clamd-"))
        self.socket = str(self.dir / "clamd.sock")
        self.process: subprocess.Popen | None = None

    def start(self, wait: float = 60.0) -> Clamd:
        (self.dir / "db").mkdir()
        (self.dir / "tmp").mkdir()
        (self.dir / "db" / "weco-test.ndb").write_text(
            "".join(f"{name}:0:*:{body.hex()}\n" for name, body in SIGNATURES.items()))
        conf = self.dir / "clamd.conf"
        conf.write_text("\n".join([
            f"LocalSocket {self.socket}", f"DatabaseDirectory {self.dir / 'db'}",
            f"TemporaryDirectory {self.dir / 'tmp'}", f"LogFile {self.dir / 'clamd.log'}",
            "Foreground yes", "StreamMaxLength 300M", "MaxFileSize 300M", "MaxScanSize 600M",
            "SelfCheck 0", "MaxThreads 4", ""]))
        self.process = subprocess.Popen([self.binary, "-c", str(conf)], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + wait
        while not self.ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.dir / "clamd.log").read_text(errors="replace")[-2000:] if (
                    self.dir / "clamd.log").exists() else ""
                self.stop()
                raise RuntimeError(f"clamd did not start: {log}")
            time.sleep(0.05)
        return self

    def ping(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(2)
                sock.connect(self.socket)
                sock.sendall(b"zPING\0")
                return sock.recv(16).startswith(b"PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
