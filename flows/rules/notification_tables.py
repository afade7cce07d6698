"""Notifications as data: the validated `rules/notifications.yaml` in the `rules` schema.

dbt derives every notification event by joining these tables to the marts (docs/
notifications.md), so no rule value reaches SQL as text (SPEC §4): ids, addresses and names
travel as rows. Offsets are stored as (months, seconds) like every period
(docs/programs.md); their direction follows from the trigger
(:data:`flows.rules.notifications.OFFSET_BEFORE`).

Tables (replaced every run; columns in `RULES_DDL`): ``rules.notification_setting`` (exactly
one row, the defaults when the file is missing), ``rules.notification``,
``rules.notification_scope``, ``rules.notification_address``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb
import polars as pl

from flows.rules.notifications import Notification, NotificationSettings, NotificationsFile
from flows.rules.programs import Period
from flows.rules.tables import RULES_SCHEMA
from flows.rules.validation import LoadedRules

SETTING_SCHEMA = {
    "sender_address": pl.String,
    "sender_name": pl.String,
    "reply_to": pl.String,
    "admins": pl.List(pl.String),
    "max_per_run": pl.Int32,
    "max_lateness_months": pl.Int32,
    "max_lateness_seconds": pl.Int64,
    "per_user_daily_cap": pl.Int32,
    "manager_digest": pl.Boolean,
    "relay_rate_per_minute": pl.Int32,
    "alert_addresses": pl.List(pl.String),
    "alert_reject_share": pl.Float64,
}
NOTIFICATION_SCHEMA = {
    "notification_id": pl.String,
    "trigger": pl.String,
    "offset_months": pl.Int32,
    "offset_seconds": pl.Int64,
    "scope_kind": pl.String,
    "template": pl.String,
    "enabled": pl.Boolean,
    "to_learner": pl.Boolean,
    "to_managers": pl.Boolean,
    "to_admins": pl.Boolean,
    "line": pl.Int32,
}
SCOPE_SCHEMA = {"notification_id": pl.String, "object_id": pl.String}
ADDRESS_SCHEMA = {"notification_id": pl.String, "email": pl.String}


@dataclass
class NotificationTables:
    """The rows of the four notification rule tables, before they are written."""

    settings: list[dict[str, Any]] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    scopes: list[dict[str, Any]] = field(default_factory=list)
    addresses: list[dict[str, Any]] = field(default_factory=list)

    def frames(self) -> dict[str, pl.DataFrame]:
        """Table name -> its rows, typed as the DDL declares them."""
        return {
            "notification_setting": pl.DataFrame(self.settings, schema=SETTING_SCHEMA),
            "notification": pl.DataFrame(self.notifications, schema=NOTIFICATION_SCHEMA),
            "notification_scope": pl.DataFrame(self.scopes, schema=SCOPE_SCHEMA),
            "notification_address": pl.DataFrame(self.addresses, schema=ADDRESS_SCHEMA),
        }


@dataclass(frozen=True)
class NotificationsLoadSummary:
    """How many notifications were written, and how many of them are enabled."""

    notifications: int
    enabled: int


def build_notification_tables(
    rules: NotificationsFile, lines: dict[str, int] | None = None
) -> NotificationTables:
    """Rows of the notification rule tables; `lines` maps an id to its line in the file."""
    lines = lines or {}
    tables = NotificationTables(settings=[_setting_row(rules.settings)])
    for notification in rules.notifications:
        tables.notifications.append(_notification_row(notification, lines.get(notification.id)))
        tables.scopes += [
            {"notification_id": notification.id, "object_id": object_id}
            for object_id in notification.scope_ids
        ]
        tables.addresses += [
            {"notification_id": notification.id, "email": email}
            for email in dict.fromkeys(notification.addresses)
        ]
    return tables


def _span(prefix: str, period: Period | None) -> dict[str, Any]:
    span = period.span if period is not None else None
    return {
        f"{prefix}_months": span.months if span else None,
        f"{prefix}_seconds": span.seconds if span else None,
    }


def _setting_row(settings: NotificationSettings) -> dict[str, Any]:
    sender = settings.sender
    return {
        "sender_address": sender.address if sender else None,
        "sender_name": sender.name if sender else None,
        "reply_to": settings.reply_to,
        "admins": list(dict.fromkeys(settings.admins)),
        "max_per_run": settings.max_per_run,
        **_span("max_lateness", settings.max_lateness),
        "per_user_daily_cap": settings.per_user_daily_cap,
        "manager_digest": settings.manager_digest,
        "relay_rate_per_minute": settings.relay_rate_per_minute,
        "alert_addresses": list(dict.fromkeys(settings.alert_addresses)),
        "alert_reject_share": settings.alert_reject_share,
    }


def _notification_row(notification: Notification, line: int | None) -> dict[str, Any]:
    roles = notification.roles
    return {
        "notification_id": notification.id,
        "trigger": notification.trigger,
        **_span("offset", notification.offset),
        "scope_kind": notification.scope_kind,
        "template": notification.template_name,
        "enabled": notification.enabled,
        "to_learner": "learner" in roles,
        "to_managers": "managers" in roles,
        "to_admins": "admins" in roles,
        "line": line,
    }


def write_notification_tables(con: duckdb.DuckDBPyConnection, tables: NotificationTables) -> None:
    """Replace the rows of the notification rule tables (DDL in flows/state_schema.py)."""
    con.execute("begin")
    for name, frame in tables.frames().items():
        con.register("notification_rows", frame.to_arrow())
        # the table names are ours, never an admin's: rule values only travel as rows
        con.execute(f"delete from {RULES_SCHEMA}.{name}")  # noqa: S608
        con.execute(
            f"insert into {RULES_SCHEMA}.{name} by name select * from notification_rows"  # noqa: S608
        )
        con.unregister("notification_rows")
    con.execute("commit")


def load_notification_tables(
    con: duckdb.DuckDBPyConnection, loaded: LoadedRules
) -> NotificationsLoadSummary:
    """(Re)write the notification rule tables from the validated rules (rules stage).

    Scope ids were checked against the rules by `validate_rules`; whether a program in scope
    is broken in this run is the program's own state (rules.program.is_broken).
    """
    rules = loaded.notifications
    write_notification_tables(con, build_notification_tables(rules, loaded.notification_lines))
    return NotificationsLoadSummary(
        notifications=len(rules.notifications),
        enabled=sum(notification.enabled for notification in rules.notifications),
    )
