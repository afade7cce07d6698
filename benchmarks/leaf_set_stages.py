"""Where the CPU of the audience leaf sets goes, stage by stage, on a kept warehouse.

Opens a warehouse kept by ``bench_audiences.py --keep`` read-only and calls
``evaluate_leaf_sets`` of flows/audience_sets.py on its own relations (as
benchmarks/cpu_leaf_sets.py does), with the module's stage functions and every query it
runs timed in process CPU seconds (every thread: DuckDB's included). A function's figure
includes what it calls, and a query's figure is executing it and fetching its result, so
the lines nest: ``_atom_leaf_sets`` includes the ``atom_members`` query. Then the write
(the returned table copied into an in-memory database, as dbt copies it into the
warehouse) and, with ``--ctes``, the rows and CPU of each part of the
``int_audience_atom_members`` view, each part a query of its own (parts sharing a
subquery recompute it, so they add up to more than the whole).

    .venv/bin/python benchmarks/leaf_set_stages.py \\
        benchmarks/output/warehouse_audiences_1000000.duckdb --ctes

At 1M users run it under the 1M lock like the benchmark.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu_leaf_sets import RELATIONS

from flows import audience_sets

# the module's functions whose CPU is reported (each one including what it calls; names an
# older or newer version lacks are skipped)
STAGES = (
    "_atom_leaf_sets",
    "sets_from_pairs",
    "_job_atom_sets",
    "atom_sets",
    "_negative_job_leaf_sets",
    "_pattern_leaf_sets",
    "_keys_by_pattern",
    "_date_leaf_sets",
    "_dates_by_field",
    "_course_leaf_sets",
    "_completions_by_course",
    "encode",
    "size",
)
ATOM_MEMBER_PARTS = (
    "value_members",
    "subtree_members",
    "direct_report_members",
    "text_equal_matches",
    "text_pattern_matches",
    "text_present_matches",
    "reports_to_sets",
    "program_sets_of_leaves",
    "certification_state_sets",
    "leaf_members",
)


class _Timed:
    """A connection, cursor or relation whose query-running calls add to ``log``."""

    _RUNS = frozenset({"execute", "fetchnumpy", "fetchall", "fetchone", "pl", "fetch_arrow_table"})

    def __init__(self, inner: Any, log: dict[str, list[float]], label: str = "") -> None:
        self._inner, self._log, self._label = inner, log, label

    def sql(self, query: str, **kwargs: Any) -> _Timed:
        return _Timed(self._inner.sql(query, **kwargs), self._log, _label(query))

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name not in self._RUNS:
            return attribute

        def run(*args: Any, **kwargs: Any) -> Any:
            label = _label(args[0]) if name == "execute" else self._label
            start = time.process_time()
            result = attribute(*args, **kwargs)
            self._log[f"query {label}"].append(time.process_time() - start)
            return _Timed(result, self._log, label) if name == "execute" else result

        return run


def _label(query: str) -> str:
    """The relation a query reads first, without the model's view prefix."""
    found = re.search(r"\bfrom\s+([\w.\"]+)", query)
    return found.group(1).removeprefix("leaf_sets__") if found else query[:40]


@contextmanager
def _timed_stages(log: dict[str, list[float]]) -> Iterator[None]:
    """Time every call of the STAGES functions (module globals) while inside."""
    originals = {
        name: getattr(audience_sets, name) for name in STAGES if hasattr(audience_sets, name)
    }

    def timer(name: str, function: Callable) -> Callable:
        @functools.wraps(function)
        def call(*args: Any, **kwargs: Any) -> Any:
            start = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                log[name].append(time.process_time() - start)

        return call

    for name, function in originals.items():
        setattr(audience_sets, name, timer(name, function))
    try:
        yield
    finally:
        for name, function in originals.items():
            setattr(audience_sets, name, function)


def profile(con: duckdb.DuckDBPyConnection, inputs: Any) -> dict[str, float]:
    """CPU seconds per stage and query of one `evaluate_leaf_sets` call, and of its write."""
    log: dict[str, list[float]] = defaultdict(list)
    start = time.process_time()
    with _timed_stages(log):
        # read by the create below (DuckDB finds Python variables by name)
        leaf_table = audience_sets.evaluate_leaf_sets(_Timed(con, log), inputs)  # noqa: F841
    total = time.process_time() - start
    figures = {name: sum(values) for name, values in log.items()}
    figures["evaluate_leaf_sets (all)"] = total
    scratch = duckdb.connect()  # the warehouse is open read-only
    start = time.process_time()
    scratch.execute("create table leaf_sets as select * from leaf_table")
    figures["write: copy the table into a database"] = time.process_time() - start
    scratch.close()
    return figures


def atom_member_parts(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, float]]:
    """Rows and CPU seconds of each part (CTE) of the int_audience_atom_members view."""
    (definition,) = con.execute(
        "select sql from duckdb_views() where view_name = 'int_audience_atom_members'"
    ).fetchone()
    body = definition[definition.upper().index(" AS ") + 4 :].rstrip().rstrip(";")
    head = body[: body.upper().rindex("SELECT")]  # every CTE, without the final select
    parts = {"(whole view)": "select * from intermediate.int_audience_atom_members"}
    # splices only the view's own SQL and the constant CTE names above
    parts.update({name: f"{head} select * from {name}" for name in ATOM_MEMBER_PARTS})  # noqa: S608
    figures = {}
    for name, query in parts.items():
        start = time.process_time()
        rows = con.execute(query).fetchnumpy()
        figures[name] = (len(next(iter(rows.values()))), time.process_time() - start)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("warehouse", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ctes", action="store_true", help="time the atom members' parts")
    options = parser.parse_args()

    con = duckdb.connect(str(options.warehouse), read_only=True)
    con.execute("set threads = 2")
    inputs = audience_sets.LeafInputs(**RELATIONS)
    runs: dict[str, list[float]] = defaultdict(list)
    loads = []
    for _ in range(options.repeat):
        for name, cpu in profile(con, inputs).items():
            runs[name].append(cpu)
        loads.append(os.getloadavg()[0])
    for name, values in sorted(runs.items(), key=lambda item: -statistics.median(item[1])):
        print(f"{name:<52} median {statistics.median(values):7.3f}  min {min(values):7.3f} CPU-s")
    print(f"load average {min(loads):.1f}-{max(loads):.1f} ({options.repeat} runs)")
    if options.ctes:
        print("int_audience_atom_members, part by part (one query each):")
        for name, (rows, cpu) in atom_member_parts(con).items():
            print(f"  {name:<28} {rows:>12,} rows  {cpu:7.3f} CPU-s")
        print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
