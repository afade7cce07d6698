"""Benchmark: import + identity build at 10k, 100k and 1M users (SPEC §10).

Prints, per size, the wall time of each stage of a run (import, dbt build, publish), the
peak memory of the run's process, and a re-run with unchanged feeds; and, on their own, the
fixed costs (Python imports, Prefect start-up, dbt start-up and parse).

    .venv/bin/python benchmarks/bench_identity.py                 # 10k and 100k
    .venv/bin/python benchmarks/bench_identity.py --sizes 1000000 # the 1M goal

Each measurement runs in a fresh process so that peak memory (ru_maxrss) is its own and
start-up costs are not hidden by a warm interpreter. Generated feeds are cached under
benchmarks/output/ by size and seed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "benchmarks" / "output"

FIXED_COST_SNIPPETS = {
    "python imports (polars, pandera, duckdb, flows)": (
        "import flows.pipeline, flows.hr_import.importer, pandera.polars"
    ),
    "prefect import + one empty flow run (ephemeral server)": (
        "from flows.runtime_env import configure_runtime_env; configure_runtime_env()\n"
        "from prefect import flow\n"
        "@flow\ndef noop(): return 1\n"
        "noop()"
    ),
}

# dbt's fixed cost: import, parse and a build of an empty warehouse (every node, no rows).
# Run twice on one state directory: cold (full parse) and warm (partial parse, as every
# run after a warehouse's first).
DBT_SNIPPET = (
    "from flows.runtime_env import configure_runtime_env; configure_runtime_env()\n"
    "import datetime, pathlib, sys, duckdb\n"
    "from flows.state_schema import ensure_state_schema\n"
    "from flows.build import build_warehouse\n"
    "state = pathlib.Path(sys.argv[1]); state.mkdir(exist_ok=True); db = state / 'w.duckdb'\n"
    "db.unlink(missing_ok=True); con = duckdb.connect(str(db)); ensure_state_schema(con)\n"
    "con.execute(\"insert into learnops.run_context (run_id, as_of) values ('bench', ?)\", "
    "[datetime.datetime(2026, 1, 1)]); con.close()\n"
    "build_warehouse(db, state_dir=state)"
)

RUN_SNIPPET = """
import json, sys, time
from pathlib import Path
from flows.runtime_env import configure_runtime_env; configure_runtime_env()
from flows.pipeline import RunRequest, parse_as_of, run_pipeline
started = time.perf_counter()
result = run_pipeline(RunRequest(feeds=Path(sys.argv[1]), rules=Path(sys.argv[2]),
    warehouse=Path(sys.argv[3]), as_of=parse_as_of(sys.argv[4], "UTC")))
print(json.dumps({"stages": result.stage_seconds, "in_process": time.perf_counter() - started,
                  "rejected": result.summary.rows_rejected}))
"""


def measure(code: str, *args: str) -> tuple[float, float, str]:
    """Run `code` in a fresh interpreter: (wall seconds, peak RSS in MB, stdout)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", code, *args], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    stdout = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"benchmark step failed (status {status}):\n{stdout}")
    return elapsed, usage.ru_maxrss / 1024, stdout


def generate(users: int, seed: int) -> tuple[Path, float]:
    feeds = OUTPUT / f"feeds_{users}_{seed}"
    if (feeds / "user.csv").exists():
        return feeds, 0.0
    code = (
        "import sys; from pathlib import Path; from flows.demo.generator import generate_feeds\n"
        "generate_feeds(Path(sys.argv[1]), int(sys.argv[2]), seed=int(sys.argv[3]))"
    )
    elapsed, _, _ = measure(code, str(feeds), str(users), str(seed))
    return feeds, elapsed


IDENTITY_FEEDS = ("org.csv", "pos.csv", "user.csv", "jobassignment.csv", "user_access.csv")


def identity_only(feeds: Path) -> Path:
    """A feed directory with the HR files only (no courses or completions), as symlinks."""
    target = feeds.with_name(feeds.name + "_identity")
    target.mkdir(exist_ok=True)
    for name in IDENTITY_FEEDS:
        link = target / name
        if not link.exists():
            link.symlink_to(feeds / name)
    return target


def bench_size(users: int, seed: int, *, with_learning: bool) -> dict[str, object]:
    feeds, generated_s = generate(users, seed)
    if not with_learning:
        feeds = identity_only(feeds)
    warehouse = OUTPUT / f"warehouse_{users}.duckdb"
    for stale in OUTPUT.glob(f"warehouse_{users}.duckdb*"):
        subprocess.run(["rm", "-rf", str(stale)], check=True)
    rules = REPO / "rules"
    first_s, first_mb, first_out = measure(
        RUN_SNIPPET, str(feeds), str(rules), str(warehouse), "2026-11-01T06:00:00Z"
    )
    rerun_s, rerun_mb, rerun_out = measure(
        RUN_SNIPPET, str(feeds), str(rules), str(warehouse), "2026-11-02T06:00:00Z"
    )
    first, rerun = (
        json.loads(first_out.strip().splitlines()[-1]),
        json.loads(rerun_out.strip().splitlines()[-1]),
    )
    return {
        "users": users,
        "generate_s": round(generated_s, 1),
        "first_run_s": round(first_s, 1),
        "first_stages": first["stages"],
        "first_peak_mb": round(first_mb),
        "rerun_s": round(rerun_s, 1),
        "rerun_stages": rerun["stages"],
        "rerun_peak_mb": round(rerun_mb),
        "rejected": first["rejected"],
        "warehouse_mb": round(warehouse.stat().st_size / 2**20),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--skip-fixed", action="store_true", help="skip the fixed-cost measurements"
    )
    parser.add_argument(
        "--with-learning",
        action="store_true",
        help="also import courses and the completion history (20 per user) in a second pass",
    )
    options = parser.parse_args()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PYTHONPATH", str(REPO))
    if not options.skip_fixed:
        print("fixed costs (fresh process each, wall time incl. interpreter start):")
        for label, code in FIXED_COST_SNIPPETS.items():
            elapsed, peak, _ = measure(code)
            print(f"  {label:<58} {elapsed:6.1f} s  {peak:7.0f} MB")
        state = OUTPUT / "dbt_fixed_cost"
        subprocess.run(["rm", "-rf", str(state)], check=True)
        for label in (
            "dbt import + parse + empty build, cold",
            "dbt import + parse + empty build, warm",
        ):
            elapsed, peak, _ = measure(DBT_SNIPPET, str(state))
            print(f"  {label:<58} {elapsed:6.1f} s  {peak:7.0f} MB")
    passes = [("identity feeds (org, pos, user, jobassignment, user_access)", False)]
    if options.with_learning:
        passes.append(("all feeds, incl. courses and completions", True))
    for label, with_learning in passes:
        print(f"\nimport + build + publish, {label}; a whole `run --engine local` per process:")
        for users in options.sizes:
            report(bench_size(users, options.seed, with_learning=with_learning), users)


def report(row: dict[str, object], users: int) -> None:
    """Print one size's figures: first run, unchanged re-run, sizes."""

    def stages(key: str) -> str:
        return ", ".join(f"{k} {v:.1f}s" for k, v in row[key].items())

    print(
        f"  {users:>9,} users: first run {row['first_run_s']:6.1f} s "
        f"({stages('first_stages')}), peak {row['first_peak_mb']} MB"
    )
    print(
        f"  {'':>9}        re-run    {row['rerun_s']:6.1f} s "
        f"({stages('rerun_stages')}), peak {row['rerun_peak_mb']} MB"
    )
    print(
        f"  {'':>9}        warehouse {row['warehouse_mb']} MB, {row['rejected']} rows rejected, "
        f"feeds generated in {row['generate_s']} s (not counted)"
    )


if __name__ == "__main__":
    main()
