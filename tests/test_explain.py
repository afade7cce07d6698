"""`learnops explain`: the deciding rule and value, and agreement with the build (SPEC §4.1).

One small organisation is run through the real pipeline twice per module (1 Jan, then 1 Mar
after U5 moved to York, U4 to Wellington, U7 was deleted, U8 joined in Leeds and the
organisation O5 went away), so windows, switches, broken audiences and deleted users have a
previous state to keep. Explain must name the deciding leaf and value,
and its final verdict must equal fct_audience_membership for every (user, audience).
"""

from __future__ import annotations

import json
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from flows.cli import main
from flows.explain import (
    AudienceExplanation,
    ExplainError,
    NodeResult,
    explain_audience,
    explain_user,
    render_json,
    render_text,
)
from flows.pipeline import RunRequest, parse_as_of, run_pipeline
from flows.warehouse import open_published, warehouse_paths

ORG = """\
    idnumber,fullname,parentidnumber,typeidnumber,customfield_costcentre
    O1,Head Office,,hq,
    O2,Finance,O1,division,CC2
    O3,Payroll,O2,team,
    O4,Sales,O1,division,CC4
"""
TEMP_ORG = "    O5,Temporary Office,O1,,\n"

USER_HEADER = "idnumber,username,firstname,lastname,email,city,country,customfield_employeetype"
USERS = {
    "U1": "U1,ceo,Ada,Boss,ada@example.com,London,GB,Permanent",
    "U2": "U2,fin,Fin,Lead,fin@example.com,Leeds,GB,Permanent",
    "U3": "U3,pay1,Pat,Pay,pat@example.com,Leeds,NZ,Contractor",
    "U4": "U4,pay2,Sam,Pay,sam@example.com,Auckland,NZ,Permanent",
    "U5": "U5,sales,Sal,Seller,sal@example.com,Leeds,GB,Permanent",
    "U6": "U6,nojob,Noa,Free,,Dublin,IE,Permanent",
    "U7": "U7,gone,Del,Eted,del@example.com,Leeds,GB,Permanent",
}
JOB_HEADER = "idnumber,useridnumber,fullname,orgidnumber,manageridnumber,startdate"
JOBS = {
    "U1": "J1,U1,Chief Executive,O1,,2020-01-01",
    "U2": "J1,U2,Head of Finance,O2,U1,2021-03-01",
    "U3": "J1,U3,Payroll Officer,O3,U2,2022-05-01",
    "U4": "J1,U4,Payroll Officer,O3,U3,2023-07-01",
    "U5": "J1,U5,Sales Lead,O4,U1,2024-01-01",
    "U7": "J1,U7,Analyst,O2,U2,2024-02-01",
}
COURSES = "idnumber,fullname\n    C1,Induction\n    C2,Safety\n"
COMPLETIONS = """\
    useridnumber,courseidnumber,timecompleted
    U2,C1,2025-06-01T09:00:00Z
    U2,C2,2026-01-15T09:00:00Z
    U4,C1,2025-12-20T09:00:00Z
    U4,C2,2026-05-01T09:00:00Z
"""
ACCESS = """\
    useridnumber,lastaccess
    U1,2025-12-30T10:00:00Z
    U2,2025-06-01T10:00:00Z
    U3,2026-02-25T10:00:00Z
"""

HR_IMPORT = """\
defaults:
  max_removed_fraction: 0.5
elements:
  user:
    on_remove: delete
    custom_fields:
      employeetype: {type: menu, options: [Permanent, Contractor]}
"""

AUDIENCES = """\
audiences:
  - id: pilot
    name: Pilot
    kind: static
    members: [U1, U6]

  - id: finance_locals
    name: Finance staff in Leeds or Ireland, no contractors
    kind: dynamic
    rules:
      all:
        - any:
            - {user_field: city, operator: equals, values: [Leeds]}
            - {user_field: country, operator: in, values: [IE]}
        - not: {user_field: custom:employeetype, operator: equals, values: [Contractor]}
        - organisation: {ids: [O2], include_children: true}

  - id: outside_finance
    name: Nobody in Finance
    kind: dynamic
    rules:
      organisation: {ids: [O2], include_children: true, negate: true}

  - id: finance_managers
    name: Finance locals with direct reports
    kind: dynamic
    rules:
      all:
        - member_of: {audiences: [finance_locals]}
        - {has_direct_reports: true}

  - id: not_pilot
    name: Everyone outside the pilot
    kind: dynamic
    rules:
      all:
        - {user_field: username, operator: not_empty}
        - not_member_of: {audiences: [pilot]}

  - id: ceo_team
    name: Reports to the CEO
    kind: dynamic
    rules:
      any:
        - reports_to: {managers: [U1], direct_only: true}
        - job_title: {operator: contains, values: [Chief]}

  - id: recently_seen
    name: Seen in the last 30 days
    kind: dynamic
    rules: {date_field: last_access, operator: within_last_days, days: 30}

  - id: inducted
    name: Completed induction
    kind: dynamic
    rules:
      course_completion: {ids: [C1, C2], match: all}

  - id: leeds_window
    name: Leeds, January only
    kind: dynamic
    active_until: 2026-01-31
    rules: {user_field: city, operator: equals, values: [Leeds]}

  - id: leeds_add_only
    name: Leeds, never removed
    kind: dynamic
    remove_members: false
    rules: {user_field: city, operator: equals, values: [Leeds]}

  - id: temp_or_auckland
    name: The temporary office, or Auckland
    kind: dynamic
    rules:
      any:
        - organisation: {ids: [O5]}
        - {user_field: city, operator: equals, values: [Auckland]}

  - id: leeds_paused
    name: Leeds, paused
    kind: dynamic
    add_members: false
    remove_members: false
    rules: {user_field: city, operator: equals, values: [Leeds]}
"""

RUN_1, RUN_2 = "2026-01-01T06:00:00Z", "2026-03-01T06:00:00Z"


def _feeds(directory: Path, users: dict[str, str], jobs: dict[str, str], org: str) -> Path:
    directory.mkdir(parents=True)
    files = {
        "org.csv": org,
        "user.csv": "\n".join([USER_HEADER, *users.values()]) + "\n",
        "jobassignment.csv": "\n".join([JOB_HEADER, *jobs.values()]) + "\n",
        "course.csv": COURSES,
        "course_completion.csv": COMPLETIONS,
        "user_access.csv": ACCESS,
    }
    for name, text in files.items():
        (directory / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The published warehouse after the two runs."""
    base = tmp_path_factory.mktemp("explain")
    rules = base / "rules"
    rules.mkdir()
    (rules / "hr_import.yaml").write_text(HR_IMPORT)
    (rules / "audiences.yaml").write_text(AUDIENCES)
    path = base / "warehouse.duckdb"
    day1 = _feeds(base / "day1", USERS, JOBS, ORG + TEMP_ORG)
    # Day 2: U5 moved to York, U4 to Wellington, U8 joined in Leeds, U7 left the full feed
    # (on_remove: delete) and so did O5, which breaks temp_or_auckland.
    users_2 = {
        **USERS,
        "U4": USERS["U4"].replace("Auckland", "Wellington"),
        "U5": USERS["U5"].replace("Leeds", "York"),
    }
    users_2["U8"] = "U8,newbie,Nia,New,nia@example.com,Leeds,GB,Permanent"
    del users_2["U7"]
    jobs_2 = {k: v for k, v in JOBS.items() if k != "U7"}
    day2 = _feeds(base / "day2", users_2, jobs_2, ORG)
    for directory, as_of in ((day1, RUN_1), (day2, RUN_2)):
        request = RunRequest(
            feeds=directory, rules=rules, warehouse=path, as_of=parse_as_of(as_of, "UTC")
        )
        result = run_pipeline(request)
        assert result.status == "succeeded", result.message
    return path


@pytest.fixture
def con(warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    with open_published(warehouse_paths(warehouse)) as connection:
        yield connection


def _leaves(node: NodeResult) -> list[NodeResult]:
    if not node.children:
        return [node]
    return [leaf for child in node.children for leaf in _leaves(child)]


def _text(explanation: AudienceExplanation) -> str:
    return "\n".join(render_text(explanation))


def _members(con: duckdb.DuckDBPyConnection) -> set[tuple[str, str]]:
    return set(con.execute("select audience_id, user_id from fct_audience_membership").fetchall())


# --- the deciding rule and value --------------------------------------------------------------


def test_nested_tree_names_the_failing_branch_and_values(con: duckdb.DuckDBPyConnection) -> None:
    """U4 (Wellington, NZ) fails the `any` branch: both values are shown; the rest holds."""
    result = explain_audience(con, "U4", "finance_locals")
    assert result.tree is not None and result.tree.kind == "all"
    assert result.tree.holds is False and result.verdict.is_member is False
    any_node, not_node, org_node = result.tree.children
    assert (any_node.kind, any_node.holds) == ("any", False)
    assert [c.evidence for c in any_node.children] == ["city = 'Wellington'", "country = 'NZ'"]
    assert not_node.holds is True
    assert not_node.children[0].evidence == "custom:employeetype = 'Permanent'"
    assert org_node.holds is True and org_node.evidence == "jobs in O3 (below O2)"
    text = _text(result)
    assert "✗ city equals [Leeds]  — city = 'Wellington'" in text
    assert "✓ organisation in [O2] (+children)  — jobs in O3 (below O2)" in text
    assert "verdict: ✗ not a member" in text


def test_not_node_decides_for_a_contractor(con: duckdb.DuckDBPyConnection) -> None:
    """U3 is in Leeds and below Finance, but a contractor: the `not` branch fails."""
    result = explain_audience(con, "U3", "finance_locals")
    assert result.tree is not None
    _, not_node, _ = result.tree.children
    assert not_node.holds is False and not_node.children[0].holds is True
    assert not_node.children[0].evidence == "custom:employeetype = 'Contractor'"
    assert result.verdict.is_member is False


def test_member_shows_joined_at(con: duckdb.DuckDBPyConnection) -> None:
    result = explain_audience(con, "U2", "finance_locals")
    assert result.tree is not None and result.tree.holds is True
    assert result.verdict.is_member is True
    assert result.verdict.joined_at is not None
    assert "verdict: ✓ member since 2026-01-01T06:00:00Z" in _text(result)


def test_negated_organisation_with_children(con: duckdb.DuckDBPyConnection) -> None:
    """negate + include_children: a job below O2 fails it; no job at all passes it."""
    inside = explain_audience(con, "U3", "outside_finance")
    assert inside.tree is not None and inside.tree.holds is False
    assert inside.tree.rule == "organisation not in [O2] (+children)"
    assert inside.tree.evidence == "jobs in O3 (below O2)"
    jobless = explain_audience(con, "U6", "outside_finance")
    assert jobless.tree is not None and jobless.tree.holds is True
    assert jobless.tree.evidence == "no job"
    assert jobless.verdict.is_member is True


def test_member_of_and_direct_reports(con: duckdb.DuckDBPyConnection) -> None:
    result = explain_audience(con, "U2", "finance_managers")
    assert result.tree is not None
    member_of, reports = result.tree.children
    assert member_of.holds is True and member_of.evidence == "member of finance_locals"
    assert reports.holds is True and reports.evidence == "1 direct report(s): U3"
    assert result.verdict.is_member is True
    outsider = explain_audience(con, "U1", "finance_managers")
    assert outsider.tree is not None
    assert outsider.tree.children[0].evidence == "member of none of [finance_locals]"
    assert outsider.tree.holds is False


def test_not_member_of(con: duckdb.DuckDBPyConnection) -> None:
    listed = explain_audience(con, "U1", "not_pilot")
    assert listed.tree is not None and listed.tree.holds is False
    leaf = listed.tree.children[1]
    assert (leaf.rule, leaf.holds, leaf.evidence) == (
        "not a member of any of [pilot]",
        False,
        "member of pilot",
    )
    other = explain_audience(con, "U4", "not_pilot")
    assert other.tree is not None and other.tree.holds is True


def test_reports_to_and_job_title(con: duckdb.DuckDBPyConnection) -> None:
    result = explain_audience(con, "U5", "ceo_team")
    assert result.tree is not None
    reports_to, title = result.tree.children
    assert reports_to.holds is True and reports_to.evidence == "direct manager(s): U1"
    assert title.holds is False and title.evidence == "job J1 title = 'Sales Lead'"


def test_date_leaf_shows_value_and_window(con: duckdb.DuckDBPyConnection) -> None:
    """last_access within 30 days of 1 Mar: the window is printed with the user's value."""
    result = explain_audience(con, "U3", "recently_seen")
    assert result.tree is not None and result.tree.holds is True
    assert result.tree.evidence == "last access 2026-02-25T10:00:00Z"
    assert "2026-01-30" in result.tree.bounds and "2026-03-01" in result.tree.bounds
    stale = explain_audience(con, "U1", "recently_seen")
    assert stale.tree is not None and stale.tree.holds is False
    assert stale.tree.evidence == "last access 2025-12-30T10:00:00Z"
    never = explain_audience(con, "U6", "recently_seen")
    assert never.tree is not None and never.tree.evidence == "last access never"


def test_course_completion_ignores_completions_after_the_as_of(
    con: duckdb.DuckDBPyConnection,
) -> None:
    result = explain_audience(con, "U4", "inducted")
    assert result.tree is not None and result.tree.holds is False
    assert result.tree.evidence == "C1 completed 2025-12-20T09:00:00Z; C2 not completed"
    assert result.tree.bounds == "counts from … to 2026-03-01T06:00:00Z"
    done = explain_audience(con, "U2", "inducted")
    assert done.tree is not None and done.tree.holds is True and done.verdict.is_member


def test_static_audience(con: duckdb.DuckDBPyConnection) -> None:
    listed = explain_audience(con, "U6", "pilot")
    assert listed.tree is None and listed.verdict.rule_holds is True
    assert listed.verdict.is_member is True
    assert "listed as a member of this static audience" in _text(listed)
    assert explain_audience(con, "U2", "pilot").verdict.is_member is False


# --- verdicts that differ from the rules ------------------------------------------------------


def test_frozen_window_keeps_the_old_member(con: duckdb.DuckDBPyConnection) -> None:
    """U5 moved to York after January: the rule fails, the frozen audience keeps them."""
    moved = explain_audience(con, "U5", "leeds_window")
    assert moved.state == "outside window"
    assert moved.verdict.rule_holds is False and moved.verdict.is_member is True
    assert "window" in moved.verdict.reasons[0] and "frozen" in moved.verdict.reasons[0]
    assert not moved.verdict.warnings
    newcomer = explain_audience(con, "U8", "leeds_window")
    assert newcomer.verdict.rule_holds is True and newcomer.verdict.is_member is False
    assert "frozen" in newcomer.verdict.reasons[0]


def test_add_only_keeps_a_member_who_no_longer_matches(con: duckdb.DuckDBPyConnection) -> None:
    result = explain_audience(con, "U5", "leeds_add_only")
    assert result.state == "add-only"
    assert result.verdict.rule_holds is False and result.verdict.is_member is True
    assert "remove_members is off" in _text(result)


def test_paused_audience(con: duckdb.DuckDBPyConnection) -> None:
    result = explain_audience(con, "U2", "leeds_paused")
    assert result.state == "paused"
    assert result.verdict.rule_holds is True and result.verdict.is_member is False
    assert "paused" in result.verdict.reasons[0]


def test_broken_audience_keeps_its_members(con: duckdb.DuckDBPyConnection) -> None:
    """O5 left the feed: temp_or_auckland is broken and keeps U4, who moved to Wellington."""
    result = explain_audience(con, "U4", "temp_or_auckland")
    assert result.state == "broken"
    assert result.verdict.rule_holds is False and result.verdict.is_member is True
    assert "broken" in result.verdict.reasons[0] and "O5" in result.verdict.reasons[0]
    assert "because the audience is broken since run" in _text(result)
    assert not result.verdict.warnings


def test_deleted_user_is_never_a_member(con: duckdb.DuckDBPyConnection) -> None:
    """U7 was in Leeds; deleted, they leave even the frozen audience."""
    result = explain_audience(con, "U7", "leeds_window")
    assert result.user.status == "deleted"
    assert result.verdict.is_member is False
    assert result.verdict.reasons and "deleted" in result.verdict.reasons[0]
    assert not result.verdict.warnings


# --- explain never disagrees with the build ---------------------------------------------------


def test_every_verdict_equals_the_published_membership(con: duckdb.DuckDBPyConnection) -> None:
    members = _members(con)
    users = [row[0] for row in con.execute("select user_id from dim_user").fetchall()]
    audiences = [row[0] for row in con.execute("select audience_id from rules.audience").fetchall()]
    assert len(users) == 8 and len(audiences) == 12
    for user in users:
        for audience in audiences:
            result = explain_audience(con, user, audience)
            assert result.verdict.is_member == ((audience, user) in members), (user, audience)
            assert not result.verdict.warnings, (user, audience, result.verdict.warnings)
            if result.state == "evaluated" and result.user.status != "deleted":
                assert result.verdict.rule_holds == result.verdict.is_member, (user, audience)


def test_drift_is_reported(con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the published membership ever disagreed with the rules, explain says so."""
    import flows.explain as explain_module

    monkeypatch.setattr(explain_module, "memberships_of", lambda con, user_id: {})
    result = explain_audience(con, "U2", "finance_locals")
    assert result.verdict.warnings and "drift" in result.verdict.warnings[0]
    assert "warning: drift" in _text(result)


# --- every audience of a user, errors, CLI ----------------------------------------------------


def test_user_overview_lists_memberships_with_rule_verdicts(con: duckdb.DuckDBPyConnection) -> None:
    overview = explain_user(con, "U5")
    by_id = {line.audience_id: line for line in overview.memberships}
    expected = {a for a, u in _members(con) if u == "U5"}
    assert set(by_id) == expected
    assert by_id["leeds_add_only"].rule_holds is False  # kept by remove_members: false
    assert "add-only" in by_id["leeds_add_only"].rule
    assert by_id["ceo_team"].rule_holds is True
    text = "\n".join(render_text(overview))
    assert "ceo_team" in text and "rule ✓ any of (2)" in text


def test_unknown_user_and_audience_suggest(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(ExplainError, match=r"no user 'U55' in the published warehouse"):
        explain_audience(con, "U55", "pilot")
    with pytest.raises(ExplainError, match=r"no audience 'finance_local'.*'finance_locals'"):
        explain_audience(con, "U1", "finance_local")


def test_username_is_accepted(con: duckdb.DuckDBPyConnection) -> None:
    assert explain_audience(con, "pay2", "finance_locals").user.user_id == "U4"


def test_cli_text_json_and_errors(warehouse: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["explain", "U4", "--audience", "finance_locals", "--warehouse", str(warehouse)]
    text = runner.invoke(main, args)
    assert text.exit_code == 0, text.output
    assert "✗ any of (2)" in text.output
    as_json = runner.invoke(main, [*args, "--json"])
    assert as_json.exit_code == 0
    data = json.loads(as_json.output)
    assert data["verdict"]["is_member"] is False and data["tree"]["kind"] == "all"
    unknown = runner.invoke(main, ["explain", "U44", "--warehouse", str(warehouse)])
    assert unknown.exit_code == 1
    assert "no user 'U44' in the published warehouse; did you mean" in unknown.output
    missing = runner.invoke(main, ["explain", "U4", "--warehouse", str(tmp_path / "no.duckdb")])
    assert missing.exit_code == 1
    assert "no published warehouse at" in missing.output
    assert len(missing.output.strip().splitlines()) == 1


def test_explain_never_writes(warehouse: Path) -> None:
    before = warehouse.stat().st_mtime_ns, warehouse.read_bytes()
    runner = CliRunner()
    runner.invoke(
        main, ["explain", "U2", "--audience", "finance_managers", "--warehouse", str(warehouse)]
    )
    assert (warehouse.stat().st_mtime_ns, warehouse.read_bytes()) == before


def test_cli_imports_stay_light(warehouse: Path) -> None:
    """explain starts neither Prefect nor dbt: a fresh interpreter never imports them."""
    import subprocess

    code = (
        "import sys; from flows.cli import main\n"
        f"try: main(['explain', 'U2', '--warehouse', {str(warehouse)!r}])\n"
        "except SystemExit: pass\n"
        "print(sorted(m for m in ('prefect', 'dbt', 'flows.build') if m in sys.modules))"
    )
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr
    print(f"explain in a fresh interpreter: {time.perf_counter() - started:.2f} s")


def test_render_json_round_trips(con: duckdb.DuckDBPyConnection) -> None:
    data = json.loads(render_json(explain_user(con, "U2")))
    assert data["user"]["user_id"] == "U2"
    assert {m["audience_id"] for m in data["memberships"]} >= {"finance_locals"}
