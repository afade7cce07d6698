"""rules/programs.yaml and rules/certifications.yaml: models, meaning, rule tables, wiring."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from flows.pipeline import RunRequest, RunResult, rules_stage
from flows.rules.loader import RulesError
from flows.rules.program_tables import (
    ProgramsLoadSummary,
    build_program_tables,
    load_program_tables,
    snapshot_previous_program_state,
)
from flows.rules.programs import (
    UNITS,
    Period,
    Route,
    Span,
    content_layout,
    load_certifications,
    load_programs,
    longest,
)
from flows.rules.schema import SCHEMAS
from flows.rules.tables import RunClock
from flows.rules.validation import RULES_FILES, check_references, validate_rules
from flows.state_schema import ensure_state_schema
from flows.summary import summary_lines
from flows.warehouse import prepare_building_copy, table_exists, warehouse_paths

from ..conftest import REPO_ROOT

INVALID = Path(__file__).parent / "invalid_programs"
EXPECT = "# expect: "
FILE = "# file: "
AS_OF = datetime(2026, 3, 30, 9, 0)  # naive UTC; London is on summer time (BST) since 29 Mar
LONDON = RunClock(AS_OF, "Europe/London")

#: what every fixture's rules directory holds besides the file under test
SUPPORT = {
    "audiences.yaml": (
        "audiences:\n"
        "  - {id: new_starters, name: New starters, kind: static, members: [U0000001]}\n"
    ),
    "hr_import.yaml": (
        "elements:\n  user:\n    custom_fields:\n"
        "      hiredate: {type: date}\n      grade: {type: text}\n"
    ),
    "bad_header.csv": "idnumber\nU0000001\n",
}
#: the certification the invalid fixtures may name
FIXTURE_CERTIFICATIONS = (
    "certifications:\n  - {id: fire_safety, name: Fire safety, primary: [{kind: optional}],\n"
    "     active_period: {years: 1}, window_period: {months: 1}}\n"
)

# the example of docs/programs.md, "Format"
DOCUMENTED_PROGRAMS = """\
# yaml-language-server: $schema=./programs.schema.json
programs:
  - id: induction
    name: Company induction
    description: optional text
    content:
      - {kind: all, courses: [C0001, C0002, C0003], min_time: {days: 5}}
      - then
      - {id: electives, kind: some, courses: [C0004, C0005, C0006], min_courses: 2, min_score: 10}
      - or
      - {kind: optional, courses: [C0007]}
    assignments:
      - audience: new_starters
        due: {after: assignment, days: 30}
      - organisation: {ids: [ORG00002], include_children: true}
        due: {date: 2026-06-30}
      - position: {ids: [POS0003]}
      - manager: {user: U0000001, job: J1, scope: direct}
      - users: [U0000005, U0000006]
        due: {after: first_access, weeks: 2}
      - group: induction_group.csv
        due: {after: course_completion, course: C0009, months: 1}
    exceptions:
      default: open
      users: {U0000007: realistic_due_date, U0000008: dismiss}
"""
DOCUMENTED_CERTIFICATIONS = """\
# yaml-language-server: $schema=./certifications.schema.json
certifications:
  - id: fire_safety
    name: Fire safety
    primary:
      - {kind: all, courses: [C0010, C0011]}
    recertification:
      - {kind: any, courses: [C0012]}
    active_period: {years: 1}
    window_period: {months: 1}
    expiry_method: fixed
    min_active_period: {months: 6}
    assignments:
      - audience: new_starters
    exceptions: {default: assign}
"""


def _rules(
    tmp_path: Path,
    programs: str | None = None,
    certifications: str | None = None,
    audiences: str | None = None,
) -> Path:
    """A rules directory: the support files, then the given files instead of theirs."""
    for name, text in SUPPORT.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "induction_group.csv").write_text(
        "useridnumber,note\nU0000009,first\n\nU0000010,after a blank line\nU0000009,again\n",
        encoding="utf-8",
    )
    for name, text in (
        ("programs.yaml", programs),
        ("certifications.yaml", certifications),
        ("audiences.yaml", audiences),
    ):
        if text is not None:
            (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def _program(content: str, extra: str = "") -> str:
    """programs.yaml with one program `p` of the given content (YAML flow list items)."""
    return f"programs:\n  - id: p\n    name: P\n    content:\n{content}{extra}"


def _issues(err: pytest.ExceptionInfo[RulesError], tmp_path: Path) -> list[str]:
    return [str(issue).removeprefix(f"{tmp_path}/") for issue in err.value.issues]


# --- invalid files: every message, exactly -------------------------------------------------


@pytest.mark.parametrize("fixture", sorted(INVALID.glob("*.yaml")), ids=lambda p: p.stem)
def test_invalid_file_gives_every_expected_message(fixture: Path, tmp_path: Path) -> None:
    lines = fixture.read_text(encoding="utf-8").splitlines()
    expected = [line.removeprefix(EXPECT) for line in lines if line.startswith(EXPECT)]
    target = lines[0].removeprefix(FILE) if lines[0].startswith(FILE) else "programs.yaml"
    _rules(tmp_path, certifications=FIXTURE_CERTIFICATIONS)
    shutil.copy(fixture, tmp_path / target)
    with pytest.raises(RulesError) as err:
        validate_rules(tmp_path)
    assert _issues(err, tmp_path) == expected


# --- the models -----------------------------------------------------------------------------


def test_the_documented_example_parses(tmp_path: Path) -> None:
    _rules(tmp_path, DOCUMENTED_PROGRAMS, DOCUMENTED_CERTIFICATIONS)
    loaded = validate_rules(tmp_path)
    [induction] = loaded.programs.programs
    assert [route.key for route in induction.assignments] == [
        "audience:new_starters",
        "organisation:ORG00002+children",
        "position:POS0003",
        "manager:U0000001/J1:direct",
        "users",
        "group:induction_group.csv",
    ]
    assert [
        (p.set_id, p.group_number, p.run_number) for p in content_layout(induction.content)
    ] == [
        ("set_1", 1, 1),
        ("electives", 2, 1),
        ("set_3", 2, 2),
    ]
    assert induction.exceptions.users == {"U0000007": "realistic_due_date", "U0000008": "dismiss"}
    [fire] = loaded.certifications.certifications
    assert (fire.expiry_method, str(fire.min_active_period)) == ("fixed", "6 months")
    assert loaded.group_members[("induction", "induction_group.csv")] == (
        "U0000009",
        "U0000010",
        "U0000009",
    )
    assert loaded.program_lines == {"induction": 3, "fire_safety": 3}
    assert RULES_FILES[-2:] == ("programs.yaml", "certifications.yaml")


def test_missing_files_mean_no_programs_and_no_certifications(tmp_path: Path) -> None:
    assert load_programs(tmp_path).programs == []
    assert load_certifications(tmp_path).certifications == []
    loaded = validate_rules(tmp_path)
    assert (loaded.programs.programs, loaded.certifications.certifications) == ([], [])
    assert loaded.program_references == ()


def _sets_of(sets: list[dict[str, Any]], program: str) -> list[tuple[int, int, str, int, int]]:
    """A primary path as (group, run, kind, min_courses, number of courses) per set."""
    return [
        (s["group_number"], s["run_number"], s["kind"], s["min_courses"], s["course_count"])
        for s in sorted(sets, key=lambda s: s["set_position"])
        if s["program_id"] == program and s["path"] == "primary"
    ]


def test_the_demo_rules_use_every_program_and_certification_feature() -> None:
    """rules/programs.yaml and certifications.yaml (the demo's): every feature of SPEC 4.2 and
    4.3 is used at least once, and Totara's three examples are there as the issue words them."""
    loaded = validate_rules(REPO_ROOT / "rules")
    tables = build_program_tables(loaded, LONDON)
    sets, routes, programs = tables.course_sets, tables.routes, tables.programs
    # course sets: every kind, `some` by count, by score and by both, a time allowance
    assert {(s["kind"], s["min_courses"] > 0, s["min_score"] > 0) for s in sets} >= {
        ("all", False, False),
        ("any", False, False),
        ("optional", False, False),
        ("some", True, False),
        ("some", False, True),
        ("some", True, True),
    }
    assert any(s["min_time_seconds"] or s["min_time_months"] for s in sets)
    # `then` (a second group), `or` (a second run in a group), `and` (two sets in a run), and
    # `A and B or C` (both in one group)
    runs = Counter((s["program_id"], s["path"], s["group_number"], s["run_number"]) for s in sets)
    groups: dict[tuple[str, str, int], list[int]] = {}
    for (program, path, group, _), size in runs.items():
        groups.setdefault((program, path, group), []).append(size)
    assert any(group > 1 for _, _, group in groups)
    assert any(len(sizes) > 1 and max(sizes) > 1 for sizes in groups.values())
    # routes: every kind, with and without children, managers direct / all below, with and
    # without a job
    assert {
        (
            r["route_kind"],
            r["include_children"],
            r["manager_scope"],
            r["manager_job_id"] is not None,
        )
        for r in routes
    } >= {
        ("organisation", True, None, False),
        ("organisation", False, None, False),
        ("position", True, None, False),
        ("position", False, None, False),
        ("audience", False, None, False),
        ("users", False, None, False),
        ("group", False, None, False),
        ("manager", False, "direct", True),
        ("manager", False, "direct", False),
        ("manager", False, "all_below", True),
        ("manager", False, "all_below", False),
    }
    # due dates: none, fixed, every relative base; hours as well as days and months
    assert {r["due_kind"] for r in routes} == {"none", "fixed", "relative"}
    assert {r["due_base"] for r in routes if r["due_kind"] == "relative"} == {
        "first_access",
        "assignment",
        "job_start",
        "position_assigned",
        "course_completion",
        "program_completion",
        "custom_field",
    }
    dues = [
        route.due
        for item in (*loaded.programs.programs, *loaded.certifications.certifications)
        for route in item.assignments
        if route.due is not None
    ]
    assert {unit for due in dues for unit in UNITS if getattr(due, unit) is not None} == set(UNITS)
    # exceptions: every default and every per-user resolution
    assert {p["exception_default"] for p in programs} == {
        "open",
        "assign",
        "realistic_due_date",
        "dismiss",
    }
    assert {r["resolution"] for r in tables.exception_resolutions} == {
        "assign",
        "realistic_due_date",
        "dismiss",
    }
    # certifications: the three expiry methods, the fixed one's minimum active period, and a
    # recertification path of its own
    certifications = [p for p in programs if p["kind"] == "certification"]
    assert {c["expiry_method"] for c in certifications} == {
        "expiry_date",
        "completion_date",
        "fixed",
    }
    assert any(
        c["min_active_period_months"] or c["min_active_period_seconds"] for c in certifications
    )
    courses: dict[tuple[str, str], set[str]] = {}
    for row in tables.set_courses:
        courses.setdefault((row["program_id"], row["path"]), set()).add(row["course_id"])
    assert any(
        courses.get((c["program_id"], "recertification"), set())
        != courses[(c["program_id"], "primary")]
        for c in certifications
    )
    # Totara's examples: "A, B and C, then one of D, E or F"; "two of A-F and three of G-J";
    # "A or B or C, and D" as written ((A) or (B) or (C and D)) and as meant
    assert _sets_of(sets, "totara_example_sequence") == [(1, 1, "all", 0, 3), (2, 1, "any", 0, 3)]
    assert _sets_of(sets, "totara_example_two_and_three") == [
        (1, 1, "some", 2, 6),
        (1, 1, "some", 3, 4),
    ]
    assert _sets_of(sets, "totara_example_literal") == [
        (1, 1, "all", 0, 1),
        (1, 2, "all", 0, 1),
        (1, 3, "all", 0, 1),
        (1, 3, "all", 0, 1),
    ]
    assert _sets_of(sets, "totara_example_intended") == [(1, 1, "any", 0, 3), (1, 1, "all", 0, 1)]


def test_yes_no_on_stay_text(tmp_path: Path) -> None:
    text = (
        "programs:\n"
        "  - {id: p, name: NO, description: on, content: [{kind: any, courses: [NO, on, yes]}]}\n"
    )
    [program] = validate_rules(_rules(tmp_path, text)).programs.programs
    assert (program.name, program.description) == ("NO", "on")
    assert program.content[0].courses == ["NO", "on", "yes"]


@pytest.mark.parametrize(
    ("route", "key"),
    [
        ({"organisation": {"ids": ["ORG00002"]}}, "organisation:ORG00002"),
        (
            {
                "organisation": {
                    "ids": ["ORG00003", "ORG00002", "ORG00003"],
                    "include_children": True,
                }
            },
            "organisation:ORG00002,ORG00003+children",
        ),
        ({"position": {"ids": ["POS0003"], "include_children": False}}, "position:POS0003"),
        ({"position": {"ids": ["POS0003"], "include_children": True}}, "position:POS0003+children"),
        ({"audience": "new_starters"}, "audience:new_starters"),
        (
            {"manager": {"user": "U0000001", "job": "J1", "scope": "direct"}},
            "manager:U0000001/J1:direct",
        ),
        ({"manager": {"user": "U0000001", "scope": "all_below"}}, "manager:U0000001:all_below"),
        ({"users": ["U0000005", "U0000006"]}, "users"),
        ({"group": "induction_group.csv"}, "group:induction_group.csv"),
    ],
)
def test_route_keys_derive_from_what_the_route_selects(route: dict[str, Any], key: str) -> None:
    assert Route.model_validate(route).key == key


@pytest.mark.parametrize(
    ("period", "span"),
    [
        ({"hours": 5}, Span(0, 5 * 3600)),
        ({"days": 30}, Span(0, 30 * 86_400)),
        ({"weeks": 2}, Span(0, 14 * 86_400)),
        ({"months": 3}, Span(3, 0)),
        ({"years": 2}, Span(24, 0)),
    ],
)
def test_a_period_is_stored_as_months_and_seconds(period: dict[str, int], span: Span) -> None:
    assert Period.model_validate(period).span == span


@pytest.mark.parametrize(
    ("periods", "expected"),
    [
        ([{"days": 30}, {"months": 1}], Span(1, 0)),  # a month is 30.436875 days
        ([{"months": 1}, {"days": 31}], Span(0, 31 * 86_400)),
        ([{"weeks": 4}, {"days": 29}], Span(0, 29 * 86_400)),
        ([{"months": 12}, {"years": 1}], Span(12, 0)),  # equal: the first
        ([{"hours": 23}, {"days": 1}], Span(0, 86_400)),
        ([], Span()),
    ],
)
def test_periods_compare_by_approximate_length(
    periods: list[dict[str, int]], expected: Span
) -> None:
    assert longest([Period.model_validate(p) for p in periods]) == expected


# --- rule tables ----------------------------------------------------------------------------


def _set_rows(tmp_path: Path, content: str) -> list[tuple[Any, ...]]:
    tables = build_program_tables(validate_rules(_rules(tmp_path, _program(content))), LONDON)
    courses: dict[str, list[str]] = {}
    for row in tables.set_courses:
        courses.setdefault(row["set_id"], []).append(row["course_id"])
    return [
        (
            row["set_id"],
            row["set_position"],
            row["group_number"],
            row["run_number"],
            row["kind"],
            row["min_courses"],
            row["min_score"],
            row["course_count"],
            courses.get(row["set_id"], []),
        )
        for row in tables.course_sets
    ]


def test_totara_a_b_and_c_then_one_of_d_e_or_f(tmp_path: Path) -> None:
    content = (
        "      - {kind: all, courses: [A, B, C]}\n"
        "      - then\n"
        "      - {kind: any, courses: [D, E, F]}\n"
    )
    assert _set_rows(tmp_path, content) == [
        ("set_1", 1, 1, 1, "all", 0, 0, 3, ["A", "B", "C"]),
        ("set_2", 2, 2, 1, "any", 0, 0, 3, ["D", "E", "F"]),
    ]


def test_totara_two_of_a_to_f_and_three_of_g_to_j(tmp_path: Path) -> None:
    content = (
        "      - {kind: some, courses: [A, B, C, D, E, F], min_courses: 2}\n"
        "      - and\n"
        "      - {kind: some, courses: [G, H, I, J], min_courses: 3}\n"
    )
    assert _set_rows(tmp_path, content) == [
        ("set_1", 1, 1, 1, "some", 2, 0, 6, ["A", "B", "C", "D", "E", "F"]),
        ("set_2", 2, 1, 1, "some", 3, 0, 4, ["G", "H", "I", "J"]),
    ]


def test_totara_a_or_b_or_c_and_d_literally_is_a_or_b_or_c_and_d(tmp_path: Path) -> None:
    """`and` binds tighter than `or`: (A) or (B) or (C and D) — three runs in one group."""
    content = (
        "      - {kind: all, courses: [A]}\n"
        "      - or\n"
        "      - {kind: all, courses: [B]}\n"
        "      - or\n"
        "      - {kind: all, courses: [C]}\n"
        "      - and\n"
        "      - {kind: all, courses: [D]}\n"
    )
    assert [row[:4] for row in _set_rows(tmp_path, content)] == [
        ("set_1", 1, 1, 1),
        ("set_2", 2, 1, 2),
        ("set_3", 3, 1, 3),
        ("set_4", 4, 1, 3),
    ]


def test_totara_a_or_b_or_c_and_then_d_as_the_program_means_it(tmp_path: Path) -> None:
    """(A or B or C) and D: one `any` set and-ed with D (docs/programs.md, Totara's examples)."""
    content = (
        "      - {kind: any, courses: [A, B, C]}\n      - and\n      - {kind: all, courses: [D]}\n"
    )
    assert _set_rows(tmp_path, content) == [
        ("set_1", 1, 1, 1, "any", 0, 0, 3, ["A", "B", "C"]),
        ("set_2", 2, 1, 1, "all", 0, 0, 1, ["D"]),
    ]


def test_minimum_time_sums_each_groups_longest_min_time(tmp_path: Path) -> None:
    content = (
        "      - {kind: all, courses: [A], min_time: {days: 5}}\n"
        "      - or\n"
        "      - {kind: all, courses: [B], min_time: {weeks: 1}}\n"
        "      - and\n"
        "      - {kind: all, courses: [C]}\n"
        "      - then\n"
        "      - {kind: all, courses: [D], min_time: {days: 30}}\n"
        "      - and\n"
        "      - {kind: all, courses: [E], min_time: {months: 1}}\n"
        "      - then\n"
        "      - {kind: optional}\n"
        "      - then\n"
        "      - {kind: all, courses: [F], min_time: {hours: 12}}\n"
    )
    tables = build_program_tables(validate_rules(_rules(tmp_path, _program(content))), LONDON)
    [program] = tables.programs
    assert (program["minimum_time_months"], program["minimum_time_seconds"]) == (
        1,
        7 * 86_400 + 12 * 3600,
    )
    assert [(r["min_time_months"], r["min_time_seconds"]) for r in tables.course_sets] == [
        (0, 5 * 86_400),
        (0, 7 * 86_400),
        (0, 0),
        (0, 30 * 86_400),
        (1, 0),
        (0, 0),
        (0, 12 * 3600),
    ]


def test_a_program_without_min_times_has_no_minimum_time(tmp_path: Path) -> None:
    loaded = validate_rules(_rules(tmp_path, _program("      - {kind: optional}\n")))
    [program] = build_program_tables(loaded, LONDON).programs
    assert (program["minimum_time_months"], program["minimum_time_seconds"]) == (0, 0)


@pytest.mark.parametrize(
    ("clock", "day", "due_at"),
    [
        (LONDON, "2026-06-30", datetime(2026, 6, 30, 22, 59, 59, 999_999)),  # BST
        (LONDON, "2026-01-31", datetime(2026, 1, 31, 23, 59, 59, 999_999)),  # GMT
        (LONDON, "2026-03-29", datetime(2026, 3, 29, 22, 59, 59, 999_999)),  # the switch day
        (RunClock(AS_OF, "UTC"), "2026-06-30", datetime(2026, 6, 30, 23, 59, 59, 999_999)),
        (
            RunClock(AS_OF, "Pacific/Auckland"),
            "2026-06-30",
            datetime(2026, 6, 30, 11, 59, 59, 999_999),
        ),
    ],
)
def test_a_fixed_due_date_is_the_end_of_that_day_in_the_site_timezone(
    tmp_path: Path, clock: RunClock, day: str, due_at: datetime
) -> None:
    extra = f"    assignments:\n      - {{users: [U1], due: {{date: {day}}}}}\n"
    loaded = validate_rules(_rules(tmp_path, _program("      - {kind: optional}\n", extra)))
    [route] = build_program_tables(loaded, clock).routes
    assert (route["due_kind"], route["due_fixed_at"]) == ("fixed", due_at)
    assert (route["due_base"], route["due_months"], route["due_seconds"]) == (None, None, None)


def test_routes_targets_due_bases_and_exception_resolutions(tmp_path: Path) -> None:
    extra = (
        "    assignments:\n"
        "      - {audience: new_starters, due: {after: assignment, days: 30}}\n"
        "      - {organisation: {ids: [O2, O1, O2], include_children: true}}\n"
        "      - position: {ids: [P1]}\n"
        "        due: {after: position_assigned, position: P1, months: 2}\n"
        "      - {manager: {user: U1, scope: all_below}, due: {after: job_start, weeks: 1}}\n"
        "      - {users: [U5, U6, U5], due: {after: first_access, hours: 36}}\n"
        "      - group: induction_group.csv\n"
        "        due: {after: course_completion, course: C9, years: 1}\n"
        "      - {position: {ids: [P2]}, due: {after: custom_field, field: hiredate, days: 1}}\n"
        "      - {position: {ids: [P3]}, due: {after: program_completion, program: q, days: 1}}\n"
        "    exceptions: {default: realistic_due_date, users: {U7: assign, U8: open}}\n"
    )
    text = _program("      - {kind: optional}\n", extra)
    text += "  - {id: q, name: Q, content: [{kind: optional}]}\n"
    tables = build_program_tables(validate_rules(_rules(tmp_path, text)), LONDON)
    routes = [
        (
            r["route_key"],
            r["route_kind"],
            r["include_children"],
            r["manager_user_id"],
            r["manager_scope"],
            r["due_kind"],
            r["due_base"],
            r["due_base_ref"],
            r["due_months"],
            r["due_seconds"],
        )
        for r in tables.routes
    ]
    assert routes == [
        ("audience:new_starters", "audience", False, None, None,
         "relative", "assignment", None, 0, 30 * 86_400),
        ("organisation:O1,O2+children", "organisation", True, None, None,
         "none", None, None, None, None),
        ("position:P1", "position", False, None, None,
         "relative", "position_assigned", "P1", 2, 0),
        ("manager:U1:all_below", "manager", False, "U1", "all_below",
         "relative", "job_start", None, 0, 7 * 86_400),
        ("users", "users", False, None, None,
         "relative", "first_access", None, 0, 36 * 3600),
        ("group:induction_group.csv", "group", False, None, None,
         "relative", "course_completion", "C9", 12, 0),
        ("position:P2", "position", False, None, None,
         "relative", "custom_field", "hiredate", 0, 86_400),
        ("position:P3", "position", False, None, None,
         "relative", "program_completion", "q", 0, 86_400),
    ]  # fmt: skip
    targets: dict[str, list[str]] = {}
    for row in tables.route_targets:
        assert row["program_id"] == "p"
        targets.setdefault(row["route_key"], []).append(row["target_id"])
    assert targets == {
        "audience:new_starters": ["new_starters"],
        "organisation:O1,O2+children": ["O2", "O1"],
        "position:P1": ["P1"],
        "users": ["U5", "U6"],
        "group:induction_group.csv": ["U0000009", "U0000010"],
        "position:P2": ["P2"],
        "position:P3": ["P3"],
    }  # a manager route selects by its manager_user_id / manager_job_id, no target rows
    assert tables.exception_resolutions == [
        {"program_id": "p", "user_id": "U7", "resolution": "assign"},
        {"program_id": "p", "user_id": "U8", "resolution": "open"},
    ]
    assert [(p["program_id"], p["exception_default"]) for p in tables.programs] == [
        ("p", "realistic_due_date"),
        ("q", "open"),
    ]


def test_certification_rows_have_both_paths_and_their_periods(tmp_path: Path) -> None:
    certifications = DOCUMENTED_CERTIFICATIONS + (
        "  - id: first_aid\n"
        "    name: First aid\n"
        "    primary: [{kind: all, courses: [C1], min_time: {weeks: 2}},\n"
        "              then, {kind: any, courses: [C2, C3]}]\n"
        "    active_period: {years: 3}\n"
        "    window_period: {weeks: 6}\n"
    )
    loaded = validate_rules(_rules(tmp_path, DOCUMENTED_PROGRAMS, certifications))
    tables = build_program_tables(loaded, LONDON)
    rows = {row["program_id"]: row for row in tables.programs}
    periods = (
        "kind",
        "active_period_months",
        "active_period_seconds",
        "window_period_months",
        "window_period_seconds",
        "min_active_period_months",
        "min_active_period_seconds",
        "expiry_method",
        "minimum_time_months",
        "minimum_time_seconds",
        "exception_default",
        "source_file",
        "source_line",
    )
    ids = ("induction", "fire_safety", "first_aid")
    assert [tuple(rows[p][c] for c in periods) for p in ids] == [
        ("program", None, None, None, None, None, None, None,
         0, 5 * 86_400, "open", "programs.yaml", 3),
        ("certification", 12, 0, 1, 0, 6, 0, "fixed",
         0, 0, "assign", "certifications.yaml", 3),
        ("certification", 36, 0, 0, 42 * 86_400, None, None, "expiry_date",
         0, 14 * 86_400, "open", "certifications.yaml", 16),
    ]  # fmt: skip
    sets = [
        (r["program_id"], r["path"], r["set_id"], r["group_number"], r["kind"], r["course_count"])
        for r in tables.course_sets
        if r["program_id"] != "induction"
    ]
    assert sets == [
        ("fire_safety", "primary", "set_1", 1, "all", 2),
        ("fire_safety", "recertification", "set_1", 1, "any", 1),
        ("first_aid", "primary", "set_1", 1, "all", 1),
        ("first_aid", "primary", "set_2", 2, "any", 2),
        # no recertification path given: the same content as primary
        ("first_aid", "recertification", "set_1", 1, "all", 1),
        ("first_aid", "recertification", "set_2", 2, "any", 2),
    ]
    recertification_courses = [
        row["course_id"]
        for row in tables.set_courses
        if (row["program_id"], row["path"]) == ("first_aid", "recertification")
    ]
    assert recertification_courses == ["C1", "C2", "C3"]
    assert '"recertification"' not in rows["first_aid"]["definition"]  # as written


def test_a_course_listed_twice_in_a_set_counts_once(tmp_path: Path) -> None:
    rows = _set_rows(tmp_path, "      - {kind: all, courses: [A, B, A]}\n")
    assert rows == [("set_1", 1, 1, 1, "all", 0, 0, 2, ["A", "B"])]


# --- references -----------------------------------------------------------------------------


def test_references_are_checked_against_the_imported_state(tmp_path: Path) -> None:
    _rules(tmp_path, DOCUMENTED_PROGRAMS, DOCUMENTED_CERTIFICATIONS)
    loaded = validate_rules(tmp_path)
    known = {
        "organisation": {"ORG00001"},
        "position": {"POS0003"},
        "user": {"U0000001", "U0000005", "U0000006", "U0000007", "U0000010"},
        "course": {"C0001", "C0002", "C0003", "C0004", "C0005", "C0006", "C0007", "C0010"},
    }
    issues = [str(i).removeprefix(f"{tmp_path}/") for i in check_references(loaded, known)]
    assert issues == [
        "programs.yaml:15:30: [induction] unknown organisation 'ORG00002'; "
        "did you mean 'ORG00001'?",
        "programs.yaml:22:49: [induction] unknown course 'C0009'; did you mean 'C0010'?",
        "programs.yaml:25:45: [induction] unknown user 'U0000008'; did you mean 'U0000010'?",
        "induction_group.csv:2:1: [induction] unknown user 'U0000009'; did you mean 'U0000010'?",
        "induction_group.csv:5:1: [induction] unknown user 'U0000009'; did you mean 'U0000010'?",
        "certifications.yaml:6:38: [fire_safety] unknown course 'C0011'; did you mean 'C0010'?",
        "certifications.yaml:8:31: [fire_safety] unknown course 'C0012'; did you mean 'C0010'?",
    ]


def test_audience_rules_resolve_program_and_certification_ids(tmp_path: Path) -> None:
    audiences = (
        "audiences:\n"
        "  - id: new_starters\n"
        "    name: New starters\n"
        "    kind: dynamic\n"
        "    rules:\n"
        "      all:\n"
        "        - program_completion: {ids: [induction, inductoin, fire_safety], match: any}\n"
        "        - certification_state: {certification: fire_safty, states: [expired]}\n"
        "        - certification_state: {certification: fire_safety, states: [certified]}\n"
    )
    loaded = validate_rules(
        _rules(tmp_path, DOCUMENTED_PROGRAMS, DOCUMENTED_CERTIFICATIONS, audiences)
    )
    issues = [str(i).removeprefix(f"{tmp_path}/") for i in check_references(loaded, {})]
    assert issues == [
        "audiences.yaml:7:49: [new_starters] unknown program 'inductoin'; "
        "did you mean 'induction'?",
        "audiences.yaml:7:60: [new_starters] unknown program 'fire_safety' "
        "(that is a certification: program_completion names a program)",
        "audiences.yaml:8:48: [new_starters] unknown certification 'fire_safty'; "
        "did you mean 'fire_safety'?",
    ]


def test_ids_are_unique_across_audiences_programs_and_certifications(tmp_path: Path) -> None:
    certifications = DOCUMENTED_CERTIFICATIONS.replace("id: fire_safety", "id: induction")
    certifications += (
        "  - {id: new_starters, name: N, primary: [{kind: optional}],\n"
        "     active_period: {years: 1}, window_period: {months: 1}}\n"
    )
    with pytest.raises(RulesError) as err:
        validate_rules(_rules(tmp_path, DOCUMENTED_PROGRAMS, certifications))
    assert _issues(err, tmp_path) == [
        "certifications.yaml:3:9: [induction] duplicate id 'induction' "
        "(first defined at programs.yaml:3:9)",
        "certifications.yaml:16:10: [new_starters] duplicate id 'new_starters' "
        "(first defined at audiences.yaml:2:10)",
    ]


def test_a_route_audience_must_exist_and_a_certification_due_may_name_a_program(
    tmp_path: Path,
) -> None:
    certifications = DOCUMENTED_CERTIFICATIONS.replace(
        "      - audience: new_starters\n",
        "      - audience: leavers\n"
        "      - users: [U1]\n"
        "        due: {after: program_completion, program: induction, months: 1}\n",
    )
    with pytest.raises(RulesError) as err:
        validate_rules(_rules(tmp_path, DOCUMENTED_PROGRAMS, certifications))
    assert _issues(err, tmp_path) == [
        "certifications.yaml:14:19: [fire_safety] unknown audience 'leavers'"
    ]


def test_program_completion_cycles_across_files_are_named(tmp_path: Path) -> None:
    programs = (
        "programs:\n"
        "  - id: a\n    name: A\n    content: [{kind: optional}]\n"
        "    assignments: [{users: [U1], due: {after: program_completion, program: b, days: 1}}]\n"
        "  - id: b\n    name: B\n    content: [{kind: optional}]\n"
        "    assignments: [{users: [U1], due: {after: program_completion, program: c, days: 1}}]\n"
        "  - id: c\n    name: C\n    content: [{kind: optional}]\n"
        "    assignments: [{users: [U1], due: {after: program_completion, program: a, days: 1}}]\n"
    )
    with pytest.raises(RulesError) as err:
        validate_rules(_rules(tmp_path, programs))
    assert _issues(err, tmp_path) == [
        "programs.yaml:13:75: [c] program_completion cycle: a -> b -> c -> a"
    ]


# --- the warehouse --------------------------------------------------------------------------


def _connection() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    ensure_state_schema(con)
    return con


def test_broken_programs_keep_broken_since_and_recover(tmp_path: Path) -> None:
    programs = (
        "programs:\n"
        "  - {id: fine, name: Fine, content: [{kind: optional}]}\n"
        "  - {id: needs_c9, name: Needs C9, content: [{kind: all, courses: [C9]}]}\n"
    )
    loaded = validate_rules(_rules(tmp_path, programs, "certifications: []\n"))
    con = _connection()
    first = load_program_tables(con, loaded, LONDON, "r1")
    assert first == ProgramsLoadSummary(
        programs=2,
        certifications=0,
        newly_broken={"needs_c9": "unknown course 'C9'"},
        still_broken={},
    )
    second = load_program_tables(con, loaded, LONDON, "r2")
    assert (second.newly_broken, second.still_broken) == ({}, {"needs_c9": "unknown course 'C9'"})
    rows = con.execute(
        "select program_id, is_broken, broken_reason, broken_since_run_id from rules.program "
        "order by program_id"
    ).fetchall()
    assert rows == [("fine", False, None, None), ("needs_c9", True, "unknown course 'C9'", "r1")]
    con.execute("insert into hr.course values ('C9', 'Course nine', null)")
    assert load_program_tables(con, loaded, LONDON, "r3").newly_broken == {}
    con.execute("delete from hr.course")
    assert load_program_tables(con, loaded, LONDON, "r4").newly_broken == {
        "needs_c9": "unknown course 'C9'"
    }
    since = con.execute(
        "select broken_since_run_id from rules.program where program_id = 'needs_c9'"
    ).fetchall()
    assert since == [("r4",)]


def test_program_tables_are_replaced_every_run(tmp_path: Path) -> None:
    con = _connection()
    load_program_tables(con, validate_rules(_rules(tmp_path, DOCUMENTED_PROGRAMS)), LONDON, "r1")
    counts = [
        con.execute(f"select count(*) from rules.{table}").fetchall()[0][0]  # noqa: S608
        for table in (
            "program",
            "program_course_set",
            "program_course_set_course",
            "program_route",
            "program_route_target",
            "program_exception_resolution",
        )
    ]
    assert counts == [1, 3, 7, 6, 7, 2]
    empty = tmp_path / "empty"
    empty.mkdir()
    load_program_tables(con, validate_rules(empty), LONDON, "r2")
    assert con.execute("select count(*) from rules.program_route").fetchall() == [(0,)]


def test_previous_program_state_is_the_published_marts_set_aside() -> None:
    con = _connection()
    con.execute(
        "insert into main.fct_program_user__previous (program_id, user_id, assigned_at, status) "
        "values ('stale', 'U1', now(), 'x')"
    )
    snapshot_previous_program_state(con)  # first run: no marts yet
    assert con.execute("select count(*) from learnops.previous_program_user").fetchall() == [(0,)]
    con.execute(
        "create table main.fct_program_assignment_route as select 'p' as program_id, "
        "'users' as route_key, 'U1' as user_id, timestamp '2026-01-01' as assigned_at, "
        "true as is_current"
    )
    con.execute(
        "create table main.fct_program_user as select 'p' as program_id, 'U1' as user_id, "
        "timestamp '2026-01-01' as assigned_at, timestamp '2026-02-01' as due_at, "
        "'exception' as status, null::timestamp as completed_at, "
        "'time_allowance' as exception_type, null::varchar as exception_resolution, "
        "timestamp '2026-01-01' as exception_raised_at, false as is_overdue"
    )
    snapshot_previous_program_state(con)
    assert con.execute("select * from learnops.previous_program_route_user").fetchall() == [
        ("p", "users", "U1", datetime(2026, 1, 1))
    ]
    assert con.execute("select * from learnops.previous_program_user").fetchall() == [
        ("p", "U1", datetime(2026, 1, 1), datetime(2026, 2, 1), "exception", None,
         "time_allowance", None, datetime(2026, 1, 1)),
    ]  # fmt: skip
    # renamed, not copied: the build makes the marts again; the rest of their columns goes
    assert not table_exists(con, "main", "fct_program_user")
    assert [r[0] for r in con.execute("describe main.fct_program_user__previous").fetchall()] == [
        "program_id", "user_id", "assigned_at", "due_at", "status", "completed_at",
        "exception_type", "exception_resolution", "exception_raised_at",
    ]  # fmt: skip
    assert not table_exists(con, "main", "fct_program_assignment_route")
    assert con.execute("select count(*) from learnops.previous_certification_user").fetchall() == [
        (0,)
    ]


def test_previous_state_tables_of_an_older_warehouse_become_views() -> None:
    con = duckdb.connect()
    con.execute("create schema learnops")
    con.execute("create table learnops.previous_program_user (program_id varchar, user_id varchar)")
    con.execute("insert into learnops.previous_program_user values ('p', 'U1')")
    ensure_state_schema(con)
    kinds = con.execute(
        "select table_name, table_type from information_schema.tables "
        "where table_schema = 'learnops' and table_name like 'previous_%' order by 1"
    ).fetchall()
    assert kinds == [
        ("previous_certification_user", "VIEW"),
        ("previous_program_route_user", "VIEW"),
        ("previous_program_user", "VIEW"),
    ]
    # the old copy is gone: the next build sets the published marts aside
    assert con.execute("select count(*) from learnops.previous_program_user").fetchall() == [(0,)]
    ensure_state_schema(con)  # idempotent
    assert con.execute("select count(*) from learnops.previous_program_user").fetchall() == [(0,)]


def test_the_rules_stage_loads_programs_and_the_summary_names_the_broken(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    rules = _rules(tmp_path / "rules", DOCUMENTED_PROGRAMS, DOCUMENTED_CERTIFICATIONS)
    paths = warehouse_paths(tmp_path / "w.duckdb")
    prepare_building_copy(paths)
    request = RunRequest(
        feeds=tmp_path,
        rules=rules,
        warehouse=paths.published,
        as_of=AS_OF,
        site_timezone="Europe/London",
    )
    result = RunResult(run_id="r1", as_of=AS_OF, warehouse=paths.published)
    audiences = rules_stage(request, paths, result, validate_rules(rules))
    assert audiences.newly_broken == {"new_starters": "unknown user 'U0000001'"}  # audiences only
    assert result.programs is not None
    assert (result.programs.programs, result.programs.certifications) == (1, 1)
    assert sorted(result.programs.newly_broken) == ["fire_safety", "induction"]
    with duckdb.connect(str(paths.building)) as con:
        assert con.execute("select count(*) from rules.program").fetchall() == [(2,)]
    lines = summary_lines(result)
    assert "  programs: 1, certifications: 1" in lines
    assert (
        "    broken (new, state kept): fire_safety: "
        "unknown course 'C0010'; unknown course 'C0011'; unknown course 'C0012'" in lines
    )


def test_validate_reports_program_references_against_the_feeds(
    tmp_path: Path, small_org: Path, rules_dir: Path
) -> None:
    (rules_dir / "programs.yaml").write_text(
        "programs:\n"
        "  - id: finance_induction\n"
        "    name: Finance induction\n"
        "    content: [{kind: optional}]\n"
        "    assignments:\n"
        "      - organisation: {ids: [O2, O22], include_children: true}\n"
        "      - manager: {user: U5, scope: direct}\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "validate", "--feeds", str(small_org), "--rules",
         str(rules_dir), "--warehouse", str(tmp_path / "w.duckdb")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    where = rules_dir / "programs.yaml"
    assert result.stdout.splitlines()[-2:] == [
        f"{where}:6:34: [finance_induction] unknown organisation 'O22'; did you mean 'O2'?",
        f"{where}:7:25: [finance_induction] unknown user 'U5'",
    ]
    assert f"rules: {rules_dir}/programs.yaml ok" in result.stdout
    assert "0 row(s) would be rejected, 2 rule reference(s) unknown" in result.stderr


@pytest.mark.parametrize("name", ["programs.schema.json", "certifications.schema.json"])
def test_the_new_files_have_committed_schemas(name: str) -> None:
    assert name in SCHEMAS  # kept in sync by test_audiences.test_committed_schema_is_up_to_date
