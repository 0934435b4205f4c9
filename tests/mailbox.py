"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, for the mail tests;
optionally offering STARTTLS with a throwaway certificate and requiring AUTH."""

from __future__ import annotations

import asyncio
import datetime
import email
import email.policy
import gc
import ipaddress
import re
import socket
import ssl
import time
import warnings
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    """One delivered message: the SMTP envelope and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    login: str | None

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None, f"no text/{subtype} part"
        return str(body.get_content())

    def link(self) -> str:
        match = re.search(r"https?://\S+", self.part("plain"))
        assert match is not None, "no link in the text part"
        return match.group(0)

    def token(self) -> str:
        return parse_qs(urlsplit(self.link()).query)["token"][0]


@dataclass
class Mailbox:
    """The server's address and what arrived, in order."""

    port: int
    received: list[Received] = field(default_factory=list)
    #: (user, password) the server accepts; None: no AUTH offered.
    credentials: tuple[str, str] | None = None
    controller: Controller | None = None

    def url(self, scheme: str = "smtp") -> str:
        auth = f"{self.credentials[0]}:{self.credentials[1]}@" if self.credentials else ""
        return f"{scheme}://{auth}127.0.0.1:{self.port}"

    async def wait_for(self, to: str, subject: str, timeout: float = 20.0) -> Received:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for mail in self.received:
                if to in mail.rcpt_tos and mail.message["Subject"] == subject:
                    return mail
            await asyncio.sleep(0.05)
        got = [(m.rcpt_tos, m.message["Subject"]) for m in self.received]
        raise AssertionError(f"no mail {subject!r} to {to} within {timeout} s; got {got}")

    def start(self, tls_context: ssl.SSLContext | None = None) -> None:
        kwargs: dict[str, Any] = {}
        if self.credentials is not None:
            kwargs["authenticator"] = self._authenticate
            kwargs["auth_require_tls"] = tls_context is not None
        if tls_context is not None:
            kwargs.update(tls_context=tls_context, require_starttls=True)
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port, **kwargs)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
            # aiosmtpd's stopped loop can leave a server-side connection (after STARTTLS)
            # to the garbage collector, whose ResourceWarning would fail a later test:
            # collect it here, where it belongs (aiosmtpd's, not ours).
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ResourceWarning)
                gc.collect()

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword) and self.credentials is not None:
            user, password = data.login.decode(), data.password.decode()
            if (user, password) == self.credentials:
                return AuthResult(success=True, auth_data=user)
        return AuthResult(success=False, handled=False)


class _Handler:
    def __init__(self, mailbox: Mailbox) -> None:
        self._mailbox = mailbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        login = session.auth_data if session.authenticated else None
        self._mailbox.received.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), message, login)
        )
        return "250 OK"


def self_signed(tmp: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context for 127.0.0.1 and the certificate file a client must trust."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp / "smtp-cert.pem", tmp / "smtp-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context, cert_file
