"""Feed files: malformed files, line numbers, Parquet and JSON Lines (§3.1, §3.3)."""

from __future__ import annotations

import json

import polars as pl
import pytest

from flows.hr_import.reader import FeedFileError

from .conftest import Importer

HEADER = "idnumber,username,firstname,lastname,email\n"


def feed_error(importer: Importer, files: dict[str, str | bytes], rules: str | None = None):
    with pytest.raises(FeedFileError) as err:
        importer.run(files, rules)
    return err.value


def test_missing_required_columns_names_missing_and_found_columns(importer: Importer) -> None:
    error = feed_error(
        importer,
        {
            "user.csv": """
                idnumber,user_name,firstname
                u01,ann,Ann
            """
        },
    )

    assert error.code == "file.missing_columns"
    assert str(error) == (
        "user.csv: missing required column(s) username, lastname; the header has "
        "idnumber, user_name, firstname. Rename the columns or map them with `columns:` in "
        "rules/hr_import.yaml"
    )


def test_renamed_columns_are_mapped_with_columns_setting(importer: Importer) -> None:
    importer.run(
        {
            "user.csv": """
                id,login,firstname,lastname
                u01,ann,Ann,Lee
            """
        },
        "elements: {user: {columns: {id: idnumber, login: username}}}\n",
    )

    assert importer.rows("select user_id, username from hr.user") == [("u01", "ann")]


def test_tab_file_read_with_comma_suggests_the_delimiter_setting(importer: Importer) -> None:
    error = feed_error(importer, {"user.csv": "idnumber\tusername\tfirstname\tlastname\n"})

    assert error.code == "file.delimiter"
    assert "delimited by TAB, not ','" in str(error)
    assert "set csv.delimiter for this element in rules/hr_import.yaml" in str(error)


def test_latin1_bytes_are_an_encoding_error(importer: Importer) -> None:
    data = (HEADER + "u01,rene,René,Lee,rene@example.com\n").encode("latin-1")
    error = feed_error(importer, {"user.csv": data})

    assert error.code == "file.encoding"
    assert str(error) == (
        "user.csv: line 2 is not valid utf-8 (byte 0xe9); save the file as UTF-8 or set "
        "csv.encoding for this element (e.g. cp1252 or latin-1)"
    )


def test_latin1_file_imports_with_encoding_setting(importer: Importer) -> None:
    data = (HEADER + "u01,rene,René,Lee,rene@example.com\n").encode("latin-1")
    importer.run({"user.csv": data}, "elements: {user: {csv: {encoding: latin-1}}}\n")

    assert importer.rows("select first_name from hr.user") == [("René",)]


def test_utf8_bom_is_stripped(importer: Importer) -> None:
    data = ("\ufeff" + HEADER + "u01,ann,Ann,Lee,ann@example.com\n").encode("utf-8")
    importer.run({"user.csv": data})

    assert importer.rows("select user_id from hr.user") == [("u01",)]


def test_binary_file_is_rejected(importer: Importer) -> None:
    error = feed_error(importer, {"user.csv": b"PK\x03\x04\x00\x00binary"})

    assert error.code == "file.binary"
    assert "this is not a text file (it contains NUL bytes)" in str(error)


def test_nul_byte_far_into_the_file_is_still_binary(importer: Importer) -> None:
    rows = "".join(f"u{n:05d},user{n},First,Last,u{n}@example.com\n" for n in range(400))
    error = feed_error(importer, {"user.csv": (HEADER + rows + "u9,x\x00y,F,L,\n").encode()})

    assert error.code == "file.binary"


def test_utf16_file_names_its_encoding(importer: Importer) -> None:
    data = (HEADER + "u01,ann,Ann,Lee,ann@example.com\n").encode("utf-16")
    error = feed_error(importer, {"user.csv": data})

    assert error.code == "file.encoding"
    assert "set csv.encoding: utf-16 for this element" in str(error)


def test_utf16_tab_delimited_excel_export_imports_with_settings(importer: Importer) -> None:
    data = "idnumber\tusername\tfirstname\tlastname\nu01\tann\tAnn\tLee\n".encode("utf-16")
    importer.run(
        {"user.csv": data}, 'elements: {user: {csv: {encoding: utf-16, delimiter: "\\t"}}}\n'
    )

    assert importer.rows("select user_id, username from hr.user") == [("u01", "ann")]


def test_unterminated_quote_at_end_is_a_truncated_file(importer: Importer) -> None:
    text = HEADER + 'u01,ann,Ann,Lee,ann@example.com\nu02,bob,"Bob,Ray,bob@exa'
    error = feed_error(importer, {"user.csv": text})

    assert error.code == "file.truncated"
    assert "cannot parse the record starting at line 3" in str(error)
    assert "a quoted value is never closed" in str(error)


def test_last_row_cut_short_without_newline_is_a_truncated_file(importer: Importer) -> None:
    text = HEADER + "u01,ann,Ann,Lee,ann@example.com\nu02,bob,Bo"
    error = feed_error(importer, {"user.csv": text})

    assert error.code == "file.truncated"
    assert str(error) == (
        "user.csv: the last record (line 3) has 3 of 5 fields and no line end: the file "
        "looks truncated; export it again"
    )


def test_feed_file_error_writes_nothing(importer: Importer) -> None:
    importer.run({"user.csv": HEADER + "u01,ann,Ann,Lee,ann@example.com\n"})
    before = importer.snapshot()
    feed_error(importer, {"user.csv": HEADER + "u01,ann,Ann,Lee,new@example.com\nu02,b"})

    assert importer.snapshot() == before
    assert importer.rows("select count(*) from learnops.import_file_log where run_id = 'r2'") == [
        (0,)
    ]


def test_row_with_too_many_fields_is_a_row_reject(importer: Importer) -> None:
    importer.run(
        {
            "user.csv": """
                idnumber,username,firstname,lastname,email
                u01,ann,Ann,Lee,ann@example.com
                u02,bob,Bob,Ray,Jr,bob@example.com
                u03,cat,Cat,Sun,cat@example.com
            """
        }
    )

    assert importer.rejects() == [("user", 3, "u02", "row_malformed")]
    assert importer.rows("select raw from learnops.import_reject_log") == [
        (
            json.dumps(
                {
                    "idnumber": "u02",
                    "username": "bob",
                    "firstname": "Bob",
                    "lastname": "Ray",
                    "email": "Jr",
                    "_extra_1": "bob@example.com",
                }
            ),
        )
    ]
    assert set(importer.users()) == {"u01", "u03"}


def test_row_with_too_few_fields_mid_file_is_a_row_reject(importer: Importer) -> None:
    importer.run(
        {
            "user.csv": """
                idnumber,username,firstname,lastname,email
                u01,ann,Ann
                u02,bob,Bob,Ray,bob@example.com
            """
        }
    )

    assert importer.rejects() == [("user", 2, "u01", "row_malformed")]
    assert set(importer.users()) == {"u02"}


def test_multiline_quoted_value_line_numbers_point_at_record_start(importer: Importer) -> None:
    importer.run(
        {
            "org.csv": """
                idnumber,fullname,description
                A,Alpha,"first line
                second line
                third line"
                B,Beta,plain
                C,,"one
                two"
                D,Delta,
                ,Nameless,
            """
        }
    )

    assert importer.rejects() == [
        ("org", 6, "C", "required_missing"),
        ("org", 9, "", "idnumber_missing"),
    ]
    assert importer.rows("select description from hr.organisation where organisation_id = 'A'") == [
        ("first line\nsecond line\nthird line",)
    ]


def test_line_numbers_count_the_header_as_line_one(importer: Importer) -> None:
    importer.run(
        {
            "user.csv": """
                idnumber,username,firstname,lastname,email
                u01,ann,Ann,Lee,ann@example.com
                u02,bob,Bob,Ray,not-an-email
            """
        }
    )

    assert importer.rows(
        "select element, file, row_number, record_id, reason_code, reason "
        "from learnops.import_reject_log"
    ) == [
        (
            "user",
            "user.csv",
            3,
            "u02",
            "email_invalid",
            "email 'not-an-email' is not a valid address: correct it or leave it empty",
        )
    ]


def test_unknown_columns_are_ignored_with_one_warning(importer: Importer) -> None:
    summary = importer.run(
        {
            "user.csv": """
                idnumber,username,firstname,lastname,shoe_size,hobby
                u01,ann,Ann,Lee,38,chess
                u02,bob,Bob,Ray,44,golf
            """
        }
    )

    assert summary.warnings == ["user.csv: ignored unknown column(s) hobby, shoe_size"]
    assert set(importer.users()) == {"u01", "u02"}


def test_missing_file_keeps_live_state_and_summary_says_so(importer: Importer) -> None:
    importer.run({"user.csv": HEADER + "u01,ann,Ann,Lee,ann@example.com\n"})
    summary = importer.run({})

    assert importer.users() == {"u01": "active"}
    user = next(e for e in summary.elements if e.element == "user")
    assert (user.status, user.file) == ("missing", None)


USERS_FRAME = pl.DataFrame(
    {
        "idnumber": ["u01", "u02", "u03"],
        "username": ["Ann", "bob", "cat"],
        "firstname": ["Ann", "Bob", "Cat"],
        "lastname": ["Lee", "Ray", "Sun"],
        "email": ["ann@example.com", None, "not-an-email"],
        "timemodified": [1425497497, 1425497497, None],
    }
)


def imported_users(importer: Importer) -> list[tuple]:
    return importer.rows(
        "select user_id, username, email, time_modified from hr.user order by user_id"
    )


def test_parquet_feed_imports_the_same_as_csv(importer: Importer) -> None:
    feeds = importer.feeds({})
    USERS_FRAME.write_parquet(feeds / "user.parquet")
    importer.run(feeds_dir=feeds)

    assert imported_users(importer) == [
        ("u01", "ann", "ann@example.com", 1425497497),
        ("u02", "bob", None, 1425497497),
    ]
    assert importer.rejects() == [("user", 3, "u03", "email_invalid")]  # row 3, no header


def test_json_lines_feed_imports_the_same_as_csv(importer: Importer) -> None:
    feeds = importer.feeds({})
    USERS_FRAME.write_ndjson(feeds / "user.jsonl")
    importer.run(feeds_dir=feeds)

    assert imported_users(importer) == [
        ("u01", "ann", "ann@example.com", 1425497497),
        ("u02", "bob", None, 1425497497),
    ]
    assert importer.rejects() == [("user", 3, "u03", "email_invalid")]  # line 3, no header


def test_csv_feed_gives_the_same_result_as_parquet_and_json_lines(importer: Importer) -> None:
    importer.run(
        {
            "user.csv": """
                idnumber,username,firstname,lastname,email,timemodified
                u01,Ann,Ann,Lee,ann@example.com,1425497497
                u02,bob,Bob,Ray,,1425497497
                u03,cat,Cat,Sun,not-an-email,
            """
        }
    )

    assert imported_users(importer) == [
        ("u01", "ann", "ann@example.com", 1425497497),
        ("u02", "bob", None, 1425497497),
    ]
    assert importer.rejects() == [("user", 4, "u03", "email_invalid")]
