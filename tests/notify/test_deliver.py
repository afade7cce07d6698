"""deliver_pending against a real aiosmtpd server: outcomes, retries, faults, budget."""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path

import duckdb

from flows.notify.deliver import deliver_pending
from flows.notify.ledger import Ledger, ledger_path
from flows.notify.render import Sender
from flows.warehouse import WarehousePaths
from tests.notify.conftest import T0, FakeClock, outbox_row, smtp_settings
from tests.notify.smtp_server import FaultyHandler, free_port, running_server


def ledger_rows(paths: WarehousePaths) -> dict[str, tuple]:
    with duckdb.connect(str(ledger_path(paths)), read_only=True) as con:
        rows = con.execute(
            "select message_id, status, attempts, sent_at, last_error from delivery_outcome"
        ).fetchall()
    return {row[0]: row[1:] for row in rows}


def deliver(paths, port, sender, templates_dir, **options):
    settings = smtp_settings(port, **options.pop("settings", {}))
    clock = options.pop("clock", FakeClock())
    return deliver_pending(
        paths, settings, sender, templates_dir=templates_dir, now=clock, sleep=clock.sleep,
        **options,
    )  # fmt: skip


def test_sends_each_message_once_and_records_it(
    paths, publish_outbox, handler, smtp_port, sender, templates_dir
):
    publish_outbox([outbox_row(n) for n in range(1, 8)])

    report = deliver(paths, smtp_port, sender, templates_dir)

    assert (report.selected, report.sent, report.failed) == (7, 7, 0)
    assert sorted(handler.message_ids()) == sorted(f"<{n:032x}@learnops>" for n in range(1, 8))
    assert handler.received[0].mail_from == "learning@example.org"
    outcomes = ledger_rows(paths)
    assert {status for status, *_ in outcomes.values()} == {"sent"}
    assert all(
        attempts == 1 and sent_at is not None for _, attempts, sent_at, _ in outcomes.values()
    )

    again = deliver(paths, smtp_port, sender, templates_dir)
    assert (again.selected, again.sent) == (0, 0)
    assert len(handler.received) == 7


def test_server_down_then_up_loses_and_doubles_nothing(
    paths, publish_outbox, sender, templates_dir
):
    publish_outbox([outbox_row(n) for n in range(1, 6)])
    port = free_port()  # nobody listens yet

    down = deliver(paths, port, sender, templates_dir)

    assert (down.sent, down.failed, down.unsent) == (0, 0, 5)
    assert "connect" in (down.last_error or "")
    assert not ledger_rows(paths)  # failing to connect is charged to no message
    handler = FaultyHandler()
    with running_server(handler, port=port):
        up = deliver(paths, port, sender, templates_dir)
        deliver(paths, port, sender, templates_dir)
    assert (up.sent, up.unsent) == (5, 0)
    assert sorted(handler.message_ids()) == sorted(f"<{n:032x}@learnops>" for n in range(1, 6))


def test_4xx_is_retried_until_it_succeeds(
    paths, publish_outbox, handler, smtp_port, sender, templates_dir
):
    publish_outbox([outbox_row(1), outbox_row(2)])
    handler.refuse("user1@example.com", "451 4.7.1 Greylisted, try again later", times=2)

    report = deliver(paths, smtp_port, sender, templates_dir)

    assert (report.sent, report.failed, report.retried) == (2, 0, 2)
    status, attempts, _, _ = ledger_rows(paths)[f"{1:032x}"]
    assert (status, attempts) == ("sent", 3)
    assert len(handler.received) == 2


def test_4xx_beyond_max_attempts_fails_with_the_reply(
    paths, publish_outbox, handler, smtp_port, sender, templates_dir
):
    publish_outbox([outbox_row(1)])
    handler.refuse("user1@example.com", "452 4.2.2 Mailbox full")

    report = deliver(paths, smtp_port, sender, templates_dir)

    assert (report.sent, report.failed, report.retried) == (0, 1, 2)
    status, attempts, _, error = ledger_rows(paths)[f"{1:032x}"]
    assert (status, attempts) == ("failed", 3)
    assert error == "452 4.2.2 Mailbox full"


def test_5xx_fails_at_once_with_the_server_reply(
    paths, publish_outbox, handler, smtp_port, sender, templates_dir
):
    publish_outbox([outbox_row(n) for n in range(1, 4)])
    handler.refuse("user2@example.com", "550 5.1.1 <user2@example.com>: no such user")

    report = deliver(paths, smtp_port, sender, templates_dir)

    assert (report.sent, report.failed, report.retried) == (2, 1, 0)
    status, attempts, sent_at, error = ledger_rows(paths)[f"{2:032x}"]
    assert (status, attempts, sent_at) == ("failed", 1, None)
    assert error == "550 5.1.1 <user2@example.com>: no such user"
    assert deliver(paths, smtp_port, sender, templates_dir).selected == 0  # failed is final


def test_connection_dropped_mid_batch(
    paths, publish_outbox, handler, smtp_port, sender, templates_dir
):
    publish_outbox([outbox_row(n) for n in range(1, 11)])
    handler.drop_at_message = 4  # the server hangs up during the 4th message's DATA

    report = deliver(paths, smtp_port, sender, templates_dir, settings={"connections": 1})

    assert (report.sent, report.failed, report.retried) == (10, 0, 1)
    ids = handler.message_ids()
    assert len(ids) == len(set(ids)) == 10


def test_deferred_waits_for_not_before(
    paths, publish_outbox, handler, smtp_port, sender, templates_dir
):
    later = T0 + timedelta(hours=20)
    publish_outbox([outbox_row(1, status="deferred", not_before=later), outbox_row(2)])

    early = deliver(paths, smtp_port, sender, templates_dir, clock=FakeClock(T0))
    assert (early.selected, early.sent) == (1, 1)
    on_time = deliver(paths, smtp_port, sender, templates_dir, clock=FakeClock(later))
    assert (on_time.selected, on_time.sent) == (1, 1)
    assert handler.message_ids()[-1] == f"<{1:032x}@learnops>"


def test_held_goes_only_after_release(
    paths, publish_outbox, handler, smtp_port, sender, templates_dir
):
    publish_outbox([outbox_row(n, status="held") for n in range(1, 4)])

    assert deliver(paths, smtp_port, sender, templates_dir).selected == 0
    with Ledger(paths) as ledger:
        assert ledger.release([f"{1:032x}", f"{2:032x}"]) == 2
    report = deliver(paths, smtp_port, sender, templates_dir)

    assert report.sent == 2
    assert sorted(handler.message_ids()) == [f"<{1:032x}@learnops>", f"<{2:032x}@learnops>"]


def test_rows_the_sender_must_not_touch_are_left_alone(
    paths, publish_outbox, handler, smtp_port, sender, templates_dir
):
    statuses = ["sent", "failed", "skipped_late", "cancelled", "suppressed", "digested"]
    publish_outbox([outbox_row(n, status=s) for n, s in enumerate(statuses, 1)])
    assert deliver(paths, smtp_port, sender, templates_dir).selected == 0
    assert handler.received == []


def test_rate_limit_spaces_sends_within_and_across_runs(
    paths, publish_outbox, handler, smtp_port, sender, templates_dir
):
    publish_outbox([outbox_row(n) for n in range(1, 7)])
    clock = FakeClock()

    first = deliver(
        paths, smtp_port, sender, templates_dir, clock=clock, rate_per_minute=30, limit=3
    )
    second = deliver(paths, smtp_port, sender, templates_dir, clock=clock, rate_per_minute=30)

    assert (first.sent, second.sent) == (3, 3)
    sent_at = sorted(row[2] for row in ledger_rows(paths).values())
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(sent_at)]
    assert all(gap >= 2.0 - 1e-6 for gap in gaps), gaps  # 30/min: one every 2 s, run 2 too
    assert (sent_at[-1] - sent_at[0]).total_seconds() >= 10.0 - 1e-6


def test_rate_limit_leaves_what_does_not_fit_pending(
    paths, publish_outbox, handler, smtp_port, sender, templates_dir
):
    publish_outbox([outbox_row(n) for n in range(1, 11)])
    clock = FakeClock()

    report = deliver(
        paths, smtp_port, sender, templates_dir, clock=clock, rate_per_minute=60, max_seconds=4.5
    )

    assert (report.sent, report.rate_limited) == (5, 5)  # t = 0, 1, 2, 3, 4 s
    rest = deliver(paths, smtp_port, sender, templates_dir, clock=clock, rate_per_minute=60)
    assert rest.sent == 5
    assert len(set(handler.message_ids())) == len(handler.received) == 10


def test_bad_row_data_fails_a_missing_template_waits(
    paths, publish_outbox, handler, smtp_port, sender, templates_dir
):
    publish_outbox([
        outbox_row(1, template="no_such_template"),
        outbox_row(2, recipient_email="<user2@example.com>"),
        outbox_row(3),
    ])  # fmt: skip

    report = deliver(paths, smtp_port, sender, templates_dir)

    assert (report.sent, report.failed, report.retried, report.template_errors) == (1, 1, 0, 1)
    outcomes = ledger_rows(paths)
    assert f"{1:032x}" not in outcomes  # uncharged: sent once the template exists
    status, _, _, error = outcomes[f"{2:032x}"]
    assert status == "failed" and "invalid email address" in error
    (templates_dir / "no_such_template.subject.txt").write_text("Now it exists")
    (templates_dir / "no_such_template.txt").write_text("Hello")
    assert deliver(paths, smtp_port, sender, templates_dir).sent == 1


def test_eml_outbox_without_smtp_host(paths, publish_outbox, sender, templates_dir, tmp_path):
    from email import message_from_bytes
    from email.policy import default

    from flows.notify.settings import SmtpSettings

    publish_outbox([outbox_row(1), outbox_row(2, recipient_lang="fr")])
    settings = SmtpSettings(host=None)

    report = deliver_pending(paths, settings, sender, templates_dir=templates_dir)

    assert (report.mode, report.sent) == ("eml", 2)
    outbox: Path = paths.state_dir / "outbox"
    files = sorted(outbox.glob("*.eml"))
    assert [f.name for f in files] == [f"{1:032x}.eml", f"{2:032x}.eml"]
    assert not list(outbox.glob(".*"))  # no temporary file left behind
    message = message_from_bytes(files[0].read_bytes(), policy=default)
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["Subject"] == "Fire safety is due on 30 June 2026"
    assert "17:00 BST" in message.get_body(("plain",)).get_content()
    french = message_from_bytes(files[1].read_bytes(), policy=default)
    assert french["Subject"] == "Fire safety : échéance le 30 June 2026"
    assert {s for s, *_ in ledger_rows(paths).values()} == {"sent"}
    assert deliver_pending(paths, settings, sender, templates_dir=templates_dir).selected == 0


def test_outbox_dir_setting(paths, publish_outbox, sender, templates_dir, tmp_path, monkeypatch):
    from flows.notify.settings import load_smtp_settings

    monkeypatch.setenv("LEARNOPS_OUTBOX_DIR", str(tmp_path / "mail"))
    monkeypatch.delenv("LEARNOPS_SMTP_HOST", raising=False)
    publish_outbox([outbox_row(1)])
    deliver_pending(
        paths, load_smtp_settings(), Sender("a@example.org"), templates_dir=templates_dir
    )
    assert (tmp_path / "mail" / f"{1:032x}.eml").exists()
