"""build_warehouse(indirect_selection=...) (flows/build.py): building part of the project.

stg_hr__organisations carries one test, a relationships test to dim_organisation, which is
built downstream of it. Selecting the view alone, dbt's default (eager) runs that test on a
table that was never built; cautious leaves it out, and runs it once dim_organisation is
selected too. Each build is a view or two and a table, to stay cheap. Also: where a
relative state directory lands.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from flows.build import BuildError, BuildResult, build_warehouse
from flows.state_schema import ensure_state_schema

RELATIONSHIPS_TEST = (
    "relationships_stg_hr__organisations_organisation_id__organisation_id__ref_dim_organisation_"
)


def _warehouse(directory: Path) -> Path:
    """A fresh warehouse in `directory` with the sources and one run's context."""
    directory.mkdir(parents=True, exist_ok=True)
    database = directory / "warehouse.duckdb"
    with duckdb.connect(str(database)) as con:
        ensure_state_schema(con)
        con.execute(
            "insert into learnops.run_context (run_id, as_of) values ('r1', ?)",
            [dt.datetime(2026, 1, 1)],
        )
    return database


def _build(directory: Path, select: str, **options: str) -> BuildResult:
    """Build `select` into a fresh warehouse of two organisations in `directory`."""
    database = _warehouse(directory)
    with duckdb.connect(str(database)) as con:
        con.execute(
            "insert into hr.organisation (organisation_id, name, parent_id, first_seen_run_id) "
            "values ('O1', 'Head Office', null, 'r1'), ('O2', 'Finance', 'O1', 'r1')"
        )
    return build_warehouse(database, state_dir=directory / "state", select=select, **options)


def test_eager_runs_a_test_whose_other_parent_was_not_built(tmp_path: Path) -> None:
    with pytest.raises(BuildError) as raised:
        _build(tmp_path, "stg_hr__organisations")
    assert [line for line in raised.value.failures if RELATIONSHIPS_TEST in line]


def test_cautious_runs_a_test_only_when_all_its_parents_are_selected(tmp_path: Path) -> None:
    alone = _build(tmp_path / "alone", "stg_hr__organisations", indirect_selection="cautious")
    assert "stg_hr__organisations" in alone.node_timings
    assert RELATIONSHIPS_TEST not in alone.node_timings

    both = _build(tmp_path / "both", "+dim_organisation", indirect_selection="cautious")
    assert RELATIONSHIPS_TEST in both.node_timings  # ran and passed: the build raised nothing


def test_a_relative_state_dir_is_the_callers_not_dbt_projects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # dbt runs in dbt_project/: a relative target path would be read from there
    monkeypatch.chdir(tmp_path)
    build_warehouse(
        _warehouse(tmp_path), state_dir=Path("relative-state"), select="stg_learnops__run_context"
    )
    assert (tmp_path / "relative-state" / "dbt" / "target" / "run_results.json").exists()
    stray = Path(__file__).resolve().parents[2] / "dbt_project" / "relative-state"
    assert not stray.exists()
