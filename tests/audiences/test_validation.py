"""A member_of cycle refuses the run before any feed is read (SPEC §4, docs/audiences.md).

`run_pipeline` raises `RulesError` (flows.rules.loader) from `validate_rules`, before the
building copy is prepared: no warehouse is created, no feed is archived, and an existing
warehouse is left exactly as it was (not even a failed run is logged).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flows.pipeline import RunRequest, parse_as_of, run_pipeline
from flows.rules.loader import RulesError

from . import org
from .conftest import Runs, query, write_dir, write_rules

CYCLE = """\
audiences:
  - id: a
    name: A
    kind: dynamic
    rules:
      member_of: {audiences: [b]}
  - id: b
    name: B
    kind: dynamic
    rules:
      any:
        - {user_field: city, operator: equals, values: [Leeds]}
        - member_of: {audiences: [a]}
"""


def _run_with_cycle(tmp_path: Path, warehouse: Path, as_of: str) -> None:
    feeds = write_dir(tmp_path / "feeds", org.feeds_run_1())
    rules = write_rules(tmp_path / "rules", CYCLE)
    with pytest.raises(RulesError, match=r"audiences\.yaml:\d+:\d+: .*a -> b -> a"):
        run_pipeline(
            RunRequest(
                feeds=feeds, rules=rules, warehouse=warehouse, as_of=parse_as_of(as_of, "UTC")
            )
        )


def test_member_of_cycle_refuses_the_run_before_importing(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    _run_with_cycle(tmp_path, warehouse, org.AS_OF_1)
    assert not warehouse.exists()
    archive = warehouse.with_name(warehouse.name + ".learnops") / "archive"
    assert not archive.exists() or not any(archive.rglob("*"))


def test_member_of_cycle_leaves_an_existing_warehouse_unchanged(runs: Runs, tmp_path: Path) -> None:
    warehouse = tmp_path / "copy.duckdb"
    shutil.copyfile(runs.warehouse, warehouse)
    tables = ("pipeline_run", "learnops.archive_file", "learnops.import_file_log")
    before = {t: sorted(map(repr, query(warehouse, f"select * from {t}"))) for t in tables}  # noqa: S608
    _run_with_cycle(tmp_path, warehouse, "2026-03-16T06:00:00Z")
    after = {t: sorted(map(repr, query(warehouse, f"select * from {t}"))) for t in tables}  # noqa: S608
    assert after == before
