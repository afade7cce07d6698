"""Users: full/delta removal per on_remove, empty_fields, uniqueness and row checks (§3.2, §3.3)."""

from __future__ import annotations

import pytest

from flows.hr_import.reader import FeedFileError

from .conftest import Importer, user_csv, user_ids

ELEVEN = user_ids(11)  # removing one of eleven (9 %) stays under the default 10 % guard


def on_remove(value: str) -> str:
    return f"elements: {{user: {{on_remove: {value}}}}}\n"


# --- full mode: absence -------------------------------------------------------------------


def test_full_absence_suspends_user_by_default(importer: Importer) -> None:
    importer.run({"user.csv": user_csv(ELEVEN)})
    summary = importer.run({"user.csv": user_csv(ELEVEN[:-1])})

    assert importer.users() == {**dict.fromkeys(ELEVEN[:-1], "active"), "u11": "suspended"}
    assert importer.rows("select removed_reason from hr.user where user_id = 'u11'") == [
        ("absent from the full HR feed",)
    ]
    user = next(e for e in summary.elements if e.element == "user")
    assert (user.removed, user.live_before) == (1, 11)


def test_full_absence_with_on_remove_keep_leaves_user_active(importer: Importer) -> None:
    importer.run({"user.csv": user_csv(ELEVEN)}, on_remove("keep"))
    importer.run({"user.csv": user_csv(ELEVEN[:-1])}, on_remove("keep"))

    assert importer.users() == dict.fromkeys(ELEVEN, "active")


def test_full_absence_with_on_remove_delete_marks_user_deleted(importer: Importer) -> None:
    importer.run({"user.csv": user_csv(ELEVEN)}, on_remove("delete"))
    importer.run({"user.csv": user_csv(ELEVEN[:-1])}, on_remove("delete"))

    assert importer.users() == {**dict.fromkeys(ELEVEN[:-1], "active"), "u11": "deleted"}


def test_user_suspended_by_removal_is_active_again_when_they_reappear(importer: Importer) -> None:
    importer.run({"user.csv": user_csv(ELEVEN)})
    importer.run({"user.csv": user_csv(ELEVEN[:-1])})
    importer.run({"user.csv": user_csv(ELEVEN)})

    assert importer.users() == dict.fromkeys(ELEVEN, "active")
    assert importer.rows("select removed_reason from hr.user where user_id = 'u11'") == [(None,)]


def test_deleted_user_is_revived_when_they_reappear(importer: Importer) -> None:
    importer.run({"user.csv": user_csv(ELEVEN)}, on_remove("delete"))
    importer.run({"user.csv": user_csv(ELEVEN[:-1])}, on_remove("delete"))
    importer.run({"user.csv": user_csv(ELEVEN)}, on_remove("delete"))

    assert importer.users() == dict.fromkeys(ELEVEN, "active")
    assert importer.rows("select first_seen_run_id from hr.user where user_id = 'u11'") == [("r1",)]


def test_full_deleted_flag_removes_user(importer: Importer) -> None:
    importer.run({"user.csv": user_csv(ELEVEN, extra_header=",deleted", extra=",0")})
    rows = user_csv(ELEVEN, extra_header=",deleted", extra=",0").replace(
        "u11@example.com,0", "u11@example.com,1"
    )
    importer.run({"user.csv": rows})

    assert importer.users()["u11"] == "suspended"
    assert importer.rows("select removed_reason from hr.user where user_id = 'u11'") == [
        ("deleted=1 in the HR feed",)
    ]


# --- delta mode ---------------------------------------------------------------------------

DELTA = "defaults: {mode: delta}\n"


def test_delta_deleted_row_removes_user_per_on_remove(importer: Importer) -> None:
    rules = "defaults: {mode: delta}\nelements: {user: {on_remove: delete}}\n"
    importer.run({"user.csv": user_csv(ELEVEN, extra_header=",deleted", extra=",0")}, rules)
    importer.run(
        {
            "user.csv": """
                idnumber,username,firstname,lastname,deleted
                u11,u11,First u11,Last u11,1
            """
        },
        rules,
    )

    assert importer.users() == {**dict.fromkeys(ELEVEN[:-1], "active"), "u11": "deleted"}


def test_delta_rows_absent_from_the_file_change_nothing(importer: Importer) -> None:
    importer.run({"user.csv": user_csv(ELEVEN, extra_header=",deleted", extra=",")}, DELTA)
    before = importer.snapshot()
    importer.run(
        {
            "user.csv": """
                idnumber,username,firstname,lastname,city,deleted
                u01,u01,First u01,Last u01,Wellington,
            """
        },
        DELTA,
    )

    assert importer.users() == dict.fromkeys(ELEVEN, "active")
    after = importer.snapshot()
    assert [r for r in after["user"] if r[0] != "u01"] == [
        r for r in before["user"] if r[0] != "u01"
    ]
    assert importer.rows("select city from hr.user where user_id = 'u01'") == [("Wellington",)]


def test_delta_file_without_deleted_column_is_a_file_error(importer: Importer) -> None:
    with pytest.raises(FeedFileError, match="a delta feed needs a 'deleted' column") as err:
        importer.run({"user.csv": user_csv(["u01"])}, DELTA)

    assert err.value.code == "file.no_deleted_column"
    assert err.value.file.name == "user.csv"


# --- empty_fields -------------------------------------------------------------------------

WITH_CITY = """
    idnumber,username,firstname,lastname,email,city
    u01,u01,Ann,Lee,ann@example.com,Auckland
"""
CITY_EMPTIED = """
    idnumber,username,firstname,lastname,email,city
    u01,u01,Ann,Lee,,
"""


def test_empty_cell_keeps_stored_value_by_default(importer: Importer) -> None:
    importer.run({"user.csv": WITH_CITY})
    importer.run({"user.csv": CITY_EMPTIED})

    assert importer.rows("select city, email from hr.user") == [("Auckland", "ann@example.com")]


def test_empty_cell_clears_stored_value_with_erase(importer: Importer) -> None:
    erase = "defaults: {empty_fields: erase}\n"
    importer.run({"user.csv": WITH_CITY}, erase)
    importer.run({"user.csv": CITY_EMPTIED}, erase)

    assert importer.rows("select city from hr.user") == [(None,)]


def test_erase_never_blanks_email(importer: Importer) -> None:
    erase = "defaults: {empty_fields: erase}\n"
    importer.run({"user.csv": WITH_CITY}, erase)
    importer.run({"user.csv": CITY_EMPTIED}, erase)

    assert importer.rows("select username, first_name, last_name, email from hr.user") == [
        ("u01", "Ann", "Lee", "ann@example.com")
    ]


def test_erase_never_blanks_username_or_names_their_rows_are_rejected(importer: Importer) -> None:
    erase = "defaults: {empty_fields: erase}\n"
    importer.run({"user.csv": WITH_CITY}, erase)
    importer.run(
        {
            "user.csv": """
                idnumber,username,firstname,lastname,email,city
                u01,,,,ann@example.com,
            """
        },
        erase,
    )

    assert importer.rejects() == [("user", 2, "u01", "required_missing")]
    assert importer.rows("select username, first_name, last_name, city from hr.user") == [
        ("u01", "Ann", "Lee", "Auckland")
    ]


# --- duplicates and rejected rows ---------------------------------------------------------


def test_duplicate_idnumber_rejects_every_copy_and_keeps_live_record(importer: Importer) -> None:
    importer.run({"user.csv": WITH_CITY})
    importer.run(
        {
            "user.csv": """
                idnumber,username,firstname,lastname,email,city
                u01,u01,Ann,Lee,ann@example.com,Paris
                u01,ann2,Ann,Lee,ann2@example.com,Rome
            """
        }
    )

    assert importer.rejects() == [
        ("user", 2, "u01", "duplicate_key"),
        ("user", 3, "u01", "duplicate_key"),
    ]
    assert importer.rows("select username, city, status from hr.user") == [
        ("u01", "Auckland", "active")
    ]


def test_rejected_row_neither_updates_nor_removes_its_live_record(importer: Importer) -> None:
    importer.run({"user.csv": user_csv(ELEVEN, extra_header=",city", extra=",Oslo")})
    rows = user_csv(ELEVEN, extra_header=",city", extra=",Bergen").replace(
        "u05@example.com", "not-an-email"
    )
    importer.run({"user.csv": rows})

    assert importer.rejects() == [("user", 6, "u05", "email_invalid")]
    assert importer.users() == dict.fromkeys(ELEVEN, "active")
    assert importer.rows("select email, city from hr.user where user_id = 'u05'") == [
        ("u05@example.com", "Oslo")
    ]
    assert importer.rows("select city from hr.user where user_id = 'u04'") == [("Bergen",)]


# --- username, email, country -------------------------------------------------------------


def test_uppercase_username_is_lowercased_with_a_warning(importer: Importer) -> None:
    summary = importer.run(
        {
            "user.csv": """
                idnumber,username,firstname,lastname
                u01,Ann.Lee,Ann,Lee
            """
        }
    )

    assert importer.rows("select username from hr.user") == [("ann.lee",)]
    assert importer.rejects() == []
    assert any("lower-cased" in w and "line 2" in w for w in summary.warnings)


def test_username_with_illegal_characters_is_rejected(importer: Importer) -> None:
    importer.run(
        {
            "user.csv": """
                idnumber,username,firstname,lastname
                u01,ann lee,Ann,Lee
                u02,bob!,Bob,Ray
                u03,cat,Cat,Sun
            """
        }
    )

    assert importer.reject_codes() == {"u01": "username_invalid", "u02": "username_invalid"}
    assert importer.users() == {"u03": "active"}


def test_duplicate_username_case_insensitive_rejects_every_copy(importer: Importer) -> None:
    importer.run(
        {
            "user.csv": """
                idnumber,username,firstname,lastname
                u01,ann,Ann,Lee
                u02,ANN,Ann,Other
                u03,cat,Cat,Sun
            """
        }
    )

    assert importer.reject_codes() == {"u01": "username_duplicate", "u02": "username_duplicate"}
    assert importer.users() == {"u03": "active"}


def test_username_of_another_live_user_is_rejected(importer: Importer) -> None:
    rules = on_remove("keep")
    importer.run({"user.csv": user_csv(["u01"])}, rules)
    importer.run(
        {
            "user.csv": """
                idnumber,username,firstname,lastname
                u02,U01,Bob,Ray
            """
        },
        rules,
    )

    assert importer.reject_codes() == {"u02": "username_taken"}


def test_duplicate_email_within_file_rejects_every_copy(importer: Importer) -> None:
    importer.run(
        {
            "user.csv": """
                idnumber,username,firstname,lastname,email
                u01,ann,Ann,Lee,same@example.com
                u02,bob,Bob,Ray,SAME@example.com
                u03,cat,Cat,Sun,cat@example.com
            """
        }
    )

    assert importer.reject_codes() == {"u01": "email_duplicate", "u02": "email_duplicate"}
    assert importer.users() == {"u03": "active"}


def test_email_of_another_live_user_is_taken(importer: Importer) -> None:
    rules = on_remove("keep")
    importer.run({"user.csv": user_csv(["u01"])}, rules)
    importer.run(
        {
            "user.csv": """
                idnumber,username,firstname,lastname,email
                u02,bob,Bob,Ray,U01@Example.com
            """
        },
        rules,
    )

    assert importer.reject_codes() == {"u02": "email_taken"}
    assert importer.users() == {"u01": "active"}


def test_email_kept_by_a_rejected_row_is_still_taken(importer: Importer) -> None:
    importer.run({"user.csv": user_csv(["u01", "u02"])})
    importer.run(
        {
            "user.csv": """
                idnumber,username,firstname,lastname,email,country
                u01,u01,First u01,Last u01,u01-new@example.com,XX
                u02,u02,First u02,Last u02,u01@example.com,NZ
            """
        }
    )

    assert importer.reject_codes() == {"u01": "country_invalid", "u02": "email_taken"}
    assert importer.rows("select user_id, email from hr.user order by user_id") == [
        ("u01", "u01@example.com"),
        ("u02", "u02@example.com"),
    ]


def test_emails_swapped_between_two_users_are_accepted(importer: Importer) -> None:
    importer.run({"user.csv": user_csv(["u01", "u02"])})
    importer.run(
        {
            "user.csv": """
                idnumber,username,firstname,lastname,email
                u01,u01,First u01,Last u01,u02@example.com
                u02,u02,First u02,Last u02,u01@example.com
            """
        }
    )

    assert importer.rejects() == []
    assert importer.rows("select user_id, email from hr.user order by user_id") == [
        ("u01", "u02@example.com"),
        ("u02", "u01@example.com"),
    ]


def test_country_must_be_an_iso_alpha2_code(importer: Importer) -> None:
    importer.run(
        {
            "user.csv": """
                idnumber,username,firstname,lastname,country
                u01,ann,Ann,Lee,NZ
                u02,bob,Bob,Ray,NZL
                u03,cat,Cat,Sun,New Zealand
            """
        }
    )

    assert importer.reject_codes() == {"u02": "country_invalid", "u03": "country_invalid"}
    assert importer.rows("select user_id, country from hr.user") == [("u01", "NZ")]


def test_duplicate_idnumber_with_one_invalid_copy_still_rejects_both(importer: Importer) -> None:
    importer.run({"user.csv": WITH_CITY})
    importer.run(
        {
            "user.csv": """
                idnumber,username,firstname,lastname,email,city
                u01,u01,Ann,Lee,not-an-email,Paris
                u01,u01,Ann,Lee,ann@example.com,Rome
            """
        }
    )

    assert importer.rejects() == [
        ("user", 2, "u01", "email_invalid"),
        ("user", 3, "u01", "duplicate_key"),
    ]
    assert importer.rows("select city from hr.user") == [("Auckland",)]


def test_email_kept_by_an_empty_cell_is_still_taken(importer: Importer) -> None:
    importer.run({"user.csv": user_csv(["u01", "u02"])})
    importer.run(
        {
            "user.csv": """
                idnumber,username,firstname,lastname,email
                u01,u01,First u01,Last u01,
                u02,u02,First u02,Last u02,u01@example.com
            """
        }
    )

    assert importer.reject_codes() == {"u02": "email_taken"}
    assert importer.rows("select user_id, email from hr.user order by user_id") == [
        ("u01", "u01@example.com"),
        ("u02", "u02@example.com"),
    ]


CUSTOM_FIELDS = """
    elements:
      user:
        date_format: "%d/%m/%Y"
        custom_fields:
          hiredate: {type: date}
          band: {type: menu, options: [A, B]}
          remote: {type: checkbox}
"""


def test_declared_custom_field_types_are_checked_and_stored(importer: Importer) -> None:
    importer.run(
        {
            "user.csv": """
                idnumber,username,firstname,lastname,customfield_hiredate,customfield_band,customfield_remote,customfield_note
                u01,a,A,A,15/06/2017,A,1,hello
                u02,b,B,B,2017-06-15,,,
                u03,c,C,C,,C,,
                u04,d,D,D,,,yes,
            """
        },
        CUSTOM_FIELDS,
    )

    assert importer.reject_codes() == {
        "u02": "custom_field_invalid",
        "u03": "custom_field_invalid",
        "u04": "custom_field_invalid",
    }
    assert importer.rows("select * from hr.user_custom_field order by field_name") == [
        ("u01", "band", "A"),
        ("u01", "hiredate", "2017-06-15"),
        ("u01", "note", "hello"),
        ("u01", "remote", "1"),
    ]
