"""CPU seconds of the audience leaf sets on a kept warehouse, against an older version.

Opens a warehouse kept by ``bench_audiences.py --keep`` read-only and calls
``evaluate_leaf_sets`` and its course-completion part ``_course_leaf_sets`` of
flows/audience_sets.py on that warehouse's own relations (as the dbt model would, after the
run that built them), alternating with the same functions of ``--baseline``, a copy of an
older flows/audience_sets.py, so both sides see the same load. It prints each side's
minimum and median process CPU time (every thread) and the 1-minute load average, and
checks that both sides return identical leaf sets, equal to the stored
``int_audience_leaf_sets`` of the warehouse.

The SQL views the leaf sets read (``int_audience_atom_members``, the text and date
subjects...) are the warehouse's: to compare versions of them, rebuild the changed views in
a copy of the kept warehouse and give the original as ``--baseline-warehouse`` (the
baseline side then reads it, the current side the copy; both copies' stored leaf sets must
be equal too).

    git show ad43811:flows/audience_sets.py > /tmp/audience_sets_old.py
    .venv/bin/python benchmarks/cpu_leaf_sets.py \\
        benchmarks/output/warehouse_audiences_100000.duckdb --baseline /tmp/audience_sets_old.py

At 1M users run it under the 1M lock like the benchmark.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import numpy as np

from flows import audience_sets

RELATIONS = {  # LeafInputs field -> the relation the dbt model passes for it
    "nodes": "staging.stg_rules__audience_nodes",
    "node_values": "staging.stg_rules__audience_node_values",
    "text_subjects": "intermediate.int_audience_text_subjects",
    "leaf_atoms": "intermediate.int_audience_leaf_atoms",
    "atom_members": "intermediate.int_audience_atom_members",
    "date_leaves": "intermediate.int_audience_date_leaves",
    "date_subjects": "intermediate.int_audience_date_subjects",
    "course_leaves": "intermediate.int_audience_course_leaves",
    "course_completions": "intermediate.int_audience_course_completions",
    "user_keys": "intermediate.int_audience_user_keys",
    "job_keys": "intermediate.int_audience_job_keys",
    "users": "main.dim_user",
}


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("audience_sets_baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _connect(warehouse: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(warehouse), read_only=True)
    con.execute("set threads = 2")
    return con


def _stored_leaf_sets(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute(
        "select node_id, audience_id, user_count, user_set "
        "from intermediate.int_audience_leaf_sets order by node_id"
    ).fetchall()


def _cpu(call: Callable[[], Any]) -> tuple[Any, float]:
    start = time.process_time()
    result = call()
    return result, time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("warehouse", type=Path)
    parser.add_argument("--baseline", type=Path, help="an older flows/audience_sets.py")
    parser.add_argument(
        "--baseline-warehouse", type=Path, help="the baseline side's warehouse (older views)"
    )
    parser.add_argument("--repeat", type=int, default=7, help="course-leaf rounds (whole: 3)")
    options = parser.parse_args()

    con = _connect(options.warehouse)
    sides = {"current": audience_sets}
    cons = {"current": con}
    if options.baseline or options.baseline_warehouse:
        sides = {
            "baseline": _load(options.baseline) if options.baseline else audience_sets,
            **sides,
        }
        cons["baseline"] = (
            _connect(options.baseline_warehouse) if options.baseline_warehouse else con
        )
    words = audience_sets.words_for(audience_sets.key_count(con, RELATIONS["user_keys"]))
    figures: dict[str, list[float]] = {}
    loads: list[float] = []
    courses, tables = {}, {}
    for part, rounds in (("course leaves", options.repeat), ("leaf sets", 3)):
        for _ in range(rounds):
            for name, module in sides.items():
                inputs = module.LeafInputs(**RELATIONS)
                side = cons[name]
                if part == "course leaves":
                    courses[name], cpu = _cpu(
                        lambda m=module, i=inputs, c=side: m._course_leaf_sets(c, i, words)
                    )
                else:
                    tables[name], cpu = _cpu(
                        lambda m=module, i=inputs, c=side: m.evaluate_leaf_sets(c, i)
                    )
                figures.setdefault(f"{part}, {name}", []).append(cpu)
                loads.append(os.getloadavg()[0])
    for label, values in figures.items():
        print(
            f"{label:<28} min {min(values):6.3f}  median {statistics.median(values):6.3f} "
            f"CPU-s  ({len(values)} runs)"
        )
    print(f"load average {min(loads):.1f}-{max(loads):.1f}")

    stored = _stored_leaf_sets(con)
    if cons.get("baseline", con) is not con:
        assert _stored_leaf_sets(cons["baseline"]) == stored, "the two warehouses' leaf sets differ"
    columns = ("node_id", "audience_id", "user_count", "user_set")
    for name, table in tables.items():
        rows = sorted(zip(*(table.column(c).to_pylist() for c in columns), strict=True))
        assert rows == stored, f"{name}: leaf sets differ from the stored int_audience_leaf_sets"
    if "baseline" in courses:
        old, new = courses["baseline"], courses["current"]
        assert old.keys() == new.keys(), "course leaves differ"
        assert all(np.array_equal(old[n], new[n]) for n in old), "course leaf sets differ"
    print(f"identical: {len(stored):,} leaf sets equal to the stored int_audience_leaf_sets")


if __name__ == "__main__":
    main()
