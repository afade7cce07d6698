"""Benchmark: the incremental course-set models on a day's new completions, against a full
evaluation of the same state (issue 4, docs/programs.md "Build").

Takes a warehouse that bench_programs.py kept (`--keep`), and makes two copies of it as the
next day's run would find them: `learnops.run_context` moved a day on (the kept run becomes
the previous one), and one new completion for about `--users` users (one course of one of
their programs, dated 12 hours before the new as-of, first seen in this run). Then:

* on the first copy, the two course-set models built as a run builds them (incremental);
* on the second, the same with both tables dropped first (a full evaluation);

and prints each build's node times and CPU seconds, and whether the two copies' tables hold
the same rows (`except all` both ways).

    .venv/bin/python benchmarks/bench_programs.py --sizes 1000000 --keep --runs 1
    .venv/bin/python benchmarks/course_sets_delta.py \\
        benchmarks/output/warehouse_programs_1000000.duckdb --users 10000
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flows.build import build_warehouse

MODELS = ("int_program_course_sets_evaluated", "int_program_certification_course_sets_evaluated")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def next_day(warehouse: Path, users: int) -> int:
    """Move the run context a day on and add about `users` completions; returns how many."""
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            """
            update learnops.run_context
            set previous_run_id = run_id, previous_as_of = as_of,
                run_id = 'course-sets-delta', as_of = as_of + interval 1 day
            """
        )
        return con.execute(
            """
            insert into hr.course_completion
            with
            program_keys as (
                select program_id, row_number() over (order by program_id) as program_key
                from rules.program
            ),
            -- about `users` of the assigned users, whatever the warehouse's size
            assigned as (
                select user_id, any_value(program_key) as program_key
                from intermediate.int_program_route_users
                group by user_id
            ),
            picked as (
                select * from assigned
                where hash(user_id) % (select count(*) from assigned) < ?
            )
            select
                picked.user_id,
                any_value(courses.course_id),
                any_value(run_context.as_of) - interval 12 hours,
                null,
                'course-sets-delta'
            from picked
            inner join program_keys using (program_key)
            inner join rules.program_course_set_course as courses using (program_id)
            cross join learnops.run_context as run_context
            group by picked.user_id
            """,
            [users],
        ).fetchall()[0][0]


def build(warehouse: Path, state_dir: Path) -> tuple[float, float, dict[str, float]]:
    """Build the two models; wall and CPU seconds of the call, and their node times."""
    started, cpu = time.perf_counter(), _cpu_seconds()
    result = build_warehouse(
        warehouse, state_dir=state_dir, select=" ".join(MODELS), indirect_selection="cautious"
    )
    timings = {name: result.node_timings[name] for name in MODELS}
    return time.perf_counter() - started, _cpu_seconds() - cpu, timings


def compare(left: Path, right: Path) -> None:
    with duckdb.connect(str(left), read_only=True) as con:
        con.execute("attach ? as full_evaluation (read_only)", [str(right)])
        for model in MODELS:
            # model names are this module's constants
            counts = con.execute(
                f"""
                select
                    (select count(*) from intermediate.{model}),
                    (select count(*) from (
                        select * from intermediate.{model}
                        except all select * from full_evaluation.intermediate.{model})),
                    (select count(*) from (
                        select * from full_evaluation.intermediate.{model}
                        except all select * from intermediate.{model}))
                """  # noqa: S608
            ).fetchall()[0]
            print(
                f"  {model}: {counts[0]:,} rows; only incremental {counts[1]}, "
                f"only full {counts[2]}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("warehouse", type=Path, help="a warehouse bench_programs.py kept")
    parser.add_argument("--users", type=int, default=10_000, help="users with a new completion")
    parser.add_argument("--scratch", type=Path, help="where the copies go (default: beside it)")
    args = parser.parse_args()
    scratch = args.scratch or args.warehouse.parent / "course_sets_delta"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    os.environ.setdefault("LEARNOPS_DBT_REUSE_MANIFEST", "1")

    incremental, full = scratch / "incremental.duckdb", scratch / "full.duckdb"
    shutil.copyfile(args.warehouse, incremental)
    added = next_day(incremental, args.users)
    shutil.copyfile(incremental, full)
    with duckdb.connect(str(full)) as con:
        for model in MODELS:
            con.execute(f"drop table intermediate.{model}")
    print(f"{added:,} new completions; load {os.getloadavg()[0]:.1f}")
    for name, warehouse in (("incremental", incremental), ("full evaluation", full)):
        wall, cpu, timings = build(warehouse, scratch / f"state_{name.split()[0]}")
        nodes = ", ".join(f"{model} {seconds:.2f} s" for model, seconds in timings.items())
        print(f"{name}: dbt call {wall:.1f} s wall, {cpu:.1f} s CPU; {nodes}")
    compare(incremental, full)
    shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
