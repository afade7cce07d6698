"""Every input file is archived content-addressed, once per content (§3.4)."""

from __future__ import annotations

import os
import time

import zstandard

from flows.hr_import.archive import prune_archive

from .conftest import Importer

USERS = """
    idnumber,username,firstname,lastname
    u01,ann,Ann,Lee
"""


def test_same_file_twice_is_stored_once_and_logged_per_run(importer: Importer) -> None:
    importer.run({"user.csv": USERS})
    importer.run({"user.csv": USERS})

    stored = sorted(importer.archive_dir.glob("*/*.zst"))
    assert len(stored) == 1
    rows = importer.rows(
        "select run_id, element, file, sha256, stored_path from learnops.archive_file "
        "order by run_id"
    )
    assert [(run, element, file) for run, element, file, _, _ in rows] == [
        ("r1", "user", "user.csv"),
        ("r2", "user", "user.csv"),
    ]
    assert rows[0][3:] == rows[1][3:]
    assert stored[0] == importer.archive_dir / rows[0][4]
    assert stored[0].name == f"{rows[0][3]}.csv.zst"


def test_archived_file_holds_the_exact_input_bytes(importer: Importer) -> None:
    feeds = importer.feeds({"user.csv": USERS})
    original = (feeds / "user.csv").read_bytes()
    importer.run(feeds_dir=feeds)

    (stored,) = importer.archive_dir.glob("*/*.zst")
    assert zstandard.ZstdDecompressor().decompressobj().decompress(stored.read_bytes()) == original


def test_changed_file_is_stored_again(importer: Importer) -> None:
    importer.run({"user.csv": USERS})
    importer.run({"user.csv": USERS + "u02,bob,Bob,Ray\n"})

    assert len(list(importer.archive_dir.glob("*/*.zst"))) == 2
    assert importer.rows("select count(distinct sha256) from learnops.archive_file") == [(2,)]


def test_retention_removes_only_files_no_recent_run_read(importer: Importer) -> None:
    importer.run({"org.csv": "idnumber,fullname\nO1,Head Office\n"})
    importer.run({"org.csv": "idnumber,fullname\nO1,Head Office\nO2,Finance\n"})
    first, second = sorted(importer.archive_dir.glob("*/*.zst"), key=lambda p: p.stat().st_mtime)
    old = time.time() - 400 * 86_400
    os.utime(first, (old, old))  # as if the first file was last read 400 days ago
    assert prune_archive(importer.archive_dir, retention_days=365) == 1
    assert not first.exists() and second.exists()
