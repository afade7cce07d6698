"""The notify step (SPEC §2 step 5, §6): send what the published outbox holds, then republish.

Called at the end of a pipeline run (unless `--no-send`) and by the frequent sending flow
(`learnops notify`). Both hold the warehouse writer lock: delivery records outcomes in the
ledger beside the warehouse and then republishes the outbox with them, so no two senders
ever pick the same message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from flows.notify.deliver import DeliveryReport, deliver_pending, send_alert, utc_now
from flows.notify.ledger import release, republish_outbox
from flows.notify.render import Sender
from flows.notify.settings import SmtpSettings
from flows.rules.notifications import TEMPLATES_DIR
from flows.warehouse import WarehousePaths, open_published, table_exists, writer_lock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NotificationSettings:
    """The settings section of rules/notifications.yaml as the published run loaded it."""

    sender: Sender | None
    relay_rate_per_minute: int | None
    alert_addresses: tuple[str, ...]
    alert_reject_share: float


def published_notification_settings(paths: WarehousePaths) -> NotificationSettings | None:
    """The notification settings of the published state; None before the first run."""
    if not paths.published.exists():
        return None
    with open_published(paths) as con:
        if not table_exists(con, "rules", "notification_setting"):
            return None
        row = con.execute(
            "select sender_address, sender_name, reply_to, relay_rate_per_minute, "
            "alert_addresses, alert_reject_share from rules.notification_setting"
        ).fetchone()
    if row is None:
        return None
    address, name, reply_to, rate, alerts, reject_share = row
    sender = Sender(address=address, name=name or "", reply_to=reply_to) if address else None
    return NotificationSettings(sender, rate, tuple(alerts or ()), reject_share)


def send_pending(
    paths: WarehousePaths,
    *,
    smtp: SmtpSettings | None = None,
    templates_dir: Path = TEMPLATES_DIR,
    now: Callable[[], datetime] = utc_now,
    limit: int | None = None,
) -> DeliveryReport | None:
    """Deliver the published outbox's due messages and republish it; the caller holds the
    writer lock. None when there is nothing to send from (no run yet, no sender set)."""
    settings = published_notification_settings(paths)
    if settings is None or settings.sender is None:
        return None
    report = deliver_pending(
        paths,
        smtp or SmtpSettings(),
        settings.sender,
        templates_dir=templates_dir,
        now=now,
        rate_per_minute=settings.relay_rate_per_minute,
        limit=limit,
    )
    republish_outbox(paths)
    return report


def held_message_ids(paths: WarehousePaths, run_id: str | None = None) -> list[str]:
    """Held messages of the published outbox: all of them, or those one run created."""
    with open_published(paths) as con:
        if not table_exists(con, "main", "notification_outbox"):
            return []
        rows = con.execute(
            "select message_id from main.notification_outbox where status = 'held' "
            "and (? is null or created_run_id = ?) order by message_id",
            [run_id, run_id],
        ).fetchall()
    return [message_id for (message_id,) in rows]


def release_held(paths: WarehousePaths, run_id: str | None = None) -> int:
    """Release held messages (the mass-send guard's hold) so the next send delivers them."""
    return release(paths, held_message_ids(paths, run_id))


def alert(
    paths: WarehousePaths,
    *,
    alert_key: str,
    subject: str,
    lines: Iterable[str],
    smtp: SmtpSettings | None = None,
) -> str:
    """Mail a run alert to the data team once per key; returns send_alert's outcome.

    The addresses and sender come from the last published notification settings: a run
    that failed has published nothing newer.
    """
    settings = published_notification_settings(paths)
    if settings is None or settings.sender is None or not settings.alert_addresses:
        return "no_recipients"
    try:
        return send_alert(
            paths,
            smtp or SmtpSettings(),
            settings.sender,
            alert_key=alert_key,
            recipients=settings.alert_addresses,
            subject=subject,
            body="\n".join(lines),
        )
    except Exception as error:  # an alert must never hide the run's own outcome
        log.error("run alert %s failed: %s", alert_key, error)
        return "failed"


@dataclass(frozen=True)
class NotifyOutcome:
    """What one `learnops notify` did: messages released, then the delivery report."""

    released: int
    delivery: DeliveryReport | None


def notify(
    paths: WarehousePaths,
    *,
    release: bool = False,
    release_run_id: str | None = None,
    lock_wait_seconds: float = 0.0,
    templates_dir: Path = TEMPLATES_DIR,
) -> NotifyOutcome:
    """The sending flow's work: under the writer lock, release held messages if asked,
    send everything due and republish the outbox."""
    with writer_lock(paths, wait_seconds=lock_wait_seconds):
        released = release_held(paths, release_run_id) if release or release_run_id else 0
        return NotifyOutcome(released, send_pending(paths, templates_dir=templates_dir))


def describe_delivery(outcome: NotifyOutcome) -> list[str]:
    """Summary lines for the CLI and the flow's log."""
    lines = [f"released {outcome.released} held messages"] if outcome.released else []
    report = outcome.delivery
    if report is None:
        return [*lines, "mail: nothing to send (no published run with a sender configured)"]
    where = "SMTP" if report.mode == "smtp" else ".eml files"
    lines.append(
        f"mail: {report.sent} sent via {where}, {report.failed} failed, {report.retried} "
        f"retried, {report.rate_limited + report.unsent + report.template_errors} left pending "
        f"({report.elapsed_seconds:.1f} s)"
    )
    return lines
