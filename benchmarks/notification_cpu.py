"""CPU seconds of the three notification models for one run of a kept benchmark warehouse.

On a loaded machine wall times say little; this times each model's compiled SQL in CPU
seconds (2 threads), so two designs can be compared on the same state:

1. copy WAREHOUSE (kept by `bench_notifications.py --keep`) and roll the copy back to before
   run N: the outbox rows of run N and later removed, the rows they cancelled made unsent
   again, run_context set to run N (the marts stay those of the last run kept, so run N
   should be the last one for an exact state);
2. dbt-build the notification models on a second copy with the code of REPO (this checkout
   by default; `git archive <commit> flows dbt_project | tar -x -C DIR` gives an older one)
   to get their compiled SQL;
3. run that SQL on the rolled-back copy: events and messages as tables, the outbox as its
   select plus the delete and insert of dbt's delete+insert.

    .venv/bin/python benchmarks/notification_cpu.py \\
        benchmarks/output/warehouse_notifications_100000.duckdb 3 [--repo DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parent.parent

BUILD = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from flows.build import build_warehouse
build_warehouse(Path(sys.argv[2]), state_dir=Path(sys.argv[3]), select=sys.argv[4])
"""

SELECT = (
    "stg_learnops__run_context int_notification_events+ int_notification_messages+ "
    "notification_outbox+"
)

MODELS = (
    ("int_notification_events", "intermediate"),
    ("int_notification_messages", "intermediate"),
    ("notification_outbox", "marts"),
)


def roll_back(database: Path, run: int, *, keep_hash: bool) -> None:
    """Make `database` the state before its run number `run` (1-based, by as-of); without
    `keep_hash` the outbox loses dedupe_hash (a design before it fails its contract)."""
    with duckdb.connect(str(database)) as con:
        if not keep_hash:
            con.execute("alter table main.notification_outbox drop column if exists dedupe_hash")
        runs = con.execute(
            "select run_id, as_of from learnops.run_log order by as_of, started_at"
        ).fetchall()
        for run_id, _ in runs[run - 1 :]:
            con.execute("delete from main.notification_outbox where created_run_id = ?", [run_id])
        con.execute(
            "update main.notification_outbox set status = case when not_before is not null "
            "then 'deferred' else 'pending' end where status = 'cancelled'"
        )
        run_id, as_of = runs[run - 1]
        previous_id, previous_as_of = runs[run - 2]
        # an older design's run_context lacks these (the DDL is ours, not an admin's)
        con.execute(
            "alter table learnops.run_context add column if not exists previous_run_id varchar"
        )
        con.execute(
            "alter table learnops.run_context add column if not exists previous_as_of timestamp"
        )
        con.execute("delete from learnops.run_context")
        con.execute(
            "insert into learnops.run_context (run_id, as_of, is_baseline, site_timezone, "
            "previous_run_id, previous_as_of) values (?, ?, false, 'UTC', ?, ?)",
            [run_id, as_of, previous_id, previous_as_of],
        )


def time_models(database: Path, compiled: Path) -> None:
    with duckdb.connect(str(database)) as con:
        con.execute("set threads = 2")
        for name, layer in MODELS:
            sql = (compiled / layer / f"{name}.sql").read_text(encoding="utf-8")
            load = os.getloadavg()[0]
            wall, cpu = time.perf_counter(), time.process_time()
            if name == "notification_outbox":
                con.execute(f"create temp table made as {sql}")
                con.execute(
                    "delete from main.notification_outbox where message_id in "
                    "(select message_id from made) and status in ('pending', 'held', 'deferred')"
                )
                con.execute("insert into main.notification_outbox by name select * from made")
                rows = con.execute("select count(*) from made").fetchone()[0]
            else:
                con.execute(f"create or replace table intermediate.{name} as {sql}")
                rows = con.execute(f"select count(*) from intermediate.{name}").fetchone()[0]  # noqa: S608
            print(
                f"  {name:<27} {time.process_time() - cpu:6.2f} s CPU "
                f"{time.perf_counter() - wall:6.2f} s wall {rows:>10,} rows  load {load:.1f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("warehouse", type=Path)
    parser.add_argument("run", type=int, help="the run to time (2 or more)")
    parser.add_argument("--repo", type=Path, default=REPO, help="code whose models are timed")
    options = parser.parse_args()
    options.warehouse = options.warehouse.resolve()  # the build runs from the repo's folder
    with tempfile.TemporaryDirectory(dir=options.warehouse.parent) as scratch:
        base = Path(scratch) / "base.duckdb"
        shutil.copyfile(options.warehouse, base)
        outbox_model = options.repo / "dbt_project" / "models" / "marts" / "notification_outbox.sql"
        roll_back(base, options.run, keep_hash="dedupe_hash" in outbox_model.read_text())
        building = Path(scratch) / "building.duckdb"
        shutil.copyfile(base, building)
        state = Path(scratch) / "state"
        subprocess.run(
            [sys.executable, "-c", BUILD, str(options.repo), str(building), str(state), SELECT],
            check=True,
            cwd=options.repo,
            stdout=subprocess.DEVNULL,
        )
        shutil.copyfile(base, building)
        print(f"{options.warehouse.name}, run {options.run}, models of {options.repo}:")
        time_models(building, state / "dbt" / "target" / "compiled" / "learnops" / "models")


if __name__ == "__main__":
    main()
