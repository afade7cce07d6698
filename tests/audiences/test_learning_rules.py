"""program_completion and certification_state audience rules (docs/audiences.md).

A small organisation of its own, run twice: program completion is the content's completion
in this run; certification state is the last published run's, so the second run sees the
certificates the first one derived.
"""

from __future__ import annotations

import duckdb
import pytest

from flows.pipeline import RunRequest, parse_as_of, run_pipeline

USERS = """\
idnumber,username,firstname,lastname,email
L1,l1,Lee,One,l1@example.com
L2,l2,Lee,Two,l2@example.com
L3,l3,Lee,Three,l3@example.com
L4,l4,Lee,Four,l4@example.com
"""
COURSES = "idnumber,fullname\nA,Course A\nB,Course B\nS,Safety\n"
# L1 completed A and B (the program), L2 only A; L3 completed the certification's course
# long ago (expired by now), L4 recently (certified).
COMPLETIONS = """\
useridnumber,courseidnumber,timecompleted
L1,A,2026-01-05
L1,B,2026-02-10
L2,A,2026-01-05
L3,S,2024-01-10
L4,S,2026-02-01
"""
PROGRAMS = """\
programs:
  - id: basics
    name: Basics
    content:
      - {kind: all, courses: [A]}
      - then
      - {kind: all, courses: [B]}
    assignments:
      - users: [L1]
  - id: a_and_optional
    name: A, and an optional B
    content:
      - {kind: all, courses: [A]}
      - and
      - {kind: optional, courses: [B]}
    assignments:
      - users: [L1]
"""
CERTIFICATIONS = """\
certifications:
  - id: safety
    name: Safety
    primary:
      - {kind: all, courses: [S]}
    active_period: {years: 1}
    window_period: {months: 1}
    assignments:
      - users: [L3, L4]
"""
AUDIENCES = """\
audiences:
  - id: basics_done
    name: Completed the basics
    kind: dynamic
    rules: {program_completion: {ids: [basics], match: all}}
  - id: basics_done_this_year
    name: Completed the basics since February
    kind: dynamic
    rules: {program_completion: {ids: [basics], match: any, completed_after: 2026-02-01}}
  - id: basics_not_done
    name: Not completed the basics
    kind: dynamic
    rules: {program_completion: {ids: [basics], match: none}}
  - id: both_done_in_january
    name: Completed both programs in January
    kind: dynamic
    rules:
      program_completion:
        ids: [basics, a_and_optional]
        match: any
        completed_before: 2026-01-31
  - id: safety_certified
    name: Certified in safety
    kind: dynamic
    rules: {certification_state: {certification: safety, states: [certified, window_open]}}
  - id: safety_expired
    name: Safety lapsed
    kind: dynamic
    rules: {certification_state: {certification: safety, states: [expired]}}
"""


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, set[str]]]:
    base = tmp_path_factory.mktemp("learning_rules")
    feeds, rules = base / "feeds", base / "rules"
    for directory, files in (
        (feeds, {"user.csv": USERS, "course.csv": COURSES, "course_completion.csv": COMPLETIONS}),
        (
            rules,
            {
                "hr_import.yaml": "defaults:\n  max_removed_fraction: 0.5\n",
                "programs.yaml": PROGRAMS,
                "certifications.yaml": CERTIFICATIONS,
                "audiences.yaml": AUDIENCES,
            },
        ),
    ):
        directory.mkdir()
        for name, text in files.items():
            (directory / name).write_text(text, encoding="utf-8")
    snapshots = []
    for as_of in ("2026-03-02T06:00:00Z", "2026-03-09T06:00:00Z"):
        request = RunRequest(
            feeds=feeds,
            rules=rules,
            warehouse=base / "w.duckdb",
            as_of=parse_as_of(as_of, "UTC"),
        )
        run_pipeline(request)
        with duckdb.connect(str(base / "w.duckdb"), read_only=True) as con:
            rows = con.execute(
                "select audience_id, user_id from fct_audience_membership"
            ).fetchall()
        snapshot: dict[str, set[str]] = {}
        for audience_id, user_id in rows:
            snapshot.setdefault(audience_id, set()).add(user_id)
        snapshots.append(snapshot)
    return snapshots


def test_program_completion_is_the_content_completed_assigned_or_not(
    members: list[dict[str, set[str]]],
) -> None:
    # L1 did A then B (complete on 10 February); L2 only A, and is not assigned anywhere
    assert members[0]["basics_done"] == {"L1"}
    assert members[0]["basics_done_this_year"] == {"L1"}
    assert members[0]["basics_not_done"] == {"L2", "L3", "L4"}
    # a_and_optional completes with A alone (5 January): the optional set does not delay it
    assert members[0]["both_done_in_january"] == {"L1", "L2"}


def test_certification_state_reads_the_last_published_run(
    members: list[dict[str, set[str]]],
) -> None:
    assert "safety_certified" not in members[0]  # nothing was published before run 1
    assert members[1]["safety_certified"] == {"L4"}
    assert members[1]["safety_expired"] == {"L3"}
