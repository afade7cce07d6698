"""A tiny published warehouse for report tests, built directly (no dbt): the tables the
scope query reads, and two report marts with a few columns each."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from flows.warehouse import WarehousePaths, warehouse_paths

AS_OF = datetime(2026, 11, 2, 6, 0)  # a Monday, 06:00 UTC


@dataclass
class Org:
    """organisations: id -> parent id; people: id -> (organisation, manager or None)."""

    organisations: dict[str, str | None]
    people: dict[str, tuple[str, str | None]]
    extra_jobs: list[tuple[str, str, str | None]] = field(default_factory=list)
    audiences: dict[str, list[str]] = field(default_factory=dict)

    def jobs(self) -> list[tuple[str, str, str | None]]:
        """(user, organisation, manager) of every job: one per person, plus extra jobs."""
        return [(u, o, m) for u, (o, m) in self.people.items()] + list(self.extra_jobs)

    def ancestors(self, org: str) -> list[str]:
        chain = [org]
        while self.organisations[chain[-1]] is not None:
            chain.append(self.organisations[chain[-1]])  # type: ignore[arg-type]
        return chain

    def management(self) -> dict[tuple[str, str], int]:
        """(manager, report) -> smallest depth, over every job's manager chain."""
        direct: dict[str, set[str]] = {}
        for user, _, manager in self.jobs():
            if manager:
                direct.setdefault(user, set()).add(manager)
        pairs: dict[tuple[str, str], int] = {}
        for report in self.people:
            frontier, depth, seen = set(direct.get(report, ())), 1, set()
            while frontier:
                for manager in frontier:
                    if manager != report and (manager, report) not in pairs:
                        pairs[(manager, report)] = depth
                seen |= frontier
                frontier = {m for x in frontier for m in direct.get(x, ())} - seen
                depth += 1
        return pairs


def email(user: str) -> str:
    return f"{user.lower()}@example.com"


def build_warehouse(
    path: Path, org: Org, rows: Iterable[tuple] = (), *, failed_run: bool = False
) -> WarehousePaths:
    """Write a published warehouse for `org`; `rows` are rpt_required_learning rows
    (user_id, program_name, status, due_at, is_overdue, days_until_due)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    paths = warehouse_paths(path)
    with duckdb.connect(str(paths.published)) as con:
        con.execute(
            textwrap.dedent("""
            create table dim_user (user_id varchar, username varchar, email varchar,
                first_name varchar, last_name varchar, status varchar, timezone varchar,
                email_stop boolean);
            create table dim_organisation (organisation_id varchar, name varchar,
                parent_id varchar);
            create table dim_job_assignment (user_id varchar, job_id varchar,
                organisation_id varchar, manager_user_id varchar);
            create table bdg_management (manager_user_id varchar, report_user_id varchar,
                depth integer);
            create table bdg_organisation_ancestry (ancestor_id varchar, descendant_id varchar,
                depth_below integer);
            create table fct_audience_membership (audience_id varchar, user_id varchar);
            create table pipeline_run (run_id varchar, as_of timestamp, started_at timestamp,
                status varchar);
            create table rpt_required_learning (user_id varchar, full_name varchar,
                organisation_id varchar, program_name varchar, status varchar,
                due_at timestamp, is_overdue boolean, days_until_due integer,
                completion_rate double);
            create table rpt_compliance_by_organisation (organisation_id varchar,
                organisation_name varchar, program_name varchar, assigned integer,
                complete integer, completion_rate double);
            create schema learnops;
            create table learnops.report_delivery_log (report_id varchar, recipient_email varchar,
                period_start timestamp, status varchar, row_count bigint, sent_at timestamp,
                message_id varchar, attempts integer, last_error varchar);
        """)
        )
        for user in org.people:
            con.execute(
                "insert into dim_user values "
                "(?, ?, ?, ?, 'Person', 'active', 'Europe/London', false)",
                [user, user.lower(), email(user), user],
            )
        for oid, parent in org.organisations.items():
            con.execute(
                "insert into dim_organisation values (?, ?, ?)", [oid, f"Org {oid}", parent]
            )
            for depth, ancestor in enumerate(org.ancestors(oid)):
                con.execute(
                    "insert into bdg_organisation_ancestry values (?, ?, ?)", [ancestor, oid, depth]
                )
        for index, (user, oid, manager) in enumerate(org.jobs()):
            con.execute(
                "insert into dim_job_assignment values (?, ?, ?, ?)",
                [user, f"J{index}", oid, manager],
            )
        for (manager, report), depth in org.management().items():
            con.execute("insert into bdg_management values (?, ?, ?)", [manager, report, depth])
        for audience, members in org.audiences.items():
            for member in members:
                con.execute("insert into fct_audience_membership values (?, ?)", [audience, member])
        con.execute("insert into pipeline_run values ('r1', ?, ?, 'succeeded')", [AS_OF, AS_OF])
        if failed_run:
            con.execute(
                "insert into pipeline_run values ('r2', ?, ?, 'failed')",
                [AS_OF, datetime(2026, 11, 2, 7)],
            )
        for row in rows:
            user = row[0]
            con.execute(
                "insert into rpt_required_learning values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [user, f"{user} Person", org.people[user][0], *row[1:], 0.5],
            )
        for oid in org.organisations:
            con.execute(
                "insert into rpt_compliance_by_organisation values (?, ?, 'Induction', 10, 5, 0.5)",
                [oid, f"Org {oid}"],
            )
    return paths


def write_rules(rules_dir: Path, reports_yaml: str, audiences_yaml: str = "") -> Path:
    """A rules directory with reports.yaml (and audiences.yaml if given)."""
    rules_dir.mkdir(parents=True, exist_ok=True)
    (rules_dir / "reports.yaml").write_text(textwrap.dedent(reports_yaml), encoding="utf-8")
    if audiences_yaml:
        (rules_dir / "audiences.yaml").write_text(textwrap.dedent(audiences_yaml), encoding="utf-8")
    return rules_dir


# A three-level organisation: C (company) > D1, D2 (divisions) > T1 under D1, T2 under D2.
# CEO manages H1 (D1) and H2 (D2); H1 manages M1 (T1); M1 manages L1, L2; H2 manages L3 (T2).
THREE_LEVEL = Org(
    organisations={"C": None, "D1": "C", "D2": "C", "T1": "D1", "T2": "D2"},
    people={
        "CEO": ("C", None),
        "H1": ("D1", "CEO"),
        "H2": ("D2", "CEO"),
        "M1": ("T1", "H1"),
        "L1": ("T1", "M1"),
        "L2": ("T1", "M1"),
        "L3": ("T2", "H2"),
    },
    audiences={"division_heads": ["H1", "H2"]},
)


@pytest.fixture
def three_level(tmp_path: Path) -> WarehousePaths:
    """THREE_LEVEL with one overdue row per person."""
    rows = [(user, "Induction", "in_progress", datetime(2026, 10, 1), True, -32)
            for user in THREE_LEVEL.people]  # fmt: skip
    return build_warehouse(tmp_path / "warehouse.duckdb", THREE_LEVEL, rows)
