"""A real SMTP server (aiosmtpd) on loopback that keeps what it receives.

With a certificate it speaks TLS: `tls="starttls"` offers STARTTLS and refuses mail
before it (require_starttls), `tls="implicit"` is TLS from the first byte (smtps,
RFC 8314)."""

from __future__ import annotations

import email
import re
import ssl
from pathlib import Path

from aiosmtpd.controller import Controller

from tests.peers.postgres import free_port

_SCHEMES = {None: "smtp", "starttls": "smtp+starttls", "implicit": "smtps"}


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's handler hook
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def last_code(self) -> str:
        return re.search(r"\b(\d{6})\b", self.messages[-1].get_payload()).group(1)


class SmtpServer:
    def __init__(self, tls: str | None = None, cert: tuple[Path, Path] | None = None) -> None:
        self.inbox = Inbox()
        self.port = free_port()
        self.tls = tls
        options: dict = {}
        if tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*cert)
            if tls == "starttls":
                options = {"tls_context": context, "require_starttls": True}
            else:
                options = {"ssl_context": context}
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **options)

    @property
    def url(self) -> str:
        return f"{_SCHEMES[self.tls]}://127.0.0.1:{self.port}"

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
