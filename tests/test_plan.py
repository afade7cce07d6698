"""`learnops plan`: its counts equal what the following real run records, for a matrix of
changes; it leaves the published warehouse byte for byte unchanged and sends nothing.

The published state: two runs (1 and 10 March 2026) of a small organisation (OA with the
child OB; U1-U4 work in OB, U5-U7 in OA, M1 manages everyone).

    p1  route organisation OB, due 31 March            -> U1, U2, U3, U4
    p2  routes users [U5, U6] and audience drill_team (U5) -> U5 (twice), U6
    notifications: assigned (learner, managers); due 7 days before (p1, learner)

Each change is planned on a copy of that state, then run for real on the same copy:

    audience_route   p1 gains the route audience newcomers (U1, U5, U6): U1 is in OB
                     already, so only U5 and U6 are new
    removed_route    p2 loses users [U5, U6]: U6 goes, U5 stays (the other route)
    offset           the due reminder moves to 21 days before: it fires now for U1-U3 (U4
                     is suspended)
    guard            the user feed shrinks to three people: the removal guard trips
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from flows.hr_import.importer import RemovalGuardError
from flows.pipeline import RunRequest, parse_as_of, run_pipeline
from flows.plan import Plan, plan_run, render_text
from tests.notifications.test_outbox import COURSE_CSV, USER_CSV, write_templates

ORG_CSV = "idnumber,fullname,parentidnumber\nOA,Head Office,\nOB,Branch,OA\n"
JOB_CSV = (
    "idnumber,useridnumber,fullname,orgidnumber,manageridnumber,managerjobassignmentidnumber\n"
)
JOB_CSV += "J1,M1,Head,OA,,\nJ1,M2,Deputy,OA,,\n" + "".join(
    f"J1,U{n},Clerk,{'OB' if n <= 4 else 'OA'},M1,J1\n" for n in range(1, 8)
)
AS_OF = ("2026-03-01T06:00:00Z", "2026-03-10T06:00:00Z")
NEXT = "2026-03-11T06:00:00Z"


@dataclass(frozen=True)
class Change:
    p1_routes: str = "      - organisation: {ids: [OB]}\n        due: {date: 2026-03-31}\n"
    p2_routes: str = (
        "      - users: [U5, U6]\n        due: {date: 2026-06-30}\n"
        "      - audience: drill_team\n        due: {date: 2026-06-30}\n"
    )
    due_days: int = 7
    users_csv: str = USER_CSV


CHANGES = {
    "audience_route": Change(
        p1_routes=Change.p1_routes
        + "      - audience: newcomers\n        due: {date: 2026-03-31}\n"
    ),
    "removed_route": Change(
        p2_routes="      - audience: drill_team\n        due: {date: 2026-06-30}\n"
    ),
    "offset": Change(due_days=21),
    "guard": Change(users_csv="\n".join(USER_CSV.splitlines()[:4]) + "\n"),
}


def rules_files(change: Change) -> dict[str, str]:
    return {
        "hr_import.yaml": "defaults:\n  max_removed_fraction: 0.5\n",
        "audiences.yaml": (
            "audiences:\n  - id: newcomers\n    name: Newcomers\n    kind: static\n"
            "    members: [U1, U5, U6]\n"
            "  - id: drill_team\n    name: Drill team\n    kind: static\n    members: [U5]\n"
        ),
        "programs.yaml": (
            "programs:\n"
            "  - id: p1\n    name: Safety\n    content:\n      - {kind: all, courses: [A]}\n"
            f"    assignments:\n{change.p1_routes}"
            "  - id: p2\n    name: Drill\n    content:\n      - {kind: all, courses: [B]}\n"
            f"    assignments:\n{change.p2_routes}"
        ),
        "notifications.yaml": (
            "settings:\n  sender: {address: learning@example.com}\n"
            "notifications:\n"
            "  - {id: assigned, trigger: program_assigned, scope: all, "
            "recipients: [learner, managers], template: assigned}\n"
            f"  - {{id: due, trigger: program_due, offset: {{days: {change.due_days}}}, "
            "scope: {programs: [p1]}, recipients: [learner], template: due}\n"
        ),
    }


def feed_files(change: Change) -> dict[str, str]:
    return {
        "org.csv": ORG_CSV,
        "user.csv": change.users_csv,
        "jobassignment.csv": JOB_CSV,
        "course.csv": COURSE_CSV,
    }


def _write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def request_for(base: Path, warehouse: Path, change: Change, as_of: str) -> RunRequest:
    return RunRequest(
        feeds=_write(base / "feeds", feed_files(change)),
        rules=_write(base / "rules", rules_files(change)),
        warehouse=warehouse,
        as_of=parse_as_of(as_of, "UTC"),
        templates_dir=base / "templates",
        send=False,
    )


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The state every change starts from: a directory holding warehouse.duckdb and its
    state directory after the two runs."""
    base = tmp_path_factory.mktemp("plan_base")
    write_templates(base / "templates")
    for as_of in AS_OF:
        result = run_pipeline(request_for(base, base / "warehouse.duckdb", Change(), as_of))
        assert result.status == "succeeded", result.message
    return base


def copy_state(published: Path, target: Path) -> Path:
    shutil.copytree(published, target)
    return target / "warehouse.duckdb"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def program_users(warehouse: Path) -> set[tuple[str, str]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return set(con.execute("select program_id, user_id from fct_program_user").fetchall())


def counts(plan: Plan, section: str) -> dict[str, int]:
    return {line.what: line.count for line in getattr(plan, section)}


def truth(warehouse: Path, run_id: str, before: set[tuple[str, str]]) -> dict[str, Any]:
    """What the real run recorded, counted straight from its tables."""
    after = program_users(warehouse)
    programs: dict[str, int] = {}
    for change, pairs in (("assigned", after - before), ("unassigned", before - after)):
        for program_id, _ in pairs:
            programs[f"{program_id} {change}"] = programs.get(f"{program_id} {change}", 0) + 1
    with duckdb.connect(str(warehouse), read_only=True) as con:
        audiences = dict(
            con.execute(
                "select audience_id || ' ' || event, count(*) from fct_audience_membership_event "
                "where run_id = ? group by all",
                [run_id],
            ).fetchall()
        )
        messages = dict(
            con.execute(
                "select notification_id || ' ' || replace(status, 'pending', 'would be sent'), "
                "count(*) from notification_outbox where created_run_id = ? group by all",
                [run_id],
            ).fetchall()
        )
    return {"audiences": audiences, "programs": programs, "notifications": messages}


PlanAndRun = Callable[[str], tuple[Plan, Any]]


@pytest.fixture(scope="module")
def plan_then_run(published: Path, tmp_path_factory: pytest.TempPathFactory) -> PlanAndRun:
    """Plan each change, then run it, once per module (several tests read each case)."""
    done: dict[str, tuple[Plan, Any]] = {}

    def go(name: str) -> tuple[Plan, Any]:
        if name not in done:
            done[name] = _plan_then_run(published, tmp_path_factory.mktemp(name), name)
        return done[name]

    return go


def _plan_then_run(published: Path, base: Path, name: str) -> tuple[Plan, Any]:
    warehouse = copy_state(published, base / "state")
    request = request_for(warehouse.parent, warehouse, CHANGES[name], NEXT)
    state_before = digest(warehouse)
    files_before = sorted(p.name for p in warehouse.parent.rglob("*"))
    plan = plan_run(request, details=10)
    assert digest(warehouse) == state_before, "plan changed the published warehouse"
    assert sorted(p.name for p in warehouse.parent.rglob("*")) == files_before
    before = program_users(warehouse)
    try:
        result = run_pipeline(request)
    except RemovalGuardError as error:
        return plan, error
    return plan, truth(warehouse, result.run_id, before)


@pytest.mark.parametrize("name", ["audience_route", "removed_route", "offset"])
def test_plan_counts_equal_what_the_run_then_records(plan_then_run: PlanAndRun, name: str) -> None:
    plan, recorded = plan_then_run(name)
    assert plan.status == "would_succeed"
    for section in ("audiences", "programs", "notifications"):
        assert counts(plan, section) == recorded[section], section


def test_an_audience_route_counts_only_learners_not_assigned_already(
    plan_then_run: PlanAndRun,
) -> None:
    plan, _ = plan_then_run("audience_route")
    lines = {line.what: line for line in plan.programs}
    assert lines["p1 assigned"].examples == ["U5", "U6"]  # U1 is in OB already
    # M1's copies about U5 and U6; U5 has no address, U6 has emailstop
    assert counts(plan, "notifications") == {"assigned would be sent": 2, "assigned no_address": 1}


def test_removing_one_of_two_routes_unassigns_only_who_has_no_other(
    plan_then_run: PlanAndRun,
) -> None:
    plan, _ = plan_then_run("removed_route")
    assert {line.what: line.examples for line in plan.programs} == {"p2 unassigned": ["U6"]}


def test_a_longer_offset_shows_the_reminders_it_would_send(plan_then_run: PlanAndRun) -> None:
    plan, _ = plan_then_run("offset")
    assert counts(plan, "notifications") == {"due would be sent": 3}  # U4 is suspended
    assert counts(plan, "programs") == {}


def test_a_feed_past_the_removal_guard_is_reported_and_the_run_then_fails(
    plan_then_run: PlanAndRun,
) -> None:
    plan, outcome = plan_then_run("guard")
    assert plan.status == "would_fail"
    assert plan.removal_guard == ["user"]
    assert isinstance(outcome, RemovalGuardError)
    text = "\n".join(render_text(plan))
    assert "removal guard would trip: user" in text
    assert counts(plan, "imports")["user removed"] == 6
