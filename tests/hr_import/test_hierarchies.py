"""Organisation trees: parents, cycles, subtree removal and its guard rails (§3.2, §3.3)."""

from __future__ import annotations

from .conftest import Importer

DELTA = "defaults: {mode: delta, max_removed_fraction: 1.0}\n"
FULL = "defaults: {max_removed_fraction: 1.0}\n"

TREE = """
    idnumber,fullname,parentidnumber,deleted
    ROOT,Company,,
    SALES,Sales,ROOT,
    NORTH,Sales North,SALES,
    SOUTH,Sales South,SALES,
    OPS,Operations,ROOT,
"""
USERS = """
    idnumber,username,firstname,lastname,deleted
    u01,u01,Ann,Lee,
    u02,u02,Bob,Ray,
"""
JOBS = """
    idnumber,useridnumber,orgidnumber,deleted
    j1,u01,NORTH,
    j1,u02,OPS,
"""


def test_child_rows_before_their_parent_are_accepted(importer: Importer) -> None:
    importer.run(
        {
            "org.csv": """
                idnumber,fullname,parentidnumber
                LEAF,Leaf,MID
                MID,Middle,TOP
                TOP,Top,
            """
        }
    )

    assert importer.rejects() == []
    assert importer.orgs() == {"LEAF": "MID", "MID": "TOP", "TOP": None}


def test_unknown_parent_is_rejected(importer: Importer) -> None:
    importer.run(
        {
            "org.csv": """
                idnumber,fullname,parentidnumber
                TOP,Top,
                A,A,NOPE
            """
        }
    )

    assert importer.rejects() == [("org", 3, "A", "parent_not_found")]
    assert importer.orgs() == {"TOP": None}


def test_parent_cycle_rejects_every_row_on_it(importer: Importer) -> None:
    importer.run(
        {
            "org.csv": """
                idnumber,fullname,parentidnumber
                TOP,Top,
                A,A,B
                B,B,A
                C,C,TOP
            """
        }
    )

    assert importer.rejects() == [
        ("org", 3, "A", "parent_cycle"),
        ("org", 4, "B", "parent_cycle"),
    ]
    assert importer.orgs() == {"TOP": None, "C": "TOP"}


def test_self_parent_is_a_cycle(importer: Importer) -> None:
    importer.run(
        {
            "org.csv": """
                idnumber,fullname,parentidnumber
                A,A,A
                B,B,
            """
        }
    )

    assert importer.rejects() == [("org", 2, "A", "parent_cycle")]
    assert importer.orgs() == {"B": None}


def test_child_of_a_rejected_cycle_is_rejected_for_its_missing_parent(importer: Importer) -> None:
    importer.run(
        {
            "org.csv": """
                idnumber,fullname,parentidnumber
                A,A,B
                B,B,A
                C,C,A
            """
        }
    )

    assert importer.reject_codes() == {
        "A": "parent_cycle",
        "B": "parent_cycle",
        "C": "parent_not_found",
    }
    assert importer.orgs() == {}


def test_delta_cycle_through_the_live_state_is_rejected(importer: Importer) -> None:
    importer.run({"org.csv": TREE}, DELTA)
    importer.run(
        {
            "org.csv": """
                idnumber,fullname,parentidnumber,deleted
                SALES,Sales,NORTH,0
            """
        },
        DELTA,
    )

    assert importer.rejects() == [("org", 2, "SALES", "parent_cycle")]
    assert importer.orgs()["SALES"] == "ROOT"


def test_delta_deleted_parent_removes_its_subtree_and_clears_jobs(importer: Importer) -> None:
    importer.run({"org.csv": TREE, "user.csv": USERS, "jobassignment.csv": JOBS}, DELTA)
    summary = importer.run(
        {
            "org.csv": """
                idnumber,fullname,parentidnumber,deleted
                SALES,Sales,ROOT,1
            """
        },
        DELTA,
    )

    assert importer.orgs() == {"ROOT": None, "OPS": "ROOT"}
    assert importer.rows(
        "select user_id, job_id, organisation_id from hr.job_assignment order by user_id"
    ) == [("u01", "j1", None), ("u02", "j1", "OPS")]
    org = next(e for e in summary.elements if e.element == "org")
    assert (org.removed, org.cascaded) == (1, 2)


def test_delta_subtree_removal_spares_a_child_moved_in_the_same_file(importer: Importer) -> None:
    importer.run({"org.csv": TREE}, DELTA)
    importer.run(
        {
            "org.csv": """
                idnumber,fullname,parentidnumber,deleted
                SALES,Sales,ROOT,1
                SOUTH,Sales South,OPS,0
            """
        },
        DELTA,
    )

    assert importer.orgs() == {"ROOT": None, "OPS": "ROOT", "SOUTH": "OPS"}


def test_full_absence_removes_the_item_and_clears_jobs(importer: Importer) -> None:
    importer.run({"org.csv": TREE, "user.csv": USERS, "jobassignment.csv": JOBS}, FULL)
    importer.run(
        {
            "org.csv": """
                idnumber,fullname,parentidnumber
                ROOT,Company,
                SALES,Sales,ROOT
                SOUTH,Sales South,SALES
                OPS,Operations,ROOT
            """
        },
        FULL,
    )

    assert importer.orgs() == {"ROOT": None, "SALES": "ROOT", "SOUTH": "SALES", "OPS": "ROOT"}
    assert importer.rows(
        "select user_id, organisation_id from hr.job_assignment order by user_id"
    ) == [("u01", None), ("u02", "OPS")]


def test_full_mode_ignores_deleted_flag_of_an_organisation(importer: Importer) -> None:
    importer.run(
        {
            "org.csv": """
                idnumber,fullname,parentidnumber,deleted
                ROOT,Company,,0
                NEW,,ROOT,1
                OPS,Operations,ROOT,1
            """
        },
        FULL,
    )

    assert importer.rejects() == [("org", 3, "NEW", "required_missing")]
    assert importer.orgs() == {"ROOT": None, "OPS": "ROOT"}


def test_delta_item_held_by_a_rejected_descendant_row_stays(importer: Importer) -> None:
    importer.run({"org.csv": TREE}, DELTA)
    summary = importer.run(
        {
            "org.csv": """
                idnumber,fullname,parentidnumber,deleted,timemodified
                SALES,Sales,ROOT,1,
                NORTH,Sales North,SALES,0,not-a-number
            """
        },
        DELTA,
    )

    assert importer.rejects() == [("org", 3, "NORTH", "number_invalid")]
    # SALES stays because NORTH is held; SOUTH holds nothing and goes with the subtree.
    assert importer.orgs() == {"ROOT": None, "SALES": "ROOT", "NORTH": "SALES", "OPS": "ROOT"}
    org = next(e for e in summary.elements if e.element == "org")
    assert org.removed == 0
    assert org.notes == [
        "2 item(s) kept although removed from the feed, because a rejected row of this run "
        "still holds them or their descendants: NORTH, SALES"
    ]


def test_full_absent_item_held_by_a_rejected_descendant_row_stays(importer: Importer) -> None:
    importer.run({"org.csv": TREE}, FULL)
    summary = importer.run(
        {
            "org.csv": """
                idnumber,fullname,parentidnumber,timemodified
                ROOT,Company,,
                NORTH,Sales North,SALES,not-a-number
                OPS,Operations,ROOT,
            """
        },
        FULL,
    )

    assert importer.rejects() == [("org", 3, "NORTH", "number_invalid")]
    assert importer.orgs() == {"ROOT": None, "SALES": "ROOT", "NORTH": "SALES", "OPS": "ROOT"}
    org = next(e for e in summary.elements if e.element == "org")
    assert org.removed == 1  # SOUTH
    assert "SALES" in org.notes[0]


def test_delta_parent_from_the_live_state_resolves(importer: Importer) -> None:
    importer.run({"org.csv": TREE}, DELTA)
    importer.run(
        {
            "org.csv": """
                idnumber,fullname,parentidnumber,deleted
                EAST,Sales East,SALES,
            """
        },
        DELTA,
    )

    assert importer.rejects() == []
    assert importer.orgs()["EAST"] == "SALES"


def test_delta_cycle_through_a_parent_kept_by_an_empty_cell_is_rejected(
    importer: Importer,
) -> None:
    importer.run({"org.csv": TREE}, DELTA)
    # SALES's empty parent cell keeps ROOT (empty_fields: keep), so ROOT under SALES loops.
    importer.run(
        {
            "org.csv": """
                idnumber,fullname,parentidnumber,deleted
                SALES,Sales,,0
                ROOT,Company,SALES,0
            """
        },
        DELTA,
    )

    assert importer.rejects() == [
        ("org", 2, "SALES", "parent_cycle"),
        ("org", 3, "ROOT", "parent_cycle"),
    ]
    assert importer.orgs()["ROOT"] is None


def test_custom_fields_of_removed_organisations_are_dropped(importer: Importer) -> None:
    importer.run(
        {
            "org.csv": """
                idnumber,fullname,deleted,customfield_region
                A,Alpha,0,north
                B,Beta,0,south
            """
        },
        DELTA,
    )
    importer.run(
        {
            "org.csv": """
                idnumber,fullname,deleted,customfield_region
                A,Alpha,1,east
                NEVER,Never imported,1,west
                B,Beta,0,
            """
        },
        DELTA,
    )

    assert importer.orgs() == {"B": None}
    assert importer.rows("select * from hr.organisation_custom_field") == [("B", "region", "south")]
