"""`learnops explain USER --program ID / --certification ID` (SPEC §4.2, §4.3, §8).

One small organisation with two programs and a certification is run through the real
pipeline twice per module (1 Jan, then 1 Mar, after P8 moved from Leeds to York and the
onboarding's fixed due date moved earlier, from 30 June to 30 April), so due dates have a
previous run to keep, exceptions a resolution, and the certification a window that opened
and one that expired. Explain must name the route that set the due date, each course set's
status, the certification state and cycles, and agree with fct_program_user everywhere.

    onboarding  A and B (min 5 days), then 2 of C, D, E (`electives`)
                organisation O2 (+children, fixed due), audience leeds_staff (2 months after
                assignment), users P6, P7 (3 weeks after first access), manager P2 (direct)
    compliance  K (min 30 days), users P2, P3, P4 due 10 Jan: time_allowance on 1 Jan;
                P2 open, P3 realistic_due_date, P4 dismiss
    safety      certification, S1 and S2, then recertify with R; active 1 year, window 2
                months; P1 certified 20 Mar 2025 (window open on 1 Mar), P2 certified in
                January 2024 (expired), P3 never
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from flows.cli import main
from flows.explain import (
    ExplainError,
    ProgramExplanation,
    RouteResult,
    explain_program,
    explain_user,
    render_json,
    render_text,
)
from flows.pipeline import RunRequest, parse_as_of, run_pipeline
from flows.warehouse import open_published, warehouse_paths

ORG = """\
    idnumber,fullname,parentidnumber
    O1,Head Office,
    O2,Finance,O1
    O3,Payroll,O2
    O4,Sales,O1
"""
USER_HEADER = "idnumber,username,firstname,lastname,email,city"
USERS = {
    "P1": "P1,ceo,Ada,Boss,p1@example.com,London",
    "P2": "P2,fin,Fin,Lead,p2@example.com,Leeds",
    "P3": "P3,pay,Pat,Pay,p3@example.com,Leeds",
    "P4": "P4,sales,Sal,Seller,p4@example.com,York",
    "P5": "P5,clerk,Sam,Clerk,p5@example.com,Manchester",
    "P6": "P6,new,Nia,New,p6@example.com,Dublin",
    "P7": "P7,rep,Lee,Rep,p7@example.com,Leeds",
    "P8": "P8,mover,Mo,Ver,p8@example.com,Leeds",
}
JOBS = """\
    idnumber,useridnumber,fullname,orgidnumber,manageridnumber,startdate
    J1,P1,Chief Executive,O1,,2020-01-01
    J1,P2,Head of Finance,O2,P1,2021-01-01
    J1,P3,Payroll Officer,O3,P2,2022-01-01
    J1,P4,Sales Lead,O4,P1,2023-01-01
    J1,P5,Payroll Clerk,O3,P3,2024-01-01
    J1,P7,Sales Rep,O4,P4,2024-06-01
    J1,P8,Sales Rep,O4,P4,2024-06-01
"""
COURSES = """\
    idnumber,fullname,score
    A,Welcome,
    B,Policies,
    C,Spreadsheets,
    D,Ledgers,
    E,Payroll basics,
    K,Compliance,
    S1,Fire drill,
    S2,Extinguishers,
    R,Fire refresher,
"""
COMPLETIONS = """\
    useridnumber,courseidnumber,timecompleted
    P3,A,2025-12-01T09:00:00Z
    P3,B,2025-12-05T09:00:00Z
    P3,C,2025-11-01T09:00:00Z
    P3,D,2026-02-10T09:00:00Z
    P5,A,2026-01-10T09:00:00Z
    P1,S1,2025-03-01T09:00:00Z
    P1,S2,2025-03-20T09:00:00Z
    P1,R,2025-12-01T09:00:00Z
    P2,S1,2024-01-10T09:00:00Z
    P2,S2,2024-01-12T09:00:00Z
"""
ACCESS = """\
    useridnumber,firstaccess,lastaccess
    P1,2025-01-01T10:00:00Z,2026-02-01T10:00:00Z
    P7,2026-02-20T10:00:00Z,2026-02-20T10:00:00Z
"""
HR_IMPORT = "defaults:\n  max_removed_fraction: 0.5\n"
AUDIENCES = """\
audiences:
  - id: leeds_staff
    name: Staff in Leeds
    kind: dynamic
    rules: {user_field: city, operator: equals, values: [Leeds]}
"""
PROGRAMS = """\
programs:
  - id: onboarding
    name: Onboarding
    content:
      - {kind: all, courses: [A, B], min_time: {days: 5}}
      - then
      - {id: electives, kind: some, courses: [C, D, E], min_courses: 2}
    assignments:
      - organisation: {ids: [O2], include_children: true}
        due: {date: DUE_DATE}
      - audience: leeds_staff
        due: {after: assignment, months: 2}
      - users: [P6, P7]
        due: {after: first_access, weeks: 3}
      - manager: {user: P2, scope: direct}

  - id: compliance
    name: Compliance refresher
    content:
      - {kind: all, courses: [K], min_time: {days: 30}}
    assignments:
      - users: [P2, P3, P4]
        due: {date: 2026-01-10}
    exceptions:
      default: open
      users: {P3: realistic_due_date, P4: dismiss}
"""
CERTIFICATIONS = """\
certifications:
  - id: safety
    name: Fire safety
    primary:
      - {kind: all, courses: [S1, S2]}
    recertification:
      - {kind: any, courses: [R]}
    active_period: {years: 1}
    window_period: {months: 2}
    assignments:
      - users: [P1, P2, P3]
"""
RUNS = (
    ("2026-01-01T06:00:00Z", "2026-06-30", "Leeds"),
    ("2026-03-01T06:00:00Z", "2026-04-30", "York"),  # P8 moves; the fixed due date moves earlier
)


def _write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return directory


def build_warehouse(base: Path) -> Path:
    """The two runs; returns the published warehouse."""
    path = base / "warehouse.duckdb"
    for number, (as_of, due_date, p8_city) in enumerate(RUNS, start=1):
        users = {**USERS, "P8": USERS["P8"].replace("Leeds", p8_city)}
        feeds = _write(
            base / f"feeds{number}",
            {
                "org.csv": ORG,
                "user.csv": "\n".join([USER_HEADER, *users.values()]) + "\n",
                "jobassignment.csv": JOBS,
                "course.csv": COURSES,
                "course_completion.csv": COMPLETIONS,
                "user_access.csv": ACCESS,
            },
        )
        rules = _write(
            base / f"rules{number}",
            {
                "hr_import.yaml": HR_IMPORT,
                "audiences.yaml": AUDIENCES,
                "programs.yaml": PROGRAMS.replace("DUE_DATE", due_date),
                "certifications.yaml": CERTIFICATIONS,
            },
        )
        request = RunRequest(
            feeds=feeds, rules=rules, warehouse=path, as_of=parse_as_of(as_of, "UTC")
        )
        result = run_pipeline(request)
        assert result.status == "succeeded", result.message
    return path


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_warehouse(tmp_path_factory.mktemp("explain_programs"))


@pytest.fixture
def con(warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    with open_published(warehouse_paths(warehouse)) as connection:
        yield connection


def _text(explanation: ProgramExplanation) -> str:
    return "\n".join(render_text(explanation))


def _route(explanation: ProgramExplanation, key: str) -> RouteResult:
    return next(route for route in explanation.routes if route.route_key == key)


# --- routes and due dates ---------------------------------------------------------------------


def test_names_the_route_that_set_the_due_date(con: duckdb.DuckDBPyConnection) -> None:
    """P7: the audience route gives 1 Mar, the first-access route 13 Mar: the latter wins."""
    result = explain_program(con, "P7", "onboarding")
    assert result.is_assigned and result.due is not None
    assert (result.due.source, result.due.route_key) == ("route", "users")
    assert result.due.due_at == datetime(2026, 3, 13, 10, 0)
    users, audience = _route(result, "users"), _route(result, "audience:leeds_staff")
    assert users.sets_due_date and not audience.sets_due_date
    assert users.due_base_at == datetime(2026, 2, 20, 10, 0)  # P7's first access
    assert audience.due_at == datetime(2026, 3, 1, 6, 0)  # 2 months after the assignment
    assert audience.assigned_at == datetime(2026, 1, 1, 6, 0)
    assert [r.selects for r in result.routes] == [False, True, True, False]
    text = _text(result)
    assert (
        "      assigned 2026-01-01T06:00:00Z; due 3 weeks after first access "
        "(base 2026-02-20T10:00:00Z): 2026-03-13T10:00:00Z  ← sets the learner's due date"
    ) in text
    assert "due date: 2026-03-13T10:00:00Z — the latest of the routes' due dates: users" in text
    assert "✓ audience:leeds_staff  audience leeds_staff — member of leeds_staff since" in text


def test_due_date_never_moves_earlier(con: duckdb.DuckDBPyConnection) -> None:
    """P5: the fixed date moved from 30 June to 30 April; the learner keeps 30 June."""
    result = explain_program(con, "P5", "onboarding")
    assert result.due is not None and result.due.source == "kept"
    assert result.due.route_key is None
    assert result.due.due_at == datetime(2026, 6, 30, 23, 59, 59, 999999)
    assert result.due.latest_route_due_at == datetime(2026, 4, 30, 23, 59, 59, 999999)
    assert result.due.previous_due_at == result.due.due_at
    assert not any(route.sets_due_date for route in result.routes)
    assert (
        "due date: 2026-06-30T23:59:59Z — kept from an earlier run: due dates never move "
        "earlier; the routes now give 2026-04-30T23:59:59Z"
    ) in _text(result)


def test_route_evidence(con: duckdb.DuckDBPyConnection) -> None:
    result = explain_program(con, "P5", "onboarding")
    assert _route(result, "organisation:O2+children").evidence == "jobs in O3 (below O2)"
    manager = _route(result, "manager:P2:direct")
    assert not manager.selects
    assert manager.evidence == "reports to P2 at level 2 (the route takes direct reports only)"
    assert manager.target == "direct reports of P2"
    assert _route(result, "audience:leeds_staff").evidence.startswith("not a member of leeds_staff")
    assert _route(explain_program(con, "P3", "onboarding"), "manager:P2:direct").selects


def test_not_assigned_says_why(con: duckdb.DuckDBPyConnection) -> None:
    result = explain_program(con, "P4", "onboarding")
    assert not result.is_assigned and result.status is None and result.due is None
    assert not any(route.selects for route in result.routes)
    assert result.not_assigned_reasons[0].startswith("no route selects the user")
    org = _route(result, "organisation:O2+children")
    assert org.evidence == "jobs in O4: none in or below [O2]"
    text = _text(result)
    assert "assigned: ✗ not assigned" in text
    assert "✗ audience:leeds_staff  audience leeds_staff — not a member of leeds_staff" in text
    assert "  because no route selects the user" in text
    # P8 left Leeds: assigned on the first run, not any more
    moved = explain_program(con, "P8", "onboarding")
    assert not moved.is_assigned
    assert "assigned on the previous run (status not_started)" in moved.not_assigned_reasons[1]


def test_future_learner(con: duckdb.DuckDBPyConnection) -> None:
    """P6 never logged in: the first-access route waits, status future, no due date."""
    result = explain_program(con, "P6", "onboarding")
    assert result.status == "future"
    assert _route(result, "users").is_future
    assert result.due is not None and result.due.due_at is None and result.due.source == "none"
    text = _text(result)
    assert "future: waits on a first access that never happened" in text
    assert "status: future: every route waits on a first access" in text


# --- course sets and status -------------------------------------------------------------------


def test_complete_program_names_the_group_completed_last(con: duckdb.DuckDBPyConnection) -> None:
    result = explain_program(con, "P3", "onboarding")
    assert result.status == "complete"
    assert result.completed_at == datetime(2026, 2, 10, 9, 0)
    assert [(s.set_id, s.status) for s in result.course_sets] == [
        ("set_1", "complete"),
        ("electives", "complete"),
    ]
    electives = result.course_sets[1]
    assert electives.condition == "at least 2 of 3"
    assert [(c.course_id, c.counted_at) for c in electives.courses] == [
        ("C", datetime(2025, 11, 1, 9, 0)),
        ("D", datetime(2026, 2, 10, 9, 0)),
        ("E", None),
    ]
    assert result.current_group is None
    assert result.due is not None and result.due.source == "complete"
    text = _text(result)
    assert (
        "status: complete at 2026-02-10T09:00:00Z: group 2 of 2 completed last (set electives)"
    ) in text
    assert "  group 1: set_1 — complete 2025-12-05T09:00:00Z" in text
    assert "        D 'Ledgers': completed 2026-02-10T09:00:00Z" in text


def test_course_set_statuses_and_current_group(con: duckdb.DuckDBPyConnection) -> None:
    result = explain_program(con, "P5", "onboarding")
    assert result.status == "in_progress" and result.current_group == 1
    first, electives = result.course_sets
    assert (first.status, first.courses_completed, first.is_current_group) == (
        "in_progress",
        1,
        True,
    )
    assert first.condition == "all of 2, min time 5 days"
    assert first.opens_at == datetime(2026, 1, 1, 6, 0)
    assert first.due_at == datetime(2026, 1, 6, 6, 0) and first.is_overdue
    assert (electives.status, electives.is_current_group, electives.opens_at) == (
        "not_started",
        False,
        None,
    )
    text = _text(result)
    assert "  group 1 (current): set_1 — open since 2026-01-01T06:00:00Z" in text
    assert "  group 2: electives — not open yet" in text
    assert "set due 2026-01-06T06:00:00Z, OVERDUE" in text
    assert "status: in_progress: group 1 of 2 is current, 0 of 2 group(s) complete" in text


# --- exceptions -------------------------------------------------------------------------------


def test_exceptions_open_realistic_and_dismissed(con: duckdb.DuckDBPyConnection) -> None:
    """10 January left 9 days of 30 on 1 January: time_allowance for all three."""
    open_ = explain_program(con, "P2", "compliance")
    assert open_.status == "exception" and open_.exception is not None
    assert open_.exception.exception_type == "time_allowance"
    assert open_.exception.resolution is None
    assert open_.exception.raised_at == datetime(2026, 1, 1, 6, 0)
    text = _text(open_)
    assert "exception: time_allowance raised 2026-01-01T06:00:00Z" in text
    assert "minimum time (30 days)" in text and "gets no mail" in text
    assert "resolution: none yet (exceptions.default is open)" in text

    realistic = explain_program(con, "P3", "compliance")
    assert realistic.exception is not None
    assert realistic.exception.resolution == "realistic_due_date"
    assert realistic.exception.resolved_by == "exceptions.users"
    # as-of of the run that applied it (1 Jan 06:00) + 30 days + 7 days, kept on 1 Mar
    assert realistic.due is not None and realistic.due.due_at == datetime(2026, 2, 7, 6, 0)
    assert realistic.due.source == "kept" and "realistic_due_date" in realistic.due.reason
    assert realistic.status == "not_started" and realistic.is_overdue

    dismissed = explain_program(con, "P4", "compliance")
    assert dismissed.status == "dismissed"
    assert dismissed.exception is not None and dismissed.exception.resolution == "dismiss"
    assert "not treated as assigned" in _text(dismissed)


# --- certifications ---------------------------------------------------------------------------


def test_certification_window_open(con: duckdb.DuckDBPyConnection) -> None:
    """P1 certified on 20 Mar 2025: the window opened on 20 Jan, the earlier R does not count."""
    result = explain_program(con, "P1", "safety", kind="certification")
    c = result.certification
    assert c is not None and c.state == "window_open"
    assert c.certified_at == datetime(2025, 3, 20, 9, 0)
    assert c.window_opens_at == datetime(2026, 1, 20, 9, 0)
    assert c.expires_at == datetime(2026, 3, 20, 9, 0)
    assert (c.current_path, c.current_path_counted_from) == (
        "recertification",
        datetime(2026, 1, 20, 9, 0),
    )
    assert [(y.cycle_number, y.path, y.outcome) for y in c.cycles] == [
        (1, "primary", "certified"),
        (2, "recertification", "open"),
    ]
    (course_set,) = result.course_sets
    assert course_set.path == "recertification"
    (refresher,) = course_set.courses
    assert refresher.counted_at is None and "before this path counts" in refresher.note
    text = _text(result)
    assert "certification: window_open — certified 2025-03-20T09:00:00Z" in text
    assert "current path: recertification, counting completions from 2026-01-20T09:00:00Z" in text
    assert "the window is open: recertify by 2026-03-20T09:00:00Z" in text


def test_certification_expired_and_never_certified(con: duckdb.DuckDBPyConnection) -> None:
    expired = explain_program(con, "P2", "safety", kind="certification")
    c = expired.certification
    assert c is not None and c.state == "expired"
    assert c.expires_at == datetime(2025, 1, 12, 9, 0)
    assert [(y.path, y.outcome) for y in c.cycles] == [
        ("primary", "certified"),
        ("recertification", "expired"),
        ("primary", "open"),
    ]
    assert c.current_path == "primary" and expired.is_overdue
    assert "overdue: the as-of is past the expiry 2025-01-12T09:00:00Z" in expired.status_reason
    never = explain_program(con, "P3", "safety", kind="certification")
    assert never.certification is not None and never.certification.state == "assigned"
    assert "certification: assigned — never certified" in _text(never)


# --- explain agrees with the build ------------------------------------------------------------


def test_every_explanation_agrees_with_the_marts(con: duckdb.DuckDBPyConnection) -> None:
    learners = {
        (p, u): s
        for p, u, s in con.execute(
            "select program_id, user_id, status from fct_program_user"
        ).fetchall()
    }
    routes = set(
        con.execute(
            "select program_id, route_key, user_id from fct_program_assignment_route"
        ).fetchall()
    )
    users = [row[0] for row in con.execute("select user_id from dim_user").fetchall()]
    targets = [("onboarding", "program"), ("compliance", "program"), ("safety", "certification")]
    assert len(users) == 8
    for user in users:
        for program_id, kind in targets:
            result = explain_program(con, user, program_id, kind=kind)
            assert result.is_assigned == ((program_id, user) in learners), (user, program_id)
            assert result.status == learners.get((program_id, user)), (user, program_id)
            assert not result.warnings, (user, program_id, result.warnings)
            for route in result.routes:
                assert route.selects == ((program_id, route.route_key, user) in routes)


# --- overview, errors, CLI --------------------------------------------------------------------


def test_user_overview_lists_programs_and_certifications(con: duckdb.DuckDBPyConnection) -> None:
    overview = explain_user(con, "P3")
    by_id = {line.program_id: line for line in overview.programs}
    assert set(by_id) == {"onboarding", "compliance", "safety"}
    assert (by_id["compliance"].status, by_id["compliance"].is_overdue) == ("not_started", True)
    assert by_id["safety"].state == "assigned"
    lines = render_text(overview)
    compliance = next(line for line in lines if line.startswith("compliance"))
    assert "not_started" in compliance and "due 2026-02-07T06:00:00Z" in compliance
    assert "OVERDUE" in compliance
    assert any(line.startswith("safety") and "(assigned)" in line for line in lines)
    assert "assigned to no program or certification" in render_text(explain_user(con, "P8"))


def test_unknown_program_and_wrong_kind(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(ExplainError, match=r"no program 'onbording'.*did you mean 'onboarding'"):
        explain_program(con, "P3", "onbording")
    with pytest.raises(ExplainError, match=r"'safety' is a certification.*--certification safety"):
        explain_program(con, "P3", "safety")
    with pytest.raises(ExplainError, match=r"no user 'P33'"):
        explain_program(con, "P33", "onboarding")


def test_cli_text_json_and_errors(warehouse: Path) -> None:
    runner = CliRunner()
    base = ["explain", "--warehouse", str(warehouse)]
    text = runner.invoke(main, [*base, "P7", "--program", "onboarding"])
    assert text.exit_code == 0, text.output
    assert "← sets the learner's due date" in text.output
    started = time.perf_counter()
    as_json = runner.invoke(main, [*base, "P1", "--certification", "safety", "--json"])
    elapsed = time.perf_counter() - started
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert data["certification"]["state"] == "window_open"
    assert data["certification"]["expires_at"] == "2026-03-20T09:00:00Z"
    assert [s["status"] for s in data["course_sets"]] == ["not_started"]
    assert data["routes"][0]["route_key"] == "users"
    both = runner.invoke(main, [*base, "P1", "--program", "onboarding", "--audience", "x"])
    assert both.exit_code == 2 and len(both.output.strip().splitlines()) == 1
    unknown = runner.invoke(main, [*base, "P1", "--certification", "safty"])
    assert unknown.exit_code == 1
    assert unknown.output.strip() == (
        "learnops: error: no certification 'safty' in the published warehouse; "
        "did you mean 'safety'?"
    )
    overview = runner.invoke(main, [*base, "P3", "--json"])
    assert {p["program_id"] for p in json.loads(overview.output)["programs"]} == {
        "onboarding",
        "compliance",
        "safety",
    }
    print(f"explain --certification --json in process: {elapsed:.3f} s")


def test_render_json_round_trips(con: duckdb.DuckDBPyConnection) -> None:
    data = json.loads(render_json(explain_program(con, "P3", "onboarding")))
    assert data["status"] == "complete" and data["completed_at"] == "2026-02-10T09:00:00Z"
    assert [r["selects"] for r in data["routes"]] == [True, True, False, True]
    assert data["due"]["source"] == "complete"
