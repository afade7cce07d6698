"""CPU seconds per dbt model, re-run on a warehouse copy (dbt's run_results hold wall times).

Reads ``STATE/dbt/target`` (manifest.json and run_results.json) of a build of the models
(e.g. bench_programs.py's "models alone", kept with ``--keep``: the copy
``programs_alone_<users>.duckdb`` and its ``programs_alone_<users>.state``), then executes
each built model's compiled SQL again, in dependency order, in one DuckDB connection with
2 threads, writing the table (or view) as dbt does, and prints the process CPU time
(user + system, every thread) each one took, with the 1-minute load average. On a shared
machine CPU seconds move with the load too: compare figures taken at a similar load, or
alternate two copies (A, B, A, B) and take each model's minimum.

    .venv/bin/python benchmarks/cpu_per_model.py \\
        benchmarks/output/programs_alone_100000.duckdb benchmarks/output/programs_alone_100000.state

The copy is rewritten (its tables are rebuilt in place); it is attached under its file name,
the catalog the SQL was compiled for, so keep that name. At 1M users run it under the 1M
lock like the benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path
from typing import Any

import duckdb


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _dependency_order(nodes: dict[str, dict[str, Any]]) -> list[str]:
    order: list[str] = []
    seen: set[str] = set()

    def visit(unique_id: str) -> None:
        if unique_id in seen or unique_id not in nodes:
            return
        seen.add(unique_id)
        for dependency in nodes[unique_id]["depends_on"]["nodes"]:
            visit(dependency)
        order.append(unique_id)

    for unique_id in sorted(nodes):
        visit(unique_id)
    return order


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse", type=Path, help="the warehouse copy the models were built on")
    parser.add_argument("state", type=Path, help="the build's state directory (STATE/dbt/target)")
    parser.add_argument("models", nargs="*", help="only these models (default: every one built)")
    options = parser.parse_args()

    target = options.state / "dbt" / "target"
    manifest = json.loads((target / "manifest.json").read_text())
    results = json.loads((target / "run_results.json").read_text())["results"]
    code = {
        r["unique_id"]: r["compiled_code"]
        for r in results
        if r["unique_id"].startswith("model.") and r.get("compiled_code")
    }
    nodes = {
        unique_id: manifest["nodes"][unique_id]
        for unique_id in code
        if not options.models or manifest["nodes"][unique_id]["name"] in options.models
    }

    catalog = options.warehouse.stem
    con = duckdb.connect(":memory:")
    con.execute("set threads = 2")
    con.execute("set enable_progress_bar = false")
    con.execute(f"attach '{options.warehouse}' as \"{catalog}\"")
    con.execute(f'use "{catalog}"')
    total = 0.0
    for unique_id in _dependency_order(nodes):
        node = nodes[unique_id]
        relation = f'"{catalog}"."{node["schema"]}"."{node["alias"] or node["name"]}"'
        kind = "view" if node["config"]["materialized"] == "view" else "table"
        if kind == "view":
            con.execute(f"drop view if exists {relation}")
        started_cpu, started = _cpu(), time.perf_counter()
        con.execute(f"create or replace {kind} {relation} as {code[unique_id]}")
        cpu, wall = _cpu() - started_cpu, time.perf_counter() - started
        total += cpu
        count = f"select count(*) from {relation}"  # noqa: S608 (dbt's own relation names)
        rows = con.execute(count).fetchone()[0] if kind == "table" else 0
        print(
            f"{node['name']:<52} {kind:<5} cpu {cpu:7.2f} s  wall {wall:6.2f} s  "
            f"rows {rows:>12,}  load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"total cpu {total:.2f} s; peak {peak:,.0f} MB; load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
