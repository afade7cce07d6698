"""Rendering one outbox row: templates, languages, optional keys, dates, headers."""

from __future__ import annotations

import pytest

from flows.notify.render import (
    Renderer,
    RenderError,
    Sender,
    TemplateProblem,
    clean_display_name,
    fold_subject,
    render_message,
)
from tests.notify.conftest import outbox_row


def body(message, kind: str) -> str:
    return message.get_body((kind,)).get_content()


def test_headers_and_parts(templates_dir, sender):
    message = render_message(outbox_row(1), templates_dir, sender)

    assert message["Message-ID"] == f"<{1:032x}@learnops>"
    assert message["From"] == "Learning Team <learning@example.org>"
    assert message["To"] == "Ada1 Lovelace <user1@example.com>"
    assert message["Reply-To"] == "ld@example.org"
    assert message["Subject"] == "Fire safety is due on 30 June 2026"
    assert message.get_content_type() == "multipart/alternative"
    assert "30 June 2026, 17:00 BST. Managers: Grace Hopper." in body(message, "plain")
    assert "<b>Fire safety</b>" in body(message, "html")


def test_dates_follow_the_recipient_timezone(templates_dir, sender):
    row = outbox_row(1, recipient_timezone="Pacific/Auckland")
    text = body(render_message(row, templates_dir, sender), "plain")
    assert "1 July 2026, 04:00 NZST" in text  # 16:00 UTC is the next morning in Auckland
    unknown = outbox_row(1, recipient_timezone="Mars/Olympus")
    assert "30 June 2026, 16:00 UTC" in body(
        render_message(unknown, templates_dir, sender), "plain"
    )


@pytest.mark.parametrize(
    ("lang", "subject_start"),
    [("fr", "Fire safety : échéance"), ("fr_CA", "Fire safety : échéance"),
     ("FR-ca", "Fire safety : échéance"), ("de", "Fire safety is due"),
     ("../../etc/passwd", "Fire safety is due"), (None, "Fire safety is due")],
)  # fmt: skip
def test_language_falls_back_part_by_part(templates_dir, sender, lang, subject_start):
    message = render_message(outbox_row(1, recipient_lang=lang), templates_dir, sender)
    assert message["Subject"].startswith(subject_start)
    if subject_start.endswith("échéance"):
        assert body(message, "plain").startswith("Bonjour Ada1")
        assert "<p>Hello Ada1" in body(message, "html")  # no French HTML: the default part


def test_absent_context_keys_render_empty(templates_dir, sender):
    message = render_message(outbox_row(1, context="{}"), templates_dir, sender)
    assert message["Subject"] == "is due on"
    assert body(message, "plain").startswith("Hello ,")


def test_text_only_template(tmp_path, sender):
    (tmp_path / "plain.subject.txt").write_text("Hi")
    (tmp_path / "plain.txt").write_text("Hello {{ recipient.name }}")
    message = render_message(outbox_row(1, template="plain"), tmp_path, sender)
    assert message.get_content_type() == "text/plain"
    assert message.get_content().strip() == "Hello Ada1 Lovelace"


@pytest.mark.parametrize(
    "overrides",
    [{"template": "../program_due"}, {"context": "not json"}, {"recipient_email": "<a@b.c>"},
     {"context": "[1, 2]"}, {"recipient_email": "not-an-address"},
     {"recipient_email": "a@b.com, c@d.com"}, {"message_id": "x>\r\nBcc: y"}],
)  # fmt: skip
def test_rows_that_cannot_become_a_message(templates_dir, sender, overrides):
    with pytest.raises(RenderError):
        render_message(outbox_row(1, **overrides), templates_dir, sender)


def test_missing_or_broken_templates_are_template_problems(templates_dir, sender):
    with pytest.raises(TemplateProblem, match="missing"):
        render_message(outbox_row(1, template="missing"), templates_dir, sender)
    (templates_dir / "broken.subject.txt").write_text("{% if %}")
    (templates_dir / "broken.txt").write_text("x")
    with pytest.raises(TemplateProblem, match="broken"):
        render_message(outbox_row(1, template="broken"), templates_dir, sender)


def test_templates_are_compiled_once(templates_dir, sender):
    renderer = Renderer(templates_dir, sender)
    renderer.render(outbox_row(1))
    (templates_dir / "program_due.subject.txt").write_text("changed")
    assert renderer.render(outbox_row(2))["Subject"].startswith("Fire safety")


def test_cleaning_helpers():
    assert clean_display_name("A\r\nB\tC\x00D\u2028E") == "A B C D E"
    assert fold_subject("one\r\ntwo\n") == "one two"
    assert clean_display_name(None) == ""


def test_sender_identity_is_checked(templates_dir):
    with pytest.raises(RenderError):
        Renderer(templates_dir, Sender(address="learning@example.org\r\nBcc: x@y.z"))


def test_a_body_cannot_close_its_part(tmp_path, sender):
    boundary = f"--=_learnops_{1:032x}"
    (tmp_path / "b.subject.txt").write_text("s")
    (tmp_path / "b.txt").write_text(f"{boundary}\n{boundary}--\nContent-Type: text/html\n")
    (tmp_path / "b.html").write_text(f"<p>x</p>\n{boundary}--\n")
    message = render_message(outbox_row(1, template="b"), tmp_path, sender)
    plain, html = message.iter_parts()
    assert plain.get_content().startswith(boundary)
    assert html.get_content_type() == "text/html" and f"{boundary}--" in html.get_content()
