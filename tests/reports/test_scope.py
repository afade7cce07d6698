"""Per-recipient scope in SQL on a three-level organisation, the union for a person reached
twice, and a property: over random organisations no recipient ever gets a row outside
their scope (SPEC §7, §10)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.reports.scope import WAREHOUSE, scoped_report
from flows.reports.sources import report_sources
from flows.rules.validation import validate_rules
from tests.reports.conftest import AS_OF, THREE_LEVEL, Org, build_warehouse, email, write_rules

REPORT = """
settings:
  sender: {{address: reports@example.com}}
reports:
  - id: r
    name: Report
    source: {source}
    columns: [{columns}]
    schedule: {{every: day}}
    scope: {scope}
    recipients: {recipients}
"""


def _scoped(paths, tmp_path: Path, scope: str, recipients: str = "[managers]",
            source: str = "rpt_required_learning", columns: str = "user_id, program_name",
            audiences: str = "") -> dict[str, list[str]]:  # fmt: skip
    """recipient -> the subject keys of their rows, for a one-report rules file."""
    text = REPORT.format(scope=scope, recipients=recipients, source=source, columns=columns)
    rules = validate_rules(write_rules(tmp_path / "rules", text, audiences))
    report = rules.reports.reports[0]
    con = duckdb.connect()
    con.execute(f"attach ? as {WAREHOUSE} (read_only)", [str(paths.published)])
    scoped = scoped_report(con, report, report_sources()[report.source], AS_OF)
    key = columns.split(",")[0].strip()
    return {r: sorted(f.get_column(key).to_list()) for r, f in scoped.split().items()}


def test_team_direct_is_the_direct_reports_only(three_level, tmp_path):
    got = _scoped(three_level, tmp_path, "team_direct")
    assert got == {
        email("CEO"): ["H1", "H2"],
        email("H1"): ["M1"],
        email("H2"): ["L3"],
        email("M1"): ["L1", "L2"],
    }


def test_team_all_is_everyone_below(three_level, tmp_path):
    got = _scoped(three_level, tmp_path, "team_all")
    assert got[email("CEO")] == ["H1", "H2", "L1", "L2", "L3", "M1"]
    assert got[email("H1")] == ["L1", "L2", "M1"]
    assert got[email("M1")] == ["L1", "L2"]


def test_organisation_is_the_subtrees_of_the_recipients_own_organisations(three_level, tmp_path):
    audiences = """
    audiences:
      - {id: division_heads, name: Heads, kind: static, members: [H1, H2]}
    """
    got = _scoped(three_level, tmp_path, "organisation", "[{audience: division_heads}]",
                  audiences=audiences)  # fmt: skip
    # H1 sits in D1: D1 and T1 (H1 itself, M1, L1, L2); H2 in D2: H2, L3
    assert got == {email("H1"): ["H1", "L1", "L2", "M1"], email("H2"): ["H2", "L3"]}


def test_fixed_organisations_with_and_without_children(three_level, tmp_path):
    address = "[{address: audit@example.com}]"
    assert _scoped(three_level, tmp_path, "{organisations: [D1]}", address) == {
        "audit@example.com": ["H1", "L1", "L2", "M1"]
    }
    no_children = "{organisations: [D1], include_children: false}"
    assert _scoped(three_level, tmp_path, no_children, address) == {"audit@example.com": ["H1"]}
    assert _scoped(three_level, tmp_path, "all", address) == {
        "audit@example.com": sorted(THREE_LEVEL.people)
    }


def test_organisation_rows_are_scoped_by_their_organisation(three_level, tmp_path):
    address = "[{address: audit@example.com, scope: {organisations: [D2]}}]"
    got = _scoped(three_level, tmp_path, "organisation", address,
                  source="rpt_compliance_by_organisation",
                  columns="organisation_id, completion_rate")  # fmt: skip
    assert got == {"audit@example.com": ["D2", "T2"]}


def test_a_person_reached_twice_gets_one_mail_with_the_union_of_scopes(three_level, tmp_path):
    # M1 is a manager (team: L1, L2) and also listed by address with the D2 subtree
    recipients = f"[managers, {{address: {email('M1')}, scope: {{organisations: [D2]}}}}]"
    got = _scoped(three_level, tmp_path, "team_direct", recipients)
    assert list(got).count(email("M1")) == 1
    assert got[email("M1")] == ["H2", "L1", "L2", "L3"]


# --- the property ---------------------------------------------------------------------------


@st.composite
def organisations(draw: st.DrawFn) -> Org:
    """A random forest of organisations and people with managers (no cycles) and jobs."""
    n_orgs = draw(st.integers(1, 6))
    orgs: dict[str, str | None] = {}
    for i in range(n_orgs):
        parent = draw(st.sampled_from([None, *orgs])) if orgs else None
        orgs[f"O{i}"] = parent
    n_people = draw(st.integers(1, 10))
    people: dict[str, tuple[str, str | None]] = {}
    for i in range(n_people):
        manager = draw(st.sampled_from([None, *people])) if people else None
        people[f"P{i}"] = (draw(st.sampled_from(sorted(orgs))), manager)
    extra = []
    for user in draw(st.lists(st.sampled_from(sorted(people)), max_size=3, unique=True)):
        extra.append((user, draw(st.sampled_from(sorted(orgs))), None))
    return Org(orgs, people, extra)


def _expected(org: Org, recipient: str, scope: str, fixed: list[str]) -> set[str]:
    """Who `recipient` may see, computed independently of the SQL."""
    pairs = org.management()
    below = {r for (m, r), d in pairs.items() if m == recipient and (scope == "team_all" or d == 1)}
    if scope in ("team_direct", "team_all"):
        return below
    roots = fixed if scope == "organisations" else [o for u, o, _ in org.jobs() if u == recipient]
    covered = {o for o in org.organisations if set(org.ancestors(o)) & set(roots)}
    return {u for u, o, _ in org.jobs() if o in covered}


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(org=organisations(), scope=st.sampled_from(["team_direct", "team_all", "organisation"]),
       data=st.data())  # fmt: skip
def test_no_recipient_ever_receives_a_row_outside_their_scope(tmp_path_factory, org, scope, data):
    base = tmp_path_factory.mktemp("prop")
    rows = [(u, "Induction", "in_progress", datetime(2026, 10, 1), True, -1) for u in org.people]
    paths = build_warehouse(base / "warehouse.duckdb", org, rows)
    fixed = data.draw(st.lists(st.sampled_from(sorted(org.organisations)), min_size=1,
                               max_size=2, unique=True))  # fmt: skip
    address = f"{{address: fixed@example.com, scope: {{organisations: [{', '.join(fixed)}]}}}}"
    got = _scoped(paths, base, scope, f"[managers, {address}]")
    managers = {m for _, _, m in org.jobs() if m}
    assert set(got) == {email(m) for m in managers} | {"fixed@example.com"}
    for manager in managers:
        assert set(got[email(manager)]) == _expected(org, manager, scope, [])
    assert set(got["fixed@example.com"]) == _expected(org, "", "organisations", fixed)
