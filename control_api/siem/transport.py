"""Delivering a batch of sealed rows to the SIEM, and knowing that it arrived.

- `syslog+tls://HOST[:PORT]` (RFC 5425; port 6514 by default): RFC 5424 messages with
  octet-counting framing over TLS 1.2+, the server's certificate verified against
  FF_AUDIT_SIEM_CA_FILE (or the system's trust store) and its name checked; a client
  certificate for mutual TLS when configured. `syslog+tcp://` is the same in clear
  (FF_ENV=dev only, refused by settings otherwise).
- `https://HOST[:PORT]/PATH`: the batch as HTTP Event Collector objects, one JSON
  object a line, POSTed with `Authorization: Bearer` and the token read from
  FF_AUDIT_SIEM_TOKEN_FILE for each batch (so it can be rotated in place).

What counts as acknowledged: for HTTPS, a 2xx answer. Syslog over TLS has no
application acknowledgement, so each batch is one connection that this side closes
after sending (TLS close_notify, then a TCP half-close) and counts as delivered only
when the receiver closes its side cleanly in turn: the receiver has then read every
byte (a receiver that dies with data unread resets the connection instead, and the
batch is sent again). A receiver that refuses the connection (a client certificate
it does not accept) also closes cleanly, but on its own, right after the handshake:
so a close that comes before ours, within SETTLE_MIN or three handshake times of the
send, fails the batch. Whether the receiver then keeps what it read is its own
queue's business (give rsyslog a disk-assisted queue to outlive its own crash).
RELP would acknowledge each message; RFC 5425 does not.
"""

from __future__ import annotations

import http.client
import json
import re
import select
import socket
import ssl
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from control_api.siem.message import SealedRow, frame, to_hec, to_syslog

SCHEMES = ("syslog+tls", "syslog+tcp", "https")
DEFAULT_PORTS = {"syslog+tls": 6514, "syslog+tcp": 514, "https": 443}
TIMEOUT = 15.0
SETTLE_MIN = 0.01


class DeliveryError(Exception):
    """The batch was not acknowledged; it will be sent again. str() says why."""


class Transport(Protocol):
    name: str

    def send(self, rows: Sequence[SealedRow]) -> None:
        """Deliver every row or raise DeliveryError."""


def parse_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path); ValueError for anything else."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or not parts.hostname or parts.username or parts.password:
        raise ValueError
    if parts.query or parts.fragment or (parts.scheme != "https" and parts.path not in ("", "/")):
        raise ValueError
    port = parts.port or DEFAULT_PORTS[parts.scheme]  # .port raises ValueError when out of range
    return parts.scheme, parts.hostname, port, parts.path or "/"


def tls_context(ca_file: str, client_cert: str, client_key: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if client_cert:
        context.load_cert_chain(client_cert, client_key or None)
    return context


class SyslogTransport:
    def __init__(self, host: str, port: int, context: ssl.SSLContext | None, hostname: str,
                 timeout: float = TIMEOUT) -> None:
        self.host, self.port, self.context = host, port, context
        self.hostname, self.timeout = hostname, timeout
        self.name = f"syslog+{'tls' if context else 'tcp'}://{host}:{port}"

    def send(self, rows: Sequence[SealedRow]) -> None:
        data = b"".join(frame(to_syslog(row, self.hostname)) for row in rows)
        try:
            raw = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            raise DeliveryError(f"cannot connect to {self.name}: {exc}") from None
        stream = raw
        try:
            started = time.monotonic()
            if self.context:
                stream = self.context.wrap_socket(raw, server_hostname=self.host)
            handshake = time.monotonic() - started
            stream.sendall(data)
            self._still_open(stream, max(SETTLE_MIN, 3 * handshake))
            if self.context:
                stream = stream.unwrap()  # our close_notify, then the receiver's
            stream.shutdown(socket.SHUT_WR)
            if stream.recv(4096):  # blocks until the receiver closes its side
                raise DeliveryError(f"{self.name} sent data; a syslog receiver sends none")
        except ssl.SSLEOFError:
            # The receiver closed without a close_notify of its own: it read ours, so
            # everything before it; a reset (unread data) is an OSError below.
            pass
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryError(f"{self.name}: certificate refused: {exc.verify_message}") from None
        except OSError as exc:  # ssl.SSLError included
            raise DeliveryError(f"{self.name}: {exc}") from None
        finally:
            stream.close()
            raw.close()

    def _still_open(self, stream: socket.socket, settle: float) -> None:
        """A receiver that refuses us (our client certificate, say) closes on its own right
        after the handshake, cleanly and without reading: that close must not pass for
        the one that answers ours. It comes within a round trip or so of the handshake."""
        deadline = time.monotonic() + settle
        stream.setblocking(False)
        try:
            while (left := deadline - time.monotonic()) > 0:
                if not select.select([stream], [], [], left)[0]:
                    break
                try:
                    if stream.recv(4096) == b"":
                        raise ssl.SSLZeroReturnError
                    raise DeliveryError(f"{self.name} sent data; a syslog receiver sends none")
                except ssl.SSLWantReadError:
                    continue  # TLS 1.3 session tickets: handshake records, no close
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError, ConnectionError):
                    raise DeliveryError(f"{self.name} closed the connection before the batch was "
                                        "confirmed (did it refuse our certificate?)") from None
        finally:
            stream.settimeout(self.timeout)


_TOKEN = re.compile(r"[\x21-\x7e]{1,4096}")


class HttpsTransport:
    def __init__(self, host: str, port: int, path: str, context: ssl.SSLContext, token_file: str,
                 hostname: str, timeout: float = TIMEOUT) -> None:
        self.host, self.port, self.path, self.context = host, port, path, context
        self.token_file, self.hostname, self.timeout = token_file, hostname, timeout
        self.name = f"https://{host}:{port}{path}"

    def _token(self) -> str:
        try:
            token = Path(self.token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise DeliveryError(f"FF_AUDIT_SIEM_TOKEN_FILE {self.token_file}: {exc}") from None
        if not _TOKEN.fullmatch(token):
            # Anything else could split the header it goes into.
            raise DeliveryError(f"FF_AUDIT_SIEM_TOKEN_FILE {self.token_file}: not one printable ASCII word")
        return token

    def send(self, rows: Sequence[SealedRow]) -> None:
        body = "".join(json.dumps(to_hec(row, self.hostname), sort_keys=True) + "\n" for row in rows)
        headers = {"Authorization": f"Bearer {self._token()}", "Content-Type": "application/json"}
        connection = http.client.HTTPSConnection(self.host, self.port, context=self.context,
                                                 timeout=self.timeout)
        try:
            connection.request("POST", self.path, body.encode("utf-8"), headers)
            response = connection.getresponse()
            response.read(65536)
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryError(f"{self.name}: certificate refused: {exc.verify_message}") from None
        except (OSError, http.client.HTTPException) as exc:
            raise DeliveryError(f"{self.name}: {exc}") from None
        finally:
            connection.close()
        if not 200 <= response.status < 300:
            raise DeliveryError(f"{self.name} answered {response.status} {response.reason}")


def build_transport(url: str, ca_file: str = "", client_cert: str = "", client_key: str = "",
                    token_file: str = "", hostname: str | None = None) -> Transport:
    scheme, host, port, path = parse_url(url)
    hostname = hostname or socket.gethostname()
    if scheme == "syslog+tcp":
        return SyslogTransport(host, port, None, hostname)
    context = tls_context(ca_file, client_cert, client_key)
    if scheme == "syslog+tls":
        return SyslogTransport(host, port, context, hostname)
    return HttpsTransport(host, port, path, context, token_file, hostname)
