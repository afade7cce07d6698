"""LEARNOPS_DBT_REUSE_MANIFEST (flows/build.py): one parse per process and database name.

tests/conftest.py turns the reuse on for the whole suite, so every other dbt test also
checks that a build from a reused manifest builds and tests what a parsed one does. Here:
the reuse really skips the parse, keeps database names apart, and is off without the
variable. Each build selects one staging view, to stay cheap.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import duckdb
import pytest

from flows.build import REUSE_MANIFEST_ENV, build_warehouse
from flows.state_schema import ensure_state_schema

SELECT = "stg_learnops__run_context"


def _build(database: Path) -> str:
    """Build SELECT into a fresh `database`; return its dbt file log."""
    database.parent.mkdir(parents=True)
    with duckdb.connect(str(database)) as con:
        ensure_state_schema(con)
        con.execute(
            "insert into learnops.run_context (run_id, as_of) values ('r1', ?)",
            [dt.datetime(2026, 1, 1)],
        )
    state_dir = database.parent / "state"
    result = build_warehouse(database, state_dir=state_dir, select=SELECT)
    assert result.models_built == 1
    with duckdb.connect(str(database), read_only=True) as con:
        (run_id,) = con.execute(f"select run_id from staging.{SELECT}").fetchone()  # noqa: S608
    assert run_id == "r1"
    return (state_dir / "dbt" / "logs" / "dbt.log").read_text(encoding="utf-8")


def _parsed(log: str) -> bool:
    return "Starting full parse" in log or "Partial parsing" in log


def test_a_second_warehouse_of_the_same_name_is_built_without_parsing(tmp_path: Path) -> None:
    assert REUSE_MANIFEST_ENV in os.environ
    _build(tmp_path / "a" / "reuse.duckdb")
    assert not _parsed(_build(tmp_path / "b" / "reuse.duckdb"))


def test_another_database_name_is_parsed_for_itself(tmp_path: Path) -> None:
    # a manifest names each relation's database: the other name's would build elsewhere
    _build(tmp_path / "a" / "reuse_first.duckdb")
    assert _parsed(_build(tmp_path / "b" / "reuse_second.duckdb"))


def test_without_the_variable_each_new_warehouse_is_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(REUSE_MANIFEST_ENV)
    _build(tmp_path / "a" / "reuse_off.duckdb")
    assert _parsed(_build(tmp_path / "b" / "reuse_off.duckdb"))
