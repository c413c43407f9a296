"""Sending the email one-time codes over SMTP (FF_SMTP_URL).

TLS follows RFC 8314 and RFC 3207: `smtps://` is TLS from the first byte,
`smtp+starttls://` upgrades with STARTTLS and fails if the server does not offer it.
Either way the server's certificate must chain to the system's trust store, or to
FF_SMTP_CA_FILE for a private CA, and must name the host of the URL (RFC 6125):
a code sent to an impostor is a second factor handed over.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 25, "smtps": 465}


class MailError(Exception):
    pass


def tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """A client context that verifies the certificate chain and the host name."""
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class SmtpMailer:
    def __init__(self, url: str, sender: str, ca_file: str | None = None) -> None:
        parts = urlsplit(url)
        self.scheme = parts.scheme
        self.host, self.port = parts.hostname, parts.port or _DEFAULT_PORTS[parts.scheme]
        self.user, self.password = parts.username, parts.password
        self.sender = sender
        self.context = tls_context(ca_file) if parts.scheme != "smtp" else None

    def _connect(self) -> smtplib.SMTP:
        if self.scheme == "smtps":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=10, context=self.context)
        return smtplib.SMTP(self.host, self.port, timeout=10)

    def send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, to, subject
        message.set_content(body)
        try:
            with self._connect() as smtp:
                if self.scheme == "smtp+starttls":
                    smtp.starttls(context=self.context)
                if self.user:
                    smtp.login(self.user, self.password or "")
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            where = f"{self.host}:{self.port}"
            raise MailError(f"could not send mail through {where}: {type(exc).__name__}") from None
