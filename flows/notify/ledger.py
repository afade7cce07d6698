"""The delivery ledger `<warehouse>.learnops/delivery.duckdb` (docs/notifications.md).

The published warehouse is never written in place, so delivery writes what it learns here,
in small committed batches, and the ledger is the truth about delivery:

- ``delivery_outcome``: the latest outcome per message. ``sent`` and ``failed`` are
  terminal; ``pending`` with ``attempts > 0`` is a transient failure still to be retried.
- ``release``: held messages an admin released.
- ``alert_delivery``: run alerts already sent (deduplicated by key).

Only a holder of the warehouse writer lock opens the ledger for writing (the sender, the
pipeline, `notify --release`); DuckDB would refuse a second writing process anyway. The
ledger is folded into `notification_outbox` by `apply_ledger`, before every build and by
`republish_outbox` after a send.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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

LEDGER_FILE = "delivery.duckdb"
TERMINAL = ("sent", "failed")
# Statuses delivery may still move on; a build's own verdicts (cancelled, ...) are kept
# unless the ledger knows the message was actually sent or failed.
SENDABLE = ("pending", "held", "deferred")

LEDGER_DDL = """
create table if not exists delivery_outcome (
    message_id  varchar primary key,
    status      varchar not null,      -- sent | failed | pending (retry later)
    attempts    integer not null,
    sent_at     timestamptz,           -- wall clock of the successful send
    last_error  varchar,               -- server reply or connection error, last failure
    recorded_at timestamptz not null
);
create table if not exists release (
    message_id  varchar primary key,
    released_at timestamptz not null
);
create table if not exists alert_delivery (
    alert_key   varchar primary key,
    sent_at     timestamptz not null
);
"""

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,2}$")


@dataclass(frozen=True)
class Outcome:
    """What one delivery attempt of one message ended in."""

    message_id: str
    status: str  # sent | failed | pending
    attempts: int
    sent_at: datetime | None
    last_error: str | None
    recorded_at: datetime


def ledger_path(paths: WarehousePaths) -> Path:
    """Where the ledger of the warehouse at `paths` lives."""
    return paths.state_dir / LEDGER_FILE


class Ledger:
    """A writing connection to the ledger; use as a context manager and keep it short."""

    def __init__(self, paths: WarehousePaths) -> None:
        paths.state_dir.mkdir(parents=True, exist_ok=True)
        self.path = ledger_path(paths)
        self.con = duckdb.connect(str(self.path))
        self.con.execute("set TimeZone = 'UTC'")
        self.con.execute(LEDGER_DDL)

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (the file lock goes with it)."""
        self.con.close()

    def record_outcomes(self, batch: Sequence[Outcome]) -> None:
        """Commit a batch of outcomes in one transaction; the latest per message wins."""
        latest: dict[str, Outcome] = {}
        for outcome in batch:
            latest[outcome.message_id] = outcome  # one upsert per key and statement
        if not latest:
            return
        rows = [
            (o.message_id, o.status, o.attempts, o.sent_at, o.last_error, o.recorded_at)
            for o in latest.values()
        ]
        _insert_rows(self.con, "insert or replace into delivery_outcome", rows)

    def outcomes(self) -> dict[str, tuple[str, int]]:
        """message_id -> (status, attempts) for every message the ledger knows."""
        rows = self.con.execute(
            "select message_id, status, attempts from delivery_outcome"
        ).fetchall()
        return {message_id: (status, attempts) for message_id, status, attempts in rows}

    def released(self) -> set[str]:
        """Ids of held messages an admin released."""
        return {r[0] for r in self.con.execute("select message_id from release").fetchall()}

    def release(self, message_ids: Iterable[str], *, now: datetime | None = None) -> int:
        """Release held messages so the next send delivers them; returns how many were new."""
        stamp = now or datetime.now(UTC)
        ids = sorted(set(message_ids))
        before = self.con.execute("select count(*) from release").fetchone()[0]
        _insert_rows(self.con, "insert or ignore into release", [(i, stamp) for i in ids])
        return self.con.execute("select count(*) from release").fetchone()[0] - before

    def sent_in_last(self, seconds: float, *, now: datetime | None = None) -> list[datetime]:
        """Send instants (oldest first) within `seconds` before `now`: seeds the rate limit."""
        since = (now or datetime.now(UTC)) - timedelta(seconds=seconds)
        rows = self.con.execute(
            "select sent_at from delivery_outcome "
            "where status = 'sent' and sent_at > ? order by sent_at",
            [since],
        ).fetchall()
        sent = [r[0] for r in rows] + [
            r[0]
            for r in self.con.execute(
                "select sent_at from alert_delivery where sent_at > ?", [since]
            ).fetchall()
        ]
        return sorted(sent)

    def alert_sent(self, alert_key: str) -> bool:
        """True when the alert with this key was already sent."""
        row = self.con.execute(
            "select 1 from alert_delivery where alert_key = ?", [alert_key]
        ).fetchone()
        return row is not None

    def record_alert(self, alert_key: str, sent_at: datetime) -> None:
        """Remember that the alert with this key was sent."""
        self.con.execute("insert or ignore into alert_delivery values (?, ?)", [alert_key, sent_at])


def _insert_rows(con: duckdb.DuckDBPyConnection, insert: str, rows: Sequence[tuple]) -> None:
    """`insert` (a constant prefix) of `rows` in one transaction, as multi-row VALUES.

    DuckDB's executemany runs one statement per row: about 2 ms per row against a primary
    key, which capped delivery near 200 messages/s; one statement per chunk is 20x faster.
    """
    con.execute("begin")
    for start in range(0, len(rows), 500):
        chunk = rows[start : start + 500]
        values = ", ".join("(" + ", ".join("?" * len(chunk[0])) + ")" for _ in chunk)
        con.execute(f"{insert} values {values}", [v for row in chunk for v in row])
    con.execute("commit")


def release(paths: WarehousePaths, message_ids: Iterable[str]) -> int:
    """Release held messages (caller holds the writer lock); returns how many were new."""
    with Ledger(paths) as ledger:
        return ledger.release(message_ids)


def record_outcomes(paths: WarehousePaths, batch: Sequence[Outcome]) -> None:
    """Commit `batch` to the ledger of `paths` (a short-lived connection)."""
    with Ledger(paths) as ledger:
        ledger.record_outcomes(batch)


def sent_in_last(paths: WarehousePaths, seconds: float, *, now: datetime | None = None) -> int:
    """How many messages the ledger saw sent within `seconds` before `now`."""
    if not ledger_path(paths).exists():
        return 0
    with Ledger(paths) as ledger:
        return len(ledger.sent_in_last(seconds, now=now))


def _table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    parts = table.split(".")
    schema, name = (parts[-2], parts[-1]) if len(parts) >= 2 else ("main", parts[0])
    return table_exists(con, schema, name)


# Predicates shared by the updates and by the read-only count that decides whether a
# republish is needed. `d` is an outcome of the attached ledger, `o` the outbox row.
_OUTCOME_MATCH = """
    o.message_id = d.message_id
    and (o.attempts is distinct from d.attempts
         or o.sent_at is distinct from d.sent_at
         or o.last_error is distinct from d.last_error
         or (o.status is distinct from d.status
             and (d.status in ('sent', 'failed') or o.status in ('pending', 'held', 'deferred'))))
"""
_RELEASE_MATCH = """
    o.status = 'held'
    and o.message_id in (select message_id from learnops_ledger.release)
    and o.message_id not in (select message_id from learnops_ledger.delivery_outcome)
"""


def _updates(table: str) -> tuple[str, str]:
    """The two updates folding the attached ledger into `table`."""
    # `table` was checked against _IDENTIFIER by the caller; no data reaches this text.
    from_outcomes = f"""
        update {table} as o set
            status = case when d.status in ('sent', 'failed')
                          or o.status in ('pending', 'held', 'deferred')
                     then d.status else o.status end,
            attempts = d.attempts, sent_at = d.sent_at, last_error = d.last_error
        from learnops_ledger.delivery_outcome as d
        where {_OUTCOME_MATCH}
    """  # noqa: S608
    from_releases = f"update {table} as o set status = 'pending' where {_RELEASE_MATCH}"  # noqa: S608
    return from_outcomes, from_releases


def _counts(table: str) -> tuple[str, str]:
    """Read-only counts of the rows the two updates would change."""
    return (
        f"select count(*) from {table} as o, learnops_ledger.delivery_outcome as d "  # noqa: S608
        f"where {_OUTCOME_MATCH}",
        f"select count(*) from {table} as o where {_RELEASE_MATCH}",  # noqa: S608
    )


def _attached(
    con: duckdb.DuckDBPyConnection, paths: WarehousePaths
) -> AbstractContextManager[None]:
    return attached(con, ledger_path(paths), "learnops_ledger")


def apply_ledger(
    con: duckdb.DuckDBPyConnection,
    paths: WarehousePaths,
    table: str = "main.notification_outbox",
) -> int:
    """Fold the ledger into `table` on `con` (a writable warehouse copy); returns rows changed.

    Sets status/attempts/sent_at/last_error from each recorded outcome (a build's own verdict
    such as `cancelled` is kept unless the ledger says sent or failed) and turns released
    `held` rows into `pending`. A missing ledger or table changes nothing. No ledger
    connection may be open in this process while this runs (DuckDB refuses a second handle).
    """
    if not _IDENTIFIER.match(table):
        raise ValueError(f"not a table name: {table!r}")
    if not ledger_path(paths).exists() or not _table_exists(con, table):
        return 0
    with _attached(con, paths):
        return sum(con.execute(statement).fetchone()[0] for statement in _updates(table))


def pending_changes(paths: WarehousePaths, table: str = "main.notification_outbox") -> int:
    """How many outbox rows of the published warehouse the ledger would change (read-only)."""
    if not _IDENTIFIER.match(table):
        raise ValueError(f"not a table name: {table!r}")
    if not ledger_path(paths).exists() or not paths.published.exists():
        return 0
    with open_published(paths) as con:
        if not _table_exists(con, table):
            return 0
        with _attached(con, paths):
            return sum(con.execute(statement).fetchone()[0] for statement in _counts(table))


def republish_outbox(paths: WarehousePaths, table: str = "main.notification_outbox") -> bool:
    """Publish a copy of the warehouse whose outbox carries the ledger; False if nothing new.

    The caller holds the writer lock. Readers keep the file they opened; new readers see
    the republished one after the atomic rename (flows/warehouse.py).
    """
    if pending_changes(paths, table) == 0:
        return False
    building = prepare_building_copy(paths)
    with duckdb.connect(str(building)) as con:
        apply_ledger(con, paths, table)
    publish(paths)
    return True
