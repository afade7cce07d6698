"""A simulated year: 52 weekly runs give the state one run at the end gives (slow, 7-11 min).

For routes whose due dates do not depend on run history (fixed dates, dates relative to a
course completion, the job start or the first access), the status is a function of the
completion history as of the run. So running every week through a year, with completions
(and one first access) appearing as the year goes on, must end where one run on the last
as-of, on an empty warehouse, starts: the same `fct_program_user` statuses, due dates and
completions, and the same `fct_certification_user` states and dates, except the columns
derived from the assignment instant (which is the first run that selected the learner).

The data are chosen so that no exception depends on when it was checked (exceptions are
checked only on a new assignment or a later due date, so a date that passes during the year
would raise time_allowance in the single run only): every relative base a learner will ever
have exists before the first run (or never does), and every due date of a learner not
complete by the end is after the year, except one fixed date already past at the first run
(p_overdue). A past due date is less than the minimum time (0) away, so both histories raise
time_allowance for it at the learner's first assignment; the default `assign` keeps the date
and the learner is assigned and overdue in both.

Organisation: S1-S3 in O2 (below O1), S4-S6 in O1; S1 and S2 hold position PX. S4 never
logs in; S6 logs in for the first time in week 20.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from flows.pipeline import RunRequest, run_pipeline

WEEKS = 52
FIRST = dt.datetime(2025, 1, 6, 6)  # a Monday; run k is FIRST + 7 (k - 1) days


def as_of(week: int) -> dt.datetime:
    return FIRST + dt.timedelta(days=7 * (week - 1))


def during(week: int) -> dt.datetime:
    """An instant between run week-1 and run week (visible from run `week` on)."""
    return as_of(week) - dt.timedelta(days=3, hours=-4)


#: columns set from the assignment instant (the first run that selected the learner)
ASSIGNMENT_DERIVED = {
    "fct_program_user": {"assigned_at", "exception_raised_at"},
    "fct_certification_user": {"current_path_opened_at"},
}

ORG_CSV = "idnumber,fullname,parentidnumber\nO1,Company,\nO2,Branch,O1\n"
POS_CSV = "idnumber,fullname\nPX,Analyst\nPY,Clerk\n"
USER_CSV = "idnumber,username,firstname,lastname,email\n" + "".join(
    f"S{n},s{n},Sam,Number{n},s{n}@example.com\n" for n in range(1, 7)
)
JOB_CSV = """\
idnumber,useridnumber,fullname,orgidnumber,posidnumber,startdate
J1,S1,Analyst,O2,PX,2024-09-01
J1,S2,Analyst,O2,PX,2024-10-15
J1,S3,Clerk,O2,PY,2023-05-01
J1,S4,Clerk,O1,PY,2023-06-01
J1,S5,Clerk,O1,PY,2023-07-01
J1,S6,Clerk,O1,PY,2023-08-01
"""
COURSE_CSV = "idnumber,fullname\n" + "".join(f"{c},Course {c}\n" for c in "ABCDEFGHIJK")

D = dt.datetime
COMPLETIONS: list[tuple[str, str, dt.datetime]] = [
    # history before the year: the course_completion bases of P_course (S3, S4 have none)
    ("S1", "A", D(2024, 6, 1, 10)),
    ("S2", "A", D(2024, 7, 1, 10)),
    ("S5", "A", D(2024, 8, 1, 10)),
    ("S6", "A", D(2024, 9, 1, 10)),
    # S1: A again (moves the base later), B (P_fixed complete), C (P_course in progress),
    # F (P_job complete); G three times (cert_exp: recertified in each window); K (fixed)
    ("S1", "A", during(5)),
    ("S1", "B", during(20)),
    ("S1", "C", during(10)),
    ("S1", "F", during(25)),
    ("S1", "G", during(2)),
    ("S1", "G", during(17)),
    ("S1", "G", during(33)),
    ("S1", "K", during(4)),
    ("S1", "K", during(15)),
    ("S1", "K", during(28)),
    # S2: A again, then P_course complete (D, E); G once (cert_exp expires); H then I in the
    # window (cert_cd recertified)
    ("S2", "A", during(8)),
    ("S2", "D", during(30)),
    ("S2", "E", during(35)),
    ("S2", "G", during(3)),
    ("S2", "H", during(10)),
    ("S2", "I", during(34)),
    # S3: G late in the year (certified); K once (cert_fixed)
    ("S3", "G", during(48)),
    ("S3", "K", during(6)),
    # S5: C (P_course in progress), J (P_access complete)
    ("S5", "C", during(12)),
    ("S5", "J", during(15)),
    # S6: I early (cert_cd expires), H after the expiry (certified again); J (P_access)
    ("S6", "I", during(2)),
    ("S6", "H", during(45)),
    ("S6", "J", during(40)),
]
ACCESS: list[tuple[str, dt.datetime]] = [
    ("S1", D(2024, 2, 1, 9)),
    ("S2", D(2024, 3, 1, 9)),
    ("S3", D(2024, 4, 1, 9)),
    ("S5", D(2024, 6, 10, 9)),
    ("S6", during(20)),
]

PROGRAMS_YAML = """\
programs:
  - id: p_fixed
    name: Fixed date after the year
    content:
      - {kind: all, courses: [A, B]}
    assignments:
      - users: [S1, S2, S3]
        due: {date: 2026-03-31}
  - id: p_course
    name: Eighteen months after the latest A
    content:
      - {kind: any, courses: [C, D]}
      - then
      - {kind: all, courses: [E]}
    assignments:
      - organisation: {ids: [O1], include_children: true}
        due: {after: course_completion, course: A, months: 18}
  - id: p_job
    name: Eighteen months after the job start
    content:
      - {kind: all, courses: [F]}
    assignments:
      - position: {ids: [PX]}
        due: {after: job_start, months: 18}
  - id: p_access
    name: A year after the first access
    content:
      - {kind: all, courses: [J]}
    assignments:
      - users: [S4, S5, S6]
        due: {after: first_access, years: 1}
  - id: p_overdue
    name: Fixed date before the year
    content:
      - {kind: all, courses: [B]}
    assignments:
      - users: [S3]
        due: {date: 2024-12-31}
    exceptions:
      default: assign
"""

CERTIFICATIONS_YAML = """\
certifications:
  - id: cert_exp
    name: Expiry date method
    primary:
      - {kind: all, courses: [G]}
    active_period: {months: 4}
    window_period: {months: 1}
    expiry_method: expiry_date
    assignments:
      - users: [S1, S2, S3, S5]
  - id: cert_cd
    name: Completion date method
    primary:
      - {kind: any, courses: [H, I]}
    recertification:
      - {kind: all, courses: [I]}
    active_period: {months: 6}
    window_period: {weeks: 6}
    expiry_method: completion_date
    assignments:
      - users: [S2, S4, S6]
  - id: cert_fixed
    name: Fixed method
    primary:
      - {kind: all, courses: [K]}
    active_period: {months: 3}
    window_period: {weeks: 2}
    expiry_method: fixed
    min_active_period: {weeks: 4}
    assignments:
      - users: [S1, S3]
"""


def _stamp(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def feeds(directory: Path, week: int) -> Path:
    """The feeds of run `week`: completions and accesses known by then, cumulatively."""
    cut = as_of(week)
    completions = "useridnumber,courseidnumber,timecompleted\n" + "".join(
        f"{user},{course},{_stamp(when)}\n"
        for user, course, when in sorted(COMPLETIONS, key=lambda row: row[2])
        if when < cut
    )
    access = "useridnumber,firstaccess,lastaccess\n" + "".join(
        f"{user},{_stamp(when)},{_stamp(when)}\n" for user, when in ACCESS if when < cut
    )
    files = {
        "org.csv": ORG_CSV,
        "pos.csv": POS_CSV,
        "user.csv": USER_CSV,
        "jobassignment.csv": JOB_CSV,
        "course.csv": COURSE_CSV,
        "course_completion.csv": completions,
        "user_access.csv": access,
    }
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def rules(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "hr_import.yaml").write_text("defaults:\n  max_removed_fraction: 0.5\n")
    (directory / "programs.yaml").write_text(PROGRAMS_YAML)
    (directory / "certifications.yaml").write_text(CERTIFICATIONS_YAML)
    return directory


def run(feeds_dir: Path, rules_dir: Path, warehouse: Path, week: int) -> None:
    result = run_pipeline(
        RunRequest(feeds=feeds_dir, rules=rules_dir, warehouse=warehouse, as_of=as_of(week))
    )
    assert result.status == "succeeded", f"week {week}: {result.message}"


def state(warehouse: Path) -> dict[str, dict[tuple[str, str], dict[str, Any]]]:
    """Each compared table: (program or certification, user) -> row, minus the columns
    derived from the assignment instant."""
    out = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for table, key in (
            ("fct_program_user", "program_id"),
            ("fct_certification_user", "certification_id"),
        ):
            cursor = con.execute(f"select * from {table}")  # noqa: S608 - fixed names
            names = [column[0] for column in cursor.description]
            rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
            out[table] = {
                (row[key], row["user_id"]): {
                    k: v for k, v in row.items() if k not in ASSIGNMENT_DERIVED[table]
                }
                for row in rows
            }
    return out


@pytest.mark.slow
def test_weekly_runs_through_a_year_end_where_one_run_at_the_end_starts(
    tmp_path: Path,
) -> None:
    started = time.perf_counter()
    rules_dir = rules(tmp_path / "rules")
    weekly = tmp_path / "weekly.duckdb"
    for week in range(1, WEEKS + 1):
        run(feeds(tmp_path / f"feeds{week:02d}", week), rules_dir, weekly, week)
        if week == 1:
            first_week = state(weekly)
    once = tmp_path / "once.duckdb"
    run(tmp_path / f"feeds{WEEKS:02d}", rules_dir, once, WEEKS)

    by_week, at_once = state(weekly), state(once)
    for table in ASSIGNMENT_DERIVED:
        assert by_week[table].keys() == at_once[table].keys(), table
        differences = {
            key: {
                column: (value, at_once[table][key][column])
                for column, value in row.items()
                if value != at_once[table][key][column]
            }
            for key, row in by_week[table].items()
            if row != at_once[table][key]
        }
        assert not differences, f"{table}: (weekly, once) per row: {differences}"

    # the year is not trivial: every status and state the data aim at is there
    statuses = {row["status"] for row in at_once["fct_program_user"].values()}
    assert {"complete", "in_progress", "not_started", "exception", "future"} <= statuses
    states = {row["state"] for row in at_once["fct_certification_user"].values()}
    assert {"assigned", "certified", "window_open", "expired"} <= states
    overdue = {key for key, row in at_once["fct_program_user"].items() if row["is_overdue"]}
    assert ("p_overdue", "S3") in overdue
    past = at_once["fct_program_user"][("p_overdue", "S3")]
    assert (past["exception_type"], past["exception_resolution"], past["status"]) == (
        "time_allowance",
        "assign",
        "not_started",
    )
    # and the year did move: statuses and states changed between week 1 and week 52
    for table, column in (("fct_program_user", "status"), ("fct_certification_user", "state")):
        changed = {
            key
            for key, row in at_once[table].items()
            if key in first_week[table] and first_week[table][key][column] != row[column]
        }
        assert len(changed) >= 3, (table, changed)
    print(
        f"simulated year: {WEEKS} weekly runs and one more in {time.perf_counter() - started:.0f} s"
    )
