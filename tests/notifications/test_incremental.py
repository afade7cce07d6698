"""Incremental event derivation (docs/notifications.md, "Incremental derivation").

A run derives only the events whose trigger instant lies in its window, [the earlier of
(last published as-of, as-of - max_lateness), as-of], plus a re-check of every unsent timed
message; the outbox's dedupe key decides what is new. These runs exercise the faults that
could lose or repeat a message under that design. Site timezone UTC, max_lateness 7 days.
p1 (course A) is due at the end of 31 March 2026; `due` fires 7 days before, `overdue`
1 day after (later 20 days), `completed` at the completion.

    S1 1 Mar       go-live baseline
    S2 26 Mar      an as-of jump of 25 days: the due reminders (24 Mar) are made; no send
    S3 5 Apr       U2's completion of 30 Mar arrives; the overdue reminders (1 Apr) are
                   made; U2's and U3's due reminders (trigger before the window) are
                   cancelled by the re-check (U2 completed; U3's due date has passed); no send
    S4 15 Apr      U7 completed on 14 Apr: U7's overdue reminder, made before this run's
                   window, is cancelled; U3's, still true, stays pending; no send
    S4 again       the same inputs: nothing made, nothing moved
    S5 22 Apr      the overdue offset becomes 20 days: its new instant (20 Apr) is inside
                   this window, yet U3's reminder, made by S3, is not made again; sent now
    S6 24 Apr      a new notification `completed_again` appears; U3 completed on 20 Apr
    S7 1 May       --baseline: every current event recorded, the new notification's old
                   completions included, all `suppressed`

People (test_outbox's organisation): M1 manages U1-U7, U5 has no address.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from flows.pipeline import RunRequest, RunResult, parse_as_of, run_pipeline
from tests.notifications.test_outbox import (
    HR_IMPORT_YAML,
    _write,
    key,
    outbox,
    write_feeds,
    write_templates,
)

LEARNERS = ("U1", "U2", "U3", "U5", "U7")

COMPLETED = {
    "U2": "U2,A,2026-03-30T10:00:00Z\n",
    "U7": "U7,A,2026-04-14T10:00:00Z\n",
    "U3": "U3,A,2026-04-20T10:00:00Z\n",
}


@dataclass(frozen=True)
class Run:
    name: str
    as_of: str
    completions: tuple[str, ...] = ()
    overdue_offset_days: int = 1
    extra_notification: bool = False
    send: bool = False
    baseline: bool = False


RUNS = (
    Run("S1", "2026-03-01T06:00:00Z"),
    Run("S2", "2026-03-26T06:00:00Z"),
    Run("S3", "2026-04-05T06:00:00Z", completions=("U2",)),
    Run("S4", "2026-04-15T06:00:00Z", completions=("U2", "U7")),
    Run("S4 again", "2026-04-15T06:00:00Z", completions=("U2", "U7")),
    Run("S5", "2026-04-22T06:00:00Z", completions=("U2", "U7"), overdue_offset_days=20, send=True),
    Run(
        "S6",
        "2026-04-24T06:00:00Z",
        completions=("U2", "U7", "U3"),
        overdue_offset_days=20,
        extra_notification=True,
        send=True,
    ),
    Run(
        "S7",
        "2026-05-01T06:00:00Z",
        completions=("U2", "U7", "U3"),
        overdue_offset_days=20,
        extra_notification=True,
        baseline=True,
    ),
)


def programs_yaml() -> str:
    return f"""\
programs:
  - id: p1
    name: Safety basics
    content:
      - {{kind: all, courses: [A]}}
    assignments:
      - users: [{", ".join(LEARNERS)}]
        due: {{date: 2026-03-31}}
"""


def notifications_yaml(run: Run) -> str:
    extra = (
        """\
  - id: completed_again
    trigger: program_completed
    scope: all
    recipients: [learner]
    template: completed
"""
        if run.extra_notification
        else ""
    )
    return f"""\
settings:
  sender: {{address: learning@example.com}}
notifications:
  - id: due
    trigger: program_due
    offset: {{days: 7}}
    scope: all
    recipients: [learner]
    template: due
  - id: overdue
    trigger: program_overdue
    offset: {{days: {run.overdue_offset_days}}}
    scope: all
    recipients: [learner]
    template: overdue
  - id: completed
    trigger: program_completed
    scope: all
    recipients: [learner]
    template: completed
{extra}"""


def run_once(base: Path, warehouse: Path, run: Run, index: int) -> RunResult:
    feeds = write_feeds(base / f"feeds{index}", "".join(COMPLETED[u] for u in run.completions))
    rules = _write(
        base / f"rules{index}",
        {
            "hr_import.yaml": HR_IMPORT_YAML,
            "programs.yaml": programs_yaml(),
            "notifications.yaml": notifications_yaml(run),
        },
    )
    result = run_pipeline(
        RunRequest(
            feeds=feeds,
            rules=rules,
            warehouse=warehouse,
            as_of=parse_as_of(run.as_of, "UTC"),
            templates_dir=base / "templates",
            send=run.send,
            baseline=run.baseline,
        )
    )
    assert result.status == "succeeded", f"{run.name}: {result.message}"
    return result


@dataclass
class Observed:
    results: dict[str, RunResult] = field(default_factory=dict)
    outboxes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def created_by(self, run: str) -> dict[tuple[str, ...], dict[str, Any]]:
        run_id = self.results[run].run_id
        return {key(r): r for r in self.outboxes[run] if r["created_run_id"] == run_id}

    def status_after(self, run: str) -> dict[tuple[str, ...], str]:
        return {key(r): r["status"] for r in self.outboxes[run]}

    def rows_of(self, run: str, notification: str, user: str) -> list[dict[str, Any]]:
        return [
            r
            for r in self.outboxes[run]
            if r["notification_id"] == notification and r["user_id"] == user
        ]


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Observed:
    base = tmp_path_factory.mktemp("notifications_incremental")
    write_templates(base / "templates")
    warehouse = base / "warehouse.duckdb"
    seen = Observed()
    for index, run in enumerate(RUNS):
        seen.results[run.name] = run_once(base, warehouse, run, index)
        seen.outboxes[run.name] = outbox(warehouse)
    return seen


def test_an_as_of_jump_makes_the_reminders_whose_instant_it_passed(observed: Observed) -> None:
    created = observed.created_by("S2")
    due = {k[1]: r["status"] for k, r in created.items() if k[0] == "due"}
    # trigger 24 Mar 23:59:59, inside (1 Mar, 26 Mar]: made, within max_lateness
    assert due == {"U1": "pending", "U2": "pending", "U3": "pending", "U7": "pending",
                   "U5": "no_address"}  # fmt: skip


def test_a_late_completion_inside_max_lateness_is_an_event(observed: Observed) -> None:
    # completed 30 Mar, first seen by S3 (5 Apr): after S2's as-of, and within
    # max_lateness of S3's, so it is derived and can be sent
    created = observed.created_by("S3")
    assert created[("completed", "U2", "p1", "U2")]["status"] == "pending"


def test_unsent_reminders_before_the_window_are_rechecked_and_cancelled(
    observed: Observed,
) -> None:
    after = observed.status_after("S3")
    assert after[("due", "U2", "p1", "U2")] == "cancelled"  # completed
    assert after[("due", "U3", "p1", "U3")] == "cancelled"  # as-of past the due date
    overdue = {k[1]: r["status"] for k, r in observed.created_by("S3").items() if k[0] == "overdue"}
    assert overdue == {"U1": "pending", "U3": "pending", "U7": "pending", "U5": "no_address"}


def test_a_recheck_keeps_what_still_holds_and_cancels_what_does_not(observed: Observed) -> None:
    # the overdue reminders' instant (1 Apr 23:59:59) is before S4's window (8 Apr on)
    after = observed.status_after("S4")
    assert after[("overdue", "U7", "p1", "U7")] == "cancelled"  # completed 14 Apr
    assert after[("overdue", "U3", "p1", "U3")] == "pending"
    assert after[("overdue", "U1", "p1", "U1")] == "pending"
    assert observed.created_by("S4")[("completed", "U7", "p1", "U7")]["status"] == "pending"


def test_a_rerun_with_the_same_inputs_changes_nothing(observed: Observed) -> None:
    assert observed.created_by("S4 again") == {}
    assert observed.status_after("S4 again") == observed.status_after("S4")


def test_an_offset_moving_the_instant_into_the_window_does_not_remake(
    observed: Observed,
) -> None:
    # overdue now fires 20 days after the due date: 20 Apr, inside S5's window
    assert not [k for k in observed.created_by("S5") if k[0] == "overdue"]
    rows = observed.rows_of("S5", "overdue", "U3")
    assert [(r["status"], r["created_run_id"]) for r in rows] == [
        ("sent", observed.results["S3"].run_id)
    ]
    # what was pending went out once, and nothing was cancelled by the edit
    assert observed.status_after("S5")[("overdue", "U1", "p1", "U1")] == "sent"


def test_a_new_notification_sends_what_is_not_too_late(observed: Observed) -> None:
    created = observed.created_by("S6")
    assert created[("completed_again", "U3", "p1", "U3")]["status"] == "sent"
    assert created[("completed", "U3", "p1", "U3")]["status"] == "sent"
    # completions older than max_lateness (U2 30 Mar, U7 14 Apr) would only be
    # skipped_late: they are not derived at all
    assert {k[1] for k in created if k[0] == "completed_again"} == {"U3"}


def test_the_baseline_records_every_current_event_suppressed(observed: Observed) -> None:
    created = observed.created_by("S7")
    assert created, "the baseline records the events no run recorded before"
    assert {r["status"] for r in created.values()} == {"suppressed"}
    again = {k[1] for k in created if k[0] == "completed_again"}
    assert again == {"U2", "U7"}
    # nothing made before is made again, and nothing unsent is lost
    before = {r["message_id"] for r in observed.outboxes["S6"]}
    assert not before & {r["message_id"] for r in created.values()}


def test_the_outbox_carries_each_keys_digest(observed: Observed) -> None:
    rows = observed.outboxes["S7"]
    assert all(isinstance(r["dedupe_hash"], int) for r in rows)
    assert len({r["dedupe_hash"] for r in rows}) == len({r["dedupe_key"] for r in rows})
    anchors = {r["anchor_at"] for r in rows if r["notification_id"] == "overdue"}
    assert anchors == {dt.datetime(2026, 3, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)}
