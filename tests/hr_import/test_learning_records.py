"""Courses and course completions: references and the completion history (§3.1)."""

from __future__ import annotations

import datetime

from .conftest import Importer

BASE = {
    "user.csv": """
        idnumber,username,firstname,lastname
        u01,ann,Ann,Lee
    """,
    "course.csv": """
        idnumber,fullname,score
        C1,Safety,10
    """,
}


def completions(importer: Importer) -> list[tuple]:
    return importer.rows(
        "select user_id, course_id, completed_at, grade, first_seen_run_id "
        "from hr.course_completion order by completed_at"
    )


def test_completion_of_unknown_user_or_course_is_rejected(importer: Importer) -> None:
    importer.run(
        {
            **BASE,
            "course_completion.csv": """
                useridnumber,courseidnumber,timecompleted
                u01,C1,2026-01-01
                ghost,C1,2026-01-01
                u01,C9,2026-01-01
            """,
        }
    )

    assert importer.rejects() == [
        ("course_completion", 3, "ghost/C1/2026-01-01", "user_not_found"),
        ("course_completion", 4, "u01/C9/2026-01-01", "course_not_found"),
    ]
    assert completions(importer) == [("u01", "C1", datetime.datetime(2026, 1, 1), None, "r1")]


def test_same_completion_in_two_runs_is_stored_once(importer: Importer) -> None:
    feed = """
        useridnumber,courseidnumber,timecompleted,grade
        u01,C1,2026-01-01T09:30:00Z,80
    """
    importer.run({**BASE, "course_completion.csv": feed})
    importer.run({"course_completion.csv": feed})

    assert completions(importer) == [
        ("u01", "C1", datetime.datetime(2026, 1, 1, 9, 30), 80.0, "r1")
    ]


def test_completions_are_never_removed_by_absence(importer: Importer) -> None:
    importer.run(
        {
            **BASE,
            "course_completion.csv": """
                useridnumber,courseidnumber,timecompleted
                u01,C1,2025-01-01
            """,
        }
    )
    importer.run(
        {
            "course_completion.csv": """
                useridnumber,courseidnumber,timecompleted
                u01,C1,2026-01-01
            """
        }
    )

    assert [row[2].year for row in completions(importer)] == [2025, 2026]


def test_identical_duplicate_completion_rows_are_one_fact(importer: Importer) -> None:
    importer.run(
        {
            **BASE,
            "course_completion.csv": """
                useridnumber,courseidnumber,timecompleted,grade
                u01,C1,2026-01-01,75
                u01,C1,2026-01-01,75
            """,
        }
    )

    assert importer.rejects() == []
    assert completions(importer) == [("u01", "C1", datetime.datetime(2026, 1, 1), 75.0, "r1")]


def test_conflicting_duplicate_completion_rows_are_both_rejected(importer: Importer) -> None:
    importer.run(
        {
            **BASE,
            "course_completion.csv": """
                useridnumber,courseidnumber,timecompleted,grade
                u01,C1,2026-01-01,75
                u01,C1,2026-01-01,90
            """,
        }
    )

    assert importer.reject_codes() == {"u01/C1/2026-01-01": "duplicate_key"}
    assert len(importer.rejects()) == 2
    assert completions(importer) == []


def test_unix_seconds_completion_time_is_stored_as_utc(importer: Importer) -> None:
    importer.run(
        {
            **BASE,
            "course_completion.csv": """
                useridnumber,courseidnumber,timecompleted
                u01,C1,1425497497
            """,
        }
    )

    assert completions(importer)[0][2] == datetime.datetime(2015, 3, 4, 19, 31, 37)


def test_identical_invalid_completion_rows_are_one_reject(importer: Importer) -> None:
    importer.run(
        {
            **BASE,
            "course_completion.csv": """
                useridnumber,courseidnumber,timecompleted
                u01,C1,yesterday
                u01,C1,yesterday
            """,
        }
    )

    assert importer.rejects() == [("course_completion", 2, "u01/C1/yesterday", "date_invalid")]
    assert completions(importer) == []


def test_completion_time_forms_are_read_in_the_site_timezone(importer: Importer) -> None:
    importer.site_tz = "Pacific/Auckland"  # UTC+13 in January
    importer.run(
        {
            **BASE,
            "course_completion.csv": """
                useridnumber,courseidnumber,timecompleted
                u01,C1,2026-01-01
                u01,C1,2026-01-02 09:30
                u01,C1,2026-01-03T09:30:00+13:00
                u01,C1,2026-01-04T09:30:00Z
            """,
        }
    )

    assert importer.rejects() == []
    assert [row[2] for row in completions(importer)] == [  # stored as naive UTC
        datetime.datetime(2025, 12, 31, 11, 0),  # a date: the start of that day, site time
        datetime.datetime(2026, 1, 1, 20, 30),  # no zone: site time
        datetime.datetime(2026, 1, 2, 20, 30),
        datetime.datetime(2026, 1, 4, 9, 30),
    ]


HISTORY = """
    useridnumber,courseidnumber,timecompleted
    u01,C1,2026-01-01
    u02,C1,2026-01-02
"""


def test_unchanged_completion_file_is_skipped_when_nothing_new_can_resolve(
    importer: Importer,
) -> None:
    importer.run({**BASE, "course_completion.csv": HISTORY})
    importer.mark_succeeded()
    summary = importer.run({**BASE, "course_completion.csv": HISTORY})
    status = {e.element: e.status for e in summary.elements}
    assert status["course_completion"] == "unchanged"
    assert status["course"] == "unchanged"
    assert [row[:2] for row in completions(importer)] == [("u01", "C1")]
    assert importer.rows("select count(*) from learnops.import_reject_log where run_id = 'r2'") == [
        (0,)
    ]


def test_unchanged_completion_file_is_read_again_when_its_user_arrives(importer: Importer) -> None:
    importer.run({**BASE, "course_completion.csv": HISTORY})
    assert importer.reject_codes("r1") == {"u02/C1/2026-01-02": "user_not_found"}
    importer.mark_succeeded()
    with_u02 = BASE["user.csv"] + "        u02,bo,Bo,Ray\n"
    summary = importer.run({**BASE, "user.csv": with_u02, "course_completion.csv": HISTORY})
    assert {e.element: e.status for e in summary.elements}["course_completion"] == "imported"
    assert [row[:2] for row in completions(importer)] == [("u01", "C1"), ("u02", "C1")]
