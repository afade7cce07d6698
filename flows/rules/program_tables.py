"""Programs and certifications as data: the validated rules written into the `rules` schema.

dbt assigns every program and certification at once by joining these tables to the marts, so
no rule value reaches SQL as text (SPEC §4). What depends only on the rule and the run is
computed here, once: course-set groups and runs, periods as (months, seconds), a program's
minimum time, route keys, fixed due dates as instants (docs/programs.md).

Tables (replaced every run; columns in docs/programs.md and `RULES_DDL`):
``rules.program``, ``rules.program_course_set``, ``rules.program_course_set_course``,
``rules.program_route``, ``rules.program_route_target``,
``rules.program_exception_resolution``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import duckdb
import polars as pl

from flows.rules.programs import (
    CERTIFICATIONS_FILE,
    PROGRAMS_FILE,
    Certification,
    Due,
    Period,
    Program,
    Route,
    iter_sets,
    minimum_time,
)
from flows.rules.tables import RULES_SCHEMA, RunClock, known_ids
from flows.rules.validation import LoadedRules, check_references
from flows.state_schema import PREVIOUS_STATE, ensure_previous_state, previous_mart_table
from flows.warehouse import table_exists

PROGRAM_SCHEMA = {
    "program_id": pl.String,
    "name": pl.String,
    "kind": pl.String,
    "active_period_months": pl.Int32,
    "active_period_seconds": pl.Int64,
    "window_period_months": pl.Int32,
    "window_period_seconds": pl.Int64,
    "min_active_period_months": pl.Int32,
    "min_active_period_seconds": pl.Int64,
    "expiry_method": pl.String,
    "minimum_time_seconds": pl.Int64,
    "minimum_time_months": pl.Int32,
    "exception_default": pl.String,
    "is_broken": pl.Boolean,
    "broken_reason": pl.String,
    "broken_since_run_id": pl.String,
    "definition": pl.String,
    "source_file": pl.String,
    "source_line": pl.Int32,
}
COURSE_SET_SCHEMA = {
    "program_id": pl.String,
    "path": pl.String,
    "set_id": pl.String,
    "set_position": pl.Int32,
    "group_number": pl.Int32,
    "run_number": pl.Int32,
    "kind": pl.String,
    "min_courses": pl.Int32,
    "min_score": pl.Int32,
    "min_time_months": pl.Int32,
    "min_time_seconds": pl.Int64,
    "course_count": pl.Int32,
}
SET_COURSE_SCHEMA = {
    "program_id": pl.String,
    "path": pl.String,
    "set_id": pl.String,
    "course_id": pl.String,
}
ROUTE_SCHEMA = {
    "program_id": pl.String,
    "route_key": pl.String,
    "route_kind": pl.String,
    "include_children": pl.Boolean,
    "manager_user_id": pl.String,
    "manager_job_id": pl.String,
    "manager_scope": pl.String,
    "due_kind": pl.String,
    "due_fixed_at": pl.Datetime("us"),
    "due_base": pl.String,
    "due_base_ref": pl.String,
    "due_months": pl.Int32,
    "due_seconds": pl.Int64,
}
ROUTE_TARGET_SCHEMA = {"program_id": pl.String, "route_key": pl.String, "target_id": pl.String}
RESOLUTION_SCHEMA = {"program_id": pl.String, "user_id": pl.String, "resolution": pl.String}
_ONE_MICROSECOND = timedelta(microseconds=1)


@dataclass
class ProgramTables:
    """The rows of the six program rule tables, before they are written."""

    programs: list[dict[str, Any]] = field(default_factory=list)
    course_sets: list[dict[str, Any]] = field(default_factory=list)
    set_courses: list[dict[str, Any]] = field(default_factory=list)
    routes: list[dict[str, Any]] = field(default_factory=list)
    route_targets: list[dict[str, Any]] = field(default_factory=list)
    exception_resolutions: list[dict[str, Any]] = field(default_factory=list)

    def frames(self) -> dict[str, pl.DataFrame]:
        return {
            "program": pl.DataFrame(self.programs, schema=PROGRAM_SCHEMA),
            "program_course_set": pl.DataFrame(self.course_sets, schema=COURSE_SET_SCHEMA),
            "program_course_set_course": pl.DataFrame(self.set_courses, schema=SET_COURSE_SCHEMA),
            "program_route": pl.DataFrame(self.routes, schema=ROUTE_SCHEMA),
            "program_route_target": pl.DataFrame(self.route_targets, schema=ROUTE_TARGET_SCHEMA),
            "program_exception_resolution": pl.DataFrame(
                self.exception_resolutions, schema=RESOLUTION_SCHEMA
            ),
        }


@dataclass(frozen=True)
class ProgramsLoadSummary:
    """Programs and certifications written, and those broken (new ones first)."""

    programs: int
    certifications: int
    newly_broken: dict[str, str]
    still_broken: dict[str, str]


# --- building the rows ----------------------------------------------------------------------


def build_program_tables(
    loaded: LoadedRules, clock: RunClock, broken: dict[str, tuple[str, str]] | None = None
) -> ProgramTables:
    """Rows of the program rule tables. `broken` maps an id to (reason, broken since run)."""
    broken = broken or {}
    tables = ProgramTables()
    items: list[tuple[str, str, Program | Certification]] = [
        *(("program", PROGRAMS_FILE, p) for p in loaded.programs.programs),
        *(("certification", CERTIFICATIONS_FILE, c) for c in loaded.certifications.certifications),
    ]
    for kind, source_file, item in items:
        reason, since = broken.get(item.id, (None, None))
        tables.programs.append(
            {
                "program_id": item.id,
                "name": item.name,
                "kind": kind,
                **_certification_columns(item),
                **_span_columns("minimum_time", minimum_time(item.paths()["primary"])),
                "exception_default": item.exceptions.default,
                "is_broken": reason is not None,
                "broken_reason": reason,
                "broken_since_run_id": since,
                "definition": json.dumps(
                    item.model_dump(mode="json", by_alias=True, exclude_none=True)
                ),
                "source_file": source_file,
                "source_line": loaded.program_lines.get(item.id),
            }
        )
        _add_course_sets(tables, item)
        for route in item.assignments:
            _add_route(tables, item.id, route, loaded, clock)
        tables.exception_resolutions += [
            {"program_id": item.id, "user_id": user_id, "resolution": resolution}
            for user_id, resolution in item.exceptions.users.items()
        ]
    return tables


def _span_columns(prefix: str, span: Any) -> dict[str, Any]:
    return {f"{prefix}_months": span.months, f"{prefix}_seconds": span.seconds}


def _period_columns(prefix: str, period: Period | None) -> dict[str, Any]:
    if period is None:
        return {f"{prefix}_months": None, f"{prefix}_seconds": None}
    return _span_columns(prefix, period.span)


def _certification_columns(item: Program | Certification) -> dict[str, Any]:
    if not isinstance(item, Certification):
        return {
            **_period_columns("active_period", None),
            **_period_columns("window_period", None),
            **_period_columns("min_active_period", None),
            "expiry_method": None,
        }
    return {
        **_period_columns("active_period", item.active_period),
        **_period_columns("window_period", item.window_period),
        **_period_columns("min_active_period", item.min_active_period),
        "expiry_method": item.expiry_method,
    }


def _add_course_sets(tables: ProgramTables, item: Program | Certification) -> None:
    for path, placed in iter_sets(item):
        course_set = placed.course_set
        courses = course_set.distinct_courses
        min_time = course_set.min_time.span if course_set.min_time else None
        tables.course_sets.append(
            {
                "program_id": item.id,
                "path": path,
                "set_id": placed.set_id,
                "set_position": placed.set_position,
                "group_number": placed.group_number,
                "run_number": placed.run_number,
                "kind": course_set.kind,
                "min_courses": course_set.min_courses or 0,
                "min_score": course_set.min_score or 0,
                "min_time_months": min_time.months if min_time else 0,
                "min_time_seconds": min_time.seconds if min_time else 0,
                "course_count": len(courses),
            }
        )
        tables.set_courses += [
            {"program_id": item.id, "path": path, "set_id": placed.set_id, "course_id": course}
            for course in courses
        ]


def _add_route(
    tables: ProgramTables, program_id: str, route: Route, loaded: LoadedRules, clock: RunClock
) -> None:
    hierarchy = route.organisation or route.position
    manager = route.manager
    tables.routes.append(
        {
            "program_id": program_id,
            "route_key": route.key,
            "route_kind": route.kind,
            "include_children": hierarchy.include_children if hierarchy else False,
            "manager_user_id": manager.user if manager else None,
            "manager_job_id": manager.job if manager else None,
            "manager_scope": manager.scope if manager else None,
            **_due_columns(route.due, clock),
        }
    )
    targets: list[str] = []
    if hierarchy is not None:
        targets = hierarchy.ids
    elif route.audience is not None:
        targets = [route.audience]
    elif route.users is not None:
        targets = route.users
    elif route.group is not None:
        targets = list(loaded.group_members.get((program_id, route.group), ()))
    tables.route_targets += [
        {"program_id": program_id, "route_key": route.key, "target_id": target}
        for target in dict.fromkeys(targets)
    ]


def _due_columns(due: Due | None, clock: RunClock) -> dict[str, Any]:
    columns: dict[str, Any] = {
        "due_kind": "none",
        "due_fixed_at": None,
        "due_base": None,
        "due_base_ref": None,
        "due_months": None,
        "due_seconds": None,
    }
    if due is None:
        return columns
    if due.date is not None:
        columns.update(due_kind="fixed", due_fixed_at=end_of_day(due.date, clock))
        return columns
    span = due.span
    columns.update(
        due_kind="relative",
        due_base=due.after,
        due_base_ref=due.base_ref,
        due_months=span.months,
        due_seconds=span.seconds,
    )
    return columns


def end_of_day(day: Any, clock: RunClock) -> datetime:
    """The last instant (to the microsecond) of `day` in the site timezone, as naive UTC."""
    return clock.start_of(day + timedelta(days=1)) - _ONE_MICROSECOND


# --- references and the warehouse -----------------------------------------------------------


def program_broken_reasons(loaded: LoadedRules, known: dict[str, set[str]]) -> dict[str, str]:
    """Program or certification id -> why it is broken (an id that does not resolve)."""
    reasons: dict[str, list[str]] = {}
    for issue in check_references(loaded.without_audience_references(), known):
        assert issue.object_id is not None
        reasons.setdefault(issue.object_id, []).append(issue.message)
    return {program_id: "; ".join(messages) for program_id, messages in reasons.items()}


def load_program_tables(
    con: duckdb.DuckDBPyConnection, loaded: LoadedRules, clock: RunClock, run_id: str
) -> ProgramsLoadSummary:
    """Check references against the imported state and (re)write the program rule tables.

    A program or certification with an unresolved id is marked broken (dbt keeps its state);
    one broken on the previous run keeps its `broken_since_run_id`, so the admins are told
    once, on the run that broke it.
    """
    reasons = program_broken_reasons(loaded, known_ids(con))
    since = dict(
        con.execute(
            "select program_id, broken_since_run_id from rules.program where is_broken"
        ).fetchall()
    )
    broken = {p: (reason, since.get(p) or run_id) for p, reason in reasons.items()}
    write_program_tables(con, build_program_tables(loaded, clock, broken))
    newly = {p: r for p, (r, s) in broken.items() if s == run_id}
    return ProgramsLoadSummary(
        programs=len(loaded.programs.programs),
        certifications=len(loaded.certifications.certifications),
        newly_broken=newly,
        still_broken={p: r for p, (r, _) in broken.items() if p not in newly},
    )


def write_program_tables(con: duckdb.DuckDBPyConnection, tables: ProgramTables) -> None:
    """Replace the rows of the program rule tables (DDL in flows/state_schema.py) in one go."""
    con.execute("begin")
    for name, frame in tables.frames().items():
        con.register("program_rows", frame.to_arrow())
        # the table names are ours, never an admin's: rule values only travel as rows
        con.execute(f"delete from {RULES_SCHEMA}.{name}")  # noqa: S608
        con.execute(f"insert into {RULES_SCHEMA}.{name} by name select * from program_rows")  # noqa: S608
        con.unregister("program_rows")
    con.execute("commit")


def snapshot_previous_program_state(con: duckdb.DuckDBPyConnection) -> None:
    """Set the last published program state aside for the build (``learnops.previous_*``).

    The building copy starts as the published file, so `main.fct_program_assignment_route`,
    `main.fct_certification_user` and `main.fct_program_user` still hold the previous run's
    rows until dbt rebuilds them: each is renamed to ``<mart>__previous`` (replacing the one
    set aside by the run before) and keeps only the columns the ``learnops.previous_*`` views
    show (dropping a column is a change of metadata; its blocks are reused). A mart that
    does not exist yet (the first run) leaves an empty table in its place. Until dbt builds
    them again the marts are absent from the building copy, which nothing reads before.
    """
    con.execute("begin")
    try:
        for mart, columns in PREVIOUS_STATE.values():
            aside = previous_mart_table(mart)
            con.execute(f"drop table if exists main.{aside}")
            if table_exists(con, "main", mart):
                con.execute(f"alter table main.{mart} rename to {aside}")
                _drop_unlisted_columns(con, aside, {name for name, _ in columns})
        ensure_previous_state(con)  # a first run's empty tables, and the views
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def _drop_unlisted_columns(con: duckdb.DuckDBPyConnection, table: str, kept: set[str]) -> None:
    columns = [row[0] for row in con.execute(f"describe main.{table}").fetchall()]
    for column in columns:
        if column not in kept:
            con.execute(f'alter table main.{table} drop column "{column}"')
