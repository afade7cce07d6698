"""The removal guard: max_removed_fraction and --allow-mass-removal (§3.2)."""

from __future__ import annotations

import pytest

from flows.hr_import.importer import RemovalGuardError

from .conftest import Importer, user_csv, user_ids

TWENTY = user_ids(20)


def test_header_only_full_user_file_is_stopped_and_changes_nothing(importer: Importer) -> None:
    importer.run({"user.csv": user_csv(TWENTY)})
    before = importer.snapshot()

    with pytest.raises(RemovalGuardError) as err:
        importer.run({"user.csv": user_csv([])})

    assert str(err.value) == (
        "removal guard: user would remove 20 of 20 live records (100.0%), above "
        "max_removed_fraction 10.0%. Nothing was changed. Check the feed; if the removals "
        "are intended, run once with --allow-mass-removal user"
    )
    assert importer.snapshot() == before
    assert importer.rows("select count(*) from learnops.import_file_log where run_id = 'r2'") == [
        (0,)
    ]


def test_shrunken_full_user_file_is_stopped(importer: Importer) -> None:
    importer.run({"user.csv": user_csv(TWENTY)})
    before = importer.snapshot()

    with pytest.raises(
        RemovalGuardError, match=r"user would remove 3 of 20 live records \(15\.0%\)"
    ):
        importer.run({"user.csv": user_csv(TWENTY[:17])})

    assert importer.snapshot() == before


def test_removals_up_to_the_limit_pass(importer: Importer) -> None:
    importer.run({"user.csv": user_csv(TWENTY)})
    importer.run({"user.csv": user_csv(TWENTY[:18])})  # exactly 10 %

    assert list(importer.users().values()).count("suspended") == 2


def test_limit_is_configurable_per_element(importer: Importer) -> None:
    rules = "elements: {user: {max_removed_fraction: 0.2}}\n"
    importer.run({"user.csv": user_csv(TWENTY)}, rules)
    importer.run({"user.csv": user_csv(TWENTY[:17])}, rules)

    assert list(importer.users().values()).count("suspended") == 3


def test_on_remove_keep_removes_nothing_so_the_guard_does_not_fire(importer: Importer) -> None:
    rules = "elements: {user: {on_remove: keep}}\n"
    importer.run({"user.csv": user_csv(TWENTY)}, rules)
    importer.run({"user.csv": user_csv([])}, rules)

    assert set(importer.users().values()) == {"active"}


def test_allow_mass_removal_lets_one_run_through(importer: Importer) -> None:
    importer.run({"user.csv": user_csv(TWENTY)})
    importer.run({"user.csv": user_csv([])}, allow_mass_removal=frozenset({"user"}))

    assert set(importer.users().values()) == {"suspended"}


def test_allow_mass_removal_of_another_element_does_not_help(importer: Importer) -> None:
    importer.run({"user.csv": user_csv(TWENTY)})

    with pytest.raises(RemovalGuardError, match="user would remove 20 of 20"):
        importer.run({"user.csv": user_csv([])}, allow_mass_removal=frozenset({"org"}))


def test_header_only_full_org_file_is_stopped(importer: Importer) -> None:
    orgs = "idnumber,fullname\n" + "".join(f"O{n},Org {n}\n" for n in range(5))
    importer.run({"org.csv": orgs})
    before = importer.snapshot()

    with pytest.raises(
        RemovalGuardError, match=r"org would remove 5 of 5 live records \(100\.0%\)"
    ):
        importer.run({"org.csv": "idnumber,fullname\n"})

    assert importer.snapshot() == before


def test_delta_deleted_root_counts_its_whole_subtree(importer: Importer) -> None:
    delta = "elements: {org: {mode: delta}}\n"
    tree = "idnumber,fullname,parentidnumber,deleted\nROOT,Company,,\n" + "".join(
        f"O{n},Org {n},ROOT,\n" for n in range(19)
    )
    importer.run({"org.csv": tree}, delta)
    before = importer.snapshot()

    with pytest.raises(RemovalGuardError, match=r"org would remove 20 of 20 live records"):
        importer.run({"org.csv": "idnumber,fullname,deleted\nROOT,Company,1\n"}, delta)

    assert importer.snapshot() == before
