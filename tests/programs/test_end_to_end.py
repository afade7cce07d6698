"""Programs and certifications end to end: feeds and YAML rules through `run_pipeline`.

The dbt-level tests (tests/dbt_build/test_dbt_programs.py, test_dbt_certifications.py) write
rule rows directly; these go through the YAML loader, the reference checks and the whole
run. One small organisation, three runs on one warehouse (site timezone UTC):

    R1 2014-03-01T06:00Z   R2 2014-04-10T06:00Z   R3 2014-04-20T06:00Z

What changes between runs (the YAML below is edited per run, the feeds in R2):

    latest_due        U01: audience route due 1 Jun, users route due 1 Jul (all runs)
    never_earlier     U02: fixed date 30 Sep in R1, lowered to 31 Aug in R2
    two_routes        U03: users + group route in R1; group route removed in R2; users route
                      removed too in R3
    readd             U04 (completed one of two courses): assigned in R1, route removed in
                      R2, re-added in R3
    tight             U05, U06: due 4.7 days after R1, minimum time 10 days; R2 adds the
                      per-user resolutions realistic_due_date (U05) and dismiss (U06)
    first_access      U07: due two weeks after first access; no access in R1's feed, an
                      access on 8 Apr in R2's
    broken_org        U09, U10 by organisation OB; HR removes OB in R2 (jobs move to OC)
    safety_cert       U08: completed S on 3 May 2012 and 15 Apr 2013 (expiry_date, active
                      1 year, window 1 month); U15, U16 the same, then S again on 5 Apr 2014
                      (U15, inside the window that opened on 3 Apr) or 1 Apr 2014 (U16,
                      before it), both first seen by R2, the first run after the opening
    renewal_cert      U14: completed R on 15 Apr 2013 (completion_date, active 1 year)
    course-set logic  U11-U13, courses C1-C3 (scores 3, 4, 8): one program per rule of the
                      issue's list (SOME 2, SOME by score, SOME 0/0, `A and B or C`, `then`,
                      optional or required, minimum time), all evaluated in R1
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from flows.pipeline import RunRequest, RunResult, parse_as_of, run_pipeline

D = dt.datetime
AS_OF = ("2014-03-01T06:00:00Z", "2014-04-10T06:00:00Z", "2014-04-20T06:00:00Z")
R1, R2, R3 = (D(2014, 3, 1, 6), D(2014, 4, 10, 6), D(2014, 4, 20, 6))


def end_of(year: int, month: int, day: int) -> dt.datetime:
    """A due date written as a date: the end of that day (site timezone UTC)."""
    return dt.datetime.combine(dt.date(year, month, day), dt.time.max)


HR_IMPORT_YAML = "defaults:\n  max_removed_fraction: 0.5\n"

ORG_CSV = """\
idnumber,fullname,parentidnumber
OA,Head Office,
OB,Branch B,OA
OC,Branch C,OA
"""

USER_CSV = "idnumber,username,firstname,lastname,email\n" + "".join(
    f"U{n:02d},user{n},User,Number{n},u{n}@example.com\n" for n in range(1, 17)
)

JOB_CSV = """\
idnumber,useridnumber,fullname,orgidnumber,startdate
J1,U01,Clerk,OA,2010-01-01
J1,U09,Clerk,OB,2011-01-01
J1,U10,Clerk,OB,2012-01-01
"""

COURSE_CSV = """\
idnumber,fullname,score
A,Course A,
B,Course B,
S,Safety,
R,Renewal,
C1,Course 1,3
C2,Course 2,4
C3,Course 3,8
"""

COMPLETION_CSV = """\
useridnumber,courseidnumber,timecompleted
U04,A,2014-01-10T10:00:00Z
U08,S,2012-05-03T09:00:00Z
U08,S,2013-04-15T10:00:00Z
U11,C1,2014-02-01T10:00:00Z
U11,C3,2014-02-10T10:00:00Z
U12,C1,2014-02-01T10:00:00Z
U12,C2,2014-02-05T10:00:00Z
U13,C3,2014-02-20T10:00:00Z
U14,R,2013-04-15T10:00:00Z
U15,S,2012-05-03T09:00:00Z
U15,S,2013-04-15T10:00:00Z
U16,S,2012-05-03T09:00:00Z
U16,S,2013-04-15T10:00:00Z
"""
# Recertifications the feed first carries in R2 (5 Apr: after the window opened on 3 Apr;
# 1 Apr: before it)
LATE_COMPLETIONS = "U15,S,2014-04-05T10:00:00Z\nU16,S,2014-04-01T10:00:00Z\n"

ACCESS_CSV = """\
useridnumber,firstaccess,lastaccess
U01,2013-01-01T08:00:00Z,2014-02-01T08:00:00Z
U08,2012-01-01T08:00:00Z,2014-02-01T08:00:00Z
"""
U07_ACCESS = "U07,2014-04-08T10:00:00Z,2014-04-08T10:00:00Z\n"

AUDIENCES_YAML = """\
audiences:
  - id: listed
    name: Listed people
    kind: static
    members: [U01]
"""


def feeds(run: int) -> dict[str, str]:
    files = {
        "org.csv": ORG_CSV,
        "user.csv": USER_CSV,
        "jobassignment.csv": JOB_CSV,
        "course.csv": COURSE_CSV,
        "course_completion.csv": COMPLETION_CSV,
        "user_access.csv": ACCESS_CSV,
    }
    if run >= 2:  # HR removes OB (its jobs move to OC); U07 logs in on 8 April
        files["org.csv"] = ORG_CSV.replace("OB,Branch B,OA\n", "")
        files["jobassignment.csv"] = JOB_CSV.replace(",OB,", ",OC,")
        files["user_access.csv"] = ACCESS_CSV + U07_ACCESS
        files["course_completion.csv"] = COMPLETION_CSV + LATE_COMPLETIONS
    return files


def programs_yaml(run: int) -> str:
    never_earlier_due = "2014-09-30" if run == 1 else "2014-08-31"
    two_routes = {
        1: "\n      - users: [U03]\n      - group: two_routes.csv",
        2: "\n      - users: [U03]",
        3: " []",
    }[run]
    readd_routes = "[]" if run == 2 else "\n      - users: [U04]"
    tight_exceptions = (
        ""
        if run == 1
        else "    exceptions:\n      users: {U05: realistic_due_date, U06: dismiss}\n"
    )
    return f"""\
# yaml-language-server: $schema=./programs.schema.json
programs:
  - id: latest_due
    name: Latest due date wins
    content:
      - {{kind: all, courses: [A]}}
    assignments:
      - audience: listed
        due: {{date: 2014-06-01}}
      - users: [U01]
        due: {{date: 2014-07-01}}

  - id: latest_due_reversed
    name: Latest due date wins, routes the other way round
    content:
      - {{kind: all, courses: [A]}}
    assignments:
      - users: [U01]
        due: {{date: 2014-07-01}}
      - audience: listed
        due: {{date: 2014-06-01}}

  - id: never_earlier
    name: Due dates never move earlier
    content:
      - {{kind: all, courses: [A]}}
    assignments:
      - users: [U02]
        due: {{date: {never_earlier_due}}}

  - id: two_routes
    name: Two routes, then one, then none
    content:
      - {{kind: all, courses: [A]}}
    assignments:{two_routes}

  - id: readd
    name: Unassigned and assigned again
    content:
      - {{kind: all, courses: [A, B]}}
    assignments: {readd_routes}

  - id: tight
    name: Too little time
    content:
      - {{kind: all, courses: [A], min_time: {{days: 10}}}}
    assignments:
      - users: [U05, U06]
        due: {{date: 2014-03-05}}
{tight_exceptions}
  - id: first_access
    name: Relative to first access
    content:
      - {{kind: all, courses: [A]}}
    assignments:
      - users: [U07]
        due: {{after: first_access, weeks: 2}}

  - id: broken_org
    name: Named organisation removed by HR
    content:
      - {{kind: all, courses: [A]}}
    assignments:
      - organisation: {{ids: [OB]}}
        due: {{after: assignment, months: 1}}
{COURSE_SET_PROGRAMS}"""


# Course-set logic (scores: C1 3, C2 4, C3 8). U11 did C1 and C3, U12 C1 and C2, U13 C3.
COURSE_SET_PROGRAMS = """
  - id: some_two
    name: Any two of three
    content:
      - {kind: some, courses: [C1, C2, C3], min_courses: 2}
    assignments:
      - users: [U11, U12, U13]

  - id: some_score
    name: Two courses worth ten points
    content:
      - {kind: some, courses: [C1, C2, C3], min_courses: 2, min_score: 10}
    assignments:
      - users: [U11, U12]

  - id: some_zero
    name: Some with both thresholds zero
    content:
      - {kind: some, courses: [C1, C2], min_courses: 0, min_score: 0}
    assignments:
      - users: [U13]

  - id: and_or
    name: A and B or C
    content:
      - {kind: all, courses: [C1]}
      - and
      - {kind: all, courses: [C2]}
      - or
      - {kind: all, courses: [C3]}
    assignments:
      - users: [U11, U12, U13]

  - id: then_order
    name: C2, then C1
    content:
      - {kind: all, courses: [C2]}
      - then
      - {kind: all, courses: [C1]}
    assignments:
      - users: [U11, U12]

  - id: optional_or_required
    name: Optional or required
    content:
      - {kind: optional}
      - or
      - {kind: all, courses: [C2]}
    assignments:
      - users: [U13]

  - id: min_time
    name: "[5 days or 10 days] then [3 days]: 13 days"
    content:
      - {kind: all, courses: [C1], min_time: {days: 5}}
      - or
      - {kind: all, courses: [C2], min_time: {days: 10}}
      - then
      - {kind: all, courses: [B], min_time: {days: 3}}
    assignments:
      # 12 days 18 hours after R1: less than 13 days
      - users: [U11]
        due: {date: 2014-03-13}

  - id: min_time_enough
    name: The same content, due a day later
    content:
      - {kind: all, courses: [C1], min_time: {days: 5}}
      - or
      - {kind: all, courses: [C2], min_time: {days: 10}}
      - then
      - {kind: all, courses: [B], min_time: {days: 3}}
    assignments:
      # 13 days 18 hours after R1: enough
      - users: [U11]
        due: {date: 2014-03-14}
"""


CERTIFICATIONS_YAML = """\
# yaml-language-server: $schema=./certifications.schema.json
certifications:
  - id: safety_cert
    name: Safety
    primary:
      - {kind: all, courses: [S]}
    active_period: {years: 1}
    window_period: {months: 1}
    expiry_method: expiry_date
    assignments:
      - users: [U08, U15, U16]

  - id: renewal_cert
    name: Renewal
    primary:
      - {kind: all, courses: [R]}
    active_period: {years: 1}
    window_period: {months: 1}
    expiry_method: completion_date
    assignments:
      - users: [U14]
"""


@dataclass(frozen=True)
class Snapshot:
    """What the published warehouse said right after one run."""

    run: RunResult
    program_user: dict[tuple[str, str], dict[str, Any]]  # (program, user) -> row
    certification_user: dict[tuple[str, str], dict[str, Any]]
    course_set_user: dict[tuple[str, str, str, str], dict[str, Any]]  # program, path, set, user
    route_user: dict[tuple[str, str, str], dict[str, Any]]  # program, route key, user
    program: dict[str, dict[str, Any]]  # rules.program by id
    outbox: list[dict[str, Any]]  # notification_outbox after the run
    course_set_events: set[tuple[Any, ...]]  # int_notification_events about course sets
    course_set_view_events: set[tuple[Any, ...]]  # the same, from fct_program_course_set_user


# Every trigger of SPEC §6 on every object, to the learner (exception_raised: the admins),
# with the repository's templates: which events these three runs see, and that each is
# messaged once however many runs see it.
TRIGGER_OFFSETS = {
    "audience_joined": None, "audience_left": None, "program_assigned": None,
    "program_unassigned": None, "program_due": "{days: 60}", "program_overdue": "{days: 1}",
    "courseset_due": "{days: 30}", "courseset_overdue": "{days: 1}",
    "courseset_completed": None, "program_completed": None, "program_followup": "{days: 1}",
    "exception_raised": None, "certification_window_open": None,
    "certification_expiring": "{days: 60}", "certification_expired": None,
}  # fmt: skip
NOTIFICATIONS_YAML = (
    "settings:\n  sender: {address: learning@example.com}\n  admins: [lms@example.com]\n"
    "  max_lateness: {years: 5}\n  per_user_daily_cap: null\nnotifications:\n"
) + "".join(
    f"  - {{id: every_{trigger}, trigger: {trigger}, scope: all, "
    + (f"offset: {offset}, " if offset else "")
    + f"recipients: [{'admins' if trigger == 'exception_raised' else 'learner'}]}}\n"
    for trigger, offset in TRIGGER_OFFSETS.items()
)


# The course-set events of a run, and every course-set event the published view implies
# whatever the window (offsets as TRIGGER_OFFSETS; active learners, live assignments): the
# events query reads the compact tables, not the view, so the two must agree.
COURSE_SET_EVENTS = """
    select event_type, split_part(object_id, '/', 1), course_set_id, user_id, anchor_at,
        due_at, completed_at
    from intermediate.int_notification_events
    where object_kind = 'course_set'
"""
COURSE_SET_VIEW_EVENTS = """
    with
    as_of as (select as_of from learnops.run_context),
    sets as (
        select sets.*
        from fct_program_course_set_user as sets
        semi join fct_program_user as live
            on live.program_id = sets.program_id and live.user_id = sets.user_id
            and live.status not in ('future', 'exception', 'dismissed')
        semi join dim_user as users on users.user_id = sets.user_id and users.status = 'active'
    ),
    unfinished as (
        select sets.* from sets
        where sets.is_current_group and sets.due_at is not null and sets.completed_at is null
    )
    select 'courseset_completed', program_id, set_id, user_id, completed_at, due_at, completed_at
    from sets, as_of where completed_at <= as_of.as_of
    union all
    select 'courseset_due', program_id, set_id, user_id, due_at, due_at, null
    from unfinished, as_of
    where as_of.as_of <= due_at and due_at - interval 30 days <= as_of.as_of
    union all
    select 'courseset_overdue', program_id, set_id, user_id, due_at, due_at, null
    from unfinished, as_of where due_at + interval 1 day <= as_of.as_of
"""


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    cursor = con.execute(sql)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _snapshot(warehouse: Path, run: RunResult) -> Snapshot:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return Snapshot(
            run=run,
            program_user={
                (r["program_id"], r["user_id"]): r
                for r in _rows(con, "select * from fct_program_user")
            },
            certification_user={
                (r["certification_id"], r["user_id"]): r
                for r in _rows(con, "select * from fct_certification_user")
            },
            course_set_user={
                (r["program_id"], r["path"], r["set_id"], r["user_id"]): r
                for r in _rows(con, "select * from fct_program_course_set_user")
            },
            route_user={
                (r["program_id"], r["route_key"], r["user_id"]): r
                for r in _rows(con, "select * from fct_program_assignment_route")
            },
            program={r["program_id"]: r for r in _rows(con, "select * from rules.program")},
            outbox=_rows(con, "select * from notification_outbox"),
            course_set_events=set(con.execute(COURSE_SET_EVENTS).fetchall()),
            course_set_view_events=set(con.execute(COURSE_SET_VIEW_EVENTS).fetchall()),
        )


def _write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Snapshot, Snapshot, Snapshot]:
    base = tmp_path_factory.mktemp("programs_e2e")
    warehouse = base / "warehouse.duckdb"
    snapshots = []
    for run, as_of in enumerate(AS_OF, start=1):
        feeds_dir = _write(base / f"feeds{run}", feeds(run))
        rules_dir = _write(
            base / f"rules{run}",
            {
                "hr_import.yaml": HR_IMPORT_YAML,
                "audiences.yaml": AUDIENCES_YAML,
                "programs.yaml": programs_yaml(run),
                "certifications.yaml": CERTIFICATIONS_YAML,
                "notifications.yaml": NOTIFICATIONS_YAML,
                "two_routes.csv": "useridnumber\nU03\n",
            },
        )
        result = run_pipeline(
            RunRequest(
                feeds=feeds_dir,
                rules=rules_dir,
                warehouse=warehouse,
                as_of=parse_as_of(as_of, "UTC"),
            )
        )
        assert result.status == "succeeded", f"run {run}: {result.message}"
        snapshots.append(_snapshot(warehouse, result))
    return tuple(snapshots)  # type: ignore[return-value]


def _user(snapshot: Snapshot, program: str, user: str) -> dict[str, Any]:
    row = snapshot.program_user.get((program, user))
    assert row is not None, f"{user} is not assigned to {program}"
    return row


# --------------------------------------------------------------------------- due dates


def test_the_latest_route_due_date_wins_in_either_order(runs: tuple[Snapshot, ...]) -> None:
    for snapshot in runs:
        for program in ("latest_due", "latest_due_reversed"):
            row = _user(snapshot, program, "U01")
            assert row["due_at"] == end_of(2014, 7, 1), program
            assert row["due_route_key"] == "users", program
            assert row["route_count"] == 2, program
    routes = runs[0].route_user
    assert routes[("latest_due", "audience:listed", "U01")]["due_at"] == end_of(2014, 6, 1)
    assert routes[("latest_due", "users", "U01")]["due_at"] == end_of(2014, 7, 1)


def test_lowering_a_fixed_date_in_the_yaml_does_not_lower_the_due_date(
    runs: tuple[Snapshot, ...],
) -> None:
    r1, r2, r3 = runs
    assert _user(r1, "never_earlier", "U02")["due_at"] == end_of(2014, 9, 30)
    for snapshot in (r2, r3):
        # the route now says 31 August; the learner keeps 30 September
        route = snapshot.route_user[("never_earlier", "users", "U02")]
        assert route["due_at"] == end_of(2014, 8, 31)
        row = _user(snapshot, "never_earlier", "U02")
        assert row["due_at"] == end_of(2014, 9, 30)
        assert row["due_route_key"] is None  # no current route gives that date
        assert row["exception_type"] is None


# --------------------------------------------------------------------------- course sets


def _done(snapshot: Snapshot, program: str, user: str) -> tuple[str, dt.datetime | None]:
    row = _user(snapshot, program, user)
    return row["status"], row["completed_at"]


def test_some_two_completes_with_any_two_courses(runs: tuple[Snapshot, ...]) -> None:
    r1 = runs[0]
    assert _done(r1, "some_two", "U11") == ("complete", D(2014, 2, 10, 10))  # C1 + C3
    assert _done(r1, "some_two", "U12") == ("complete", D(2014, 2, 5, 10))  # C1 + C2
    assert _done(r1, "some_two", "U13") == ("in_progress", None)  # C3 alone
    assert r1.course_set_user[("some_two", "primary", "set_1", "U13")]["status"] == "in_progress"


def test_some_with_the_minimum_score_not_met_is_not_complete(
    runs: tuple[Snapshot, ...],
) -> None:
    r1 = runs[0]
    assert _done(r1, "some_score", "U11") == ("complete", D(2014, 2, 10, 10))  # 3 + 8 points
    assert _done(r1, "some_score", "U12") == ("in_progress", None)  # two courses, 7 points


def test_some_with_zero_thresholds_behaves_as_optional(runs: tuple[Snapshot, ...]) -> None:
    row = _user(runs[0], "some_zero", "U13")  # no course of the set done
    assert (row["status"], row["completed_at"], row["assigned_at"]) == ("complete", R1, R1)


def test_a_and_b_or_c_completes_with_c_alone(runs: tuple[Snapshot, ...]) -> None:
    r1 = runs[0]
    assert _done(r1, "and_or", "U13") == ("complete", D(2014, 2, 20, 10))  # C alone
    assert _done(r1, "and_or", "U12") == ("complete", D(2014, 2, 5, 10))  # A and B
    assert _done(r1, "and_or", "U11") == ("complete", D(2014, 2, 10, 10))  # A without B; C


def test_then_opens_the_second_group_only_after_the_first(runs: tuple[Snapshot, ...]) -> None:
    r1 = runs[0]
    # U11 did only the second group's course: in progress, still on group 1
    row = _user(r1, "then_order", "U11")
    assert (row["status"], row["current_group_number"]) == ("in_progress", 1)
    assert r1.course_set_user[("then_order", "primary", "set_2", "U11")]["opens_at"] is None
    # U12 did C1 (1 Feb) before C2 (5 Feb), both before the assignment: group 2 opens at the
    # assignment, its earlier completion counts, and the program is complete when group 1 was
    assert _done(r1, "then_order", "U12") == ("complete", D(2014, 2, 5, 10))
    second = r1.course_set_user[("then_order", "primary", "set_2", "U12")]
    assert (second["opens_at"], second["status"]) == (R1, "complete")


def test_optional_or_required_completes_at_assignment(runs: tuple[Snapshot, ...]) -> None:
    assert _done(runs[0], "optional_or_required", "U13") == ("complete", R1)


def test_minimum_time_is_the_sum_of_each_groups_largest_min_time(
    runs: tuple[Snapshot, ...],
) -> None:
    r1 = runs[0]
    program = r1.program["min_time"]  # [5 days or 10 days] then [3 days]
    assert (program["minimum_time_months"], program["minimum_time_seconds"]) == (0, 13 * 86_400)
    short = _user(r1, "min_time", "U11")  # due 12 days 18 hours after R1
    assert (short["status"], short["exception_type"]) == ("exception", "time_allowance")
    enough = _user(r1, "min_time_enough", "U11")  # due 13 days 18 hours after R1
    assert (enough["status"], enough["exception_type"]) == ("in_progress", None)


# --------------------------------------------------------------------------- routes


def test_losing_one_of_two_routes_keeps_the_user_losing_the_last_unassigns(
    runs: tuple[Snapshot, ...],
) -> None:
    r1, r2, r3 = runs
    assert _user(r1, "two_routes", "U03")["route_count"] == 2
    kept = _user(r2, "two_routes", "U03")  # the group route is gone, the users route stays
    assert kept["route_count"] == 1
    assert kept["assigned_at"] == R1
    assert ("two_routes", "group:two_routes.csv", "U03") not in r2.route_user
    # R3: the users route is gone too: unassigned (the completion history stays)
    assert ("two_routes", "U03") not in r3.program_user
    assert not [key for key in r3.route_user if key[0] == "two_routes"]


def test_removing_the_last_route_unassigns_and_re_adding_restores_the_status(
    runs: tuple[Snapshot, ...],
) -> None:
    r1, r2, r3 = runs
    before = _user(r1, "readd", "U04")
    assert before["status"] == "in_progress"  # one of the two courses, before assignment
    assert ("readd", "U04") not in r2.program_user
    assert not [key for key in r2.course_set_user if key[0] == "readd"]
    after = _user(r3, "readd", "U04")
    assert after["status"] == "in_progress"
    assert after["assigned_at"] == R3  # a new assignment
    assert after["completed_at"] is None
    sets = {k: v["status"] for k, v in r3.course_set_user.items() if k[0] == "readd"}
    assert sets == {k: v["status"] for k, v in r1.course_set_user.items() if k[0] == "readd"}


# --------------------------------------------------------------------------- exceptions


def test_a_time_allowance_exception_resolved_in_the_yaml_gets_a_realistic_due_date(
    runs: tuple[Snapshot, ...],
) -> None:
    r1, r2, r3 = runs
    raised = _user(r1, "tight", "U05")
    assert raised["status"] == "exception"
    assert raised["exception_type"] == "time_allowance"
    assert raised["exception_resolution"] is None
    assert raised["exception_raised_at"] == R1
    assert raised["due_at"] == end_of(2014, 3, 5)
    # R2 resolves it: that run's as-of + minimum time (10 days) + 7 days, then fixed
    realistic = R2 + dt.timedelta(days=10 + 7)
    for snapshot in (r2, r3):
        row = _user(snapshot, "tight", "U05")
        assert row["status"] == "not_started"
        assert row["exception_type"] == "time_allowance"
        assert row["exception_resolution"] == "realistic_due_date"
        assert row["due_at"] == realistic
        assert row["is_overdue"] is False


def test_dismiss(runs: tuple[Snapshot, ...]) -> None:
    r1, r2, r3 = runs
    assert _user(r1, "tight", "U06")["status"] == "exception"
    for snapshot in (r2, r3):
        row = _user(snapshot, "tight", "U06")
        assert row["status"] == "dismissed"
        assert row["exception_resolution"] == "dismiss"


def test_first_access_route_is_future_until_the_access_is_known(
    runs: tuple[Snapshot, ...],
) -> None:
    r1, r2, r3 = runs
    waiting = _user(r1, "first_access", "U07")
    assert waiting["status"] == "future"
    assert waiting["due_at"] is None
    assert waiting["exception_type"] is None
    due = D(2014, 4, 8, 10) + dt.timedelta(weeks=2)
    for snapshot in (r2, r3):
        row = _user(snapshot, "first_access", "U07")
        assert row["status"] == "not_started"
        assert row["due_at"] == due
        assert row["exception_type"] is None
        assert row["is_overdue"] is False


# --------------------------------------------------------------------------- certifications


def test_certification_dates_follow_the_expiry_date_method(runs: tuple[Snapshot, ...]) -> None:
    # First certification 3 May 2012 09:00 -> expiry 3 May 2013 09:00, window opens 3 Apr
    # 2013. Recertified inside the window on 15 Apr 2013: the cycle keeps its rhythm, new
    # expiry 3 May 2014, window opens 3 Apr 2014.
    r1, r2, r3 = runs
    expected = {
        "certified_at": D(2013, 4, 15, 10),
        "expires_at": D(2014, 5, 3, 9),
        "window_opens_at": D(2014, 4, 3, 9),
    }
    for snapshot, state in ((r1, "certified"), (r2, "window_open"), (r3, "window_open")):
        row = snapshot.certification_user[("safety_cert", "U08")]
        assert {key: row[key] for key in expected} == expected
        assert row["state"] == state
    assert r1.certification_user[("safety_cert", "U08")]["certification_count"] == 2
    assert _user(r1, "safety_cert", "U08")["status"] == "complete"
    assert _user(r1, "safety_cert", "U08")["completed_at"] == D(2013, 4, 15, 10)
    # window open: the recertification path, nothing done on it since 3 April
    in_window = _user(r2, "safety_cert", "U08")
    assert in_window["status"] == "not_started"
    assert in_window["is_overdue"] is False


def test_a_recertification_after_the_window_opens_counts_when_a_late_run_first_sees_it(
    runs: tuple[Snapshot, ...],
) -> None:
    # R1 (1 Mar) is before the window opens (3 Apr 2014); R2 (10 Apr) is the first run
    # after it and the first whose feed has the 5 Apr (U15) and 1 Apr (U16) completions
    r1, r2, r3 = runs
    for user in ("U15", "U16"):
        row = r1.certification_user[("safety_cert", user)]
        assert (row["state"], row["expires_at"]) == ("certified", D(2014, 5, 3, 9))
    for snapshot in (r2, r3):
        renewed = snapshot.certification_user[("safety_cert", "U15")]
        assert renewed["state"] == "certified"
        assert renewed["certified_at"] == D(2014, 4, 5, 10)
        assert renewed["expires_at"] == D(2015, 5, 3, 9)  # inside the window: old + 1 year
        assert renewed["window_opens_at"] == D(2015, 4, 3, 9)
        assert renewed["certification_count"] == 3
        assert _user(snapshot, "safety_cert", "U15")["status"] == "complete"
        # 1 Apr is before the window opened: it does not count towards recertification
        early = snapshot.certification_user[("safety_cert", "U16")]
        assert early["state"] == "window_open"
        assert early["certified_at"] == D(2013, 4, 15, 10)
        assert early["expires_at"] == D(2014, 5, 3, 9)
        assert early["certification_count"] == 2


def test_the_completion_date_method_expires_a_year_after_the_completion(
    runs: tuple[Snapshot, ...],
) -> None:
    dates = {
        "certified_at": D(2013, 4, 15, 10),
        "expires_at": D(2014, 4, 15, 10),
        "window_opens_at": D(2014, 3, 15, 10),
    }
    for snapshot, state in zip(runs, ("certified", "window_open", "expired"), strict=True):
        row = snapshot.certification_user[("renewal_cert", "U14")]
        assert {key: row[key] for key in dates} == dates
        assert row["state"] == state


# --------------------------------------------------------------------------- broken programs


def test_a_broken_program_keeps_its_assignments_and_the_run_succeeds(
    runs: tuple[Snapshot, ...],
) -> None:
    r1, r2, r3 = runs
    assert r1.program["broken_org"]["is_broken"] is False
    assert r1.run.programs is not None and "broken_org" not in r1.run.programs.newly_broken
    assert r2.run.programs is not None and "broken_org" in r2.run.programs.newly_broken
    assert r3.run.programs is not None and "broken_org" in r3.run.programs.still_broken
    before = {u: _user(r1, "broken_org", u) for u in ("U09", "U10")}
    for row in before.values():
        assert row["assigned_at"] == R1
        assert row["due_at"] == D(2014, 4, 1, 6)
    for snapshot in (r2, r3):
        assert snapshot.run.status == "succeeded"
        program = snapshot.program["broken_org"]
        assert program["is_broken"] is True
        assert program["broken_since_run_id"] == r2.run.run_id
        for user, row in before.items():
            kept = _user(snapshot, "broken_org", user)
            for column in ("assigned_at", "due_at", "exception_type", "status"):
                assert kept[column] == row[column], (user, column)


# --------------------------------------------------------------------------- notifications


def test_every_trigger_is_seen_and_each_event_is_messaged_once(
    runs: tuple[Snapshot, ...],
) -> None:
    final = runs[-1].outbox
    seen = {row["event_type"] for row in final}
    assert seen >= set(TRIGGER_OFFSETS) - {"audience_left"}, set(TRIGGER_OFFSETS) - seen
    # the first run is the go-live: everything it saw is suppressed, nothing is mailed
    first = {row["message_id"] for row in runs[0].outbox}
    assert {row["status"] for row in runs[0].outbox} == {"suppressed"}
    # later runs add messages for new events only; a message, once made, stays
    for before, after in itertools.pairwise(runs):
        kept = {row["message_id"]: row["dedupe_key"] for row in before.outbox}
        now = {row["message_id"]: row["dedupe_key"] for row in after.outbox}
        assert kept.items() <= now.items()
        created = [r for r in after.outbox if r["created_run_id"] == after.run.run_id]
        assert not {r["dedupe_key"] for r in created} & set(kept.values())
    assert len({(r["dedupe_key"], r["recipient_role"]) for r in final}) == len(final)
    assert first <= {row["message_id"] for row in final}


def test_each_certification_cycle_arms_its_own_messages_once(
    runs: tuple[Snapshot, ...],
) -> None:
    outbox = runs[-1].outbox

    def anchors(user: str, cert: str, event: str) -> list[tuple[Any, int, str]]:
        return sorted(
            (r["anchor_at"].replace(tzinfo=None), r["cycle"], r["status"])
            for r in outbox
            if (r["user_id"], r["object_id"], r["event_type"]) == (user, cert, event)
        )

    # U15 recertified on 5 Apr 2014, inside the window: the new cycle's completion is a new
    # anchor (mailed), the one the go-live saw stays suppressed
    assert anchors("U15", "safety_cert", "program_completed") == [
        (D(2013, 4, 15, 10), 0, "suppressed"),
        (D(2014, 4, 5, 10), 0, "sent"),
    ]
    # U14's expiry of 15 Apr 2014 is reminded once, although its window opened (and the
    # current cycle moved on) between the runs that saw it
    assert anchors("U14", "renewal_cert", "certification_expiring") == [
        (D(2014, 4, 15, 10), 1, "suppressed")
    ]


def test_assignment_messages_follow_the_published_states(runs: tuple[Snapshot, ...]) -> None:
    # each later run messages exactly the learners entering a live assignment and the live
    # learners of the run before who are no longer assigned: checked against the published
    # states, not against the SQL that derives the events
    held = {"future", "exception", "dismissed"}
    changes = 0
    for before, after in itertools.pairwise(runs):
        live_before = {key for key, row in before.program_user.items() if row["status"] not in held}
        live_after = {key for key, row in after.program_user.items() if row["status"] not in held}

        def made(event: str, after: Snapshot = after) -> set[tuple[str, str]]:
            return {
                (row["object_id"], row["user_id"])
                for row in after.outbox
                if row["created_run_id"] == after.run.run_id and row["event_type"] == event
            }

        gone = {key for key in live_before if key not in after.program_user}
        assert made("program_unassigned") == gone
        assert made("program_assigned") == live_after - live_before
        changes += len(gone) + len(live_after - live_before)
    assert changes, "the runs should assign and unassign someone"


def test_course_set_events_agree_with_the_course_set_view(runs: tuple[Snapshot, ...]) -> None:
    # the go-live derives every current event: exactly what the view implies; later runs
    # derive their window's (and re-checks), each one the view's
    baseline, *later = runs
    kinds = {event[0] for snapshot in runs for event in snapshot.course_set_events}
    assert kinds == {"courseset_completed", "courseset_due", "courseset_overdue"}, kinds
    assert baseline.course_set_events == baseline.course_set_view_events
    for snapshot in later:
        assert snapshot.course_set_events <= snapshot.course_set_view_events
    # the certifications' rows are among them (their learners' current path)
    assert {"safety_cert", "renewal_cert"} & {event[1] for event in baseline.course_set_events}
