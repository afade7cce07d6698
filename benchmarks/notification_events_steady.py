"""The notification events query in the steady state, on bench_programs.py's kept warehouse.

A 1M go-live of bench_notifications.py writes about 40M outbox rows; SPEC §10 budgets the
events of a later run (5 s at 1M users). This measures that run without the go-live:

1. copy WAREHOUSE (bench_programs.py ``--keep``: ``warehouse_programs_<users>.duckdb``, its
   marts as of the bench's first as-of), load bench_notifications.py's rules (one
   notification per trigger, scope all) with the programs' rules, snapshot the published
   program state as the previous one, and move the run context a week on;
2. dbt-build, with the code of each REPO given (this checkout by default; ``git archive
   <commit> flows dbt_project benchmarks | tar -x -C DIR`` gives an older one), the program
   models that hand state to the events (their inputs unchanged) and int_notification_events,
   and print each node's dbt time (wall, commit included);
3. run each REPO's compiled events SQL again on the first REPO's build, ``--repeat`` times,
   and print its wall and CPU seconds (2 threads, DuckDB's threads included) and whether
   the rows are the same as the first REPO's. Give the newest design first: an older
   query reads the tables a newer build writes, not always the other way round.

    flock /tmp/learnops-1m.lock .venv/bin/python benchmarks/bench_programs.py \\
        --sizes 1000000 --keep --runs 1
    flock /tmp/learnops-1m.lock .venv/bin/python benchmarks/notification_events_steady.py \\
        benchmarks/output/warehouse_programs_1000000.duckdb --repo . /tmp/old

Needs about three times the warehouse's size on disk (2.8 GB at 1M) for the copies.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.bench_notifications import notifications_yaml  # noqa: E402
from benchmarks.notification_cpu import BUILD  # noqa: E402  (the child that builds a REPO)
from flows.rules.notification_tables import load_notification_tables  # noqa: E402
from flows.rules.program_tables import snapshot_previous_program_state  # noqa: E402
from flows.rules.validation import validate_rules  # noqa: E402

#: The events, the rule views they read, and the program models whose tables they read
#: (rebuilt, so that each design's hand-over columns exist; their inputs are unchanged).
SELECT = (
    "stg_learnops__run_context stg_rules__notifications stg_rules__notification_scopes "
    "stg_rules__notification_settings stg_rules__notification_addresses "
    "int_program_assignments int_certification_cycles fct_certification_user "
    "int_program_certification_course_sets_evaluated fct_program_user int_notification_events"
)

EVENTS_SQL = Path("dbt", "target", "compiled", "learnops", "models", "intermediate",
                  "int_notification_events.sql")  # fmt: skip


def prepare(warehouse: Path, rules: Path, copy: Path) -> None:
    """`copy`: the warehouse as the run a week after its last one would see it."""
    shutil.copyfile(warehouse, copy)
    with tempfile.TemporaryDirectory() as scratch:
        rules_dir = Path(scratch)
        shutil.copytree(rules, rules_dir, dirs_exist_ok=True)
        (rules_dir / "notifications.yaml").write_text(notifications_yaml(), encoding="utf-8")
        loaded = validate_rules(rules_dir)
    with duckdb.connect(str(copy)) as con:
        load_notification_tables(con, loaded)
        snapshot_previous_program_state(con)
        run_id, as_of = con.execute("select run_id, as_of from learnops.run_context").fetchone()
        con.execute("delete from learnops.run_context")
        con.execute(
            "insert into learnops.run_context (run_id, as_of, is_baseline, site_timezone, "
            "previous_run_id, previous_as_of) values (?, ?, false, 'UTC', ?, ?)",
            ["bench-week-2", as_of + dt.timedelta(days=7), run_id, as_of],
        )


def build(repo: Path, base: Path, building: Path, state: Path, select: str) -> dict[str, float]:
    """dbt-build `select` with `repo`'s code on a copy of `base`; each model's dbt time."""
    shutil.copyfile(base, building)
    subprocess.run(
        [sys.executable, "-c", BUILD, str(repo), str(building), str(state), select],
        check=True,
        cwd=repo,
        stdout=subprocess.DEVNULL,
    )
    results = json.loads((state / "dbt" / "target" / "run_results.json").read_text())
    return {
        result["unique_id"].split(".")[-1]: result["execution_time"]
        for result in results["results"]
        if result["unique_id"].startswith("model.") and "stg_" not in result["unique_id"]
    }


def time_events(database: Path, sql: str, repeat: int) -> tuple[float, float, int]:
    """Best wall and CPU seconds of `repeat` runs of the events SQL, and its row count."""
    best_wall = best_cpu = float("inf")
    with duckdb.connect(str(database)) as con:
        con.execute("set threads = 2")
        con.execute("set enable_progress_bar = false")
        for _ in range(repeat):
            wall, cpu = time.perf_counter(), time.process_time()
            con.execute(f"create or replace temp table events as {sql}")
            best_wall = min(best_wall, time.perf_counter() - wall)
            best_cpu = min(best_cpu, time.process_time() - cpu)
        rows = con.execute("select count(*) from events").fetchone()[0]
    return best_wall, best_cpu, rows


def same_rows(database: Path, first: str, other: str) -> bool:
    """Whether two events queries give the same rows (as multisets) on `database`."""
    with duckdb.connect(str(database)) as con:
        con.execute("set threads = 2")
        con.execute(f"create temp table a as {first}")
        con.execute(f"create temp table b as {other}")
        return all(
            con.execute(f"select count(*) from (select * from {x} except all select * from {y})")  # noqa: S608
            .fetchone()[0] == 0
            for x, y in (("a", "b"), ("b", "a"))
        )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("warehouse", type=Path, help="warehouse_programs_<users>.duckdb")
    parser.add_argument("--rules", type=Path, help="its rules (default: rules_programs_<users>_7)")
    parser.add_argument("--repo", type=Path, nargs="+", default=[REPO], help="code to measure")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--with-messages",
        action="store_true",
        help="also build int_notification_messages and notification_outbox (every event of "
        "the week is new: the go-live's outbox is not there)",
    )
    options = parser.parse_args()
    select = SELECT + (
        " int_notification_messages notification_outbox" if options.with_messages else ""
    )
    warehouse = options.warehouse.resolve()
    users = warehouse.stem.rsplit("_", 1)[-1]
    rules = options.rules or warehouse.parent / f"rules_programs_{users}_7"
    with tempfile.TemporaryDirectory(dir=warehouse.parent) as scratch:
        base = Path(scratch) / "base.duckdb"
        prepare(warehouse, rules, base)
        # compiled SQL names the catalog after the file: every build is "building.duckdb"
        builds: list[tuple[Path, str]] = []
        for number, repo in enumerate(options.repo):
            folder = Path(scratch) / f"build{number}"
            folder.mkdir()
            load = os.getloadavg()[0]
            times = build(
                repo.resolve(), base, folder / "building.duckdb", folder / "state", select
            )
            print(f"{repo}: dbt nodes at load {load:.1f}:")
            for model, seconds in times.items():
                print(f"  {model:<50} {seconds:6.2f} s")
            builds.append((folder, (folder / "state" / EVENTS_SQL).read_text(encoding="utf-8")))
        first_folder, first_sql = builds[0]
        database = first_folder / "building.duckdb"
        for repo, (_, sql) in zip(options.repo, builds, strict=True):
            load = os.getloadavg()[0]
            wall, cpu, rows = time_events(database, sql, options.repeat)
            same = "" if sql is first_sql else f", same rows: {same_rows(database, first_sql, sql)}"
            print(
                f"{repo}: events SQL {wall:.2f} s wall, {cpu:.2f} s CPU, {rows:,} rows"
                f" (best of {options.repeat}, load {load:.1f}){same}"
            )


if __name__ == "__main__":
    main()
