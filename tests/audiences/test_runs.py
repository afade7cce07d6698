"""What runs 2 and 3 change (SPEC §4.1, docs/audiences.md "From matched users to members").

Between run 1 (A1) and run 2 (A2, a week later): U12 is deleted, U14 moves O4 -> O5, U18
joins O4, O6 is removed, and the admins switch off `add_members` of remove_only_in_run_2 and
both switches of paused_in_run_2. Run 3 repeats run 2 with the same inputs and as-of.
"""

from __future__ import annotations

import pytest

from . import org
from .conftest import Runs, query
from .org import A1, A2, O4_PEOPLE, users

O4_AFTER_MOVES = users("4 5 6 11 18")  # who holds a job in O4 in run 2


def test_all_three_runs_succeeded(runs: Runs) -> None:
    rows = query(runs.warehouse, "select status from pipeline_run order by started_at")
    assert rows == [("succeeded",)] * 3


@pytest.mark.parametrize(
    ("audience", "run_2_members"),
    [
        pytest.param("org_o4", O4_AFTER_MOVES, id="org_o4_after_moves"),
        pytest.param("org_o5", users("6 8 10 13 14"), id="org_o5_after_moves"),
        pytest.param("everyone_by_idnumber_not_empty", org.EVERYONE_2, id="everyone"),
        # frozen: keeps its run-1 members (U14 moved away, U18 not added); deleted U12 leaves
        pytest.param(
            "window_until_as_of_day_is_open_then_frozen",
            O4_PEOPLE - users("12"),
            id="window_closed_between_runs_keeps_members",
        ),
        pytest.param("window_from_future_is_frozen_empty", frozenset(), id="window_not_yet_open"),
        pytest.param("window_opening_on_run_2_day", O4_AFTER_MOVES, id="window_opens_on_as_of_day"),
        pytest.param("paused_in_run_2", O4_PEOPLE - users("12"), id="paused_keeps_members"),
        pytest.param("member_of_paused", O4_PEOPLE - users("12"), id="member_of_paused_audience"),
        pytest.param(
            "add_only", (O4_PEOPLE - users("12")) | users("18"), id="add_only_keeps_leavers"
        ),
        pytest.param("remove_only_in_run_2", users("4 5 6 11"), id="remove_only_never_adds"),
        pytest.param("remove_only_from_the_start_never_adds", frozenset(), id="remove_only_empty"),
        pytest.param("static_inline_list", users("9 11 16"), id="static_list_drops_deleted"),
        pytest.param("static_members_file", users("1 5"), id="static_file_unchanged"),
        # member_of sees this run's members: U18 joins chain_a, chain_b and chain_c at once
        pytest.param("chain_a", (org.SALES - users("12")) | users("18"), id="chain_a"),
        pytest.param("chain_b", users("2 3 4 11 14 18"), id="chain_b"),
        pytest.param("chain_c", users("4 11 14 18"), id="chain_c_dependency_order"),
        pytest.param(
            "not_member_of_chain_b", org.EVERYONE_2 - users("2 3 4 11 14 18"), id="not_member_of"
        ),
        pytest.param("broken_when_o6_is_removed", users("15"), id="broken_keeps_members"),
        pytest.param("member_of_broken", users("15"), id="member_of_broken_sees_kept_members"),
        pytest.param("dynamic_without_rules_has_no_members", frozenset(), id="no_rules"),
    ],
)
def test_run_2_members(runs: Runs, audience: str, run_2_members: frozenset[str]) -> None:
    actual = runs.members(2, audience)
    assert actual == run_2_members, (
        f"{audience}: missing {sorted(run_2_members - actual)}, "
        f"unexpected {sorted(actual - run_2_members)}"
    )


def test_run_1_records_one_join_per_member_with_its_run_and_as_of(runs: Runs) -> None:
    expected = {
        (audience, user, "joined")
        for audience, members in runs.snapshots[0].members.items()
        for user in members
    }
    assert runs.events_of(1) == expected
    run_1 = [e for e in runs.events if e[3] == runs.run_id(1)]
    assert {e[4] for e in run_1} == {A1}
    assert len(run_1) == len(expected)  # one event per user, no duplicates


def test_events_replay_membership_from_run_to_run(runs: Runs) -> None:
    """Members after run N = members after run N-1 + joined in run N - left in run N."""
    run_ids = {runs.run_id(n) for n in (1, 2, 3)}
    assert {e[3] for e in runs.events} <= run_ids
    assert {e[2] for e in runs.events} <= {"joined", "left"}
    for number in (2, 3):
        events = runs.events_of(number)
        for case in org.CASES:
            before, after = runs.members(number - 1, case.id), runs.members(number, case.id)
            joined = {u for a, u, e in events if a == case.id and e == "joined"}
            left = {u for a, u, e in events if a == case.id and e == "left"}
            assert joined == after - before, (number, case.id)
            assert left == before - after, (number, case.id)
    run_2 = [e for e in runs.events if e[3] == runs.run_id(2)]
    assert run_2, "run 2 must record events"
    assert {e[4] for e in run_2} == {A2}


def test_a_course_window_counts_back_from_each_runs_as_of(runs: Runs) -> None:
    """within_last_days 30 is A - 30 days ... A: U08's completion of 2026-03-05 lies after A1
    (ignored in run 1) and within the 30 days before A2; U06's of 2026-01-05 in neither."""
    assert runs.members(1, "courses_any_within_last_30_days") == org.users("1 2 4")
    assert runs.members(2, "courses_any_within_last_30_days") == org.users("1 2 4 8")
    assert runs.members(2, "courses_none_within_last_30_days") == (
        org.EVERYONE_2 - org.users("1 2 4 8")
    )
    assert runs.events_of(2) >= {
        ("courses_any_within_last_30_days", "U08", "joined"),
        ("courses_none_within_last_30_days", "U08", "left"),
    }


def test_user_moving_organisation_leaves_one_audience_and_joins_another(runs: Runs) -> None:
    events = runs.events_of(2)
    assert {(u, e) for a, u, e in events if a == "org_o4"} == {
        ("U12", "left"),
        ("U14", "left"),
        ("U18", "joined"),
    }
    assert {(u, e) for a, u, e in events if a == "org_o5"} == {("U14", "joined")}
    moves = [
        (a, e, run_id, as_of)
        for a, u, e, run_id, as_of in runs.events
        if u == "U14" and a in ("org_o4", "org_o5") and run_id != runs.run_id(1)
    ]
    assert sorted(moves) == [
        ("org_o4", "left", runs.run_id(2), A2),
        ("org_o5", "joined", runs.run_id(2), A2),
    ]


def test_deleted_user_is_never_a_member_and_leaves_with_an_event(runs: Runs) -> None:
    assert query(runs.warehouse, "select status from dim_user where user_id = 'U12'") == [
        ("deleted",)
    ]
    was_in = {a for a, members in runs.snapshots[0].members.items() if "U12" in members}
    assert "window_until_as_of_day_is_open_then_frozen" in was_in  # frozen: still leaves
    assert "paused_in_run_2" in was_in and "add_only" in was_in
    for number in (2, 3):
        assert {a for a, m in runs.snapshots[number - 1].members.items() if "U12" in m} == set()
    assert {(a, e) for a, u, e in runs.events_of(2) if u == "U12"} == {(a, "left") for a in was_in}


def test_joined_at_is_kept_for_members_who_stay(runs: Runs) -> None:
    first, second, third = (snapshot.joined_at for snapshot in runs.snapshots)
    assert set(first.values()) == {A1}
    for key, joined in second.items():
        assert joined == (A1 if key in first else A2), key
    assert second[("org_o4", "U04")] == A1
    assert second[("org_o4", "U18")] == A2
    assert second[("org_o5", "U14")] == A2
    assert second[("paused_in_run_2", "U14")] == A1
    assert third == second


def test_unchanged_third_run_records_no_event_and_changes_no_membership(runs: Runs) -> None:
    assert runs.events_of(3) == set()
    assert runs.snapshots[2].members == runs.snapshots[1].members
    assert runs.snapshots[2].joined_at == runs.snapshots[1].joined_at


def test_audience_whose_organisation_hr_removed_is_broken_and_kept(runs: Runs) -> None:
    second, third = runs.snapshots[1].audience, runs.snapshots[2].audience
    broken = second["broken_when_o6_is_removed"]
    assert broken["is_broken"] is True
    assert "O6" in (broken["broken_reason"] or "")
    assert broken["broken_since_run_id"] == runs.run_id(2)
    assert third["broken_when_o6_is_removed"]["is_broken"] is True
    assert third["broken_when_o6_is_removed"]["broken_since_run_id"] == runs.run_id(2)
    for audience in (
        "org_o4",
        "org_o5",
        "chain_c",
        "organisation_include_children_two_levels_below",
    ):
        assert second[audience]["is_broken"] is False, audience
    assert runs.members(2, "broken_when_o6_is_removed") == {"U15"}
    assert runs.members(3, "broken_when_o6_is_removed") == {"U15"}
    assert {e for e in runs.events_of(2) if e[0] == "broken_when_o6_is_removed"} == set()
    assert runs.snapshots[1].run.status == "succeeded"
    # the admins are told once: on the run where it broke
    assert "broken_when_o6_is_removed" in runs.snapshots[1].run.message
    assert "broken_when_o6_is_removed" not in runs.snapshots[2].run.message


def test_window_flag_follows_the_as_of_day(runs: Runs) -> None:
    first, second = runs.snapshots[0].audience, runs.snapshots[1].audience
    closing = "window_until_as_of_day_is_open_then_frozen"
    opening = "window_opening_on_run_2_day"
    assert (first[closing]["is_in_window"], second[closing]["is_in_window"]) == (True, False)
    assert (first[opening]["is_in_window"], second[opening]["is_in_window"]) == (False, True)
    assert first["window_from_future_is_frozen_empty"]["is_in_window"] is False
