"""A real SMTP server for the delivery tests: aiosmtpd on 127.0.0.1, collecting messages.

`FaultyHandler` accepts every message unless told otherwise: it can answer chosen
recipients with a 4xx or 5xx reply (a number of times, or always) and drop the connection
at the DATA of a chosen message. `self_signed_certificate` makes a certificate for
127.0.0.1 so the STARTTLS and implicit-TLS variants run with verification on.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Received:
    """One message as the server stored it."""

    mail_from: str
    rcpt_tos: list[str]
    content: bytes

    @property
    def message(self) -> Message:
        return message_from_bytes(self.content)


@dataclass
class FaultyHandler:
    """aiosmtpd handler collecting messages, with faults on demand."""

    received: list[Received] = field(default_factory=list)
    refusals: dict[str, list[Any]] = field(default_factory=dict)  # address -> [reply, times]
    drop_at_message: int | None = None  # drop the connection instead of storing message N
    lock: threading.Lock = field(default_factory=threading.Lock)

    def refuse(self, address: str, reply: str, times: int | None = None) -> None:
        """Answer RCPT TO `address` with `reply`, `times` times (None: always)."""
        self.refusals[address] = [reply, times]

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        with self.lock:
            refusal = self.refusals.get(address)
            if refusal and refusal[1] != 0:
                if refusal[1] is not None:
                    refusal[1] -= 1
                return refusal[0]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        with self.lock:
            if self.drop_at_message is not None and len(self.received) + 1 == self.drop_at_message:
                self.drop_at_message = None
                server.transport.close()  # no reply: the client sees the connection go
                return "421 closing"
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
            )
        return "250 Message accepted"

    def message_ids(self) -> list[str]:
        """The Message-ID header of every stored message, in arrival order."""
        with self.lock:
            return [str(r.message["Message-ID"]) for r in self.received]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """(certificate, key) PEM files for 127.0.0.1 and localhost, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """The server side of TLS with the test certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    return context


def password_authenticator(username: str, password: str):
    """An aiosmtpd authenticator accepting exactly one login."""

    def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login == username.encode() and auth_data.password == password.encode()
        )
        return AuthResult(success=ok, handled=False)

    return authenticate


@contextmanager
def running_server(
    handler: FaultyHandler, port: int | None = None, **smtp_options: Any
) -> Iterator[int]:
    """Run aiosmtpd on 127.0.0.1 (a free port unless given) until the block ends."""
    port = port or free_port()
    smtp_options.setdefault("server_hostname", "localhost")  # getfqdn() may wait on DNS
    controller = Controller(handler, hostname="127.0.0.1", port=port, **smtp_options)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()
