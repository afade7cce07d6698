"""TLS, AUTH and hostile HR data: no header or HTML injection, the password never shown."""

from __future__ import annotations

import base64
import json
import logging
from email import message_from_bytes
from email.policy import default

import pytest

from flows.notify.deliver import deliver_pending
from flows.notify.settings import SmtpSettings
from tests.notify.conftest import FakeClock, outbox_row, smtp_settings
from tests.notify.smtp_server import (
    FaultyHandler,
    password_authenticator,
    running_server,
    self_signed_certificate,
    server_tls_context,
)

PASSWORD = "s3cr3t-Pa55word!"


@pytest.fixture
def certificate(tmp_path):
    return self_signed_certificate(tmp_path)


def test_hostile_names_inject_no_header_and_no_html(
    paths, publish_outbox, handler, smtp_port, sender, templates_dir
):
    hostile = "Eve\r\nBcc: victim@example.net\r\n\r\n<script>alert(1)</script>"
    context = {
        "learner": {"first_name": hostile, "full_name": hostile},
        "object": {"kind": "program", "id": "P1", "name": "Fire\r\nX-Injected: yes <b>"},
        "due_at": "2026-06-30T16:00:00Z",
    }
    publish_outbox([outbox_row(1, recipient_name=hostile, context=json.dumps(context))])
    clock = FakeClock()

    report = deliver_pending(
        paths, smtp_settings(smtp_port), sender, templates_dir=templates_dir, now=clock
    )

    assert report.sent == 1
    (received,) = handler.received
    assert received.rcpt_tos == ["user1@example.com"]  # no extra envelope recipient
    message = message_from_bytes(received.content, policy=default)
    assert message["Bcc"] is None and message["X-Injected"] is None
    assert message.get_all("To") == [message["To"]]
    assert "\n" not in message["To"] and "\r" not in message["To"]
    assert message["To"].addresses[0].addr_spec == "user1@example.com"
    assert message["Subject"].startswith("Fire X-Injected: yes <b> is due")
    headers = received.content.split(b"\r\n\r\n", 1)[0].decode()
    assert "\nBcc:" not in headers and "\nX-Injected:" not in headers
    html = message.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>Fire" in html  # the template's own markup stays
    assert "X-Injected: yes &lt;b&gt;" in html


def test_an_address_with_a_line_break_is_refused(
    paths, publish_outbox, handler, smtp_port, sender, templates_dir
):
    publish_outbox([outbox_row(1, recipient_email="a@example.com\r\nBcc: b@example.com")])

    report = deliver_pending(paths, smtp_settings(smtp_port), sender, templates_dir=templates_dir)

    assert (report.sent, report.failed) == (0, 1)
    assert handler.received == []


def test_starttls_with_auth_never_shows_the_password(
    paths, publish_outbox, sender, templates_dir, certificate, caplog, capsys
):
    cert, key = certificate
    handler = FaultyHandler()
    publish_outbox([outbox_row(1), outbox_row(2)])
    caplog.set_level(logging.DEBUG)
    with running_server(
        handler,
        tls_context=server_tls_context(cert, key),
        require_starttls=True,
        authenticator=password_authenticator("mailer", PASSWORD),
        auth_required=True,
        auth_require_tls=True,
    ) as port:
        settings = smtp_settings(
            port, security="starttls", username="mailer", password=PASSWORD, ca_file=cert
        )
        report = deliver_pending(paths, settings, sender, templates_dir=templates_dir)
        wrong = smtp_settings(
            port, security="starttls", username="mailer", password=PASSWORD + "x", ca_file=cert
        )
        publish_outbox([outbox_row(3)])
        refused = deliver_pending(paths, wrong, sender, templates_dir=templates_dir)

    assert report.sent == 2 and len(handler.received) == 2
    assert (refused.sent, refused.unsent) == (0, 1)  # a bad login: stop, lose nothing
    assert "535" in (refused.last_error or "")
    output = capsys.readouterr()
    shown = "\n".join(
        [
            caplog.text,
            output.out,
            output.err,
            repr(settings),
            str(settings),
            repr(report),
            repr(refused),
            str(settings.model_dump()),
        ]
    )
    for secret in (PASSWORD, PASSWORD + "x"):
        assert secret not in shown
        assert base64.b64encode(secret.encode()).decode() not in shown
        assert base64.b64encode(f"\0mailer\0{secret}".encode()).decode() not in shown


def test_starttls_refuses_an_untrusted_certificate(
    paths, publish_outbox, sender, templates_dir, certificate
):
    cert, key = certificate
    handler = FaultyHandler()
    publish_outbox([outbox_row(1)])
    with running_server(
        handler, tls_context=server_tls_context(cert, key), require_starttls=True
    ) as port:
        report = deliver_pending(
            paths, smtp_settings(port, security="starttls"), sender, templates_dir=templates_dir
        )
    assert (report.sent, report.unsent) == (0, 1)
    assert "CERTIFICATE_VERIFY_FAILED" in (report.last_error or "")


def test_implicit_tls(paths, publish_outbox, sender, templates_dir, certificate):
    cert, key = certificate
    handler = FaultyHandler()
    publish_outbox([outbox_row(1)])
    with running_server(handler, ssl_context=server_tls_context(cert, key)) as port:
        settings = smtp_settings(port, security="tls", ca_file=cert)
        report = deliver_pending(paths, settings, sender, templates_dir=templates_dir)
    assert report.sent == 1 and len(handler.received) == 1


def test_settings_from_the_environment_hide_the_password(monkeypatch, tmp_path):
    monkeypatch.setenv("LEARNOPS_SMTP_HOST", "relay.example.org")
    monkeypatch.setenv("LEARNOPS_SMTP_SECURITY", "tls")
    monkeypatch.setenv("LEARNOPS_SMTP_PASSWORD", PASSWORD)
    monkeypatch.setenv("LEARNOPS_SMTP_CONNECTIONS", "3")
    monkeypatch.setenv("LEARNOPS_OUTBOX_DIR", str(tmp_path))

    settings = SmtpSettings()

    assert (settings.host, settings.effective_port, settings.connections) == (
        "relay.example.org",
        465,
        3,
    )
    assert settings.outbox_dir == tmp_path
    assert settings.resolve_password() == PASSWORD
    assert PASSWORD not in repr(settings) and PASSWORD not in settings.model_dump_json()


def test_password_from_a_prefect_secret_block_is_read_lazily(monkeypatch):
    from prefect.blocks import system

    loaded: list[str] = []

    class FakeSecret:
        def get(self) -> str:
            return PASSWORD

    def load(name: str) -> FakeSecret:
        loaded.append(name)
        return FakeSecret()

    monkeypatch.setattr(system.Secret, "load", staticmethod(load))
    settings = SmtpSettings(host="relay.example.org", password_block="smtp-password")
    assert loaded == []  # nothing read until a login needs it
    assert settings.resolve_password() == PASSWORD
    assert loaded == ["smtp-password"]
    direct = SmtpSettings(password=PASSWORD + "2", password_block="smtp-password")
    assert direct.resolve_password() == PASSWORD + "2"  # the environment wins
    assert loaded == ["smtp-password"]
