"""flows/rules/tables.py: audiences as rows — complement flags, stages, bounds, windows."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from flows.rules.tables import (
    RunClock,
    build_rule_tables,
    load_rule_tables,
)
from flows.rules.validation import validate_rules
from flows.state_schema import ensure_state_schema

AS_OF = datetime(2026, 3, 30, 9, 0)  # naive UTC; London is on summer time (BST) since 29 Mar
LONDON = RunClock(AS_OF, "Europe/London")


def _tables(tmp_path: Path, rules: str, clock: RunClock = LONDON, **audience: Any) -> Any:
    options = "".join(f"    {key}: {value}\n" for key, value in audience.items())
    (tmp_path / "audiences.yaml").write_text(
        f"audiences:\n  - id: a\n    name: A\n    kind: dynamic\n{options}    rules:\n{rules}",
        encoding="utf-8",
    )
    (tmp_path / "hr_import.yaml").write_text(
        "elements:\n  user:\n    custom_fields:\n      hiredate: {type: date}\n", encoding="utf-8"
    )
    return build_rule_tables(validate_rules(tmp_path), clock)


def _root(tables: Any) -> dict[str, Any]:
    return next(node for node in tables.nodes if node["parent_node_id"] is None)


@pytest.mark.parametrize(
    ("leaf", "complement"),
    [
        ("{user_field: city, operator: equals, values: [Leeds]}", False),
        ("{user_field: city, operator: not_equals, values: [Leeds]}", True),
        ("{user_field: city, operator: not_in, values: [Leeds]}", True),
        ("{user_field: city, operator: not_contains, values: [Lee]}", True),
        ("{user_field: city, operator: is_empty}", True),
        ("{user_field: city, operator: not_empty}", False),
        ("job_title: {operator: not_equals, values: [Clerk]}", True),
        ("organisation: {ids: [O1], negate: true}", True),
        ("organisation: {ids: [O1]}", False),
        ("{has_direct_reports: false}", True),
        ("{has_direct_reports: true}", False),
        ("course_completion: {ids: [C1], match: not_all}", True),
        ("course_completion: {ids: [C1], match: none}", True),
        ("course_completion: {ids: [C1], match: all}", False),
        ("{date_field: last_access, operator: older_than_days, days: 30}", False),
    ],
)
def test_negative_leaves_store_their_positive_twin_as_a_complement(
    tmp_path: Path, leaf: str, complement: bool
) -> None:
    assert _root(_tables(tmp_path, f"      {leaf}\n"))["is_complement"] is complement


@pytest.mark.parametrize(
    ("tree", "complement", "positives", "complements"),
    [
        (
            "all: [{user_field: city, operator: equals, values: [x]}, {has_direct_reports: false}]",
            False,
            1,
            1,
        ),
        ("all: [{user_field: city, operator: is_empty}, {has_direct_reports: false}]", True, 0, 2),
        (
            "any: [{user_field: city, operator: equals, values: [x]}, {has_direct_reports: true}]",
            False,
            2,
            0,
        ),
        (
            "any: [{user_field: city, operator: equals, values: [x]}, {has_direct_reports: false}]",
            True,
            1,
            1,
        ),
        ("not: {user_field: city, operator: equals, values: [x]}", True, 1, 0),
        ("not: {not: {has_direct_reports: false}}", True, 1, 0),
    ],
)
def test_inner_nodes_follow_the_complement_algebra(
    tmp_path: Path, tree: str, complement: bool, positives: int, complements: int
) -> None:
    root = _root(_tables(tmp_path, f"      {tree}\n"))
    assert (root["is_complement"], root["positive_children"], root["complement_children"]) == (
        complement,
        positives,
        complements,
    )


def test_member_of_chains_are_staged_in_dependency_order(tmp_path: Path) -> None:
    (tmp_path / "audiences.yaml").write_text(
        "audiences:\n"
        "  - {id: c, name: C, kind: dynamic, rules: {member_of: {audiences: [b]}}}\n"
        "  - {id: b, name: B, kind: dynamic, rules: {not_member_of: {audiences: [a]}}}\n"
        "  - {id: a, name: A, kind: static, members: [U1]}\n"
        "  - {id: d, name: D, kind: dynamic, rules: {any: [{member_of: {audiences: [a, c]}}]}}\n",
        encoding="utf-8",
    )
    tables = build_rule_tables(validate_rules(tmp_path), LONDON)
    assert {row["audience_id"]: row["stage"] for row in tables.audiences} == {
        "a": 0,
        "b": 1,
        "c": 2,
        "d": 3,
    }


def test_fixed_dates_mean_whole_days_in_the_site_timezone(tmp_path: Path) -> None:
    before = _root(
        _tables(tmp_path, "      {date_field: last_access, operator: before, date: 2026-03-30}\n")
    )
    # the end of 30 March in London (BST, UTC+1) is 22:59:59.999999 UTC
    assert before["lower_at"] is None
    assert before["upper_at"] == datetime(2026, 3, 30, 22, 59, 59, 999999)
    assert before["upper_date"] == date(2026, 3, 30)
    after = _root(
        _tables(
            tmp_path, "      {date_field: custom:hiredate, operator: after, date: 2026-03-30}\n"
        )
    )
    assert after["lower_at"] == datetime(2026, 3, 29, 23, 0)
    assert after["lower_date"] == date(2026, 3, 30)
    assert after["upper_at"] is None


def test_relative_dates_count_from_the_as_of(tmp_path: Path) -> None:
    within = _root(
        _tables(
            tmp_path, "      {date_field: job_start_date, operator: within_last_days, days: 10}\n"
        )
    )
    assert (within["lower_at"], within["upper_at"]) == (datetime(2026, 3, 20, 9), AS_OF)
    # a date-valued field d stands for the start of d in London: 20 March 00:00 GMT is
    # before 09:00 UTC that day, so the first date inside is 21 March
    assert (within["lower_date"], within["upper_date"]) == (date(2026, 3, 21), date(2026, 3, 30))
    beyond = _root(
        _tables(tmp_path, "      {date_field: job_end_date, operator: beyond_next_days, days: 2}\n")
    )
    assert (beyond["lower_at"], beyond["upper_at"]) == (datetime(2026, 4, 1, 9), None)


def test_completion_bounds_combine_and_never_pass_the_as_of(tmp_path: Path) -> None:
    leaf = _root(
        _tables(
            tmp_path,
            "      course_completion: {ids: [C1, C2, C1], match: all, "
            "completed_after: 2026-01-01, completed_before: 2026-12-31, within_last_days: 365}\n",
        )
    )
    assert leaf["lower_at"] == datetime(2026, 1, 1)  # later than as-of - 365 days
    assert leaf["upper_at"] == AS_OF  # earlier than the end of 31 December
    assert leaf["value_count"] == 2  # a repeated id is one course


@pytest.mark.parametrize(
    ("as_of", "in_window"),
    [
        (datetime(2026, 2, 28, 23, 30), False),  # 28 Feb in London (GMT)
        (datetime(2026, 3, 1, 0, 0), True),
        (datetime(2026, 3, 31, 22, 59), True),  # still 31 March in London (BST)
        (datetime(2026, 3, 31, 23, 0), False),  # 1 April in London
    ],
)
def test_active_window_is_whole_days_in_the_site_timezone(
    tmp_path: Path, as_of: datetime, in_window: bool
) -> None:
    tables = _tables(
        tmp_path,
        "      {user_field: city, operator: equals, values: [x]}\n",
        RunClock(as_of, "Europe/London"),
        active_from="2026-03-01",
        active_until="2026-03-31",
    )
    assert tables.audiences[0]["is_in_window"] is in_window


def _warehouse_with(org_ids: list[str]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    ensure_state_schema(con)
    for org_id in org_ids:
        con.execute(
            "insert into hr.organisation (organisation_id, name, first_seen_run_id) "
            "values (?, ?, 'r0')",
            [org_id, org_id],
        )
    return con


def test_sql_looking_values_travel_as_rows(tmp_path: Path) -> None:
    nasty = "O'Brien'; drop table hr.user; --"
    (tmp_path / "audiences.yaml").write_text(
        "audiences:\n  - id: a\n    name: A\n    kind: dynamic\n"
        f'    rules: {{user_field: lastname, operator: equals, values: ["{nasty}"]}}\n',
        encoding="utf-8",
    )
    con = _warehouse_with([])
    load_rule_tables(con, validate_rules(tmp_path), LONDON, "r1")
    assert con.execute("select value from rules.audience_node_value").fetchall() == [(nasty,)]
    assert con.execute("select count(*) from hr.user").fetchall() == [(0,)]


def test_a_reference_that_breaks_is_reported_on_the_run_that_broke_it(tmp_path: Path) -> None:
    (tmp_path / "audiences.yaml").write_text(
        "audiences:\n  - id: a\n    name: A\n    kind: dynamic\n"
        "    rules: {organisation: {ids: [O1, O2]}}\n",
        encoding="utf-8",
    )
    loaded = validate_rules(tmp_path)
    con = _warehouse_with(["O1", "O2"])
    assert load_rule_tables(con, loaded, LONDON, "r1").newly_broken == {}
    con.execute("delete from hr.organisation where organisation_id = 'O2'")
    second = load_rule_tables(con, loaded, LONDON, "r2")
    assert second.newly_broken == {"a": "unknown organisation 'O2'"}
    third = load_rule_tables(con, loaded, LONDON, "r3")
    assert (third.newly_broken, list(third.still_broken)) == ({}, ["a"])
    assert con.execute("select is_broken, broken_since_run_id from rules.audience").fetchall() == [
        (True, "r2")
    ]
