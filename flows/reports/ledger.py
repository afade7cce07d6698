"""The report ledger `<warehouse>.learnops/reports.duckdb`: the truth about `report_delivery`.

As for notifications (flows/notify/ledger.py), the published warehouse is never written in
place: the sender records each (report, recipient, period) here as soon as its outcome is
known, then folds the ledger into `learnops.report_delivery_log` of a fresh copy and
publishes it (`republish_deliveries`); every pipeline build folds it in before dbt
(`apply_report_ledger`), so the `report_delivery` view always carries it.

`sent`, `failed` (a permanent refusal) and `skipped_empty` are final for their period: that
period is never sent again to that recipient. A transient failure that ran out of attempts
is recorded `pending` and retried by the next send of the same period.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from flows.warehouse import (
    WarehousePaths,
    attached,
    open_published,
    prepare_building_copy,
    publish,
    table_exists,
)

LEDGER_FILE = "reports.duckdb"
FINAL = ("sent", "failed", "skipped_empty")
COLUMNS = (
    "report_id", "recipient_email", "period_start", "status", "row_count", "sent_at",
    "message_id", "attempts", "last_error",
)  # fmt: skip

LEDGER_DDL = """
create table if not exists report_delivery (
    report_id        varchar not null,
    recipient_email  varchar not null,
    period_start     timestamp not null,
    status           varchar not null,      -- sent | failed | skipped_empty | pending
    row_count        bigint,
    sent_at          timestamp,
    message_id       varchar,
    attempts         integer,
    last_error       varchar,
    recorded_at      timestamp not null,
    primary key (report_id, recipient_email, period_start)
);
"""


@dataclass(frozen=True)
class Delivery:
    """The outcome of one report to one recipient for one period."""

    report_id: str
    recipient_email: str  # lower-cased
    period_start: datetime  # naive UTC
    status: str
    row_count: int
    sent_at: datetime | None
    message_id: str | None
    attempts: int
    last_error: str | None
    recorded_at: datetime

    def row(self) -> tuple:
        return (*(getattr(self, c) for c in COLUMNS), self.recorded_at)


def report_ledger_path(paths: WarehousePaths) -> Path:
    """Where the report ledger of the warehouse at `paths` lives."""
    return paths.state_dir / LEDGER_FILE


class ReportLedger:
    """A writing connection to the report ledger (the caller holds the writer lock)."""

    def __init__(self, paths: WarehousePaths) -> None:
        paths.state_dir.mkdir(parents=True, exist_ok=True)
        self.con = duckdb.connect(str(report_ledger_path(paths)))
        self.con.execute(LEDGER_DDL)

    def __enter__(self) -> ReportLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.con.close()

    def final_recipients(self, report_id: str, period_start: datetime) -> set[str]:
        """Recipients whose delivery of this period is final (never to be sent again)."""
        rows = self.con.execute(
            "select recipient_email from report_delivery where report_id = ? "
            "and period_start = ? and status in ('sent', 'failed', 'skipped_empty')",
            [report_id, period_start],
        ).fetchall()
        return {email for (email,) in rows}

    def attempts(self, report_id: str, period_start: datetime) -> dict[str, int]:
        """recipient -> attempts so far for this period (pending ones included)."""
        rows = self.con.execute(
            "select recipient_email, attempts from report_delivery "
            "where report_id = ? and period_start = ?",
            [report_id, period_start],
        ).fetchall()
        return {email: attempts or 0 for email, attempts in rows}

    def record(self, batch: Sequence[Delivery]) -> None:
        """Commit a batch of outcomes in one transaction (multi-row VALUES, as the mail
        ledger does: DuckDB's executemany is one statement per row)."""
        rows = [d.row() for d in {(d.report_id, d.recipient_email, d.period_start): d
                                  for d in batch}.values()]  # fmt: skip
        if not rows:
            return
        self.con.execute("begin")
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            values = ", ".join("(" + ", ".join("?" * len(chunk[0])) + ")" for _ in chunk)
            self.con.execute(
                f"insert or replace into report_delivery values {values}",  # noqa: S608
                [v for row in chunk for v in row],
            )
        self.con.execute("commit")


def _attached(
    con: duckdb.DuckDBPyConnection, paths: WarehousePaths
) -> AbstractContextManager[None]:
    return attached(con, report_ledger_path(paths), "report_ledger")


_FOLD = """
    delete from learnops.report_delivery_log;
    insert into learnops.report_delivery_log
    select report_id, recipient_email, period_start, status, row_count, sent_at, message_id,
           attempts, last_error
    from report_ledger.report_delivery where status in ('sent', 'failed', 'skipped_empty');
"""


def apply_report_ledger(con: duckdb.DuckDBPyConnection, paths: WarehousePaths) -> int:
    """Replace `learnops.report_delivery_log` on `con` (a writable copy) with the ledger's
    final rows; returns how many. A missing ledger changes nothing."""
    if not report_ledger_path(paths).exists():
        return 0
    with _attached(con, paths):
        con.execute(_FOLD)
        return con.execute("select count(*) from learnops.report_delivery_log").fetchone()[0]


def _differs(paths: WarehousePaths) -> bool:
    """Whether the published log lacks (or has other) rows than the ledger's final ones."""
    if not report_ledger_path(paths).exists() or not paths.published.exists():
        return False
    with open_published(paths) as con, _attached(con, paths):
        if not table_exists(con, "learnops", "report_delivery_log"):
            return True
        cols = ", ".join(COLUMNS)
        (count,) = con.execute(
            f"select count(*) from ((select {cols} from report_ledger.report_delivery "  # noqa: S608
            "where status in ('sent', 'failed', 'skipped_empty') "
            f"except select {cols} from learnops.report_delivery_log) union all "
            f"(select {cols} from learnops.report_delivery_log except select {cols} "
            "from report_ledger.report_delivery))"
        ).fetchone()
    return count > 0


def republish_deliveries(paths: WarehousePaths) -> bool:
    """Publish a copy whose report_delivery carries the ledger; False if nothing changed.
    The caller holds the writer lock."""
    if not _differs(paths):
        return False
    building = prepare_building_copy(paths)
    with duckdb.connect(str(building)) as con:
        apply_report_ledger(con, paths)
    publish(paths)
    return True
