"""Outgoing mail: SMTP when `SMTP_URL` is set, the log otherwise.

Nothing sends mail from a request: services enqueue a job (mediaserver/jobs.py) and its
handler calls `Mailer.send`, so a slow or unreachable mail server costs a retry, never a
request. `SmtpMailer` speaks SMTP with aiosmtplib: `smtps://` is TLS from the first byte
(RFC 8314 implicit TLS, port 465), `smtp://` upgrades with STARTTLS when the server offers
it (RFC 3207); user and password come from the URL (percent-encoded) and are sent with
AUTH only when given.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib

from mediaserver.clock import utcnow

log = logging.getLogger(__name__)

SMTP_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Mail:
    """One message to one recipient, with a plain-text and an HTML alternative."""

    to: str
    subject: str
    text: str
    html: str

    def message(self, sender: str) -> EmailMessage:
        """The RFC 5322 message: multipart/alternative, text first (RFC 2046 §5.1.4:
        the last part is the preferred one)."""
        message = EmailMessage()
        message["From"] = sender
        message["To"] = self.to
        message["Subject"] = self.subject
        message["Date"] = format_datetime(utcnow())
        message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
        message.set_content(self.text)
        message.add_alternative(self.html, subtype="html")
        return message


class Mailer(Protocol):
    """Delivers a mail or raises (the job queue retries)."""

    async def send(self, mail: Mail) -> None: ...


class SmtpMailer:
    """Sends through the SMTP server of `url` (smtp:// or smtps://)."""

    def __init__(self, url: str, sender: str, timeout: float = SMTP_TIMEOUT_SECONDS) -> None:
        parts = urlsplit(url)
        self._implicit_tls = parts.scheme == "smtps"
        self._host = parts.hostname or "localhost"
        self._port = parts.port or (465 if self._implicit_tls else 25)
        self._username = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self._sender = sender
        self._timeout = timeout

    async def send(self, mail: Mail) -> None:
        await aiosmtplib.send(
            mail.message(self._sender),
            hostname=self._host,
            port=self._port,
            username=self._username,
            password=self._password,
            use_tls=self._implicit_tls,
            # None: STARTTLS when the server offers it, plain text when it does not.
            start_tls=False if self._implicit_tls else None,
            timeout=self._timeout,
        )


class LogMailer:
    """No SMTP server configured: each mail is written to the log at INFO, so a one-node
    trial can still follow a reset or verification link."""

    def __init__(self, sender: str) -> None:
        self._sender = sender

    async def send(self, mail: Mail) -> None:
        log.info(
            "mail (no SMTP_URL, not sent) to %s: %s\n%s",
            mail.to,
            mail.subject,
            mail.text,
            extra={"mail_to": mail.to, "mail_from": self._sender},
        )


def mailer_for(smtp_url: str | None, sender: str) -> Mailer:
    """`SmtpMailer` for a URL, else `LogMailer` (with a warning: users get no mail)."""
    if smtp_url is None:
        log.warning(
            "no SMTP_URL: mails (password resets, email verification) are written to the "
            "log instead of being sent"
        )
        return LogMailer(sender)
    return SmtpMailer(smtp_url, sender)
