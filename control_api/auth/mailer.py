"""Sending the email one-time codes over SMTP (FF_SMTP_URL)."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from urllib.parse import urlsplit


class MailError(Exception):
    pass


class SmtpMailer:
    def __init__(self, url: str, sender: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port or 25
        self.starttls = parts.scheme == "smtp+starttls"
        self.user, self.password = parts.username, parts.password
        self.sender = sender

    def send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, to, subject
        message.set_content(body)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=10) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.user:
                    smtp.login(self.user, self.password or "")
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            where = f"{self.host}:{self.port}"
            raise MailError(f"could not send mail through {where}: {type(exc).__name__}") from None
