"""Benchmark: notification events and the outbox at 10k, 100k and 1M users (SPEC §6, §10).

The organisation, audiences, programs and certifications are bench_programs.py's (the same
cached feeds and synthetic rules, 500 programs and certifications, about 10 assignments per
user); this adds a `notifications.yaml` with one notification per trigger of SPEC §6, every
one scoped to `all`, to the learner and their managers (exception_raised: the admins), so
every event of every learner is derived, and the repository's templates.

Then, each in a fresh process, with sending off (`send=False`: delivery is bench_mail.py's):

* run 1 on an empty warehouse (the go-live baseline: every event is recorded `suppressed`);
* run 2 a week later with the same feeds: the steady state, where the events are the timed
  reminders whose instant came in the week, and every earlier one is found in the outbox;
* run 3 another week later: run 2's messages are still unsent (no sending), so their
  reminders are re-checked, and nothing is anchored at the last run's as-of any more (in
  run 2 every assignment, exception and optional course set is: the go-live's).

The figure it prints is the notification nodes of run 2: summed dbt execution time of
int_notification_events, int_notification_messages and notification_outbox, and,
separately, of their tests. SPEC §10's 5 s at 1M is event derivation
(int_notification_events): notification_events_steady.py measures it at 1M without a
go-live, which at 1M writes about 40M outbox rows.

    .venv/bin/python benchmarks/bench_notifications.py                  # 10k and 100k
    .venv/bin/python benchmarks/bench_notifications.py --sizes 1000000
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_programs as programs  # a sibling script, not a package

NOTIFICATION_NODE = re.compile(r"notification")

AS_OF_3 = "2026-11-15T06:00:00Z"  # two weeks after the go-live, same feeds

RUN_SNIPPET = programs.RUN_SNIPPET.replace(
    'as_of=parse_as_of(sys.argv[4], "UTC"))', 'as_of=parse_as_of(sys.argv[4], "UTC"), send=False)'
)

TRIGGERS = {
    "audience_joined": "",
    "audience_left": "",
    "program_assigned": "",
    "program_unassigned": "",
    "program_due": "{days: 7}",
    "program_overdue": "{days: 1}",
    "courseset_due": "{days: 3}",
    "courseset_overdue": "{days: 1}",
    "courseset_completed": "",
    "program_completed": "",
    "program_followup": "{months: 1}",
    "exception_raised": "",
    "certification_window_open": "",
    "certification_expiring": "{days: 14}",
    "certification_expired": "",
}


def notifications_yaml() -> str:
    """One notification per trigger, scope all (the heaviest mix: every event derived)."""
    lines = [
        "settings:",
        "  sender: {address: learning@example.com}",
        "  admins: [lms-admins@example.com]",
        "  max_per_run: 100000000",
        "notifications:",
    ]
    for trigger, offset in TRIGGERS.items():
        if trigger == "exception_raised":
            recipients = "[admins]"
        elif trigger == "program_followup":
            recipients = "[learner]"
        else:
            recipients = "[learner, managers]"
        lines.append(f"  - id: every_{trigger}")
        lines.append(f"    trigger: {trigger}")
        if offset:
            lines.append(f"    offset: {offset}")
        lines.append("    scope: all")
        lines.append(f"    recipients: {recipients}")
    return "\n".join(lines) + "\n"


def notification_nodes(results: list[dict[str, Any]]) -> dict[str, Any]:
    models = {}
    tests = {}
    for result in results:
        unique_id = result["unique_id"]
        if not NOTIFICATION_NODE.search(unique_id) or "stg_rules" in unique_id:
            continue
        seconds = float(result.get("execution_time") or 0.0)
        (models if unique_id.startswith("model.") else tests)[programs._short(unique_id)] = seconds
    return {
        "models": models,
        "tests": tests,
        "models_s": sum(models.values()),
        "tests_s": sum(tests.values()),
    }


def run(feeds: Path, rules: Path, warehouse: Path, as_of: str) -> dict[str, Any]:
    elapsed, peak, stdout = programs.measure(
        RUN_SNIPPET, str(feeds), str(rules), str(warehouse), as_of
    )
    out = programs.last_json(stdout)
    results = programs.run_results(Path(f"{warehouse}.learnops"))
    return {
        "wall_s": elapsed,
        "peak_mb": peak,
        "load": programs.mean_load(),
        "build_s": out["stages"].get("build"),
        "nodes": notification_nodes(results),
    }


def outbox_counts(warehouse: Path) -> list[tuple[Any, ...]]:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(
            "select created_run_id, event_type, status, count(*) from notification_outbox "
            "group by all order by 1, 2, 3"
        ).fetchall()


def print_run(label: str, row: dict[str, Any]) -> None:
    nodes = row["nodes"]
    print(
        f"    {label:<26} {row['wall_s']:6.1f} s wall, build {row['build_s'] or 0:6.1f} s, "
        f"peak {row['peak_mb']:,.0f} MB, load {row['load']:.1f}"
    )
    print(
        f"      notification models {nodes['models_s']:.2f} s, their tests "
        f"{nodes['tests_s']:.2f} s (summed execution time)"
    )
    for name, seconds in sorted(nodes["models"].items(), key=lambda kv: -kv[1]):
        print(f"        {seconds:7.2f} s  {name}")


def bench_size(users: int, options: argparse.Namespace) -> None:
    feeds, _ = programs.generate(users, options.seed)
    facts = programs.org_facts(feeds)
    made_programs, certs, _, _ = programs.synthetic_rules(
        facts, options.programs, options.certifications, options.assignments_per_user,
        options.seed,
    )  # fmt: skip
    rules = programs.write_rules(
        programs.OUTPUT / f"rules_notifications_{users}_{options.seed}", facts, made_programs, certs
    )
    (rules / "notifications.yaml").write_text(notifications_yaml(), encoding="utf-8")
    warehouse = programs.OUTPUT / f"warehouse_notifications_{users}.duckdb"
    programs.remove_warehouse(warehouse)
    print(f"\n{users:,} users; {len(made_programs)} programs, {len(certs)} certifications")
    try:
        for label, as_of in (
            ("run 1 (go-live baseline)", programs.AS_OF_1),
            ("run 2 (a week later)", programs.AS_OF_2),
            ("run 3 (two weeks later)", AS_OF_3),
        ):
            try:
                row = run(feeds, rules, warehouse, as_of)
            except programs.Aborted as aborted:
                programs.print_aborted(label, aborted)
                return
            print_run(label, row)
        print("    outbox (run, event, status, rows):")
        for run_id, event, status, count in outbox_counts(warehouse):
            print(f"      {run_id[:15]}  {event:<26} {status:<13} {count:>10,}")
    finally:
        if not options.keep:
            programs.remove_warehouse(warehouse)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--programs", type=int, default=400)
    parser.add_argument("--certifications", type=int, default=100)
    parser.add_argument("--assignments-per-user", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the warehouses afterwards")
    parser.add_argument("--max-rss-gb", type=float, default=12.0)
    parser.add_argument("--min-available-gb", type=float, default=2.0)
    parser.add_argument("--max-minutes", type=float, default=20.0)
    options = parser.parse_args()
    programs.LIMITS.update(
        rss_mb=options.max_rss_gb * 1024,
        seconds=options.max_minutes * 60,
        available_mb=options.min_available_gb * 1024,
    )
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    programs.OUTPUT.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PYTHONPATH", str(programs.REPO))
    for users in options.sizes:
        bench_size(users, options)


if __name__ == "__main__":
    main()
