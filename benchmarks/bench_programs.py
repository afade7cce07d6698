"""Benchmark: program and certification status at 10k, 100k and 1M users (SPEC §4.2, §4.3, §10).

For each size it generates the organisation (flows/demo/generator.py, all feeds; the same
cache as bench_identity.py and bench_audiences.py) and synthetic rules drawn, with a fixed
seed, from that organisation's real ids:

* `audiences.yaml`: simple audiences (one user-field leaf each: country, department,
  region, employee type, city), so audiences cost little next to programs;
* `programs.yaml` and `certifications.yaml`: `--programs` programs and `--certifications`
  certifications (500 in all by default) of 3-12 courses each, in 1-4 course sets of every
  kind joined by `then` / `and` / `or`, some with a time allowance; certifications start with
  an annual compliance course (the generator renews those about yearly) and use the three
  expiry methods; routes by organisation subtree or item, position or job family, audience
  and manager (direct or everyone below), with due dates on every base, sized so that the
  routes select `--assignments-per-user` (10) assignments per user on average.

Then, each in a fresh process:

* run 1: a full run (`run_pipeline`) on an empty warehouse as of the generator's day: every
  assignment is new (exception checks for everyone);
* run 2: a week later with the same feeds, on that warehouse (assignments, due dates and
  exceptions carried over: the steady state);
* the program and certification models alone, rebuilt on a copy of run 2's warehouse
  (`build_warehouse --select` those models and their tests): their time and peak memory
  without the import's. The two course-set models are incremental, so this rebuild, like
  run 2, evaluates only the learners whose inputs changed (none, with the same feeds);
  benchmarks/course_sets_delta.py times them on a day's new completions;
* with `--explain`, DuckDB's profile (EXPLAIN ANALYZE) of the slowest program models'
  compiled SQL on that copy.

The status build is the program and certification dbt nodes of `run_results.json`
(`<warehouse>.learnops/dbt/target/`): their summed execution time (dbt runs two threads, so
the wall span of those nodes, first start to last end, is printed too).

    .venv/bin/python benchmarks/bench_programs.py                       # 10k and 100k
    .venv/bin/python benchmarks/bench_programs.py --sizes 1000000 --explain
    .venv/bin/python benchmarks/bench_programs.py --print-rules 10000   # the synthetic YAML

Peak memory is the measured process's ru_maxrss. A guard stops a measured process (only
that one) past --max-rss-gb, --max-minutes, or when the machine's available memory drops
below --min-available-gb. Warehouses under benchmarks/output/ are replaced on every run.
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "benchmarks" / "output"
MODELS = REPO / "dbt_project" / "models"
AS_OF_1 = "2026-11-01T06:00:00Z"  # the generator's as_of day: every completion before
AS_OF_2 = "2026-11-08T06:00:00Z"  # a week later, same feeds
# program and certification nodes; notification nodes (whose accepted-values tests name the
# program_* triggers) are not the status build
PROGRAM_NODE = re.compile(r"^(?!.*notification).*(?:program|certification)")

RUN_SNIPPET = """
import json, sys, time
from pathlib import Path
from flows.runtime_env import configure_runtime_env; configure_runtime_env()
from flows.pipeline import RunRequest, parse_as_of, run_pipeline
started = time.perf_counter()
result = run_pipeline(RunRequest(feeds=Path(sys.argv[1]), rules=Path(sys.argv[2]),
    warehouse=Path(sys.argv[3]), as_of=parse_as_of(sys.argv[4], "UTC")))
if result.status != "succeeded":
    raise SystemExit(f"run {result.status}: {result.message}")
print(json.dumps({"stages": result.stage_seconds, "in_process": time.perf_counter() - started,
                  "models": result.models_built, "tests": result.tests_passed}))
"""

# dbt build of the program and certification models (and their tests) alone, on a copy of a
# built warehouse (its rule tables, previous state and run context are those of its run).
REBUILD_SNIPPET = """
import json, sys, time
from pathlib import Path
from flows.runtime_env import configure_runtime_env; configure_runtime_env()
from flows.build import build_warehouse
result = build_warehouse(Path(sys.argv[1]), state_dir=Path(sys.argv[2]), select=sys.argv[3])
print(json.dumps({"elapsed": result.elapsed_s, "models": result.models_built,
                  "tests": result.tests_passed}))
"""

# DuckDB's profile of one compiled model's SELECT, on a warehouse copy (read-only; the copy
# is attached under the catalog name the SQL was compiled for). The rows are written to a
# temporary table, as the model writes its table: a count(*) around the SELECT would let
# the optimizer drop the columns nobody counts.
EXPLAIN_SNIPPET = """
import sys, duckdb
con = duckdb.connect(":memory:")
con.execute("set threads = 2")
con.execute("set enable_progress_bar = false")
con.execute(f"set memory_limit = '{sys.argv[5]}'")
con.execute(f"set temp_directory = '{sys.argv[4]}.tmp'")
con.execute(f"attach '{sys.argv[1]}' as {sys.argv[2]} (read_only)")
con.execute(f"use {sys.argv[2]}")
con.execute("pragma enable_profiling = 'json'")
con.execute(f"pragma profiling_output = '{sys.argv[4]}'")
con.execute("create temp table profiled as " + open(sys.argv[3]).read())
con.execute("pragma disable_profiling")
"""


class Aborted(RuntimeError):
    """A measurement stopped by the guard (too much memory or time), with how far it got."""

    def __init__(self, reason: str, elapsed: float, peak_mb: float) -> None:
        super().__init__(reason)
        self.reason, self.elapsed, self.peak_mb = reason, elapsed, peak_mb


# set from the command line; the machine-wide ones protect whatever else runs alongside
LIMITS = {"rss_mb": 12_000.0, "seconds": 1_200.0, "available_mb": 2_048.0, "disk_free_gb": 20.0}
LOAD: list[float] = []  # the machine's 1-minute load average, sampled during a measurement
CPU: list[float] = [0.0]  # CPU seconds (user + system) of the last measured process


def mean_load() -> float:
    return statistics.mean(LOAD) if LOAD else os.getloadavg()[0]


def _available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return float("inf")


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def measure(code: str, *args: str) -> tuple[float, float, str]:
    """Run `code` in a fresh interpreter: (wall seconds, peak RSS in MB, stdout). A guard
    thread kills that process (only it) past the LIMITS; the measurement raises Aborted.
    A failure raises SystemExit with the last lines of the process's stderr."""
    with tempfile.TemporaryFile(mode="w+") as errors:
        return _measure(code, args, errors)


def _measure(code: str, args: tuple[str, ...], errors: Any) -> tuple[float, float, str]:
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
    )
    stopped: list[str] = []
    LOAD.clear()

    def guard() -> None:
        while process.returncode is None and not stopped:
            LOAD.append(os.getloadavg()[0])
            rss, elapsed = _rss_mb(process.pid), time.perf_counter() - started
            available, disk_free = _available_mb(), shutil.disk_usage(OUTPUT).free / 2**30
            why = []
            if rss > LIMITS["rss_mb"]:
                why.append(f"resident {rss:,.0f} MB > {LIMITS['rss_mb']:,.0f} MB")
            if elapsed > LIMITS["seconds"]:
                why.append(f"running > {LIMITS['seconds']:.0f} s")
            if available < LIMITS["available_mb"]:
                why.append(f"machine memory available {available:,.0f} MB")
            if disk_free < LIMITS["disk_free_gb"]:
                why.append(f"disk free {disk_free:.1f} GB")
            if why:
                stopped.append(f"stopped after {elapsed:.0f} s at {rss:,.0f} MB: {', '.join(why)}")
                process.kill()
                return
            time.sleep(0.25)

    watcher = threading.Thread(target=guard, daemon=True)
    watcher.start()
    stdout = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = status
    elapsed = time.perf_counter() - started
    peak = usage.ru_maxrss / 1024
    CPU[:] = [usage.ru_utime + usage.ru_stime]
    errors.seek(0)
    stderr = errors.read()
    if stopped:
        raise Aborted(stopped[0], elapsed, peak)
    if status != 0:
        tail = "\n".join(stderr.strip().splitlines()[-12:])
        raise SystemExit(f"benchmark step failed (status {status}):\n{stdout}\n{tail}")
    return elapsed, peak, stdout


def last_json(stdout: str) -> dict[str, Any]:
    return json.loads(stdout.strip().splitlines()[-1])


def generate(users: int, seed: int) -> tuple[Path, float]:
    """The feeds of a `users`-person organisation (cached, shared with the other benchmarks)."""
    feeds = OUTPUT / f"feeds_{users}_{seed}"
    if (feeds / "course_completion.csv").exists():
        return feeds, 0.0
    code = (
        "import sys; from pathlib import Path; from flows.demo.generator import generate_feeds\n"
        "generate_feeds(Path(sys.argv[1]), int(sys.argv[2]), seed=int(sys.argv[3]))"
    )
    elapsed, _, _ = measure(code, str(feeds), str(users), str(seed))
    return feeds, elapsed


def remove_warehouse(warehouse: Path) -> None:
    for stale in warehouse.parent.glob(warehouse.name + "*"):
        if stale.is_dir():
            shutil.rmtree(stale)
        else:
            stale.unlink()


# --- the organisation: what routes can select, and how many users each selects ---------------

# Rows the generator makes invalid on purpose (rejected on import): never referenced.
_BAD_USER, _BAD_ORG, _BAD_COURSE, _BAD_JOB_TITLE = "U99999", "ORG999", "C9999", "Acting Team Leader"
RECURRING = tuple(f"C{n:04d}" for n in range(1, 8))  # annual compliance courses
AUDIENCE_FIELDS = {  # rule user field -> feed column; one audience per value
    "country": "country",
    "department": "department",
    "custom:region": "customfield_region",
    "custom:employeetype": "customfield_employeetype",
    "city": "city",
}
ROUTE_KINDS = {  # kind -> share of the routes
    "organisation+children": 0.30,
    "organisation": 0.08,
    "position": 0.14,
    "position+children": 0.05,
    "audience": 0.20,
    "manager_all_below": 0.16,
    "manager_direct": 0.07,
}


@dataclass
class Facts:
    """Route candidates of one organisation: kind -> [(route without due, users selected)]."""

    users: int
    user_ids: list[str]
    courses: list[str]
    electives: list[str]
    audiences: list[dict[str, Any]]
    candidates: dict[str, list[tuple[dict[str, Any], int]]] = field(default_factory=dict)
    sizes: dict[str, list[int]] = field(default_factory=dict)  # per kind, ascending

    def __post_init__(self) -> None:
        self.sizes = {kind: [n for _, n in pool] for kind, pool in self.candidates.items()}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def org_facts(feeds: Path) -> Facts:
    import polars as pl

    def read(name: str) -> pl.DataFrame:
        return pl.read_csv(feeds / name, infer_schema=False)

    users = read("user.csv").filter(~pl.col("idnumber").str.starts_with(_BAD_USER))
    orgs = read("org.csv").filter(~pl.col("idnumber").str.starts_with(_BAD_ORG))
    positions = read("pos.csv")
    jobs = read("jobassignment.csv").filter(
        ~pl.col("useridnumber").str.starts_with(_BAD_USER)
        & ~pl.col("orgidnumber").str.starts_with(_BAD_ORG)
        & (pl.col("fullname") != _BAD_JOB_TITLE)
    )
    courses = sorted(c for c in read("course.csv")["idnumber"].to_list() if c != _BAD_COURSE)

    def subtree_sizes(items: pl.DataFrame, column: str) -> tuple[dict[str, int], dict[str, int]]:
        """(item -> users with a job in it, item -> users with a job in it or below)."""
        parent = dict(items.select("idnumber", "parentidnumber").iter_rows())
        pairs = []
        for item in parent:
            node: str | None = item
            while node is not None:
                pairs.append((item, node))
                node = parent.get(node)
        ancestry = pl.DataFrame(pairs, schema=["item", "ancestor"], orient="row")
        held = jobs.select(pl.col(column).alias("item"), pl.col("useridnumber")).drop_nulls()
        own = held.group_by("item").agg(pl.col("useridnumber").n_unique().alias("n"))
        below = (
            held.join(ancestry, on="item")
            .group_by("ancestor")
            .agg(pl.col("useridnumber").n_unique().alias("n"))
        )
        return dict(own.iter_rows()), dict(below.iter_rows())

    org_own, org_below = subtree_sizes(orgs, "orgidnumber")
    pos_own, pos_below = subtree_sizes(positions, "posidnumber")
    org_parents = set(orgs["parentidnumber"].drop_nulls().to_list())
    pos_parents = set(positions["parentidnumber"].drop_nulls().to_list())

    # management: direct reports, and everyone below (closure by repeated joins on integers)
    edges = (
        jobs.select(pl.col("manageridnumber").alias("m"), pl.col("useridnumber").alias("u"))
        .drop_nulls()
        .unique()
    )
    direct = dict(edges.group_by("m").agg(pl.len().alias("n")).iter_rows())
    ids = pl.concat([edges["m"], edges["u"]]).unique().sort()
    code = pl.DataFrame({"id": ids, "k": pl.int_range(0, ids.len(), eager=True)})
    numbered = (
        edges.join(code.rename({"id": "m", "k": "a"}), on="m")
        .join(code.rename({"id": "u", "k": "d"}), on="u")
        .select("a", "d")
    )
    step = numbered.rename({"a": "x", "d": "y"})
    frontier, closure = numbered, [numbered]
    for _ in range(64):
        frontier = (
            frontier.join(step, left_on="d", right_on="x").select("a", pl.col("y").alias("d"))
        ).unique()
        if frontier.is_empty():
            break
        closure.append(frontier)
    below_counts = (
        pl.concat(closure)
        .unique()
        .group_by("a")
        .agg(pl.len().alias("n"))
        .join(code.rename({"k": "a"}), on="a")
    )
    all_below = dict(below_counts.select("id", "n").iter_rows())

    audiences, audience_sizes = [], []
    for rule_field, column in AUDIENCE_FIELDS.items():
        # ties by value: group_by's order varies between processes, the rules must not
        counts = (
            users.group_by(column)
            .len()
            .drop_nulls()
            .sort(["len", column], descending=[True, False])
        )
        for value, size in counts.head(30).iter_rows():
            audience_id = f"aud_{_slug(rule_field)}_{_slug(value)}"
            audiences.append(
                {
                    "id": audience_id,
                    "name": f"{rule_field} {value}",
                    "kind": "dynamic",
                    "rules": {"user_field": rule_field, "operator": "equals", "values": [value]},
                }
            )
            audience_sizes.append(({"audience": audience_id}, int(size)))

    def hierarchy(kind: str, sizes: dict[str, int], children: bool) -> list:
        return [
            ({kind: {"ids": [item], "include_children": True} if children else {"ids": [item]}}, n)
            for item, n in sorted(sizes.items())
        ]

    candidates = {
        "organisation+children": hierarchy(
            "organisation", {k: v for k, v in org_below.items() if k in org_parents}, True
        ),
        "organisation": hierarchy("organisation", org_own, False),
        "position": hierarchy("position", pos_own, False),
        "position+children": hierarchy(
            "position", {k: v for k, v in pos_below.items() if k in pos_parents}, True
        ),
        "audience": audience_sizes,
        "manager_all_below": [
            ({"manager": {"user": m, "scope": "all_below"}}, n)
            for m, n in sorted(all_below.items())
        ],
        "manager_direct": [
            ({"manager": {"user": m, "scope": "direct"}}, n) for m, n in sorted(direct.items())
        ],
    }
    electives = [c for c in courses if c not in RECURRING and not "C0008" <= c <= "C0013"]
    return Facts(
        users=users.height,
        user_ids=sorted(users["idnumber"].to_list()),
        courses=courses,
        electives=electives,
        audiences=audiences,
        candidates={k: sorted(v, key=lambda c: c[1]) for k, v in candidates.items() if v},
    )


# --- synthetic programs and certifications ------------------------------------------------------


def _course_sets(rng: random.Random, courses: list[str]) -> list[Any]:
    """1-4 course sets over `courses` joined by then / and / or."""
    n_sets = min(len(courses), rng.choice([1, 2, 2, 3, 3, 4]))
    cuts = sorted(rng.sample(range(1, len(courses)), n_sets - 1)) if n_sets > 1 else []
    chunks = [courses[a:b] for a, b in zip([0, *cuts], [*cuts, len(courses)], strict=True)]
    content: list[Any] = []
    for index, chunk in enumerate(chunks):
        if index:
            content.append(rng.choices(["then", "and", "or"], [0.4, 0.35, 0.25])[0])
        kind = rng.choices(["all", "any", "some", "optional"], [0.4, 0.2, 0.35, 0.05])[0]
        if kind == "some" and len(chunk) == 1:
            kind = "all"
        course_set: dict[str, Any] = {"kind": kind, "courses": chunk}
        if kind == "some":
            style = rng.random()
            if style < 0.6:
                course_set["min_courses"] = rng.randint(1, len(chunk) - 1)
            elif style < 0.85:
                course_set["min_score"] = rng.randint(3, 12)
            else:
                course_set["min_courses"] = rng.randint(1, len(chunk) - 1)
                course_set["min_score"] = rng.randint(2, 8)
        if rng.random() < 0.2:
            course_set["min_time"] = rng.choice(
                [{"days": rng.randint(3, 30)}, {"weeks": rng.randint(1, 4)}]
            )
        content.append(course_set)
    return content


def _due(
    rng: random.Random, route: dict[str, Any], courses: list[str], programs: list[str]
) -> dict[str, Any] | None:
    """A due date on one of every base (none for a fifth of the routes)."""
    bases = ["none", "fixed", "assignment", "job_start", "first_access", "course_completion",
             "custom_field", "position_assigned", "program_completion"]  # fmt: skip
    weights = [0.2, 0.14, 0.2, 0.1, 0.1, 0.1, 0.1, 0.03, 0.03]
    base = rng.choices(bases, weights)[0]
    if base == "position_assigned" and "position" not in route:
        base = "assignment"
    if base == "program_completion" and not programs:
        base = "assignment"
    if base == "none":
        return None
    if base == "fixed":
        return {"date": f"2027-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"}
    if base == "assignment":
        return {"after": "assignment", "days": rng.choice([30, 60, 90, 180])}
    if base == "job_start":
        return {"after": "job_start", "months": rng.choice([3, 6, 12, 24])}
    if base == "first_access":
        return {"after": "first_access", "weeks": rng.choice([2, 4, 8, 12])}
    if base == "course_completion":
        return {"after": "course_completion", "course": rng.choice(courses), "months": 6}
    if base == "custom_field":
        return {"after": "custom_field", "field": "hiredate", "months": rng.choice([1, 3, 6])}
    if base == "position_assigned":
        return {"after": "position_assigned", "position": route["position"]["ids"][0], "months": 3}
    return {"after": "program_completion", "program": rng.choice(programs), "months": 2}


def _route_key(route: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in route.items() if k != "due"}, sort_keys=True)


def _routes(
    rng: random.Random, facts: Facts, budget: float
) -> list[tuple[dict[str, Any], int, str]]:
    """1-3 routes whose selections add up to about `budget` users."""
    count = rng.choices([1, 2, 3], [0.5, 0.35, 0.15])[0]
    kinds = [k for k in ROUTE_KINDS if k in facts.candidates]
    chosen: list[tuple[dict[str, Any], int, str]] = []
    seen: set[str] = set()
    for _ in range(count):
        kind = rng.choices(kinds, [ROUTE_KINDS[k] for k in kinds])[0]
        pool, sizes = facts.candidates[kind], facts.sizes[kind]
        want = max(1.0, budget / count)
        # one of the few candidates nearest in size (the pools are sorted by size)
        at = bisect.bisect_left(sizes, want)
        nearest = pool[max(0, at - 3) : at + 3] or pool[-1:]
        nearest = sorted(nearest, key=lambda c: abs(math.log(max(1, c[1])) - math.log(want)))
        route, size = rng.choice(nearest[:3])
        if rng.random() < 0.3 and "manager" in route:
            route = {"manager": {**route["manager"], "job": "J1"}}
        if _route_key(route) in seen:
            continue
        seen.add(_route_key(route))
        chosen.append((dict(route), size, kind))
    return chosen


def _exceptions(rng: random.Random, facts: Facts) -> dict[str, Any] | None:
    default = rng.choices(["open", "assign", "realistic_due_date", "dismiss"], [4, 2, 3, 1])[0]
    exceptions: dict[str, Any] = {"default": default}
    if rng.random() < 0.1:
        exceptions["users"] = {
            user: rng.choice(["assign", "realistic_due_date", "dismiss"])
            for user in rng.sample(facts.user_ids, 3)
        }
    return exceptions


def synthetic_rules(
    facts: Facts, programs: int, certifications: int, per_user: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int, list[tuple[str, int]]]:
    """(programs, certifications, users the routes select in all (overlaps counted twice),
    (route kind, users selected) per route).

    Budgets are lognormal around the mean that gives `per_user` assignments per user; the
    whole draw is repeated with budgets rescaled until the routes' sizes add up to it."""
    total = programs + certifications
    target = per_user * facts.users
    scale = 1.0
    for _ in range(6):
        rng = random.Random(f"programs-{seed}")
        cert_electives = rng.sample(facts.electives, len(facts.electives))
        next_elective = 0
        weights = [rng.lognormvariate(0, 1.0) for _ in range(total)]
        mean = statistics.mean(weights)
        made_programs: list[dict[str, Any]] = []
        made_certs: list[dict[str, Any]] = []
        selected = 0
        route_sizes: list[tuple[str, int]] = []
        for index in range(total):
            budget = scale * target / total * weights[index] / mean
            routes = _routes(rng, facts, budget)
            selected += sum(size for _, size, _ in routes)
            route_sizes.extend((kind, size) for _, size, kind in routes)
            is_cert = index % (total // max(1, certifications)) == 0 and len(made_certs) < (
                certifications
            )
            n_courses = rng.randint(3, 12)
            if is_cert:
                # electives from consecutive slices of one shuffled list, so certifications
                # share as few courses as the catalogue allows (shared courses between two
                # certifications of one learner raise duplicate_course); three in ten start
                # with an annual compliance course (renewed about yearly by the generator)
                extra = [
                    cert_electives[(next_elective + k) % len(cert_electives)]
                    for k in range(min(n_courses - 1, len(cert_electives)))
                ]
                next_elective += len(extra)
                if rng.random() < 0.3:
                    recurring = RECURRING[len(made_certs) % len(RECURRING)]
                    primary = [{"kind": "all", "courses": [recurring]}]
                    primary += [rng.choices(["or", "and", "then"], [0.5, 0.3, 0.2])[0]]
                    primary += _course_sets(rng, extra)
                    recertification = [{"kind": "all", "courses": [recurring]}]
                else:
                    extra.append(cert_electives[next_elective % len(cert_electives)])
                    next_elective += 1
                    primary = _course_sets(rng, extra)
                    recertification = [{"kind": "any", "courses": rng.sample(extra, 2)}]
                item: dict[str, Any] = {
                    "id": f"cert_{len(made_certs) + 1:03d}",
                    "name": f"Certification {len(made_certs) + 1}",
                    "primary": primary,
                }
                if rng.random() < 0.5:
                    item["recertification"] = recertification
                active = rng.choices([{"years": 1}, {"years": 2}, {"months": 18}], [7, 2, 1])[0]
                item["active_period"] = active
                item["window_period"] = {"months": rng.choice([1, 2, 3])}
                method = rng.choices(["expiry_date", "completion_date", "fixed"], [5, 3, 2])[0]
                item["expiry_method"] = method
                if method == "fixed":
                    item["min_active_period"] = {"months": 6}
            else:
                courses = rng.sample(facts.courses, min(n_courses, len(facts.courses)))
                item = {
                    "id": f"prog_{len(made_programs) + 1:03d}",
                    "name": f"Program {len(made_programs) + 1}",
                    "content": _course_sets(rng, courses),
                }
            content_courses = [
                c
                for s in item.get("content", item.get("primary", []))
                if isinstance(s, dict)
                for c in s["courses"]
            ]
            earlier = [p["id"] for p in made_programs]
            item["assignments"] = [
                {**route, **({"due": due} if due else {})}
                for route, _, _ in routes
                for due in [_due(rng, route, content_courses, earlier)]
            ]
            item["exceptions"] = _exceptions(rng, facts)
            (made_certs if is_cert else made_programs).append(item)
        if abs(selected - target) < 0.03 * target:
            break
        scale *= target / max(1, selected)
    return made_programs, made_certs, selected, route_sizes


def write_rules(
    target: Path,
    facts: Facts,
    programs: list[dict[str, Any]],
    certifications: list[dict[str, Any]],
) -> Path:
    """A rules directory: the repository's hr_import.yaml and the synthetic files."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "rules" / "hr_import.yaml", target / "hr_import.yaml")

    def write(name: str, key: str, items: list[dict[str, Any]]) -> None:
        lines = [f"# Synthetic {key} written by benchmarks/bench_programs.py", f"{key}:"]
        for item in items:
            lines.append(f"  - id: {item['id']}")
            for field_name, value in item.items():
                if field_name != "id":  # JSON is YAML 1.2 flow style
                    lines.append(f"    {field_name}: {json.dumps(value, ensure_ascii=False)}")
        (target / name).write_text("\n".join(lines) + "\n", encoding="utf-8")

    write("audiences.yaml", "audiences", facts.audiences)
    write("programs.yaml", "programs", programs)
    write("certifications.yaml", "certifications", certifications)
    return target


def describe_mix(route_sizes: list[tuple[str, int]], users: int) -> list[str]:
    """The rule mix: per route kind, how many routes and how many users each selects."""
    by_kind: dict[str, list[int]] = {}
    for kind, size in route_sizes:
        by_kind.setdefault(kind, []).append(size)
    lines = [f"route mix (users selected per route, of {users:,}):"]
    for kind, sizes in sorted(by_kind.items(), key=lambda kv: -sum(kv[1])):
        lines.append(
            f"  {kind:<22} {len(sizes):4} routes, median {statistics.median(sizes):9,.0f}, "
            f"max {max(sizes):9,}, in all {sum(sizes):11,}"
        )
    return lines


def describe_rules(programs: list[dict[str, Any]], certs: list[dict[str, Any]]) -> list[str]:
    items = programs + certs
    routes = [r for item in items for r in item["assignments"]]
    kinds = Counter(
        next(k for k in r if k != "due")
        + (
            " +children"
            if any(isinstance(v, dict) and v.get("include_children") for v in r.values())
            else ""
        )
        + (f" {r['manager']['scope']}" if "manager" in r else "")
        for r in routes
    )
    bases = Counter("none" if "due" not in r else r["due"].get("after", "fixed") for r in routes)
    sets = [
        s for item in items for s in item.get("content", item.get("primary", []))
        if isinstance(s, dict)
    ]  # fmt: skip
    n_courses = [
        len({c for s in item.get("content", item.get("primary", [])) if isinstance(s, dict)
             for c in s["courses"]})
        for item in items
    ]  # fmt: skip
    methods = Counter(c["expiry_method"] for c in certs)
    return [
        f"{len(programs)} programs, {len(certs)} certifications; courses per item "
        f"{min(n_courses)}-{max(n_courses)} (mean {statistics.mean(n_courses):.1f}); "
        f"{len(sets)} course sets ("
        + ", ".join(f"{k} {v}" for k, v in Counter(s["kind"] for s in sets).most_common())
        + ")",
        f"{len(routes)} routes: " + ", ".join(f"{k} {v}" for k, v in kinds.most_common()),
        "due bases: " + ", ".join(f"{k} {v}" for k, v in bases.most_common()),
        "expiry methods: " + ", ".join(f"{k} {v}" for k, v in methods.most_common()),
    ]


# --- measurements -----------------------------------------------------------------------------


def run_results(state_dir: Path) -> list[dict[str, Any]]:
    path = state_dir / "dbt" / "target" / "run_results.json"
    return json.loads(path.read_text())["results"]


def _short(unique_id: str) -> str:
    return re.sub(r"^(model|test|snapshot|unit_test)\.learnops\.", r"\1 ", unique_id)


def program_nodes(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Timings of the program and certification nodes of one dbt invocation."""
    models, tests, spans = {}, {}, []
    for result in results:
        unique_id = result["unique_id"]
        if not PROGRAM_NODE.search(unique_id):
            continue
        seconds = float(result.get("execution_time") or 0.0)
        (models if unique_id.startswith("model.") else tests)[_short(unique_id)] = seconds
        for step in result.get("timing", []):
            if step.get("name") == "execute" and step.get("started_at"):
                spans.append(
                    (
                        datetime.fromisoformat(step["started_at"].replace("Z", "+00:00")),
                        datetime.fromisoformat(step["completed_at"].replace("Z", "+00:00")),
                    )
                )
    span = (max(e for _, e in spans) - min(s for s, _ in spans)).total_seconds() if spans else 0
    return {
        "models": models,
        "tests": tests,
        "models_s": sum(models.values()),
        "tests_s": sum(tests.values()),
        "span_s": span,
        "code": {
            _short(r["unique_id"]): r.get("compiled_code")
            for r in results
            if r["unique_id"].startswith("model.") and PROGRAM_NODE.search(r["unique_id"])
        },
    }


def run(feeds: Path, rules: Path, warehouse: Path, as_of: str) -> dict[str, Any]:
    elapsed, peak, stdout = measure(RUN_SNIPPET, str(feeds), str(rules), str(warehouse), as_of)
    out = last_json(stdout)
    results = run_results(Path(f"{warehouse}.learnops"))
    return {
        "wall_s": elapsed,
        "cpu_s": CPU[0],
        "peak_mb": peak,
        "load": mean_load(),
        "stages": out["stages"],
        "models": out["models"],
        "tests": out["tests"],
        "nodes": program_nodes(results),
        "dbt_total_s": sum(float(r.get("execution_time") or 0.0) for r in results),
    }


def counts(warehouse: Path) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:

        def rows(sql: str) -> list[tuple]:
            return con.execute(sql).fetchall()

        return {
            "population": rows("select count(*) from dim_user where status <> 'deleted'")[0][0],
            "program_user": rows("select kind, count(*) from fct_program_user group by all"),
            "status": rows(
                "select status, count(*), count(*) filter (where is_overdue) "
                "from fct_program_user group by all order by 2 desc"
            ),
            "exceptions": rows(
                "select exception_type, coalesce(exception_resolution, 'open'), count(*) "
                "from fct_program_user where exception_type is not null group by all "
                "order by 3 desc"
            ),
            "states": rows(
                "select state, count(*) from fct_certification_user group by all order by 2 desc"
            ),
            "routes": rows("select count(*) from fct_program_assignment_route")[0][0],
            "course_sets": rows("select count(*) from fct_program_course_set_user")[0][0],
            "per_program": [
                r[0]
                for r in rows(
                    "select count(*) from fct_program_user group by program_id order by 1"
                )
            ],
            "completions": rows("select count(*) from hr.course_completion")[0][0],
        }
    finally:
        con.close()


def rebuild_alone(warehouse: Path, users: int) -> tuple[Path, Path, dict[str, Any]]:
    """The program and certification models (and their tests) rebuilt on a copy of the
    published warehouse, in a fresh process."""
    copy = OUTPUT / f"programs_alone_{users}.duckdb"
    remove_warehouse(copy)
    shutil.copy(warehouse, copy)
    state = OUTPUT / f"programs_alone_{users}.state"
    shutil.rmtree(state, ignore_errors=True)
    select = " ".join(sorted(p.stem for p in MODELS.rglob("*.sql") if PROGRAM_NODE.search(p.stem)))
    elapsed, peak, stdout = measure(REBUILD_SNIPPET, str(copy), str(state), select)
    out = last_json(stdout)
    nodes = program_nodes(run_results(state))
    return copy, state, {"wall_s": elapsed, "cpu_s": CPU[0], "peak_mb": peak,
                         "load": mean_load(), **out, "nodes": nodes}  # fmt: skip


def explain(
    copy: Path, nodes: dict[str, Any], top_models: int, memory_limit: str, top_ops: int = 6
) -> list[str]:
    """EXPLAIN ANALYZE (DuckDB's JSON profile) of the slowest program models, on `copy`."""
    slowest = sorted(nodes["models"].items(), key=lambda kv: -kv[1])[:top_models]
    lines = []
    for name, seconds in slowest:
        sql = nodes["code"].get(name)
        if not sql:
            lines.append(f"  {name}: no compiled SQL")
            continue
        source = OUTPUT / f"explain_{name.split()[-1]}.sql"
        source.write_text(sql)
        catalog = re.search(r'"([^"]+)"\."(?:main|intermediate|staging|rules|learnops|hr)"', sql)
        profile = OUTPUT / f"profile_{name.split()[-1]}.json"
        try:
            elapsed, peak, _ = measure(
                EXPLAIN_SNIPPET, str(copy), catalog.group(1) if catalog else copy.stem,
                str(source), str(profile), memory_limit,
            )  # fmt: skip
        except Aborted as aborted:
            lines.append(f"  {name}: profile aborted: {aborted.reason}")
            continue
        except SystemExit as failed:  # e.g. DuckDB out of memory under memory_limit
            why = [line for line in str(failed).splitlines() if "Error" in line][-1:]
            lines.append(
                f"  {name[6:]}: profile failed ({memory_limit} limit): {''.join(why)[:160]}"
            )
            continue
        data = json.loads(profile.read_text())
        operators = sorted(_operators(data), key=lambda o: -o[1])
        query, system = data.get("query", {}), data.get("system", {})
        optimizer = sum(v for v in data.get("optimizer", {}).values() if isinstance(v, float))
        lines.append(
            f"  {name[6:]}: {seconds:.2f} s in dbt; profiled {elapsed:.1f} s wall (fresh "
            f"process), peak {peak:,.0f} MB; query {query.get('total_time', 0):.2f} s of which "
            f"operators' CPU {query.get('cpu_time', 0):.2f} s, planner "
            f"{data.get('planner', {}).get('total_time', 0):.2f} s, optimizer {optimizer:.2f} s; "
            f"{query.get('total_intermediate_rows', 0):,} intermediate rows, DuckDB peak buffer "
            f"{system.get('peak_buffer_memory', 0) / 2**20:,.0f} MB; slowest operators:"
        )
        for op, op_seconds, op_rows, info in operators[:top_ops]:
            lines.append(f"    {op:<24} {op_seconds:7.2f} s  {op_rows:>13,} rows  {info}")
    return lines


def _operators(profile: dict[str, Any]) -> list[tuple[str, float, int, str]]:
    out = []

    def walk(node: dict[str, Any]) -> None:
        name = node.get("type") or node.get("operator_type") or "?"
        seconds = float(node.get("timing", node.get("operator_timing", 0.0)) or 0.0)
        rows = int(node.get("intermediate_rows", node.get("operator_cardinality", 0)) or 0)
        extra = node.get("extra_info") or {}
        info = "; ".join(
            f"{k}: {v}" for k, v in extra.items() if k in ("Conditions", "Join Type", "Groups")
        )[:110]
        out.append((name, seconds, rows, info))
        for child in node.get("children", []):
            walk(child)

    for root in profile.get("operator", profile.get("children", [])):
        walk(root)
    return out


# --- reporting --------------------------------------------------------------------------------


def print_run(label: str, row: dict[str, Any]) -> None:
    stages = ", ".join(f"{k} {v:.1f}" for k, v in row["stages"].items())
    nodes = row["nodes"]
    print(
        f"    {label:<26} {row['wall_s']:6.1f} s  ({stages})  peak {row['peak_mb']:,.0f} MB"
        f"  [{row['models']} models, {row['tests']} tests; {row['cpu_s']:.0f} s CPU; "
        f"load {row['load']:.1f}]"
    )
    print(
        f"      status build: program/certification models {nodes['models_s']:.2f} s, "
        f"their tests {nodes['tests_s']:.2f} s (summed; wall span of those nodes "
        f"{nodes['span_s']:.2f} s); whole dbt build {row['dbt_total_s']:.1f} s summed"
    )


def print_nodes(nodes: dict[str, Any], indent: str = "      ", top: int = 12) -> None:
    for name, seconds in sorted(nodes["models"].items(), key=lambda kv: -kv[1])[:top]:
        print(f"{indent}{name[6:]:<50} {seconds:6.2f} s")
    slow_tests = sorted(nodes["tests"].items(), key=lambda kv: -kv[1])[:3]
    for name, seconds in slow_tests:
        print(f"{indent}{name[:50]:<50} {seconds:6.2f} s")


def print_counts(found: dict[str, Any], selected: int) -> None:
    population = found["population"]
    assigned = sum(n for _, n in found["program_user"])
    per_program = found["per_program"]
    print(
        f"    assignments: {assigned:,} learner rows ({assigned / max(1, population):.1f} per "
        f"user; routes select {selected:,} with overlaps counted twice) of "
        + ", ".join(f"{k} {n:,}" for k, n in found["program_user"])
        + f"; {found['routes']:,} route rows; {found['course_sets']:,} course-set rows; "
        f"per item median {statistics.median(per_program):,.0f}, max {per_program[-1]:,}; "
        f"{found['completions']:,} completions"
    )
    print("    status: " + ", ".join(f"{s} {n:,} ({o:,} overdue)" for s, n, o in found["status"]))
    print("    exceptions: " + ", ".join(f"{t}/{r} {n:,}" for t, r, n in found["exceptions"]))
    print("    certification states: " + ", ".join(f"{s} {n:,}" for s, n in found["states"]))


def print_aborted(label: str, aborted: Aborted) -> None:
    print(f"    {label:<26} ABORTED: {aborted.reason}; peak {aborted.peak_mb:,.0f} MB")


def bench_size(users: int, options: argparse.Namespace) -> None:
    feeds, generated_s = generate(users, options.seed)
    started = time.perf_counter()
    facts = org_facts(feeds)
    programs, certs, selected, route_sizes = synthetic_rules(
        facts, options.programs, options.certifications, options.assignments_per_user,
        options.seed,
    )  # fmt: skip
    rules = write_rules(OUTPUT / f"rules_programs_{users}_{options.seed}", facts, programs, certs)
    print(
        f"\n{users:,} users ({facts.users:,} good rows; feeds generated in {generated_s:.1f} s, "
        f"rules drawn in {time.perf_counter() - started:.1f} s; neither counted); "
        f"{len(facts.audiences)} audiences of one leaf"
    )
    for line in describe_rules(programs, certs) + describe_mix(route_sizes, facts.users):
        print(f"    {line}")
    warehouse = OUTPUT / f"warehouse_programs_{users}.duckdb"
    remove_warehouse(warehouse)
    copy = state = None
    try:
        try:
            first = run(feeds, rules, warehouse, AS_OF_1)
        except Aborted as aborted:
            print_aborted("run 1 (empty warehouse)", aborted)
            return
        print_run("run 1 (empty warehouse)", first)
        print_nodes(first["nodes"])
        if options.runs > 1:
            try:
                second = run(feeds, rules, warehouse, AS_OF_2)
            except Aborted as aborted:
                print_aborted("run 2 (a week later)", aborted)
                return
            print_run("run 2 (a week later)", second)
            print_nodes(second["nodes"])
        print_counts(counts(warehouse), selected)
        if options.skip_rebuild:
            return
        try:
            copy, state, alone = rebuild_alone(warehouse, users)
        except Aborted as aborted:
            print_aborted("program models alone", aborted)
            return
        print(
            f"    program models alone     {alone['wall_s']:6.1f} s wall (dbt start-up and "
            f"parse included, {alone['elapsed']:.1f} s in dbt), peak {alone['peak_mb']:,.0f} MB"
            f"  [{alone['models']} models, {alone['tests']} tests; {alone['cpu_s']:.0f} s CPU; "
            f"load {alone['load']:.1f}]"
        )
        print(
            f"      models {alone['nodes']['models_s']:.2f} s, tests "
            f"{alone['nodes']['tests_s']:.2f} s (summed), span {alone['nodes']['span_s']:.2f} s"
        )
        print_nodes(alone["nodes"])
        if options.explain:
            print("    EXPLAIN ANALYZE of the slowest models (on the copy):")
            for line in explain(copy, alone["nodes"], options.explain_top, options.explain_memory):
                print("  " + line)
    finally:
        if not options.keep:
            remove_warehouse(warehouse)
            if copy is not None:
                remove_warehouse(copy)
            if state is not None:
                shutil.rmtree(state, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--programs", type=int, default=400)
    parser.add_argument("--certifications", type=int, default=100)
    parser.add_argument("--assignments-per-user", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--runs", type=int, choices=[1, 2], default=2, help="1: the first run only (no re-run)"
    )
    parser.add_argument("--skip-rebuild", action="store_true", help="no rebuild on a copy")
    parser.add_argument(
        "--explain-from",
        type=Path,
        metavar="WAREHOUSE",
        help="only profile the slowest program models of WAREHOUSE's last run (kept with --keep)",
    )
    parser.add_argument("--explain", action="store_true", help="profile the slowest models")
    parser.add_argument("--explain-top", type=int, default=3)
    parser.add_argument(
        "--explain-memory", default="8GB", help="DuckDB memory_limit of the profiling process"
    )
    parser.add_argument("--keep", action="store_true", help="keep the warehouses afterwards")
    parser.add_argument("--max-rss-gb", type=float, default=12.0)
    parser.add_argument("--min-available-gb", type=float, default=2.0)
    parser.add_argument("--max-minutes", type=float, default=20.0)
    parser.add_argument(
        "--print-rules", type=int, metavar="USERS", help="only print the synthetic rules"
    )
    parser.add_argument(
        "--mix-only", action="store_true", help="only describe the synthetic rules of --sizes"
    )
    options = parser.parse_args()
    LIMITS.update(
        rss_mb=options.max_rss_gb * 1024,
        seconds=options.max_minutes * 60,
        available_mb=options.min_available_gb * 1024,
    )
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    OUTPUT.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PYTHONPATH", str(REPO))
    if options.mix_only:
        for users in options.sizes:
            facts = org_facts(generate(users, options.seed)[0])
            programs, certs, selected, route_sizes = synthetic_rules(
                facts, options.programs, options.certifications, options.assignments_per_user,
                options.seed,
            )  # fmt: skip
            print(f"{users:,} users: routes select {selected:,} (overlaps counted twice)")
            for line in describe_rules(programs, certs) + describe_mix(route_sizes, facts.users):
                print(f"    {line}")
        return
    if options.print_rules:
        feeds, _ = generate(options.print_rules, options.seed)
        facts = org_facts(feeds)
        programs, certs, _, route_sizes = synthetic_rules(
            facts, options.programs, options.certifications, options.assignments_per_user,
            options.seed,
        )  # fmt: skip
        rules = write_rules(OUTPUT / "rules_programs_print", facts, programs, certs)
        for name in ("programs.yaml", "certifications.yaml"):
            print((rules / name).read_text(encoding="utf-8"), end="")
        return
    if options.explain_from:
        nodes = program_nodes(run_results(Path(f"{options.explain_from}.learnops")))
        print(f"EXPLAIN ANALYZE of the slowest models of {options.explain_from}'s last run:")
        for line in explain(
            options.explain_from, nodes, options.explain_top, options.explain_memory
        ):
            print("  " + line)
        return
    cores = os.cpu_count()
    print(f"as of {AS_OF_1} then {AS_OF_2}; {cores} cores; each measurement a fresh process")
    for users in options.sizes:
        bench_size(users, options)


if __name__ == "__main__":
    main()
