"""Job assignments: manager jobs, self-management, management loops, dates (§3.3, §3.4)."""

from __future__ import annotations

import datetime

from .conftest import Importer

USERS = """
    idnumber,username,firstname,lastname
    boss,boss,Bea,Boss
    ann,ann,Ann,Lee
    bob,bob,Bob,Ray
"""


def jobs(importer: Importer, rows: str) -> None:
    importer.run({"user.csv": USERS, "jobassignment.csv": rows})


def job_rows(importer: Importer) -> list[tuple]:
    return importer.rows(
        "select user_id, job_id, manager_user_id, manager_job_id from hr.job_assignment "
        "order by user_id, job_id"
    )


def test_manager_job_naming_a_job_of_the_manager_is_stored(importer: Importer) -> None:
    jobs(
        importer,
        """
        idnumber,useridnumber,manageridnumber,managerjobassignmentidnumber
        j1,boss,,
        j2,boss,,
        j1,ann,boss,j2
        """,
    )

    assert importer.rejects() == []
    assert job_rows(importer) == [
        ("ann", "j1", "boss", "j2"),
        ("boss", "j1", None, None),
        ("boss", "j2", None, None),
    ]


def test_manager_job_that_does_not_exist_is_rejected(importer: Importer) -> None:
    jobs(
        importer,
        """
        idnumber,useridnumber,manageridnumber,managerjobassignmentidnumber
        j1,boss,,
        j1,ann,boss,j9
        j1,bob,ann,j1
        """,
    )

    assert importer.rejects() == [
        ("jobassignment", 3, "ann/j1", "manager_job_not_found"),
        # bob's manager job was ann/j1: rejected, so it does not exist either
        ("jobassignment", 4, "bob/j1", "manager_job_not_found"),
    ]
    assert job_rows(importer) == [("boss", "j1", None, None)]


def test_manager_without_job_stores_no_manager_job(importer: Importer) -> None:
    jobs(
        importer,
        """
        idnumber,useridnumber,manageridnumber,managerjobassignmentidnumber
        j1,boss,,
        j1,ann,boss,
        """,
    )

    assert job_rows(importer) == [("ann", "j1", "boss", None), ("boss", "j1", None, None)]


def test_unknown_manager_is_rejected(importer: Importer) -> None:
    jobs(
        importer,
        """
        idnumber,useridnumber,manageridnumber
        j1,ann,ghost
        """,
    )

    assert importer.rejects() == [("jobassignment", 2, "ann/j1", "manager_not_found")]


def test_job_of_an_unknown_user_is_rejected(importer: Importer) -> None:
    jobs(
        importer,
        """
        idnumber,useridnumber
        j1,ghost
        """,
    )

    assert importer.rejects() == [("jobassignment", 2, "ghost/j1", "user_not_found")]


def test_self_manager_is_rejected(importer: Importer) -> None:
    jobs(
        importer,
        """
        idnumber,useridnumber,manageridnumber
        j1,ann,ann
        j1,bob,
        """,
    )

    assert importer.rejects() == [("jobassignment", 2, "ann/j1", "self_manager")]
    assert job_rows(importer) == [("bob", "j1", None, None)]


def test_management_loop_rejects_both_rows(importer: Importer) -> None:
    jobs(
        importer,
        """
        idnumber,useridnumber,manageridnumber
        j1,ann,bob
        j1,bob,ann
        j1,boss,
        """,
    )

    assert importer.rejects() == [
        ("jobassignment", 2, "ann/j1", "management_cycle"),
        ("jobassignment", 3, "bob/j1", "management_cycle"),
    ]
    assert job_rows(importer) == [("boss", "j1", None, None)]


def test_management_loop_through_a_kept_manager_is_rejected(importer: Importer) -> None:
    jobs(
        importer,
        """
        idnumber,useridnumber,manageridnumber
        j1,ann,bob
        j1,bob,
        """,
    )
    # ann's empty manager cell keeps bob (empty_fields: keep), so bob -> ann closes a loop.
    jobs(
        importer,
        """
        idnumber,useridnumber,manageridnumber
        j1,ann,
        j1,bob,ann
        """,
    )

    assert importer.rejects() == [
        ("jobassignment", 2, "ann/j1", "management_cycle"),
        ("jobassignment", 3, "bob/j1", "management_cycle"),
    ]
    assert job_rows(importer) == [("ann", "j1", "bob", None), ("bob", "j1", None, None)]


def test_start_after_end_is_rejected(importer: Importer) -> None:
    jobs(
        importer,
        """
        idnumber,useridnumber,startdate,enddate
        j1,ann,2026-03-01,2026-02-01
        j1,bob,2026-02-01,2026-02-01
        """,
    )

    assert importer.rejects() == [("jobassignment", 2, "ann/j1", "start_after_end")]
    assert importer.rows("select user_id, start_date, end_date from hr.job_assignment") == [
        ("bob", datetime.date(2026, 2, 1), datetime.date(2026, 2, 1))
    ]


def test_invalid_date_is_rejected(importer: Importer) -> None:
    jobs(
        importer,
        """
        idnumber,useridnumber,startdate
        j1,ann,2026-02-30
        j1,bob,next tuesday
        j1,boss,1767225600
        """,
    )

    assert importer.rejects() == [
        ("jobassignment", 2, "ann/j1", "date_invalid"),
        ("jobassignment", 3, "bob/j1", "date_invalid"),
    ]
    assert importer.rows("select user_id, start_date::varchar from hr.job_assignment") == [
        ("boss", "2026-01-01")
    ]


def test_new_manager_without_job_drops_the_old_managers_job(importer: Importer) -> None:
    jobs(
        importer,
        """
        idnumber,useridnumber,manageridnumber,managerjobassignmentidnumber
        j1,boss,,
        j2,boss,,
        j2,bob,,
        j1,ann,boss,j2
        """,
    )
    # bob also has a job j2: keeping "j2" would silently point ann at bob's j2.
    jobs(
        importer,
        """
        idnumber,useridnumber,manageridnumber,managerjobassignmentidnumber
        j1,boss,,
        j2,boss,,
        j2,bob,,
        j1,ann,bob,
        """,
    )

    assert ("ann", "j1", "bob", None) in job_rows(importer)


def test_same_manager_with_empty_job_cell_keeps_the_stored_job(importer: Importer) -> None:
    first = """
        idnumber,useridnumber,manageridnumber,managerjobassignmentidnumber
        j1,boss,,
        j2,boss,,
        j1,ann,boss,j2
    """
    jobs(importer, first)
    jobs(importer, first.replace("boss,j2", "boss,"))

    assert ("ann", "j1", "boss", "j2") in job_rows(importer)
