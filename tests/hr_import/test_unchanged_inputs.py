"""A run whose inputs are those of the last succeeded run skips the work (SPEC §2:
repeated with the same inputs, a run changes nothing) — but only when that is safe."""

from __future__ import annotations

from .conftest import Importer

FILES = {
    "org.csv": """
        idnumber,fullname,parentidnumber
        O1,Head Office,
        O2,Finance,O1
    """,
    "user.csv": """
        idnumber,username,firstname,lastname,city
        u1,ann,Ann,Lee,Leeds
        u2,bo,Bo,Ray,
        u3,cy,Cy,Oh,York
    """,
    "jobassignment.csv": """
        idnumber,useridnumber,orgidnumber,manageridnumber
        J1,u1,O1,
        J1,u2,O2,u1
        J1,u3,O2,u2
    """,
}
LENIENT = "defaults:\n  max_removed_fraction: 0.5\n"


def statuses(summary) -> dict[str, str]:
    return {e.element: e.status for e in summary.elements if e.status != "missing"}


def test_same_inputs_as_the_last_succeeded_run_are_skipped(importer: Importer) -> None:
    importer.run(FILES)
    importer.mark_succeeded()
    before = importer.snapshot()
    summary = importer.run(FILES)
    assert statuses(summary) == {
        "org": "unchanged",
        "user": "unchanged",
        "jobassignment": "unchanged",
    }
    assert importer.snapshot() == before


def test_inputs_of_a_failed_run_are_not_taken_as_imported(importer: Importer) -> None:
    importer.run(FILES)  # never marked succeeded: its state was not published
    summary = importer.run(FILES)
    assert set(statuses(summary).values()) == {"imported"}


def test_changed_settings_make_the_same_file_count_again(importer: Importer) -> None:
    importer.run(FILES)
    importer.mark_succeeded()
    summary = importer.run(FILES, "defaults:\n  empty_fields: erase\n")
    assert statuses(summary)["user"] == "imported"
    assert importer.rows("select city from hr.user where user_id = 'u2'") == [(None,)]


def test_unchanged_jobs_are_reapplied_when_a_user_they_name_changes(importer: Importer) -> None:
    importer.run(FILES, LENIENT)
    importer.mark_succeeded()
    without_u3 = {**FILES, "user.csv": FILES["user.csv"].replace("u3,cy,Cy,Oh,York\n", "")}
    summary = importer.run(without_u3, LENIENT + "elements:\n  user:\n    on_remove: delete\n")
    assert statuses(summary)["jobassignment"] == "imported"
    # u3 was deleted: their job goes with them; the row naming them is now rejected.
    assert importer.rows("select user_id from hr.job_assignment order by user_id") == [
        ("u1",),
        ("u2",),
    ]
