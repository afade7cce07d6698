"""The warehouse file: one writer at a time, readers never blocked, atomic publish (§2).

DuckDB lets one process write a file and locks everyone else out meanwhile, so a run never
writes the published file. It takes the writer lock, copies the published file to
``<state>/building.duckdb``, builds the next state there and, only when every step passed,
renames it over the published file. ``rename`` is atomic: readers see the old state or the
new one, never a mix, and a reader that opened the old file keeps reading it undisturbed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from flows.state_schema import ensure_state_schema


class WarehouseLockedError(RuntimeError):
    """Another writer holds the warehouse lock."""


@dataclass(frozen=True)
class WarehousePaths:
    """Where one warehouse keeps its files."""

    published: Path

    @property
    def state_dir(self) -> Path:
        return self.published.with_name(self.published.name + ".learnops")

    @property
    def building(self) -> Path:
        return self.state_dir / "building.duckdb"

    @property
    def lock(self) -> Path:
        return self.state_dir / "lock"

    @property
    def archive_dir(self) -> Path:
        return self.state_dir / "archive"


def warehouse_paths(path: Path) -> WarehousePaths:
    """Paths for the warehouse at `path`, made absolute (dbt and DuckDB resolve differently)."""
    return WarehousePaths(published=path.expanduser().resolve())


@contextlib.contextmanager
def writer_lock(paths: WarehousePaths, *, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the one-writer lock; wait up to `wait_seconds`, then give up with a clear error.

    An fcntl lock is released by the kernel when its process dies, so a crashed run never
    leaves a stale lock behind.
    """
    paths.state_dir.mkdir(parents=True, exist_ok=True)
    handle = paths.lock.open("a+")
    deadline = time.monotonic() + wait_seconds
    try:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = paths.lock.read_text().strip() or "another process"
                    raise WarehouseLockedError(
                        f"warehouse {paths.published} is being written by {holder}; "
                        f"waited {wait_seconds:.0f} s. Try again when that run has finished"
                    ) from None
                time.sleep(0.5)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {datetime.now().isoformat(timespec='seconds')}\n")
        handle.flush()
        yield
    finally:
        handle.close()


def prepare_building_copy(paths: WarehousePaths) -> Path:
    """Start the next state from a copy of the published one (or from nothing)."""
    paths.state_dir.mkdir(parents=True, exist_ok=True)
    for stale in (paths.building, paths.building.with_name(paths.building.name + ".wal")):
        stale.unlink(missing_ok=True)
    if paths.published.exists():
        shutil.copyfile(paths.published, paths.building)
    with duckdb.connect(str(paths.building)) as con:
        ensure_state_schema(con)
    return paths.building


def publish(paths: WarehousePaths) -> None:
    """Make the building copy the published state in one atomic rename."""
    with duckdb.connect(str(paths.building)) as con:
        con.execute("checkpoint")  # fold the WAL in: the published file must stand alone
    with paths.building.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(paths.building, paths.published)


def open_published(paths: WarehousePaths) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the published state."""
    if not paths.published.exists():
        raise FileNotFoundError(
            f"no published warehouse at {paths.published}: run `learnops run` first"
        )
    return duckdb.connect(str(paths.published), read_only=True)


@contextlib.contextmanager
def attached(con: duckdb.DuckDBPyConnection, path: Path, alias: str) -> Iterator[None]:
    """`path` attached read-only as `alias` (our own name, never rule or feed text) for the
    block, detached after."""
    con.execute(f"attach ? as {alias} (read_only)", [str(path)])
    try:
        yield
    finally:
        con.execute(f"detach {alias}")


def fetch_dicts(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()
) -> list[dict[str, Any]]:
    """Rows of a parameterised query as dictionaries keyed by column name."""
    cursor = con.execute(sql, list(params))
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def table_exists(
    con: duckdb.DuckDBPyConnection, schema: str, table: str, *, catalog: str | None = None
) -> bool:
    """Whether `schema.table` exists in `catalog` (default: the connection's own database,
    not one it attached)."""
    row = con.execute(
        "select count(*) from information_schema.tables "
        "where table_catalog = coalesce(?, current_database()) "
        "and table_schema = ? and table_name = ?",
        [catalog, schema, table],
    ).fetchone()
    return bool(row[0])


def last_published_run(paths: WarehousePaths) -> tuple[str, datetime] | None:
    """(run_id, as_of) of the newest succeeded run in the published state, if any."""
    if not paths.published.exists():
        return None
    with open_published(paths) as con:
        if not table_exists(con, "learnops", "run_log"):
            return None
        row = con.execute(
            "select run_id, as_of from learnops.run_log where status = 'succeeded' "
            "order by as_of desc, started_at desc limit 1"
        ).fetchall()
    return (row[0][0], row[0][1]) if row else None


def count_runs(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute("select count(*) from learnops.run_log").fetchall()[0][0]
