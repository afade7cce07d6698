"""The ledger folded into the outbox: apply_ledger on a copy, republish under readers."""

from __future__ import annotations

from datetime import timedelta

import duckdb

from flows.notify.deliver import deliver_pending, send_alert
from flows.notify.ledger import (
    Ledger,
    Outcome,
    apply_ledger,
    pending_changes,
    record_outcomes,
    release,
    republish_outbox,
    sent_in_last,
)
from flows.notify.settings import SmtpSettings
from flows.warehouse import open_published, prepare_building_copy, publish
from tests.notify.conftest import T0, outbox_row, read_outbox, smtp_settings, write_outbox


def mid(n: int) -> str:
    return f"{n:032x}"


def test_apply_ledger_updates_a_copy(paths, tmp_path):
    copy = tmp_path / "copy.duckdb"
    write_outbox(copy, [
        outbox_row(1), outbox_row(2), outbox_row(3, status="cancelled"),
        outbox_row(4, status="cancelled"), outbox_row(5, status="held"),
        outbox_row(6, status="held"), outbox_row(7, status="deferred"),
    ])  # fmt: skip
    record_outcomes(paths, [
        Outcome(mid(1), "sent", 1, T0, None, T0),
        Outcome(mid(2), "failed", 1, None, "550 5.1.1 no such user", T0),
        Outcome(mid(3), "pending", 2, None, "451 later", T0),  # the build's cancel stays
        Outcome(mid(4), "sent", 1, T0, None, T0),  # sent wins over a later cancel
        Outcome(mid(7), "pending", 1, None, "421 busy", T0),
    ])  # fmt: skip
    release(paths, [mid(5)])

    with duckdb.connect(str(copy)) as con:
        changed = apply_ledger(con, paths)
        again = apply_ledger(con, paths)

    rows = read_outbox(copy)
    assert (changed, again) == (6, 0)
    assert (rows[mid(1)]["status"], rows[mid(1)]["attempts"]) == ("sent", 1)
    assert rows[mid(1)]["sent_at"] == T0
    assert (rows[mid(2)]["status"], rows[mid(2)]["last_error"]) == (
        "failed",
        "550 5.1.1 no such user",
    )
    assert (rows[mid(3)]["status"], rows[mid(3)]["attempts"]) == ("cancelled", 2)
    assert rows[mid(4)]["status"] == "sent"
    assert rows[mid(5)]["status"] == "pending"  # released
    assert rows[mid(6)]["status"] == "held"
    assert (rows[mid(7)]["status"], rows[mid(7)]["last_error"]) == ("pending", "421 busy")


def test_apply_ledger_without_a_ledger_or_outbox_changes_nothing(paths, tmp_path):
    copy = tmp_path / "copy.duckdb"
    write_outbox(copy, [outbox_row(1)])
    with duckdb.connect(str(copy)) as con:
        assert apply_ledger(con, paths) == 0
    record_outcomes(paths, [Outcome(mid(1), "sent", 1, T0, None, T0)])
    with duckdb.connect(str(tmp_path / "empty.duckdb")) as con:
        assert apply_ledger(con, paths) == 0


def test_republish_leaves_readers_reading(paths, publish_outbox, sender, templates_dir):
    publish_outbox([outbox_row(n) for n in range(1, 4)])
    prepare_building_copy(paths)  # bring the published file to the pipeline's shape
    publish(paths)
    deliver_pending(paths, SmtpSettings(host=None), sender, templates_dir=templates_dir)
    reader = open_published(paths)  # a BI tool with the old file open
    assert pending_changes(paths) == 3

    assert republish_outbox(paths) is True

    old = reader.execute("select count(*) from notification_outbox where status = 'pending'")
    assert old.fetchone()[0] == 3  # still the file it opened, undisturbed
    reader.close()
    assert {r["status"] for r in read_outbox(paths.published).values()} == {"sent"}
    assert republish_outbox(paths) is False  # nothing newer: no copy, no rename
    assert pending_changes(paths) == 0


def test_release_and_rate_window(paths):
    with Ledger(paths) as ledger:
        assert ledger.release([mid(1), mid(1), mid(2)]) == 2
        assert ledger.release([mid(2)]) == 0
        ledger.record_outcomes([
            Outcome(mid(3), "sent", 1, T0 - timedelta(seconds=90), None, T0),
            Outcome(mid(4), "sent", 1, T0 - timedelta(seconds=30), None, T0),
            Outcome(mid(4), "sent", 1, T0 - timedelta(seconds=20), None, T0),  # latest wins
            Outcome(mid(5), "failed", 1, None, "550", T0),
        ])  # fmt: skip
        assert ledger.released() == {mid(1), mid(2)}
    assert sent_in_last(paths, 60, now=T0) == 1


def test_alert_is_sent_once_per_key(paths, handler, smtp_port, sender):
    settings = smtp_settings(smtp_port)
    first = send_alert(
        paths, settings, sender, alert_key="run-7:failed", recipients=["data@example.org"],
        subject="learnops run failed\r\nBcc: x@example.net", body="dbt test failed",
    )  # fmt: skip
    second = send_alert(
        paths, settings, sender, alert_key="run-7:failed", recipients=["data@example.org"],
        subject="learnops run failed", body="dbt test failed",
    )  # fmt: skip

    assert (first, second) == ("sent", "duplicate")
    (received,) = handler.received
    assert received.rcpt_tos == ["data@example.org"]
    assert received.message["Subject"] == "learnops run failed Bcc: x@example.net"
    assert received.message["Bcc"] is None


def test_alert_without_smtp_is_an_eml_file(paths, sender):
    status = send_alert(
        paths, SmtpSettings(host=None), sender, alert_key="guard:user",
        recipients=["data@example.org"], subject="removal guard", body="12% of users",
    )  # fmt: skip
    assert status == "sent"
    assert len(list((paths.state_dir / "outbox").glob("alert-*.eml"))) == 1


def test_alert_failure_is_reported_not_raised(paths, handler, smtp_port, sender):
    handler.refuse("data@example.org", "550 5.7.1 relaying denied")
    status = send_alert(
        paths, smtp_settings(smtp_port), sender, alert_key="k", recipients=["data@example.org"],
        subject="s", body="b",
    )  # fmt: skip
    assert status == "failed"
    with Ledger(paths) as ledger:
        assert not ledger.alert_sent("k")  # the next run tries again
