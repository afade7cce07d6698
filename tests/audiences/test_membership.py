"""Who is in each audience after run 1 (SPEC §4.1, docs/audiences.md): one case per statement.

Every audience in org.CASES is named for the statement it checks; its expected member set is
written out in full, so a rule that matches one user too many or too few fails.
"""

from __future__ import annotations

import pytest

from . import org
from .conftest import Runs, query


@pytest.mark.parametrize("case", org.CASES, ids=[case.id for case in org.CASES])
def test_run_1_members(runs: Runs, case: org.Case) -> None:
    actual = runs.members(1, case.id)
    assert actual == case.expected, (
        f"{case.id}: missing {sorted(case.expected - actual)}, "
        f"unexpected {sorted(actual - case.expected)}"
    )


def test_every_audience_is_in_the_rule_tables_and_none_is_broken_in_run_1(runs: Runs) -> None:
    audience = runs.snapshots[0].audience
    assert set(audience) == {case.id for case in org.CASES}
    assert [a for a, row in audience.items() if row["is_broken"]] == []
    assert audience["chain_a"]["stage"] == 0
    assert audience["chain_b"]["stage"] == 1
    assert audience["chain_c"]["stage"] == 2
    assert audience["static_inline_list"]["kind"] == "static"
    assert audience["dynamic_without_rules_has_no_members"]["kind"] == "dynamic"


def test_suspended_user_stays_a_member(runs: Runs) -> None:
    assert query(runs.warehouse, "select status from dim_user where user_id = 'U11'") == [
        ("suspended",)
    ]
    for audience in ("org_o4", "city_equals_leeds_any_case", "static_inline_list", "chain_c"):
        assert "U11" in runs.members(1, audience)
        assert "U11" in runs.members(2, audience)


def test_sql_text_in_rule_values_and_data_is_only_data(runs: Runs) -> None:
    """Quotes, semicolons and `--` in a rule value and in a last name: matched as text."""
    assert query(runs.warehouse, "select last_name from dim_user where user_id = 'U13'") == [
        (org.NASTY,)
    ]
    assert query(runs.warehouse, "select count(*) from dim_user")[0][0] == 18
    for run in (1, 2, 3):
        assert runs.members(run, "lastname_equals_sql_injection_text") == {"U13"}
        assert runs.members(run, "lastname_contains_sql_injection_text") == {"U13"}
    values = {
        row[0] for row in query(runs.warehouse, "select value from rules.audience_node_value")
    }
    assert org.NASTY in values
    assert 'x"); drop table dim_user; --' in values


def test_run_1_membership_rows_are_unique_and_only_for_known_users(runs: Runs) -> None:
    rows = query(
        runs.warehouse,
        "select audience_id, user_id, count(*) from fct_audience_membership "
        "group by all having count(*) > 1",
    )
    assert rows == []
    everyone = set().union(*runs.snapshots[0].members.values())
    assert everyone <= org.EVERYONE_1
