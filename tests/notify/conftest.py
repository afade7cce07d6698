"""Fixtures for delivery: a hand-written published outbox, templates, SMTP servers.

The outbox is written directly (columns exactly as docs/notifications.md), so these tests
do not depend on the dbt models that build it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from flows.notify.render import Sender
from flows.notify.settings import SmtpSettings
from flows.warehouse import WarehousePaths, warehouse_paths
from tests.notify.smtp_server import FaultyHandler, running_server

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)

OUTBOX_DDL = """
create table main.notification_outbox (
    message_id varchar, dedupe_key varchar, notification_id varchar, event_type varchar,
    user_id varchar, object_kind varchar, object_id varchar, anchor_at timestamptz,
    cycle integer, trigger_at timestamptz, recipient_role varchar, recipient_user_id varchar,
    recipient_email varchar, recipient_name varchar, recipient_timezone varchar,
    recipient_lang varchar, template varchar, context varchar, status varchar,
    not_before timestamptz, digest_message_id varchar, attempts integer,
    created_at timestamptz, created_run_id varchar, sent_at timestamptz, last_error varchar
)
"""

TEMPLATES = {
    "program_due.subject.txt": "{{ object.name }} is due on {{ due_at | local_date }}",
    "program_due.txt": (
        "Hello {{ learner.first_name }},\n\n{{ object.name }} is due on "
        "{{ due_at | local_datetime }}.{% if manager_names %} Managers: "
        "{{ manager_names | join(', ') }}.{% endif %}\n"
    ),
    "program_due.html": (
        "<p>Hello {{ learner.first_name }},</p>\n<p><b>{{ object.name }}</b> is due on "
        "{{ due_at | local_datetime }}.</p>\n"
    ),
    "program_due.fr.subject.txt": "{{ object.name }} : échéance le {{ due_at | local_date }}",
    "program_due.fr.txt": "Bonjour {{ learner.first_name }},\n",
}


def outbox_row(n: int, **overrides: Any) -> dict[str, Any]:
    """A pending learner message number `n` for program P1, every column filled."""
    context = {
        "learner": {"user_id": f"U{n}", "first_name": f"Ada{n}", "last_name": "Lovelace",
                    "full_name": f"Ada{n} Lovelace"},
        "object": {"kind": "program", "id": "P1", "name": "Fire safety"},
        "due_at": "2026-06-30T16:00:00+00:00",
        "manager_names": ["Grace Hopper"],
    }  # fmt: skip
    row = {
        "message_id": f"{n:032x}",
        "dedupe_key": f"program_due|U{n}|P1|2026-06-30T16:00:00Z|0",
        "notification_id": "program_due",
        "event_type": "program_due",
        "user_id": f"U{n}",
        "object_kind": "program",
        "object_id": "P1",
        "anchor_at": datetime(2026, 6, 30, 16, tzinfo=UTC),
        "cycle": 0,
        "trigger_at": T0 - timedelta(hours=1) + timedelta(seconds=n),
        "recipient_role": "learner",
        "recipient_user_id": f"U{n}",
        "recipient_email": f"user{n}@example.com",
        "recipient_name": f"Ada{n} Lovelace",
        "recipient_timezone": "Europe/London",
        "recipient_lang": None,
        "template": "program_due",
        "context": json.dumps(context),
        "status": "pending",
        "not_before": None,
        "digest_message_id": None,
        "attempts": 0,
        "created_at": T0 - timedelta(hours=1),
        "created_run_id": "run-1",
        "sent_at": None,
        "last_error": None,
    }
    row.update(overrides)
    return row


def write_outbox(database: Path, rows: list[dict[str, Any]]) -> None:
    """(Re)create `notification_outbox` in `database` holding `rows`."""
    with duckdb.connect(str(database)) as con:
        con.execute("drop table if exists main.notification_outbox")
        con.execute(OUTBOX_DDL)
        if rows:
            columns = list(rows[0])
            con.executemany(
                f"insert into main.notification_outbox ({', '.join(columns)}) "  # noqa: S608
                f"values ({', '.join('?' for _ in columns)})",
                [[row[c] for c in columns] for row in rows],
            )
        con.execute("checkpoint")


def read_outbox(database: Path) -> dict[str, dict[str, Any]]:
    """message_id -> row of the outbox in `database` (read-only)."""
    with duckdb.connect(str(database), read_only=True) as con:
        cursor = con.execute("select * from main.notification_outbox")
        names = [d[0] for d in cursor.description]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


@pytest.fixture
def paths(tmp_path: Path) -> WarehousePaths:
    """A published warehouse holding nothing yet (tests write its outbox)."""
    return warehouse_paths(tmp_path / "warehouse.duckdb")


@pytest.fixture
def publish_outbox(paths: WarehousePaths) -> Callable[[list[dict[str, Any]]], None]:
    """Write rows as the published warehouse's outbox."""
    return lambda rows: write_outbox(paths.published, rows)


@pytest.fixture
def templates_dir(tmp_path: Path) -> Path:
    """A small templates directory: program_due with a French subject and text."""
    directory = tmp_path / "templates"
    directory.mkdir()
    for name, text in TEMPLATES.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


@pytest.fixture
def sender() -> Sender:
    return Sender(address="learning@example.org", name="Learning Team", reply_to="ld@example.org")


@pytest.fixture
def handler() -> FaultyHandler:
    return FaultyHandler()


@pytest.fixture
def smtp_port(handler: FaultyHandler) -> Iterator[int]:
    """A plain aiosmtpd server on 127.0.0.1 collecting into `handler`."""
    with running_server(handler) as port:
        yield port


def smtp_settings(port: int, **overrides: Any) -> SmtpSettings:
    """Settings for the loopback server: fast backoff so faults cost milliseconds."""
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "backoff_base": 0.01,
        "backoff_max": 0.05,
        "max_attempts": 3,
        "timeout": 5,
        "connections": 2,
    }
    values.update(overrides)
    return SmtpSettings(**values)


class FakeClock:
    """An injected wall clock that only moves when the code under test sleeps."""

    def __init__(self, start: datetime = T0) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    async def sleep(self, seconds: float) -> None:
        self.current += timedelta(seconds=max(0.0, seconds))
        await asyncio.sleep(0)
