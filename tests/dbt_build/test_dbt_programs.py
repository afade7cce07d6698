"""Program assignment, due dates, exceptions and status (docs/programs.md), through dbt.

Source rows (``hr.*``, ``rules.*``) are written straight into a temporary warehouse, which
is built with ``flows.build.build_warehouse`` three times: run 1 (31 Jan 2026, noon), run 2
(1 Mar 2026, with rule and HR changes) and run 3 (2 Mar 2026, the same inputs as run 2).
Before each build the test does what the flow does: it copies the published
``fct_program_assignment_route`` and ``fct_program_user`` into the previous-state tables
(``snapshot_previous_program_state``).
Every program of the module is evaluated by every build; each test reads the captures.

Completions are written once: those after a run's as-of are invisible to it, so run 1 and
run 2 see different histories from the same rows. First accesses too.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pytest

from flows.build import BuildResult, build_warehouse
from flows.rules.program_tables import snapshot_previous_program_state
from flows.state_schema import ensure_state_schema

RUN_1 = dt.datetime(2026, 1, 31, 12)
RUN_2 = dt.datetime(2026, 3, 1)
RUN_3 = dt.datetime(2026, 3, 2)
DAY = 86_400


def end_of(day: dt.date) -> dt.datetime:
    """A due date given as a date: the end of that day (UTC here)."""
    return dt.datetime.combine(day, dt.time.max)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


# --------------------------------------------------------------------------- rule builders


@dataclass(frozen=True)
class CourseSet:
    kind: str
    courses: tuple[str, ...]
    min_courses: int = 0
    min_score: int = 0
    min_time_days: int = 0


@dataclass(frozen=True)
class Due:
    kind: str  # none | fixed | relative
    fixed_at: dt.datetime | None = None
    base: str | None = None
    ref: str | None = None
    months: int = 0
    seconds: int = 0


NO_DUE = Due("none")


def fixed(when: dt.datetime) -> Due:
    return Due("fixed", fixed_at=when)


def after(base: str, *, ref: str | None = None, months: int = 0, days: int = 0) -> Due:
    return Due("relative", base=base, ref=ref, months=months, seconds=days * DAY)


@dataclass(frozen=True)
class Route:
    kind: str
    key: str
    targets: tuple[str, ...] = ()
    due: Due = NO_DUE
    include_children: bool = False
    manager_user: str | None = None
    manager_job: str | None = None
    scope: str | None = None


def users(*ids: str, due: Due = NO_DUE) -> Route:
    return Route("users", "users", ids, due)


def group(name: str, *ids: str, due: Due = NO_DUE) -> Route:
    return Route("group", f"group:{name}", ids, due)


def audience(audience_id: str, due: Due = NO_DUE) -> Route:
    return Route("audience", f"audience:{audience_id}", (audience_id,), due)


def manager(user: str, scope: str, job: str | None = None) -> Route:
    key = f"manager:{user}{'/' + job if job else ''}:{scope}"
    return Route("manager", key, manager_user=user, manager_job=job, scope=scope)


@dataclass(frozen=True)
class Program:
    id: str
    content: tuple[CourseSet | str, ...]
    routes: tuple[Route, ...]
    kind: str = "program"
    minimum_time_days: int = 0
    exception_default: str = "open"
    resolutions: dict[str, str] = field(default_factory=dict)
    is_broken: bool = False


def _layout(content: Sequence[CourseSet | str]) -> list[tuple[CourseSet, int, int]]:
    """(set, group, run) as the rules loader lays content out (docs/programs.md, Groups)."""
    placed, group_number, run_number, operator = [], 1, 1, None
    for item in content:
        if isinstance(item, str):
            operator = item
            continue
        if operator == "then":
            group_number, run_number = group_number + 1, 1
        elif operator == "or":
            run_number += 1
        placed.append((item, group_number, run_number))
    return placed


# --------------------------------------------------------------------------- the organisation

COURSES = {"c1": 3, "c2": 4, "c3": 8, "c4": 0, "c5": 0, "c6": 0, "c7": 0, "c8": 0, "c9": 0}

DELETED = {"o_deleted", "listed_deleted"}
USERS = [
    *("s2_a", "s2_b", "sc_a", "sc_b", "sc_c", "sz_a", "ao_c", "ao_a", "ao_ab"),
    *("th_none", "th_1", "th_2only", "th_both", "th_later", "oo_a", "mt_tight", "mt_ok"),
    *("d_user", "lw_a", "rr_a", "rr_b", "del_later", "ctu_a", "dm_a", "dm_b", "da_a"),
    *("fu_never", "fu_seen", "mo_a", "o_root", "o_child", "o_deleted", "boss", "r1", "r2"),
    *("r3", "bk_a", "bk_b", "bk_c", "js_a", "cf_a", "pa_a", "pa_b", "dc_a", "listed_deleted"),
    *("ce_expired", "ce_certified"),
]

ORGANISATIONS = [("org_root", None), ("org_child", "org_root"), ("org_other", None)]
POSITIONS = [("pos_a", None), ("pos_b", "pos_a"), ("pos_c", None), ("pos_d", None)]

# (user, job, organisation, position, manager user, manager job, start date)
JOBS_RUN_1 = [
    ("o_root", "j", "org_root", "pos_a", None, None, None),
    ("o_child", "j", "org_child", "pos_b", None, None, None),
    ("o_deleted", "j", "org_root", "pos_a", None, None, None),
    ("boss", "j1", "org_other", None, None, None, None),
    ("boss", "j2", "org_other", None, None, None, None),
    ("r1", "j", "org_other", None, "boss", "j1", None),
    ("r2", "j", "org_other", None, "boss", "j2", None),
    ("r3", "j", "org_other", None, "r2", "j", None),
    ("js_a", "j1", None, None, None, None, dt.date(2025, 12, 1)),
    ("js_a", "j2", None, None, None, None, dt.date(2024, 1, 1)),
    ("pa_a", "j", None, "pos_c", None, None, None),
    ("pa_b", "j", None, "pos_d", None, None, None),
]

COMPLETIONS = [
    ("s2_a", "c2", "2025-06-01"),
    ("s2_a", "c3", "2025-07-01"),
    ("s2_b", "c1", "2025-06-01"),
    ("sc_a", "c1", "2025-05-01"),
    ("sc_a", "c2", "2025-05-02"),
    ("sc_b", "c1", "2025-05-01"),
    ("sc_b", "c2", "2025-05-02"),
    ("sc_b", "c3", "2025-05-03"),
    ("sc_c", "c3", "2025-05-01"),
    ("sc_c", "c1", "2025-05-05"),
    ("ao_c", "c3", "2025-09-01"),
    ("ao_a", "c1", "2025-09-01"),
    ("ao_ab", "c1", "2025-09-01"),
    ("ao_ab", "c2", "2025-09-10"),
    ("th_1", "c1", "2026-01-10"),
    ("th_2only", "c2", "2026-01-10"),
    ("th_both", "c1", "2026-02-10"),
    ("th_both", "c2", "2026-02-20"),
    ("th_later", "c1", "2026-02-05"),
    ("mt_ok", "c2", "2026-02-03"),
    ("ctu_a", "c9", "2026-02-10"),
    ("ce_expired", "c5", "2025-01-15"),  # certified until 15 Jan 2026 (window from 15 Dec)
    ("ce_certified", "c5", "2025-06-01"),  # certified until 1 Jun 2026
]

ACCESS = [("fu_seen", "2026-01-20"), ("fu_never", "2026-02-20")]  # fu_never: after run 1

JUNE_1, JULY_1 = end_of(dt.date(2026, 6, 1)), end_of(dt.date(2026, 7, 1))


def programs(run: int) -> list[Program]:
    """The programs of run 1, and of runs 2 and 3 (which are the same)."""
    later = run >= 2
    return [
        Program(
            "some_two",
            (CourseSet("some", ("c1", "c2", "c3"), min_courses=2),),
            (users("s2_a", "s2_b"),),
        ),
        Program(
            "some_score",
            (CourseSet("some", ("c1", "c2", "c3"), 2, 10),),
            (users("sc_a", "sc_b", "sc_c"),),
        ),
        Program("some_zero", (CourseSet("some", ("c4",), 0, 0),), (users("sz_a", "del_later"),)),
        Program(
            "and_or",
            (
                CourseSet("all", ("c1",)),
                "and",
                CourseSet("all", ("c2",)),
                "or",
                CourseSet("all", ("c3",)),
            ),
            (users("ao_c", "ao_a", "ao_ab"),),
        ),
        Program(
            "then_seq",
            (
                CourseSet("all", ("c1",), min_time_days=5),
                "then",
                CourseSet("all", ("c2",), min_time_days=3),
            ),
            (users("th_none", "th_1", "th_2only", "th_both", "th_later"),),
            minimum_time_days=8,
        ),
        Program(
            "opt_or_req",
            (CourseSet("optional", ()), "or", CourseSet("all", ("c5",))),
            (users("oo_a"),),
        ),
        Program(
            "min_time",
            (
                CourseSet("all", ("c1",), min_time_days=5),
                "or",
                CourseSet("all", ("c2",), min_time_days=10),
                "then",
                CourseSet("all", ("c3",), min_time_days=3),
            ),
            (
                users("mt_tight", due=fixed(RUN_1 + dt.timedelta(days=12))),
                group("mt.csv", "mt_ok", due=fixed(RUN_1 + dt.timedelta(days=14))),
            ),
            minimum_time_days=13,  # what the loader writes: max(5, 10) + 3
            resolutions={"mt_tight": "realistic_due_date"} if later else {},
        ),
        Program(
            "two_routes_a",
            (CourseSet("all", ("c6",)),),
            (audience("aud", due=fixed(JUNE_1)), users("d_user", due=fixed(JULY_1))),
        ),
        Program(
            "two_routes_b",
            (CourseSet("all", ("c6",)),),
            (
                users("d_user", due=fixed(JULY_1)),
                *((audience("aud", due=fixed(JUNE_1)),) if later else ()),
            ),
        ),
        Program(
            "two_routes_c",
            (CourseSet("all", ("c6",)),),
            (
                audience("aud", due=fixed(JUNE_1)),
                *((users("d_user", due=fixed(JULY_1)),) if later else ()),
            ),
        ),
        Program(
            "lowering",
            (CourseSet("all", ("c6",)),),
            (users("lw_a", due=fixed(end_of(dt.date(2026, 4 if later else 5, 1)))),),
        ),
        Program(
            "route_removal",
            (CourseSet("all", ("c6",)),),
            (
                (group("rr.csv", "rr_a"),)
                if later
                else (users("rr_a", "rr_b"), group("rr.csv", "rr_a"))
            ),
        ),
        Program(
            "time_unknown",
            (CourseSet("all", ("c6",)),),
            (users("ctu_a", due=after("course_completion", ref="c9", months=1)),),
        ),
        Program(
            "dismissal",
            (CourseSet("all", ("c6",)),),
            (users("dm_a", "dm_b", due=fixed(end_of(dt.date(2026, 1, 1)))),),
            resolutions={"dm_a": "dismiss"},
        ),
        Program(
            "default_assign",
            (CourseSet("all", ("c6",)),),
            (users("da_a", due=fixed(end_of(dt.date(2026, 1, 1)))),),
            exception_default="assign",
        ),
        Program(
            "complete_past_due",
            (CourseSet("all", ("c1",)),),
            (users("sc_b", due=fixed(end_of(dt.date(2026, 1, 1)))),),
        ),
        Program(
            "future",
            (CourseSet("all", ("c6",)),),
            (users("fu_never", "fu_seen", due=after("first_access", days=14)),),
        ),
        Program(
            "month_end",
            (CourseSet("all", ("c6",)),),
            (users("mo_a", due=after("assignment", months=1)),),
        ),
        Program(
            "org_children",
            (CourseSet("all", ("c6",)),),
            (
                Route(
                    "organisation",
                    "organisation:org_root+children",
                    ("org_root",),
                    include_children=True,
                ),
            ),
        ),
        Program(
            "org_only",
            (CourseSet("all", ("c6",)),),
            (Route("organisation", "organisation:org_root", ("org_root",)),),
        ),
        Program(
            "pos_children",
            (CourseSet("all", ("c6",)),),
            (Route("position", "position:pos_a+children", ("pos_a",), include_children=True),),
        ),
        Program("mgr_direct", (CourseSet("all", ("c6",)),), (manager("boss", "direct"),)),
        Program("mgr_below", (CourseSet("all", ("c6",)),), (manager("boss", "all_below"),)),
        Program("mgr_job", (CourseSet("all", ("c6",)),), (manager("boss", "direct", "j2"),)),
        Program(
            "mgr_job_below", (CourseSet("all", ("c6",)),), (manager("boss", "all_below", "j2"),)
        ),
        Program("listed", (CourseSet("all", ("c6",)),), (users("s2_a", "listed_deleted"),)),
        Program(
            "broken",
            (CourseSet("all", ("c6",)),),
            # broken in run 2, whose rules would select bk_c and move the due date later
            (
                users("bk_c", due=fixed(JULY_1))
                if later
                else users("bk_a", "bk_b", due=fixed(JUNE_1)),
            ),
            is_broken=later,
        ),
        Program(
            "bases",
            (CourseSet("all", ("c6",)),),
            (
                group("js.csv", "js_a", due=after("job_start", days=30)),
                group("cf.csv", "cf_a", due=after("custom_field", ref="hiredate", months=1)),
                group(
                    "pc.csv",
                    "s2_a",
                    "s2_b",
                    due=after("program_completion", ref="some_two", months=12),
                ),
                group(
                    "pa.csv", "pa_a", "pa_b", due=after("position_assigned", ref="pos_c", days=7)
                ),
            ),
        ),
        Program(
            "dup_cert_1", (CourseSet("all", ("c7", "c8")),), (users("dc_a"),), kind="certification"
        ),
        Program("dup_cert_2", (CourseSet("all", ("c7",)),), (users("dc_a"),), kind="certification"),
        Program(
            "cert_status",
            (CourseSet("all", ("c5",)),),
            (users("ce_expired", "ce_certified"),),
            kind="certification",
        ),
        Program("solo_cert", (CourseSet("all", ("c6",)),), (users("dc_a"),), kind="certification"),
    ]


# --------------------------------------------------------------------------- writing rows


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    sql = f"insert into {table} ({', '.join(columns)}) values ({', '.join('?' for _ in columns)})"  # noqa: S608 (test constants)
    con.executemany(sql, [[row[column] for column in columns] for row in rows])


def _write_jobs(con: duckdb.DuckDBPyConnection, jobs: Sequence[tuple[Any, ...]]) -> None:
    con.execute("delete from hr.job_assignment")
    _insert(
        con,
        "hr.job_assignment",
        [
            {
                "user_id": user_id,
                "job_id": job_id,
                "organisation_id": organisation_id,
                "position_id": position_id,
                "manager_user_id": manager_user,
                "manager_job_id": manager_job,
                "start_date": start,
                "first_seen_order": order,
                "first_seen_run_id": "r1",
            }
            for order, (
                user_id,
                job_id,
                organisation_id,
                position_id,
                manager_user,
                manager_job,
                start,
            ) in enumerate(jobs)
        ],
    )


def _seed_hr(con: duckdb.DuckDBPyConnection) -> None:
    _insert(
        con,
        "hr.organisation",
        [
            {"organisation_id": o, "name": o, "parent_id": p, "first_seen_run_id": "r1"}
            for o, p in ORGANISATIONS
        ],
    )
    _insert(
        con,
        "hr.position",
        [
            {"position_id": o, "name": o, "parent_id": p, "first_seen_run_id": "r1"}
            for o, p in POSITIONS
        ],
    )
    _insert(
        con,
        "hr.user",
        [
            {
                "user_id": user_id,
                "username": user_id,
                "first_name": user_id,
                "last_name": "Learner",
                "status": "deleted" if user_id in DELETED else "active",
                "first_seen_run_id": "r1",
            }
            for user_id in USERS
        ],
    )
    _write_jobs(con, JOBS_RUN_1)
    _insert(
        con,
        "hr.course",
        [{"course_id": c, "name": c, "score": score} for c, score in COURSES.items()],
    )
    _insert(
        con,
        "hr.course_completion",
        [
            {"user_id": u, "course_id": c, "completed_at": at(when), "first_seen_run_id": "r1"}
            for u, c, when in COMPLETIONS
        ],
    )
    _insert(
        con,
        "hr.user_access",
        [
            {"user_id": u, "first_access_at": at(when), "last_access_at": at(when)}
            for u, when in ACCESS
        ],
    )
    _insert(
        con,
        "hr.user_custom_field",
        [{"user_id": "cf_a", "field_name": "hiredate", "value": "2026-01-15"}],
    )


def _change_hr_for_run_2(con: duckdb.DuckDBPyConnection) -> None:
    """pa_b moves into pos_c; del_later is deleted."""
    con.execute("update hr.job_assignment set position_id = 'pos_c' where user_id = 'pa_b'")
    con.execute("update hr.user set status = 'deleted' where user_id = 'del_later'")


def _write_rules(con: duckdb.DuckDBPyConnection, run: int) -> None:
    """Replace the rule tables with the programs of `run` (as flows/rules/tables.py does)."""
    for table in (
        "program",
        "program_course_set",
        "program_course_set_course",
        "program_route",
        "program_route_target",
        "program_exception_resolution",
        "audience",
        "audience_static_member",
    ):
        con.execute(f"delete from rules.{table}")  # noqa: S608 (test constants)
    _insert(
        con,
        "rules.audience",
        [
            {
                "audience_id": "aud",
                "name": "Audience",
                "kind": "static",
                "stage": 0,
                "is_in_window": True,
                "add_members": True,
                "remove_members": True,
                "is_broken": False,
                "definition": "{}",
                "source_file": "audiences.yaml",
            }
        ],
    )
    _insert(con, "rules.audience_static_member", [{"audience_id": "aud", "user_id": "d_user"}])
    for program in programs(run):
        certification = program.kind == "certification"
        _insert(
            con,
            "rules.program",
            [
                {
                    "program_id": program.id,
                    "name": program.id,
                    "kind": program.kind,
                    "active_period_months": 12 if certification else None,
                    "window_period_months": 1 if certification else None,
                    "expiry_method": "expiry_date" if certification else None,
                    "minimum_time_seconds": program.minimum_time_days * DAY,
                    "minimum_time_months": 0,
                    "exception_default": program.exception_default,
                    "is_broken": program.is_broken,
                    "definition": json.dumps({"id": program.id}),
                    "source_file": "certifications.yaml" if certification else "programs.yaml",
                }
            ],
        )
        for position, (course_set, group_number, run_number) in enumerate(
            _layout(program.content), start=1
        ):
            set_id = f"set_{position}"
            _insert(
                con,
                "rules.program_course_set",
                [
                    {
                        "program_id": program.id,
                        "path": "primary",
                        "set_id": set_id,
                        "set_position": position,
                        "group_number": group_number,
                        "run_number": run_number,
                        "kind": course_set.kind,
                        "min_courses": course_set.min_courses,
                        "min_score": course_set.min_score,
                        "min_time_months": 0,
                        "min_time_seconds": course_set.min_time_days * DAY,
                        "course_count": len(course_set.courses),
                    }
                ],
            )
            _insert(
                con,
                "rules.program_course_set_course",
                [
                    {"program_id": program.id, "path": "primary", "set_id": set_id, "course_id": c}
                    for c in course_set.courses
                ],
            )
        for route in program.routes:
            _insert(
                con,
                "rules.program_route",
                [
                    {
                        "program_id": program.id,
                        "route_key": route.key,
                        "route_kind": route.kind,
                        "include_children": route.include_children,
                        "manager_user_id": route.manager_user,
                        "manager_job_id": route.manager_job,
                        "manager_scope": route.scope,
                        "due_kind": route.due.kind,
                        "due_fixed_at": route.due.fixed_at,
                        "due_base": route.due.base,
                        "due_base_ref": route.due.ref,
                        "due_months": route.due.months if route.due.kind == "relative" else None,
                        "due_seconds": route.due.seconds if route.due.kind == "relative" else None,
                    }
                ],
            )
            _insert(
                con,
                "rules.program_route_target",
                [
                    {"program_id": program.id, "route_key": route.key, "target_id": target}
                    for target in route.targets
                ],
            )
        _insert(
            con,
            "rules.program_exception_resolution",
            [
                {"program_id": program.id, "user_id": u, "resolution": r}
                for u, r in program.resolutions.items()
            ],
        )


def _copy_previous_state(con: duckdb.DuckDBPyConnection) -> None:
    """What the flow does before a build: the published state becomes 'previous'."""
    snapshot_previous_program_state(con)


# --------------------------------------------------------------------------- builds


@dataclass
class Capture:
    """One build's result and the program marts right after it, keyed for lookups."""

    result: BuildResult
    learners: dict[tuple[str, str], dict[str, Any]]  # (program, user) -> fct_program_user row
    routes: dict[tuple[str, str, str], dict[str, Any]]  # (program, route, user) -> row
    sets: dict[tuple[str, str, str], dict[str, Any]]  # (program, set, user) -> row
    assignments: dict[tuple[str, str], dict[str, Any]]  # int_program_assignments

    def learner(self, program: str, user: str) -> dict[str, Any]:
        return self.learners[(program, user)]

    def assigned(self, program: str) -> set[str]:
        return {u for p, u in self.learners if p == program}

    def status(self, program: str, user: str) -> str:
        return self.learners[(program, user)]["status"]


def _read(con: duckdb.DuckDBPyConnection, relation: str) -> list[dict[str, Any]]:
    cursor = con.execute(f"select * from {relation}")  # noqa: S608 (test constants)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _build(database: Path, state_dir: Path, run_id: str, as_of: dt.datetime) -> Capture:
    with duckdb.connect(str(database)) as con:
        _copy_previous_state(con)
        con.execute("delete from learnops.run_context")
        con.execute(
            "insert into learnops.run_context (run_id, as_of) values (?, ?)", [run_id, as_of]
        )
        con.execute(
            "insert into learnops.run_log (run_id, as_of, started_at, status) "
            "values (?, ?, ?, 'succeeded')",
            [run_id, as_of, as_of],
        )
    result = build_warehouse(database, state_dir=state_dir, exclude=None)
    with duckdb.connect(str(database), read_only=True) as con:
        return Capture(
            result=result,
            learners={(r["program_id"], r["user_id"]): r for r in _read(con, "fct_program_user")},
            routes={
                (r["program_id"], r["route_key"], r["user_id"]): r
                for r in _read(con, "fct_program_assignment_route")
            },
            sets={
                (r["program_id"], r["set_id"], r["user_id"]): r
                for r in _read(con, "fct_program_course_set_user")
            },
            assignments={
                (r["program_id"], r["user_id"]): r
                for r in _read(con, "intermediate.int_program_assignments")
            },
        )


@dataclass
class Runs:
    one: Capture
    two: Capture
    three: Capture


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    directory = tmp_path_factory.mktemp("programs")
    database, state_dir = directory / "warehouse.duckdb", directory / "state"
    with duckdb.connect(str(database)) as con:
        ensure_state_schema(con)
        _seed_hr(con)
        _write_rules(con, 1)
    one = _build(database, state_dir, "r1", RUN_1)
    with duckdb.connect(str(database)) as con:
        _change_hr_for_run_2(con)
        _write_rules(con, 2)
    two = _build(database, state_dir, "r2", RUN_2)
    three = _build(database, state_dir, "r3", RUN_3)
    yield Runs(one, two, three)


# --------------------------------------------------------------------------- course sets


def test_some_two_completes_with_any_two_courses(runs: Runs) -> None:
    assert runs.one.status("some_two", "s2_a") == "complete"
    assert runs.one.learner("some_two", "s2_a")["completed_at"] == at("2025-07-01")
    assert runs.one.status("some_two", "s2_b") == "in_progress"
    assert runs.one.sets[("some_two", "set_1", "s2_b")]["status"] == "in_progress"


def test_some_needs_both_the_count_and_the_score(runs: Runs) -> None:
    # scores c1 3, c2 4, c3 8; min 2 courses and 10 points
    assert runs.one.status("some_score", "sc_a") == "in_progress"  # 2 courses, 7 points
    assert runs.one.learner("some_score", "sc_b")["completed_at"] == at("2025-05-03")
    # c3 (8) then c1 (3): both thresholds first met by the second completion
    assert runs.one.learner("some_score", "sc_c")["completed_at"] == at("2025-05-05")


def test_some_with_zero_thresholds_is_optional(runs: Runs) -> None:
    learner = runs.one.learner("some_zero", "sz_a")
    assert learner["status"] == "complete"
    assert learner["completed_at"] == RUN_1 == learner["assigned_at"]


def test_and_binds_tighter_than_or(runs: Runs) -> None:
    assert runs.one.learner("and_or", "ao_c")["completed_at"] == at("2025-09-01")  # C alone
    assert runs.one.status("and_or", "ao_a") == "in_progress"  # A without B
    assert runs.one.learner("and_or", "ao_ab")["completed_at"] == at("2025-09-10")


def test_then_opens_the_next_group_only_when_the_first_is_done(runs: Runs) -> None:
    one, two = runs.one, runs.two
    # nothing done: group 2 is not open
    assert one.status("then_seq", "th_none") == "not_started"
    assert one.learner("then_seq", "th_none")["current_group_number"] == 1
    assert one.sets[("then_seq", "set_1", "th_none")]["opens_at"] == RUN_1
    assert one.sets[("then_seq", "set_1", "th_none")]["due_at"] == RUN_1 + dt.timedelta(days=5)
    assert one.sets[("then_seq", "set_2", "th_none")]["opens_at"] is None
    # group 1 done before the assignment: group 2 opens at the assignment
    assert one.status("then_seq", "th_1") == "in_progress"
    assert one.learner("then_seq", "th_1")["current_group_number"] == 2
    assert one.sets[("then_seq", "set_2", "th_1")]["opens_at"] == RUN_1
    assert one.sets[("then_seq", "set_2", "th_1")]["is_current_group"]
    # the second group's course alone: the program is not complete, its group not open
    assert one.status("then_seq", "th_2only") == "in_progress"
    assert one.sets[("then_seq", "set_2", "th_2only")]["opens_at"] is None
    assert one.learner("then_seq", "th_2only")["current_group_number"] == 1
    # completions after the as-of do not count yet; by run 2 both groups are done
    assert one.status("then_seq", "th_both") == "not_started"
    assert two.learner("then_seq", "th_both")["completed_at"] == at("2026-02-20")
    assert two.sets[("then_seq", "set_2", "th_both")]["opens_at"] == at("2026-02-10")
    # group 2 opened after the assignment; its set due date (3 days) has passed by run 2
    later = two.sets[("then_seq", "set_2", "th_later")]
    assert later["opens_at"] == at("2026-02-05")
    assert later["due_at"] == at("2026-02-08")
    assert later["is_overdue"]
    assert two.status("then_seq", "th_later") == "in_progress"


def test_optional_or_required_completes_at_assignment(runs: Runs) -> None:
    learner = runs.one.learner("opt_or_req", "oo_a")
    assert (learner["status"], learner["completed_at"]) == ("complete", RUN_1)


def test_set_due_dates_use_each_groups_largest_min_time(runs: Runs) -> None:
    # [5 days or 10 days] then [3 days]: group 1 due 10 days after opening
    sets = runs.one.sets
    assert sets[("min_time", "set_1", "mt_ok")]["due_at"] == RUN_1 + dt.timedelta(days=10)
    assert sets[("min_time", "set_2", "mt_ok")]["due_at"] == RUN_1 + dt.timedelta(days=10)
    assert sets[("min_time", "set_3", "mt_ok")]["due_at"] is None  # not open yet
    # mt_ok finished group 1 with c2 on 3 Feb: group 2 opened then, due 3 days later
    group_2 = runs.two.sets[("min_time", "set_3", "mt_ok")]
    assert (group_2["opens_at"], group_2["due_at"]) == (at("2026-02-03"), at("2026-02-06"))


# --------------------------------------------------------------------------- exceptions


def test_time_allowance_exception_and_realistic_due_date(runs: Runs) -> None:
    # minimum time 13 days: due in 12 days raises the exception, due in 14 does not
    tight = runs.one.learner("min_time", "mt_tight")
    assert (tight["status"], tight["exception_type"], tight["exception_resolution"]) == (
        "exception",
        "time_allowance",
        None,
    )
    assert tight["exception_raised_at"] == RUN_1
    assert tight["due_at"] == RUN_1 + dt.timedelta(days=12)
    assert not tight["is_overdue"]
    assert runs.one.assignments[("min_time", "mt_tight")]["realistic_due_at"] == (
        RUN_1 + dt.timedelta(days=20)
    )
    ok = runs.one.learner("min_time", "mt_ok")
    assert (ok["status"], ok["exception_type"]) == ("not_started", None)
    # run 2 resolves it: due = run 2's as-of + 13 days + 7 days, then fixed
    resolved = runs.two.learner("min_time", "mt_tight")
    assert (resolved["status"], resolved["exception_type"], resolved["exception_resolution"]) == (
        "not_started",
        "time_allowance",
        "realistic_due_date",
    )
    assert resolved["due_at"] == RUN_2 + dt.timedelta(days=20)
    assert resolved["due_route_key"] is None
    assert resolved["exception_raised_at"] == RUN_1
    assert runs.three.learner("min_time", "mt_tight")["due_at"] == RUN_2 + dt.timedelta(days=20)


def test_completion_time_unknown_stays_open_until_resolved(runs: Runs) -> None:
    route = runs.one.routes[("time_unknown", "users", "ctu_a")]
    assert route["is_base_missing"] and route["due_at"] is None
    learner = runs.one.learner("time_unknown", "ctu_a")
    assert (learner["status"], learner["exception_type"]) == (
        "exception",
        "completion_time_unknown",
    )
    # c9 completed on 10 Feb: the route has a date now, the exception stays open
    assert runs.two.routes[("time_unknown", "users", "ctu_a")]["due_at"] == at("2026-03-10")
    assert runs.two.learner("time_unknown", "ctu_a")["status"] == "exception"
    assert runs.two.learner("time_unknown", "ctu_a")["exception_raised_at"] == RUN_1


def test_dismiss_and_default_resolutions(runs: Runs) -> None:
    dismissed = runs.one.learner("dismissal", "dm_a")
    assert (
        dismissed["status"],
        dismissed["exception_type"],
        dismissed["exception_resolution"],
    ) == ("dismissed", "time_allowance", "dismiss")
    assert runs.one.status("dismissal", "dm_b") == "exception"
    assigned = runs.one.learner("default_assign", "da_a")
    assert (assigned["status"], assigned["exception_resolution"]) == ("not_started", "assign")
    assert assigned["is_overdue"]  # the date was kept
    assert runs.three.learner("dismissal", "dm_a")["status"] == "dismissed"


def test_complete_learners_raise_no_time_allowance(runs: Runs) -> None:
    learner = runs.one.learner("complete_past_due", "sc_b")
    assert (learner["status"], learner["exception_type"], learner["is_overdue"]) == (
        "complete",
        None,
        False,
    )


def test_duplicate_course_between_certifications(runs: Runs) -> None:
    for certification in ("dup_cert_1", "dup_cert_2"):
        learner = runs.one.learner(certification, "dc_a")
        assert (learner["kind"], learner["status"], learner["exception_type"]) == (
            "certification",
            "exception",
            "duplicate_course",
        )
    assert runs.one.learner("solo_cert", "dc_a")["exception_type"] is None


def test_certifications_show_the_certification_and_the_current_path(runs: Runs) -> None:
    certified = runs.one.learner("cert_status", "ce_certified")
    assert (certified["status"], certified["completed_at"]) == ("complete", at("2025-06-01"))
    # expired on 15 Jan: back on the primary path, where only completions since the
    # window opened count; overdue since the expiry although no due date was set
    expired = runs.one.learner("cert_status", "ce_expired")
    assert (expired["status"], expired["completed_at"], expired["due_at"]) == (
        "not_started",
        None,
        None,
    )
    assert expired["is_overdue"]
    current = runs.one.sets[("cert_status", "set_1", "ce_expired")]
    assert (current["path"], current["status"], current["courses_completed"]) == (
        "primary",
        "not_started",
        0,
    )


def test_first_access_route_waits_as_future(runs: Runs) -> None:
    never = runs.one.learner("future", "fu_never")
    assert (never["status"], never["due_at"], never["exception_type"]) == ("future", None, None)
    assert runs.one.routes[("future", "users", "fu_never")]["is_future"]
    assert runs.one.learner("future", "fu_seen")["due_at"] == at("2026-02-03")
    # first access on 20 Feb: assigned for real in run 2, due two weeks later
    now = runs.two.learner("future", "fu_never")
    assert (now["status"], now["due_at"]) == ("not_started", at("2026-03-06"))
    assert runs.two.assignments[("future", "fu_never")]["is_new_assignment"]


# --------------------------------------------------------------------------- due dates


def test_latest_route_due_date_wins_in_either_order(runs: Runs) -> None:
    for program in ("two_routes_a", "two_routes_b", "two_routes_c"):
        learner = runs.two.learner(program, "d_user")
        assert (learner["due_at"], learner["due_route_key"]) == (JULY_1, "users"), program
    assert runs.one.learner("two_routes_b", "d_user")["due_at"] == JULY_1
    assert runs.one.learner("two_routes_c", "d_user")["due_at"] == JUNE_1
    assert runs.two.assignments[("two_routes_c", "d_user")]["is_due_later"]
    assert not runs.two.assignments[("two_routes_b", "d_user")]["is_due_later"]


def test_lowering_a_fixed_date_keeps_the_due_date(runs: Runs) -> None:
    may_1 = end_of(dt.date(2026, 5, 1))
    assert runs.one.learner("lowering", "lw_a")["due_at"] == may_1
    assert runs.two.routes[("lowering", "users", "lw_a")]["due_at"] == end_of(dt.date(2026, 4, 1))
    learner = runs.two.learner("lowering", "lw_a")
    assert (learner["due_at"], learner["due_route_key"]) == (may_1, None)


def test_calendar_month_arithmetic_clamps_to_the_months_end(runs: Runs) -> None:
    # assigned 31 Jan 12:00 + 1 month = 28 Feb 12:00
    assert runs.one.learner("month_end", "mo_a")["due_at"] == at("2026-02-28 12:00")


def test_due_date_bases(runs: Runs) -> None:
    routes = runs.one.routes
    # latest start date of the live jobs, start of day
    assert routes[("bases", "group:js.csv", "js_a")]["due_at"] == at("2025-12-31")
    assert routes[("bases", "group:cf.csv", "cf_a")]["due_at"] == at("2026-02-15")
    # some_two completed 1 Jul 2025, + 12 months; s2_b has not completed it
    assert routes[("bases", "group:pc.csv", "s2_a")]["due_at"] == at("2026-07-01")
    assert routes[("bases", "group:pc.csv", "s2_b")]["is_base_missing"]
    assert runs.one.learner("bases", "s2_b")["exception_type"] == "completion_time_unknown"
    # position assigned: in pos_c since run 1; pa_b moved into pos_c in run 2
    assert routes[("bases", "group:pa.csv", "pa_a")]["due_at"] == RUN_1 + dt.timedelta(days=7)
    assert routes[("bases", "group:pa.csv", "pa_b")]["is_base_missing"]
    two = runs.two.routes
    assert two[("bases", "group:pa.csv", "pa_a")]["due_at"] == RUN_1 + dt.timedelta(days=7)
    assert two[("bases", "group:pa.csv", "pa_b")]["due_at"] == RUN_2 + dt.timedelta(days=7)


# --------------------------------------------------------------------------- assignment


def test_routes_select_by_hierarchy_manager_and_list(runs: Runs) -> None:
    one = runs.one
    assert one.assigned("org_children") == {"o_root", "o_child"}  # o_deleted never
    assert one.assigned("org_only") == {"o_root"}
    assert one.assigned("pos_children") == {"o_root", "o_child"}
    assert one.assigned("mgr_direct") == {"r1", "r2"}
    assert one.assigned("mgr_below") == {"r1", "r2", "r3"}
    assert one.assigned("mgr_job") == {"r2"}
    assert one.assigned("mgr_job_below") == {"r2", "r3"}
    assert one.assigned("listed") == {"s2_a"}
    assert one.assigned("two_routes_a") == {"d_user"}


def test_removing_one_route_keeps_the_user_and_the_last_unassigns(runs: Runs) -> None:
    assert runs.one.assigned("route_removal") == {"rr_a", "rr_b"}
    assert runs.one.learner("route_removal", "rr_a")["route_count"] == 2
    kept = runs.two.learner("route_removal", "rr_a")
    assert (kept["route_count"], kept["assigned_at"]) == (1, RUN_1)
    assert runs.two.assigned("route_removal") == {"rr_a"}
    assert ("route_removal", "users", "rr_a") not in runs.two.routes


def test_deleted_users_leave(runs: Runs) -> None:
    assert runs.one.assigned("some_zero") == {"sz_a", "del_later"}
    assert runs.two.assigned("some_zero") == {"sz_a"}


def test_broken_program_keeps_its_previous_state(runs: Runs) -> None:
    assert runs.two.assigned("broken") == {"bk_a", "bk_b"}
    learner = runs.two.learner("broken", "bk_a")
    assert (learner["assigned_at"], learner["due_at"]) == (RUN_1, JUNE_1)
    assert runs.two.routes[("broken", "users", "bk_a")]["is_kept"]


def test_assignment_dates_are_kept_across_runs(runs: Runs) -> None:
    assert runs.three.learner("some_two", "s2_a")["assigned_at"] == RUN_1
    assert runs.two.learner("two_routes_b", "d_user")["assigned_at"] == RUN_1
    route = runs.two.routes[("two_routes_b", "audience:aud", "d_user")]
    assert route["assigned_at"] == RUN_2


def test_a_repeated_run_changes_no_status(runs: Runs) -> None:
    def essentials(capture: Capture) -> dict[tuple[str, str], tuple[Any, ...]]:
        return {
            key: (
                row["status"],
                row["due_at"],
                row["completed_at"],
                row["exception_type"],
                row["exception_resolution"],
                row["exception_raised_at"],
                row["assigned_at"],
            )
            for key, row in capture.learners.items()
        }

    assert essentials(runs.three) == essentials(runs.two)


def test_unit_tests_ran(runs: Runs) -> None:
    timings = runs.one.result.node_timings
    assert "program_course_sets_follow_the_content_logic" in timings
    assert "program_due_dates_and_exception_states" in timings
    assert "program_course_set_rows_copy_the_template" in timings
