"""Benchmark: `learnops plan` against the real run it predicts (issue 7: plan ≤ 1.5× a run).

Takes a built warehouse (say bench_notifications.py's, kept with `--keep`) and the feeds and
rules of its next run, copies the warehouse and its state directory twice, then in fresh
processes times the plan on one copy and the real run (`send=False`: mail is
bench_mail.py's) on the other, and prints both with their ratio.

    .venv/bin/python benchmarks/bench_notifications.py --sizes 100000 --keep
    .venv/bin/python benchmarks/bench_plan.py \\
        --warehouse benchmarks/output/warehouse_notifications_100000.duckdb \\
        --feeds benchmarks/output/feeds_100000_7 \\
        --rules benchmarks/output/rules_notifications_100000_7 --as-of 2026-11-15T06:00:00Z
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

PLAN = """
import sys
from pathlib import Path
from flows.pipeline import RunRequest, parse_as_of
from flows.plan import plan_run, render_text
plan = plan_run(RunRequest(feeds=Path(sys.argv[1]), rules=Path(sys.argv[2]),
    warehouse=Path(sys.argv[3]), as_of=parse_as_of(sys.argv[4], "UTC")))
print("\\n".join(render_text(plan)[:3]))
"""

RUN = """
import sys
from pathlib import Path
from flows.pipeline import RunRequest, parse_as_of, run_pipeline
result = run_pipeline(RunRequest(feeds=Path(sys.argv[1]), rules=Path(sys.argv[2]),
    warehouse=Path(sys.argv[3]), as_of=parse_as_of(sys.argv[4], "UTC"), send=False))
print(result.status, result.stage_seconds)
"""


def copy_warehouse(warehouse: Path, target: Path) -> Path:
    """The warehouse file and its state directory, copied under `target`."""
    target.mkdir(parents=True)
    copy = target / warehouse.name
    shutil.copy2(warehouse, copy)
    state = warehouse.with_name(warehouse.name + ".learnops")
    if state.is_dir():
        shutil.copytree(state, target / state.name, ignore=shutil.ignore_patterns("archive"))
    return copy


def timed(code: str, *args: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"failed: {done.stderr.strip()[-3000:]}")
    return time.perf_counter() - started, done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--feeds", type=Path, required=True)
    parser.add_argument("--rules", type=Path, required=True)
    parser.add_argument("--as-of", required=True)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-plan-", dir=options.warehouse.parent) as tmp:
        args = (str(options.feeds.resolve()), str(options.rules.resolve()))
        tmp = str(Path(tmp).resolve())
        planned = copy_warehouse(options.warehouse, Path(tmp) / "plan")
        ran = copy_warehouse(options.warehouse, Path(tmp) / "run")
        plan_s, plan_out = timed(PLAN, *args, str(planned), options.as_of)
        run_s, run_out = timed(RUN, *args, str(ran), options.as_of)
    size_gb = options.warehouse.stat().st_size / 1e9
    print(f"warehouse {options.warehouse} ({size_gb:.2f} GB), as of {options.as_of}")
    print(f"  plan {plan_s:7.1f} s wall  ({plan_out.splitlines()[0] if plan_out else ''})")
    print(f"  run  {run_s:7.1f} s wall  ({run_out})")
    print(f"  plan / run = {plan_s / run_s:.2f} (goal ≤ 1.5)")


if __name__ == "__main__":
    main()
