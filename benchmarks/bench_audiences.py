"""Benchmark: audience evaluation at 10k, 100k and 1M users (SPEC §4.1, §10).

For each size it generates the organisation (flows/demo/generator.py, all feeds: courses and
completions too, since audiences test completions) and a synthetic `audiences.yaml` of
`--audiences` audiences drawn, with a fixed seed, from the real ids and values of that
organisation: audience i is drawn around one real person (its anchor), so its conditions
describe a group that exists (their country, city, department, organisation subtree,
position, title, manager, completed courses, dates...), with an average of 4 leaves, depth
about 3 and 10% `member_of` / `not_member_of` on earlier audiences. Then, each in a fresh
process on an empty warehouse:

* a first full run (`run_pipeline`: import + rule tables + dbt build + publish) **without**
  audiences (rules directory with `hr_import.yaml` only) and **with** them: the audience
  cost is the difference;
* the dbt node timings of the audience models and their tests (the run's
  `<warehouse>.learnops/dbt/target/run_results.json`);
* the audience models alone: the rules stage run on a copy of the warehouse built without
  audiences, then a dbt build of those models (their time and peak memory without the
  import's);
* the rule mix (for each leaf kind: how many leaves, the median and maximum number of users
  each matches) and the membership row counts.

    .venv/bin/python benchmarks/bench_audiences.py                       # 10k and 100k
    .venv/bin/python benchmarks/bench_audiences.py --sizes 1000000       # the 1M goal
    .venv/bin/python benchmarks/bench_audiences.py --sizes 100000 --audience-series 20 200 2000

Peak memory is the measured process's ru_maxrss. A guard stops a measured process (only
that one) past --max-rss-gb, --max-minutes, or when the machine's available memory drops
below --min-available-gb, and reports how far dbt got. Feeds are cached under
benchmarks/output/ (the same cache as bench_identity.py); warehouses there are replaced on
every run. `--print-rules USERS` prints the synthetic audiences.yaml.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "benchmarks" / "output"
AS_OF = "2026-11-01T06:00:00Z"  # the generator's as_of day: every access and completion before
AS_OF_WEEK_LATER = "2026-11-08T06:00:00Z"  # run 2: the same feeds a week on (the steady state)
AUDIENCE_MODELS = (
    "int_audience_leaf_atoms",
    "int_audience_atom_members",
    "int_audience_leaf_sets",
    "int_audience_member_sets",
    "int_audience_membership_changes",
    "fct_audience_membership",
    "fct_audience_membership_event",
    "dim_audience",
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
                  "models": result.models_built, "tests": result.tests_passed}))
"""

# The rules check alone (syntax, schema, meaning): what every run and `validate` pay first.
VALIDATE_SNIPPET = """
import json, sys, time
from pathlib import Path
started = time.perf_counter()
from flows.rules.validation import validate_rules
imported = time.perf_counter()
loaded = validate_rules(Path(sys.argv[1]))
print(json.dumps({"import": imported - started, "validate": time.perf_counter() - imported,
                  "audiences": len(loaded.audiences.audiences)}))
"""

# The pipeline's own rules stage (rule tables, previous state) run on a copy of a warehouse
# built without audiences, as a run with them would have done before its dbt build.
LOAD_RULES_SNIPPET = """
import sys, duckdb
from pathlib import Path
from types import SimpleNamespace
from flows.pipeline import RunRequest, RunResult, rules_stage
from flows.rules.validation import validate_rules
copy, rules = Path(sys.argv[1]), Path(sys.argv[2])
with duckdb.connect(str(copy)) as con:
    run_id, as_of = con.execute("select run_id, as_of from learnops.run_context").fetchall()[0]
request = RunRequest(feeds=copy.parent, rules=rules, warehouse=copy, as_of=as_of)
result = RunResult(run_id=run_id, as_of=as_of, warehouse=copy)
paths = SimpleNamespace(building=copy, state_dir=copy.with_suffix(".state"))  # no ledger there
rules_stage(request, paths, result, validate_rules(rules))
"""

# dbt build of the audience models (and their tests) alone, on a copy of a built warehouse.
REBUILD_SNIPPET = """
import json, sys, time
from pathlib import Path
from flows.runtime_env import configure_runtime_env; configure_runtime_env()
from flows.build import build_warehouse
result = build_warehouse(Path(sys.argv[1]), state_dir=Path(sys.argv[2]), select=sys.argv[3])
print(json.dumps({"elapsed": result.elapsed_s, "nodes": result.node_timings,
                  "models": result.models_built, "tests": result.tests_passed}))
"""

# DuckDB's profile of one compiled model's SELECT, run on a warehouse copy (read-only).
EXPLAIN_SNIPPET = """
import json, sys, duckdb
con = duckdb.connect(":memory:")
con.execute(f"attach '{sys.argv[1]}' as {sys.argv[2]} (read_only)")
con.execute(f"use {sys.argv[2]}")
con.execute("pragma enable_profiling = 'json'")
con.execute(f"pragma profiling_output = '{sys.argv[4]}'")
con.execute("select count(*) from (" + open(sys.argv[3]).read() + ")").fetchall()
con.execute("pragma disable_profiling")
"""


class Aborted(RuntimeError):
    """A measurement stopped by the guard (too much memory or time), with how far it got."""

    def __init__(self, reason: str, elapsed: float, peak_mb: float) -> None:
        super().__init__(reason)
        self.reason, self.elapsed, self.peak_mb = reason, elapsed, peak_mb


# set from the command line; the machine-wide ones protect whatever else runs alongside
LIMITS = {"rss_mb": 16_000.0, "seconds": 1_800.0, "available_mb": 2_048.0, "disk_free_gb": 20.0}


LOAD: list[float] = []  # the machine's 1-minute load average, sampled during a measurement


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
    """Run `code` in a fresh interpreter: (wall seconds, peak RSS in MB, stdout).

    A guard thread kills that process (and only it) when its resident memory passes
    LIMITS["rss_mb"] or it runs longer than LIMITS["seconds"], so one benchmark cannot take
    a shared machine down; the measurement then raises Aborted.
    """
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", code, *args], cwd=REPO, stdout=subprocess.PIPE, text=True
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
                why.append(f"disk free {disk_free:.1f} GB (DuckDB spilling?)")
            if why:
                stopped.append(
                    f"stopped after {elapsed:.0f} s at {rss:,.0f} MB resident: {', '.join(why)}"
                )
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
    if stopped:
        raise Aborted(stopped[0], elapsed, peak)
    if status != 0:
        raise SystemExit(f"benchmark step failed (status {status}):\n{stdout}")
    return elapsed, peak, stdout


def last_json(stdout: str) -> dict[str, Any]:
    return json.loads(stdout.strip().splitlines()[-1])


def generate(users: int, seed: int) -> tuple[Path, float]:
    """The feeds of a `users`-person organisation (cached, shared with bench_identity.py)."""
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


# --- the organisation's real ids and values ---------------------------------------------------

AS_OF_DAY = date(2026, 11, 1)
USER_TEXT_FIELDS = {  # rule field -> feed column
    "country": "country",
    "city": "city",
    "department": "department",
    "lang": "lang",
    "institution": "institution",
    "custom:employeetype": "customfield_employeetype",
    "custom:region": "customfield_region",
}


@dataclass
class Job:
    org: str
    pos: str
    title: str
    start: date | None
    end: date | None


@dataclass
class Person:
    """A real user of the organisation: an audience is drawn around one (its anchor), so
    its conditions describe a group that exists, as an admin's would."""

    user_id: str
    text: dict[str, str | None]  # rule user field -> value
    surname: str | None  # as in the e-mail address
    suspended: bool
    dates: dict[str, date | None]  # custom:hiredate, first_access, last_access
    jobs: list[Job]
    managers: list[str]  # up the first job's management line, direct manager first
    manages: bool
    completions: dict[str, date]  # course -> last completion day


@dataclass
class OrgFacts:
    """What rules can refer to in one generated organisation (good rows only)."""

    user_ids: list[str]
    people: list[Person]  # the anchors, in draw order
    values: dict[str, list[str]]  # rule user field -> its distinct values
    surnames: list[str]
    org_parent: dict[str, str | None]
    org_type: dict[str, str]
    org_costcentre: dict[str, str]
    orgs_by_depth: dict[int, list[str]]
    pos_parent: dict[str, str | None]
    pos_type: dict[str, str]
    pos_grade: dict[str, str]
    titles: list[str]
    courses: list[str]
    managers: list[str]

    def org_chain(self, org: str) -> list[str]:
        chain: list[str] = []
        node: str | None = org
        while node is not None and node not in chain:
            chain.append(node)
            node = self.org_parent.get(node)
        return chain


# Rows the generator makes invalid on purpose (rejected on import): never referenced.
_BAD_USER, _BAD_ORG, _BAD_COURSE, _BAD_JOB_TITLE = "U99999", "ORG999", "C9999", "Acting Team Leader"


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text[:10]) if text else None


def anchor_ids(user_ids: list[str], count: int, seed: int) -> list[str]:
    """The anchor of audience i is the same user whatever the number of audiences."""
    return [
        user_ids[random.Random(f"anchor-{seed}-{i}").randrange(len(user_ids))]
        for i in range(1, count + 1)
    ]


def org_facts(feeds: Path, anchors: int, seed: int) -> OrgFacts:
    import polars as pl

    def read(name: str) -> pl.DataFrame:
        return pl.read_csv(feeds / name, infer_schema=False)  # every column as text

    users = read("user.csv").filter(~pl.col("idnumber").str.starts_with(_BAD_USER))
    user_ids = sorted(users["idnumber"].to_list())
    wanted = anchor_ids(user_ids, anchors, seed)
    chosen = set(wanted)
    values = {
        name: sorted(users[column].drop_nulls().unique().to_list())
        for name, column in USER_TEXT_FIELDS.items()
    }
    surname = (
        pl.col("email").str.split("@").list.first().str.split(".").list.get(1, null_on_oob=True)
    )
    users = users.with_columns(surname.alias("surname"))
    surnames = sorted(users["surname"].drop_nulls().unique().to_list())

    orgs = read("org.csv").filter(~pl.col("idnumber").str.starts_with(_BAD_ORG))
    org_parent = dict(orgs.select("idnumber", "parentidnumber").iter_rows())
    positions = read("pos.csv")
    jobs = read("jobassignment.csv").filter(
        ~pl.col("useridnumber").str.starts_with(_BAD_USER)
        & ~pl.col("orgidnumber").str.starts_with(_BAD_ORG)
        & (pl.col("fullname") != _BAD_JOB_TITLE)
    )
    first_jobs = jobs.filter(pl.col("idnumber") == "J1")
    manager_of = dict(first_jobs.select("useridnumber", "manageridnumber").iter_rows())
    managers = sorted(jobs["manageridnumber"].drop_nulls().unique().to_list())
    manager_set = set(managers)
    access = {
        row[0]: row[1:]
        for row in read("user_access.csv").filter(pl.col("useridnumber").is_in(chosen)).iter_rows()
    }
    completions: dict[str, dict[str, date]] = {}
    for user, course, when in (
        pl.scan_csv(feeds / "course_completion.csv", infer_schema=False)
        .filter(pl.col("useridnumber").is_in(chosen) & (pl.col("courseidnumber") != _BAD_COURSE))
        .group_by("useridnumber", "courseidnumber")
        .agg(pl.col("timecompleted").max())
        .collect()
        .iter_rows()
    ):
        completions.setdefault(user, {})[course] = _day(when)  # type: ignore[assignment]
    person_jobs: dict[str, list[Job]] = {}
    for user, org, pos, title, start, end in (
        jobs.filter(pl.col("useridnumber").is_in(chosen))
        .sort("useridnumber", "idnumber")
        .select("useridnumber", "orgidnumber", "posidnumber", "fullname", "startdate", "enddate")
        .iter_rows()
    ):
        person_jobs.setdefault(user, []).append(Job(org, pos, title, _day(start), _day(end)))

    people = {}
    for row in users.filter(pl.col("idnumber").is_in(chosen)).iter_rows(named=True):
        user = row["idnumber"]
        line, manager = [], manager_of.get(user)
        while manager is not None and manager not in line and len(line) < 12:
            line.append(manager)
            manager = manager_of.get(manager)
        first, last = access.get(user, (None, None))
        people[user] = Person(
            user_id=user,
            text={name: row[column] for name, column in USER_TEXT_FIELDS.items()},
            surname=row["surname"],
            suspended=row["suspended"] == "1",
            dates={
                "custom:hiredate": _day(row["customfield_hiredate"]),
                "first_access": _day(first),
                "last_access": _day(last),
            },
            jobs=person_jobs.get(user, []),
            managers=line,
            manages=user in manager_set,
            completions=completions.get(user, {}),
        )

    facts = OrgFacts(
        user_ids=user_ids,
        people=[people[user] for user in wanted],
        values=values,
        surnames=surnames,
        org_parent=org_parent,
        org_type=dict(orgs.select("idnumber", "typeidnumber").drop_nulls().iter_rows()),
        org_costcentre=dict(
            orgs.select("idnumber", "customfield_costcentre").drop_nulls().iter_rows()
        ),
        orgs_by_depth={},
        pos_parent=dict(positions.select("idnumber", "parentidnumber").iter_rows()),
        pos_type=dict(positions.select("idnumber", "typeidnumber").drop_nulls().iter_rows()),
        pos_grade=dict(positions.select("idnumber", "customfield_grade").drop_nulls().iter_rows()),
        titles=sorted(jobs["fullname"].drop_nulls().unique().to_list()),
        courses=sorted(c for c in read("course.csv")["idnumber"].to_list() if c != _BAD_COURSE),
        managers=managers,
    )
    for org in sorted(org_parent):
        facts.orgs_by_depth.setdefault(len(facts.org_chain(org)), []).append(org)
    return facts


# --- synthetic audiences ----------------------------------------------------------------------


class RuleDrawer:
    """Draws rule leaves around an anchor person, deterministically: `leaf(person, holds)`
    returns a leaf that is true (holds) or false for that person, so trees can be built that
    the anchor satisfies, with values, ids and dates of the real organisation."""

    def __init__(self, facts: OrgFacts, rng: random.Random) -> None:
        self.facts, self.rng = facts, rng
        self.makers = [
            # (share of leaves in percent, maker)
            (8, self.country),
            (5, self.city),
            (7, self.department),
            (3, self.email),
            (2, self.other_text),
            (6, self.custom_text),
            (9, self.dates),
            (14, self.organisation),
            (8, self.position),
            (5, self.item_type_or_field),
            (5, self.job_title),
            (2, self.direct_reports),
            (5, self.reports_to),
            (8, self.course_completion),
        ]
        self.weights = [w for w, _ in self.makers]

    def leaf(self, person: Person, holds: bool) -> dict[str, Any]:
        while True:
            maker = self.rng.choices([m for _, m in self.makers], self.weights)[0]
            leaf = maker(person, holds)
            if leaf is not None:
                return leaf

    def others(self, pool: list[str], exclude: Any, most: int = 2) -> list[str]:
        """1..most values of `pool` other than `exclude` (a value or a collection)."""
        excluded = {exclude} if isinstance(exclude, str) or exclude is None else set(exclude)
        candidates = [v for v in pool if v not in excluded]
        if not candidates:
            return []
        return self.rng.sample(candidates, min(len(candidates), self.rng.randint(1, most)))

    def text(self, field: str, value: str | None, pool: list[str], holds: bool) -> Any:
        """equals / in (the person's value, maybe with others) or not_equals / not_in."""
        rng = self.rng
        if value is None:
            return None
        if holds and rng.random() < 0.85:
            values = [value] + (self.others(pool, value) if rng.random() < 0.3 else [])
            negative = False
        else:
            values, negative = self.others(pool, value), holds
            if not values:
                return None
        operator = ("not_equals" if negative else "equals") if len(values) == 1 else (
            "not_in" if negative else "in"
        )  # fmt: skip
        return {"user_field": field, "operator": operator, "values": values}

    def country(self, person: Person, holds: bool) -> Any:
        return self.text("country", person.text["country"], self.facts.values["country"], holds)

    def city(self, person: Person, holds: bool) -> Any:
        return self.text("city", person.text["city"], self.facts.values["city"], holds)

    def department(self, person: Person, holds: bool) -> Any:
        field = "department"
        return self.text(field, person.text[field], self.facts.values[field], holds)

    def custom_text(self, person: Person, holds: bool) -> Any:
        field = self.rng.choice(["custom:employeetype", "custom:region", "lang"])
        return self.text(field, person.text[field], self.facts.values[field], holds)

    def email(self, person: Person, holds: bool) -> Any:
        if person.surname is None:
            return {"user_field": "email", "operator": "is_empty" if holds else "not_empty"}
        other = [f".{s}." for s in self.others(self.facts.surnames, person.surname, 1)]
        mine = f".{person.surname}."
        if not holds:
            return {"user_field": "email", "operator": "contains", "values": other}
        roll = self.rng.random()
        if roll < 0.5:
            return {"user_field": "email", "operator": "contains", "values": [mine]}
        if roll < 0.8:
            return {"user_field": "email", "operator": "not_contains", "values": other}
        return {"user_field": "email", "operator": "contains", "values": ["@example.com"]}

    def other_text(self, person: Person, holds: bool) -> Any:
        roll = self.rng.random()
        if roll < 0.5:  # a sample by the last digit of the idnumber
            digit = person.user_id[-1]
            values = [digit] if holds else self.others(list("0123456789"), digit, 2)
            return {"user_field": "idnumber", "operator": "ends_with", "values": values}
        institution = person.text["institution"]
        if institution is None:
            return None
        prefix = " ".join(institution.split()[:2])
        if not holds:
            prefixes = {" ".join(v.split()[:2]) for v in self.facts.values["institution"]}
            prefix = self.rng.choice(sorted(prefixes - {prefix}) or [prefix + "x"])
        return {"user_field": "institution", "operator": "starts_with", "values": [prefix]}

    def dates(self, person: Person, holds: bool) -> Any:
        """Recent hires and movers, inactive or new learners, contracts ending, long
        service; thresholds at least a few days away from the person's date."""
        rng = self.rng
        field = rng.choices(
            ["custom:hiredate", "last_access", "first_access", "job_start_date", "job_end_date"],
            [4, 3, 1, 2, 2],
        )[0]
        if field.startswith("job_"):
            job = rng.choice(person.jobs) if person.jobs else None
            when = (job.start if field == "job_start_date" else job.end) if job else None
        else:
            when = person.dates[field]
        if when is None:
            return None
        if field == "job_end_date":
            ahead = (when - AS_OF_DAY).days
            if ahead < 3:
                return None
            choices = [d for d in (30, 60, 90, 180, 365) if abs(d - ahead) > 2]
            operator = rng.choice(["within_next_days", "within_next_days", "beyond_next_days"])
            fits = [d for d in choices if (d >= ahead) == (operator == "within_next_days")]
            fits = fits if holds else [d for d in choices if d not in fits]
            if not fits:
                return None
            return {"date_field": field, "operator": operator, "days": rng.choice(fits)}
        age = (AS_OF_DAY - when).days
        roll = rng.random()
        if roll < 0.7:  # within_last_days N holds when age <= N; older_than_days when >= N
            operator = rng.choice(["within_last_days", "within_last_days", "older_than_days"])
            choices = [d for d in (7, 30, 90, 180, 365, 730, 1825, 3650, 7300) if abs(d - age) > 2]
            fits = [d for d in choices if (age <= d) == (operator == "within_last_days")]
            fits = fits if holds else [d for d in choices if d not in fits]
            if not fits:
                return None
            days = min(fits) if operator == "within_last_days" and holds else rng.choice(fits)
            return {"date_field": field, "operator": operator, "days": days}
        operator = rng.choice(["before", "after"])
        if (operator == "before") == holds:  # a bound after the date
            bound = when + timedelta(days=rng.randint(3, 400))
        else:
            bound = when - timedelta(days=rng.randint(3, 400))
        bound = min(bound, AS_OF_DAY).replace(day=1) if bound.day > 3 else bound
        if abs((bound - when).days) < 2:
            return None
        return {"date_field": field, "operator": operator, "date": bound.isoformat()}

    def organisation(self, person: Person, holds: bool) -> Any:
        facts, rng = self.facts, self.rng
        if not person.jobs:
            return None
        job = person.jobs[0] if rng.random() < 0.8 else rng.choice(person.jobs)
        chain = facts.org_chain(job.org)  # the job's organisation up to the company
        mine = {o for j in person.jobs for o in facts.org_chain(j.org)}
        roll = rng.random()
        if holds and roll < 0.55 and len(chain) > 1:  # a subtree holding the job
            return {"organisation": {"ids": [rng.choice(chain[:-1])], "include_children": True}}
        if holds and roll < 0.8:
            ids = [job.org, *self.others(facts.orgs_by_depth[len(chain)], mine, 1)]
            return {"organisation": {"ids": ids[: rng.choice([1, 1, 2])]}}
        level = rng.choice([d for d in facts.orgs_by_depth if 1 < d <= 4])
        elsewhere = self.others(facts.orgs_by_depth[level], mine, 1)
        if not elsewhere:
            return None
        if holds:
            return {"organisation": {"ids": elsewhere, "include_children": True, "negate": True}}
        return {"organisation": {"ids": elsewhere, "include_children": True}}

    def position(self, person: Person, holds: bool) -> Any:
        facts, rng = self.facts, self.rng
        if not person.jobs:
            return None
        job = rng.choice(person.jobs)
        family = facts.pos_parent.get(job.pos)
        families = sorted({p for p, parent in facts.pos_parent.items() if parent is None})
        mine = {facts.pos_parent.get(j.pos) for j in person.jobs}
        roll = rng.random()
        if holds and roll < 0.4 and family:
            return {"position": {"ids": [family], "include_children": True}}
        if holds and roll < 0.8:
            roles = [p for p, parent in facts.pos_parent.items() if parent == family]
            ids = [job.pos, *self.others(roles, job.pos, 2)]
            return {"position": {"ids": ids[: rng.choice([1, 1, 2, 3])]}}
        other = self.others(families, mine, 1)
        if not other:
            return None
        if holds:
            return {"position": {"ids": other, "include_children": True, "negate": True}}
        return {"position": {"ids": other, "include_children": True}}

    def item_type_or_field(self, person: Person, holds: bool) -> Any:
        facts, rng = self.facts, self.rng
        if not person.jobs:
            return None
        job = rng.choice(person.jobs)
        roll = rng.random()
        if roll < 0.3:
            kind, mine, pool = "organisation_type", facts.org_type.get(job.org), facts.org_type
        elif roll < 0.4:
            kind, mine, pool = "position_type", facts.pos_type.get(job.pos), facts.pos_type
        elif roll < 0.6:
            kind, mine = "organisation_custom_field", facts.org_costcentre.get(job.org)
            pool = facts.org_costcentre
        else:
            kind, mine, pool = (
                "position_custom_field",
                facts.pos_grade.get(job.pos),
                facts.pos_grade,
            )
        if mine is None or len(person.jobs) > 1:  # several jobs: "exists a job" gets subtle
            return None
        everything = sorted(set(pool.values()))
        if holds and rng.random() < 0.85:
            values = [mine] + (self.others(everything, mine, 2) if rng.random() < 0.3 else [])
            operator = "in"
        else:
            values = self.others(everything, mine, 3)
            operator = "not_in" if holds else "in"
            if not values:
                return None
        if kind.endswith("_type"):
            return {kind: {"operator": operator, "values": values}}
        field = "costcentre" if kind.startswith("organisation") else "grade"
        return {kind: field, "operator": operator, "values": values}

    def job_title(self, person: Person, holds: bool) -> Any:
        rng = self.rng
        if len(person.jobs) != 1:
            return None
        title = person.jobs[0].title
        words = [w for w in title.split() if len(w) > 3]
        others = self.others(self.facts.titles, title, 2)
        if not holds:
            return {"job_title": {"operator": "in", "values": others}}
        roll = rng.random()
        if roll < 0.5 or not words:
            return {"job_title": {"operator": "in", "values": [title, *others[:1]]}}
        if roll < 0.85:
            return {"job_title": {"operator": "contains", "values": [rng.choice(words)]}}
        absent = [w for w in ("Manager", "Senior", "Director", "Lead", "Head") if w not in title]
        return {"job_title": {"operator": "not_contains", "values": absent[:1] or ["Nobody"]}}

    def direct_reports(self, person: Person, holds: bool) -> Any:
        return {"has_direct_reports": person.manages == holds}

    def reports_to(self, person: Person, holds: bool) -> Any:
        rng = self.rng
        line = person.managers[:-2]  # never the top two levels: that is everyone
        if not line:
            return None
        if not holds:
            other = self.others(self.facts.managers, person.managers, 1)
            return {"reports_to": {"managers": other, "direct_only": True}} if other else None
        if rng.random() < 0.5:
            return {"reports_to": {"managers": [person.managers[0]], "direct_only": True}}
        return {"reports_to": {"managers": [rng.choice(line)], "direct_only": False}}

    def course_completion(self, person: Person, holds: bool) -> Any:
        rng = self.rng
        done = person.completions
        compliance = self.facts.courses[:13]  # annual and fire safety courses, then electives
        pool = self.facts.courses if rng.random() < 0.35 else compliance
        missing = [c for c in pool if c not in done]
        if holds and done and rng.random() < 0.8:  # completed these (in the period)
            ids = rng.sample(sorted(done), min(len(done), rng.choice([1, 1, 2, 3])))
            rule: dict[str, Any] = {"ids": ids, "match": rng.choice(["all", "all", "any"])}
            oldest = min(done[c] for c in ids)
            roll = rng.random()
            if roll < 0.3:
                age = (AS_OF_DAY - oldest).days
                fits = [d for d in (90, 365, 730, 1825) if d > age + 2]
                if fits:
                    rule["within_last_days"] = fits[0]
            elif roll < 0.5 and oldest.year > 2019:
                rule["completed_after"] = f"{oldest.year}-01-01"
            return {"course_completion": rule}
        if not missing:
            return None
        ids = rng.sample(missing, min(len(missing), rng.choice([1, 1, 2])))
        if holds:  # has not done them
            return {"course_completion": {"ids": ids, "match": rng.choice(["none", "not_all"])}}
        return {"course_completion": {"ids": ids, "match": rng.choice(["all", "any"])}}

    def tree(self, person: Person, count: int) -> dict[str, Any]:
        """A rule tree of `count` leaves that `person` satisfies, shaped as admins write
        them: mostly an `all` of a scope leaf and narrowing children (single leaves, `any`
        groups of 2-3 alternatives of which one holds, now and then an exclusion under
        `not`), sometimes an `any` of alternatives (single leaves or `all` groups)."""
        rng = self.rng
        if count == 1:
            return self.leaf(person, True)
        root = "all" if rng.random() < 0.9 else "any"
        children: list[dict[str, Any]] = []
        rest = count
        if root == "all":
            children.append(self.leaf(person, True))
            rest -= 1
        while rest:
            size = min(rest, rng.choice([1, 2, 2, 3, 3]))
            rest -= size
            if root == "any":  # the first alternative holds for the person, others may not
                holds = not children or rng.random() < 0.3
                group = [self.leaf(person, holds) for _ in range(size)]
                children.append(group[0] if size == 1 else {"all": group})
            elif size == 1:
                exclusion = rng.random() < 0.12
                node = self.leaf(person, not exclusion)
                children.append({"not": node} if exclusion else node)
            elif rng.random() < 0.25:  # exclude a few alternatives
                children.append({"not": {"any": [self.leaf(person, False) for _ in range(size)]}})
            else:
                group = [self.leaf(person, True)] + [
                    self.leaf(person, rng.random() < 0.3) for _ in range(size - 1)
                ]
                rng.shuffle(group)
                children.append({"any": group})
        return children[0] if len(children) == 1 else {root: children}


LEAVES_PER_AUDIENCE = {1: 1, 2: 2, 3: 3, 4: 4, 5: 3, 6: 2, 7: 1}  # mean 4.0


def synthetic_audiences(facts: OrgFacts, count: int, seed: int) -> list[dict[str, Any]]:
    """`count` audiences, audience i drawn around anchor person i; the first n of a larger
    draw are the n of a smaller one (same seed), so the series adds to the same ones."""
    audiences: list[dict[str, Any]] = []
    sizes, weights = zip(*LEAVES_PER_AUDIENCE.items(), strict=True)
    for index, person in zip(range(1, count + 1), facts.people, strict=False):
        rng = random.Random(f"bench-audience-{seed}-{index}")
        drawer = RuleDrawer(facts, rng)
        audience: dict[str, Any] = {"id": f"aud_{index:05d}", "name": f"Benchmark {index}"}
        roll = rng.random()
        builds_on_others = index % 10 == 5  # 10% build on earlier audiences (no cycles)
        if roll < 0.02 and not builds_on_others:  # a static list
            size = rng.choice([5, 20, 50, 200])
            members = rng.sample(facts.user_ids, min(size, len(facts.user_ids)))
            audiences.append({**audience, "kind": "static", "members": sorted(members)})
            continue
        audience["kind"] = "dynamic"
        if roll < 0.07:
            audience["active_from"], audience["active_until"] = "2026-01-01", "2026-12-31"
        elif roll < 0.08:
            audience["add_members"] = audience["remove_members"] = False
        elif roll < 0.10:
            audience["remove_members"] = False
        rules = drawer.tree(person, rng.choices(sizes, weights)[0])
        if builds_on_others:
            targets = rng.sample([a["id"] for a in audiences], rng.choice([1, 1, 2]))
            kind = "member_of" if rng.random() < 0.8 else "not_member_of"
            rules = replace_a_leaf(rules, {kind: {"audiences": targets}}, rng)
        audience["rules"] = rules
        audiences.append(audience)
    return audiences


def replace_a_leaf(node: dict[str, Any], leaf: dict[str, Any], rng: random.Random) -> Any:
    """`node` with one of its leaves (drawn at random) replaced by `leaf`."""
    slots: list[tuple[Any, Any]] = []  # (container, key or index) of every leaf

    def walk(parent: Any, key: Any, item: dict[str, Any]) -> None:
        for kind in ("all", "any"):
            if kind in item:
                for index, child in enumerate(item[kind]):
                    walk(item[kind], index, child)
                return
        if "not" in item:
            walk(item, "not", item["not"])
            return
        slots.append((parent, key))

    holder = {"root": node}
    walk(holder, "root", node)
    parent, key = rng.choice(slots)
    parent[key] = leaf
    return holder["root"]


def tree_shape(node: dict[str, Any]) -> tuple[int, int]:
    """(leaves, depth) of a rule tree."""
    for key in ("all", "any"):
        if key in node:
            shapes = [tree_shape(child) for child in node[key]]
            return sum(s[0] for s in shapes), 1 + max(s[1] for s in shapes)
    if "not" in node:
        leaves, depth = tree_shape(node["not"])
        return leaves, depth + 1
    return 1, 1


def write_rules(target: Path, audiences: list[dict[str, Any]] | None) -> Path:
    """A rules directory: the repository's hr_import.yaml, and audiences.yaml if given."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "rules" / "hr_import.yaml", target / "hr_import.yaml")
    if audiences is None:
        (target / "audiences.yaml").unlink(missing_ok=True)
        return target
    lines = ["# Synthetic audiences written by benchmarks/bench_audiences.py", "audiences:"]
    for audience in audiences:
        lines.append(f"  - id: {audience['id']}")
        for key, value in audience.items():
            if key != "id":  # JSON is YAML 1.2 flow style
                lines.append(f"    {key}: {json.dumps(value, ensure_ascii=False)}")
    (target / "audiences.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


# --- measurements -----------------------------------------------------------------------------


def run_results(state_dir: Path) -> list[dict[str, Any]]:
    """The nodes of the last dbt invocation kept under a warehouse's state directory."""
    path = state_dir / "dbt" / "target" / "run_results.json"
    return json.loads(path.read_text())["results"]


def audience_nodes(results: list[dict[str, Any]]) -> dict[str, float]:
    """unique_id (shortened) -> execution seconds, for every node about audiences."""
    timings = {}
    for result in results:
        unique_id = result["unique_id"]
        if "audience" in unique_id:
            short = re.sub(r"^(model|test|snapshot|unit_test)\.learnops\.", r"\1 ", unique_id)
            timings[short] = float(result.get("execution_time") or 0.0)
    return timings


_LOG_LINE = re.compile(
    r"^(?P<at>\d\d:\d\d:\d\d)\.\d+ .*?\d+ of \d+ (?P<what>START|OK|PASS|FAIL|ERROR)"
    r" (?:created |snapshotted )?(?:sql \w+ model |test |snapshot )?(?P<node>[\w.]+)"
    r".*?(?:in (?P<s>[\d.]+)s\])?\s*$"
)


def dbt_progress(state_dir: Path) -> str:
    """From the dbt log of the last invocation: the slowest finished audience nodes and the
    node(s) still running (for a run the guard stopped, which leaves no run_results.json)."""
    log = state_dir / "dbt" / "logs" / "dbt.log"
    if not log.exists():
        return "no dbt log (stopped before dbt started)"
    lines = log.read_text(errors="replace").splitlines()
    starts = [i for i, line in enumerate(lines) if "Running with dbt=" in line]
    running: dict[str, str] = {}
    finished: dict[str, float] = {}
    for line in lines[starts[-1] if starts else 0 :]:
        match = _LOG_LINE.match(line)
        if not match:
            continue
        node = match["node"]
        if match["what"] == "START":
            running[node] = match["at"]
        else:
            running.pop(node, None)
            finished[node] = float(match["s"] or 0.0)
    done = sorted(((v, k) for k, v in finished.items() if "audience" in k), reverse=True)[:3]
    parts = [f"finished {k} {v:.1f} s" for v, k in done]
    parts += [f"still running {k} (started {at})" for k, at in list(running.items())[-2:]]
    return "; ".join(parts) or "no node finished"


def run(
    feeds: Path, rules: Path, warehouse: Path, as_of: str = AS_OF, fresh: bool = True
) -> dict[str, Any]:
    """One full run in a fresh process: on an empty warehouse, or (fresh=False) on the
    warehouse the previous run published."""
    if fresh:
        remove_warehouse(warehouse)
    try:
        elapsed, peak, stdout = measure(RUN_SNIPPET, str(feeds), str(rules), str(warehouse), as_of)
    except Aborted as aborted:
        aborted.reason += "; dbt: " + dbt_progress(Path(f"{warehouse}.learnops"))
        raise
    out = last_json(stdout)
    results = run_results(Path(f"{warehouse}.learnops"))
    return {
        "wall_s": elapsed,
        "peak_mb": peak,
        "load": mean_load(),
        "stages": out["stages"],
        "models": out["models"],
        "tests": out["tests"],
        "audience_nodes": audience_nodes(results),
        "dbt_total_s": sum(float(r.get("execution_time") or 0.0) for r in results),
    }


def rule_mix(warehouse: Path) -> dict[str, Any]:
    """Leaves per kind with how many users each matches, and the membership row counts."""
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        population = con.execute(
            "select count(*) from main.dim_user where status <> 'deleted'"
        ).fetchall()[0][0]
        mix = con.execute(
            """
            with stored as (
                select node_id, user_count as users from intermediate.int_audience_leaf_sets
            ),
            -- member_of leaves are evaluated with the memberships: members of any listed one
            referenced as (
                select v.node_id, count(distinct m.user_id) as users
                from rules.audience_node_value as v
                inner join rules.audience_node as n using (node_id)
                inner join main.fct_audience_membership as m on m.audience_id = v.value
                where n.leaf_kind in ('member_of', 'not_member_of')
                group by v.node_id
            ),
            leaves as (
                select
                    n.leaf_kind
                    || case
                        when n.leaf_kind in ('organisation', 'position') then
                            case when n.include_children then ' +children' else '' end
                        when n.leaf_kind = 'reports_to' then
                            case when n.direct_only then ' direct' else ' any depth' end
                        else '' end
                    || case when n.is_complement then ' (negative)' else '' end as kind,
                    case when n.is_complement then ? - coalesce(s.users, m.users, 0)
                         else coalesce(s.users, m.users, 0) end as matched
                from rules.audience_node as n
                left join stored as s using (node_id)
                left join referenced as m using (node_id)
                where n.node_type = 'leaf'
            )
            select kind, count(*), median(matched), max(matched)
            from leaves group by kind order by count(*) desc, kind
            """,
            [population],
        ).fetchall()
        sizes = [
            row[0]
            for row in con.execute(
                "select coalesce(m.user_count, 0) from rules.audience as a left join "
                "intermediate.int_audience_member_sets as m using (audience_id)"
            ).fetchall()
        ]
        events = con.execute("select count(*) from main.fct_audience_membership_event").fetchall()
        nodes = con.execute(
            "select count(*), count(*) filter (where node_type = 'leaf') from rules.audience_node"
        ).fetchall()[0]
        leaf_rows = con.execute(
            "select coalesce(sum(user_count), 0) from intermediate.int_audience_leaf_sets"
        ).fetchall()[0][0]
    finally:
        con.close()
    return {
        "population": population,
        "mix": mix,
        "members": sum(sizes),
        "events": events[0][0],
        "audience_sizes": sizes,
        "nodes": nodes[0],
        "leaves": nodes[1],
        "leaf_set_rows": leaf_rows,
    }


def baseline_copy(warehouse: Path, users: int) -> Path:
    """A copy of the warehouse built without audiences, for the isolated measurement."""
    copy = OUTPUT / f"audiences_alone_{users}.duckdb"
    remove_warehouse(copy)
    shutil.copy(warehouse, copy)
    return copy


def rebuild(copy: Path, rules: Path, select: str) -> tuple[Path, dict[str, Any]]:
    """The audience models (and their tests) built alone on `copy`: the rules stage first
    (not timed), then a guarded dbt build of `select` in a fresh process."""
    measure(LOAD_RULES_SNIPPET, str(copy), str(rules))
    state = OUTPUT / f"{copy.stem}.state"
    shutil.rmtree(state, ignore_errors=True)
    elapsed, peak, stdout = measure(REBUILD_SNIPPET, str(copy), str(state), select)
    out = last_json(stdout)
    return state, {"wall_s": elapsed, "peak_mb": peak, "load": mean_load(), **out}


def explain(copy: Path, state: Path, models: list[str], top: int = 6) -> list[str]:
    """DuckDB's per-operator profile of each compiled model (on the rebuilt copy)."""
    compiled_root = state / "dbt" / "target" / "compiled" / "learnops" / "models"
    lines = []
    for model in models:
        found = list(compiled_root.rglob(f"{model}.sql"))
        if not found:
            lines.append(f"  {model}: no compiled SQL under {compiled_root}")
            continue
        sql = found[0].read_text()
        catalog = re.search(r'"([^"]+)"\."(?:main|intermediate|staging|rules|learnops|hr)"', sql)
        profile = OUTPUT / f"profile_{model}.json"
        elapsed, peak, _ = measure(
            EXPLAIN_SNIPPET, str(copy), catalog.group(1) if catalog else copy.stem, str(found[0]),
            str(profile),
        )  # fmt: skip
        operators = sorted(_operators(json.loads(profile.read_text())), key=lambda o: -o[1])
        lines.append(f"  {model}: {elapsed:.1f} s wall (fresh process), peak {peak:.0f} MB")
        for name, seconds, rows, info in operators[:top]:
            lines.append(f"    {name:<22} {seconds:7.2f} s  {rows:>13,} rows  {info}")
    return lines


def _operators(profile: dict[str, Any]) -> list[tuple[str, float, int, str]]:
    out = []

    def walk(node: dict[str, Any]) -> None:
        name = node.get("type") or node.get("operator_name") or "?"
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


def describe_audiences(audiences: list[dict[str, Any]]) -> str:
    dynamic = [a for a in audiences if a.get("rules")]
    shapes = [tree_shape(a["rules"]) for a in dynamic]
    member_of = sum("member_of" in json.dumps(a["rules"]) for a in dynamic)
    return (
        f"{len(audiences):,} audiences ({len(audiences) - len(dynamic)} static); "
        f"{statistics.mean(s[0] for s in shapes):.2f} leaves and depth "
        f"{statistics.mean(s[1] for s in shapes):.2f} on average (max depth "
        f"{max(s[1] for s in shapes)}); {member_of} ({100 * member_of / len(audiences):.0f}%) "
        f"use member_of / not_member_of"
    )


def stages(row: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.1f}" for k, v in row["stages"].items())


def print_run(label: str, row: dict[str, Any]) -> None:
    print(
        f"    {label:<22} {row['wall_s']:6.1f} s  ({stages(row)})  peak {row['peak_mb']:,.0f} MB"
        f"  [{row['models']} models, {row['tests']} tests; load {row['load']:.1f}]"
    )


def print_nodes(nodes: dict[str, float], indent: str = "      ") -> None:
    models = {k: v for k, v in nodes.items() if k.startswith("model ")}
    tests = {k: v for k, v in nodes.items() if not k.startswith("model ")}
    for name, seconds in sorted(models.items(), key=lambda kv: -kv[1]):
        print(f"{indent}{name[6:]:<46} {seconds:6.2f} s")
    print(
        f"{indent}{'= audience models':<46} {sum(models.values()):6.2f} s; "
        f"{len(tests)} audience tests {sum(tests.values()):.2f} s"
    )


def print_mix(mix: dict[str, Any]) -> None:
    population = mix["population"]
    sizes = sorted(mix["audience_sizes"])
    print(
        f"    rule mix ({mix['leaves']:,} leaves of {mix['nodes']:,} nodes; users matched per "
        f"leaf, of {population:,} non-deleted):"
    )
    print(f"      {'leaf kind':<40} {'leaves':>7} {'median':>9} {'max':>9}  median %")
    for kind, count, median, maximum in mix["mix"]:
        share = 100 * float(median) / max(1, population)
        print(f"      {kind:<40} {count:7,} {float(median):9,.0f} {maximum:9,} {share:8.1f}%")
    empty = sum(1 for s in sizes if s == 0)
    print(
        f"    leaf sets {mix['leaf_set_rows']:,} rows; membership {mix['members']:,} rows "
        f"({mix['members'] / max(1, len(sizes)):,.0f} per audience; median "
        f"{statistics.median(sizes):,.0f}, p90 {sizes[int(0.9 * (len(sizes) - 1))]:,}, "
        f"max {sizes[-1]:,}; {empty} empty; {mix['members'] / max(1, population):.0f} "
        f"audiences per user); {mix['events']:,} events"
    )


# --- driver -----------------------------------------------------------------------------------


def print_aborted(label: str, aborted: Aborted) -> None:
    print(f"    {label:<22} ABORTED: {aborted.reason}; peak {aborted.peak_mb:,.0f} MB")


def bench_size(users: int, count: int, options: argparse.Namespace) -> None:
    feeds, generated_s = generate(users, options.seed)
    facts = org_facts(feeds, count, options.seed)
    audiences = synthetic_audiences(facts, count, options.seed)
    rules = write_rules(OUTPUT / f"rules_audiences_{users}_{count}_{options.seed}", audiences)
    none = write_rules(OUTPUT / "rules_no_audiences", None)
    print(f"\n{users:,} users ({len(facts.user_ids):,} good rows; feeds generated in "
          f"{generated_s:.1f} s, not counted): {describe_audiences(audiences)}")  # fmt: skip

    elapsed, peak, stdout = measure(VALIDATE_SNIPPET, str(rules))
    checked = last_json(stdout)
    print(
        f"    rules check alone      {elapsed:6.1f} s  (import {checked['import']:.1f}, "
        f"validate {checked['validate']:.1f})  peak {peak:,.0f} MB  [load {mean_load():.1f}]"
    )
    warehouse = OUTPUT / f"warehouse_audiences_{users}.duckdb"
    alone = None
    try:
        baseline = run(feeds, none, warehouse)
        print_run("first run, no audiences", baseline)
        if not options.skip_rebuild:
            alone = baseline_copy(warehouse, users)
        label = f"first run, {count:,} aud."
        try:
            with_aud = run(feeds, rules, warehouse)
        except Aborted as aborted:
            print_aborted(label, aborted)
            with_aud = None
        if alone is not None:
            rebuild_alone(alone, rules, options)
        if with_aud is None:
            return
        print_run(label, with_aud)
        build_diff = with_aud["stages"].get("build", 0) - baseline["stages"].get("build", 0)
        print(
            f"    audience cost          {with_aud['wall_s'] - baseline['wall_s']:6.1f} s wall, "
            f"{build_diff:.1f} s in the build stage; "
            f"peak {with_aud['peak_mb'] - baseline['peak_mb']:+,.0f} MB"
        )
        print("    audience nodes in that run (dbt execution time):")
        print_nodes(with_aud["audience_nodes"])
        first_mix = rule_mix(warehouse)
        print_mix(first_mix)
        try:
            again = run(feeds, rules, warehouse, as_of=AS_OF_WEEK_LATER, fresh=False)
        except Aborted as aborted:
            print_aborted("run 2, a week later", aborted)
            return
        print_run("run 2, a week later", again)
        events = rule_mix(warehouse)["events"] - first_mix["events"]
        print(f"    audience nodes in run 2 (dbt execution time; {events:,} join/leave events):")
        print_nodes(again["audience_nodes"])
    finally:
        if not options.keep:
            remove_warehouse(warehouse)
            if alone is not None:
                remove_warehouse(alone)


def rebuild_alone(copy: Path, rules: Path, options: argparse.Namespace) -> None:
    """The audience models alone (rules loaded into a copy of the no-audience warehouse):
    their time and peak memory without the import's."""
    state = OUTPUT / f"{copy.stem}.state"
    label = "audience models alone"
    try:
        state, again = rebuild(copy, rules, options.rebuild_select)
        print(
            f"    {label}  {again['wall_s']:6.1f} s wall (dbt start-up and "
            f"parse included, {again['elapsed']:.1f} s in dbt), peak "
            f"{again['peak_mb']:,.0f} MB  [{again['models']} models, {again['tests']} tests; "
            f"load {again['load']:.1f}]"
        )
        print_nodes(audience_nodes(run_results(state)))
        if options.explain:
            print("    EXPLAIN ANALYZE of the compiled models (slowest operators):")
            for line in explain(copy, state, list(AUDIENCE_MODELS[:2])):
                print("  " + line)
    except Aborted as aborted:
        aborted.reason += "; dbt: " + dbt_progress(state)
        print_aborted(label, aborted)
    finally:
        if not options.keep:
            shutil.rmtree(state, ignore_errors=True)


def bench_series(users: int, counts: list[int], options: argparse.Namespace) -> None:
    feeds, _ = generate(users, options.seed)
    facts = org_facts(feeds, max(counts), options.seed)
    warehouse = OUTPUT / f"warehouse_audiences_{users}.duckdb"
    print(f"\naudience series at {users:,} users (first full run each, fresh warehouse):")
    try:
        baseline = run(feeds, write_rules(OUTPUT / "rules_no_audiences", None), warehouse)
        print_run("no audiences", baseline)
        for count in counts:
            audiences = synthetic_audiences(facts, count, options.seed)
            rules = write_rules(
                OUTPUT / f"rules_audiences_{users}_{count}_{options.seed}", audiences
            )
            label = f"{count:,} audiences"
            try:
                row = run(feeds, rules, warehouse)
            except Aborted as aborted:
                print_aborted(label, aborted)
                continue
            nodes = row["audience_nodes"]
            models = sum(v for k, v in nodes.items() if k.startswith("model "))
            tests = sum(v for k, v in nodes.items() if not k.startswith("model "))
            mix = rule_mix(warehouse)
            print_run(label, row)
            print(
                f"      +{row['wall_s'] - baseline['wall_s']:.1f} s wall over no audiences; "
                f"audience models {models:.2f} s, tests {tests:.2f} s; "
                f"{mix['leaf_set_rows']:,} leaf-set rows, {mix['members']:,} members"
            )
            for name, seconds in sorted(nodes.items(), key=lambda kv: -kv[1])[:4]:
                print(f"        {name:<60} {seconds:6.2f} s")
            print_mix(mix)
    finally:
        if not options.keep:
            remove_warehouse(warehouse)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--audiences", type=int, default=2000)
    parser.add_argument(
        "--audience-series",
        type=int,
        nargs="*",
        default=[],
        help="audience counts to time at --series-users (e.g. 20 200 2000)",
    )
    parser.add_argument("--series-users", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--skip-rebuild",
        action="store_true",
        help="skip rebuilding the audience models alone on a copy of the warehouse",
    )
    parser.add_argument(
        "--rebuild-select",
        default=" ".join(AUDIENCE_MODELS),
        help="dbt selection rebuilt on the copy (default: the audience models and their tests)",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="profile the compiled SQL of the leaf-set and evaluation models on the copy",
    )
    parser.add_argument("--keep", action="store_true", help="keep the warehouses afterwards")
    parser.add_argument(
        "--max-rss-gb",
        type=float,
        default=16.0,
        help="stop a measured process whose resident memory passes this (default 16)",
    )
    parser.add_argument(
        "--min-available-gb",
        type=float,
        default=2.0,
        help="stop the measured process when the machine's available memory drops below this",
    )
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=30.0,
        help="stop a measured process that runs longer than this (default 30)",
    )
    parser.add_argument(
        "--print-rules", type=int, metavar="USERS", help="only print the synthetic audiences.yaml"
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
    if options.print_rules:
        feeds, _ = generate(options.print_rules, options.seed)
        audiences = synthetic_audiences(
            org_facts(feeds, options.audiences, options.seed), options.audiences, options.seed
        )
        rules = write_rules(OUTPUT / "rules_print", audiences)
        print((rules / "audiences.yaml").read_text(encoding="utf-8"), end="")
        return
    print(f"as of {AS_OF}; {os.cpu_count()} cores; each measurement a fresh process")
    for users in options.sizes:
        bench_size(users, options.audiences, options)
    if options.audience_series:
        bench_series(options.series_users, options.audience_series, options)


if __name__ == "__main__":
    main()
