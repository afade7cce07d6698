"""Totara's own HR Import fixture files import as fixtures/totara/README.md says (§3.1)."""

from __future__ import annotations

import datetime
import shutil
from pathlib import Path

import pytest

from .conftest import Importer

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "totara"

pytestmark = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"Totara fixtures not found at {FIXTURES}"
)


def fixture_feeds(importer: Importer, files: dict[str, str], rules: str | None = None) -> Path:
    """A feed dir holding each fixture copied under its element's file name."""
    feeds = importer.feeds({}, rules)
    for fixture, target in files.items():
        shutil.copyfile(FIXTURES / fixture, feeds / target)
    return feeds


def test_user_all_1_imports_three_users_with_unix_timemodified(importer: Importer) -> None:
    importer.run(feeds_dir=fixture_feeds(importer, {"user_all_1.csv": "user.csv"}))

    assert importer.rejects() == []
    assert importer.rows(
        "select user_id, username, first_name, last_name, email, time_modified, status "
        "from hr.user order by user_id"
    ) == [
        ("imp001", "import001", "Import", "User001", "imp001@local.host", 1425497497, "active"),
        ("imp002", "import002", "Import", "User002", "imp002@local.host", 1425497497, "active"),
        ("imp003", "import003", "Import", "User003", "imp003@local.host", 1425497497, "active"),
    ]


def test_organisations_parent_sanity_check_1_imports_a_two_level_tree(importer: Importer) -> None:
    importer.run(
        feeds_dir=fixture_feeds(importer, {"organisations_parent_sanity_check_1.csv": "org.csv"})
    )

    assert importer.rejects() == []
    assert importer.rows(
        "select organisation_id, name, framework_id, parent_id, time_modified "
        "from hr.organisation order by organisation_id"
    ) == [
        ("O1", "org1", "OF1", None, 0),
        ("O2", "org1a", "OF1", "O1", 0),
        ("O3", "org1b", "OF1", "O1", 0),
        ("O4", "org2", "OF1", None, 0),
    ]


def test_organisations_parent_sanity_check_2_is_valid_as_a_delta(importer: Importer) -> None:
    delta = "elements: {org: {mode: delta}}\n"
    importer.run(
        feeds_dir=fixture_feeds(
            importer, {"organisations_parent_sanity_check_1.csv": "org.csv"}, delta
        )
    )
    importer.run(
        feeds_dir=fixture_feeds(
            importer, {"organisations_parent_sanity_check_2.csv": "org.csv"}, delta
        )
    )

    assert importer.rejects() == []
    assert importer.orgs() == {"O1": None, "O2": "O1", "O3": "O1", "O4": None, "O5": "O4"}


def test_organisations_parent_sanity_check_2_is_parent_not_found_in_full_mode(
    importer: Importer,
) -> None:
    importer.run(
        feeds_dir=fixture_feeds(importer, {"organisations_parent_sanity_check_1.csv": "org.csv"})
    )
    importer.run(
        feeds_dir=fixture_feeds(importer, {"organisations_parent_sanity_check_2.csv": "org.csv"}),
        allow_mass_removal=frozenset({"org"}),
    )

    # A full file holds every record: O4 is live but absent from this file.
    assert importer.rejects() == [("org", 2, "O5", "parent_not_found")]
    assert importer.rows("select reason from learnops.import_reject_log where run_id = 'r2'") == [
        ("parent 'O4' is not in this file: add it or correct parentidnumber",)
    ]


def test_organisations_with_tab_delimiter_import_with_the_delimiter_setting(
    importer: Importer,
) -> None:
    rules = 'elements: {org: {csv: {delimiter: "\\t"}}}\n'
    importer.run(
        feeds_dir=fixture_feeds(
            importer, {"organisations-with-tab-delimiter.csv": "org.csv"}, rules
        )
    )

    assert importer.rejects() == []
    assert importer.rows(
        "select organisation_id, name, framework_id from hr.organisation order by 1"
    ) == [
        ("O1", "Organisation 1", "OF1"),
        ("O2", "Organisation 2", "OF1"),
        ("O3", "Organisation 3", "OF1"),
    ]


def test_organisations_file_can_keep_its_name_with_the_file_setting(importer: Importer) -> None:
    rules = (
        "elements:\n"
        "  org:\n"
        "    file: organisations-with-tab-delimiter.csv\n"
        '    csv: {delimiter: "\\t"}\n'
    )
    importer.run(
        feeds_dir=fixture_feeds(
            importer,
            {"organisations-with-tab-delimiter.csv": "organisations-with-tab-delimiter.csv"},
            rules,
        )
    )

    assert sorted(importer.orgs()) == ["O1", "O2", "O3"]


def test_jobassignment_startdateformatted_imports_with_date_format(importer: Importer) -> None:
    importer.run(
        {
            "user.csv": """
                idnumber,username,firstname,lastname
                user1,user1,User,One
            """
        }
    )
    rules = 'elements: {jobassignment: {date_format: "%d/%m/%Y"}}\n'
    importer.run(
        feeds_dir=fixture_feeds(
            importer, {"jobassignment_startdateformatted.csv": "jobassignment.csv"}, rules
        )
    )

    assert importer.rejects() == []
    assert importer.rows("select user_id, job_id, start_date from hr.job_assignment") == [
        ("user1", "dev1", datetime.date(2017, 6, 15))
    ]


def test_jobassignment_startdateformatted_without_date_format_is_date_invalid(
    importer: Importer,
) -> None:
    importer.run(
        {
            "user.csv": """
                idnumber,username,firstname,lastname
                user1,user1,User,One
            """
        }
    )
    importer.run(
        feeds_dir=fixture_feeds(
            importer, {"jobassignment_startdateformatted.csv": "jobassignment.csv"}
        )
    )

    assert importer.rejects() == [("jobassignment", 2, "user1/dev1", "date_invalid")]


def test_jobassignment_managers_1_stores_the_manager_and_their_job(importer: Importer) -> None:
    importer.run(
        {
            "user.csv": """
                idnumber,username,firstname,lastname
                manager1,manager1,Manager,One
                learner1,learner1,Learner,One
            """
        }
    )
    importer.run(
        feeds_dir=fixture_feeds(importer, {"jobassignment_managers_1.csv": "jobassignment.csv"})
    )

    assert importer.rejects() == []
    assert importer.rows(
        "select user_id, job_id, full_name, manager_user_id, manager_job_id "
        "from hr.job_assignment order by first_seen_order"
    ) == [
        ("manager1", "managerjaid1", "Manager1 JA1", None, None),
        ("manager1", "managerjaid2", "Manager1 JA2", None, None),
        ("learner1", "learnerjaid1", "Learner1 JA1", None, None),
        ("learner1", "learnerjaid2", "Learner1 JA2", "manager1", "managerjaid2"),
        ("learner1", "learnerjaid3", "Learner1 JA3", None, None),
    ]
