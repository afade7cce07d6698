"""Three pipeline runs of the organisation in org.py, once for the whole package (~20 s).

The published warehouse only holds the latest membership, so the fixture snapshots the
membership (with joined_at) and `rules.audience` after every run; events are append-only and
are read once at the end.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from flows.pipeline import RunRequest, RunResult, parse_as_of, run_pipeline

from . import org


@dataclass(frozen=True)
class Snapshot:
    """What the published warehouse said right after one run."""

    run: RunResult
    members: dict[str, frozenset[str]]  # audience -> members (every audience has a key)
    joined_at: dict[tuple[str, str], datetime]  # (audience, user) -> joined_at
    audience: dict[str, dict[str, object]]  # audience -> its row of rules.audience


@dataclass(frozen=True)
class Runs:
    base: Path
    warehouse: Path
    snapshots: tuple[Snapshot, Snapshot, Snapshot]
    events: tuple[tuple[str, str, str, str, datetime], ...]  # audience, user, event, run, as_of

    def members(self, run: int, audience: str) -> frozenset[str]:
        return self.snapshots[run - 1].members[audience]

    def run_id(self, run: int) -> str:
        return self.snapshots[run - 1].run.run_id

    def events_of(self, run: int) -> set[tuple[str, str, str]]:
        run_id = self.run_id(run)
        return {(a, u, e) for a, u, e, r, _ in self.events if r == run_id}


def write_dir(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def write_rules(directory: Path, audiences_yaml: str) -> Path:
    return write_dir(
        directory,
        {
            "hr_import.yaml": org.HR_IMPORT_YAML,
            "audiences.yaml": audiences_yaml,
            "static_members.csv": org.STATIC_MEMBERS_CSV,
        },
    )


def query(warehouse: Path, sql: str, params: list[object] | None = None) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def _snapshot(warehouse: Path, run: RunResult) -> Snapshot:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        members: dict[str, set[str]] = defaultdict(set)
        joined_at = {}
        rows = con.execute(
            "select audience_id, user_id, joined_at from fct_audience_membership"
        ).fetchall()
        for audience, user, joined in rows:
            members[audience].add(user)
            joined_at[(audience, user)] = joined
        cursor = con.execute("select * from rules.audience")
        names = [column[0] for column in cursor.description]
        audience = {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}
    every = {case.id: frozenset(members.get(case.id, ())) for case in org.CASES}
    unknown = set(members) - set(every)
    assert not unknown, f"memberships of audiences that are not in audiences.yaml: {unknown}"
    return Snapshot(run, every, joined_at, audience)


@pytest.fixture(scope="package")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    base = tmp_path_factory.mktemp("audiences")
    warehouse = base / "warehouse.duckdb"
    plan = (
        (org.feeds_run_1(), org.audiences_yaml(1), org.AS_OF_1),
        (org.feeds_run_2(), org.audiences_yaml(2), org.AS_OF_2),
        (org.feeds_run_2(), org.audiences_yaml(2), org.AS_OF_2),  # run 2 again, unchanged
    )
    snapshots = []
    for number, (feeds, audiences_yaml, as_of) in enumerate(plan, start=1):
        feeds_dir = write_dir(base / f"feeds{number}", feeds)
        rules_dir = write_rules(base / f"rules{number}", audiences_yaml)
        result = run_pipeline(
            RunRequest(
                feeds=feeds_dir,
                rules=rules_dir,
                warehouse=warehouse,
                as_of=parse_as_of(as_of, "UTC"),
            )
        )
        assert result.status == "succeeded", result.message
        snapshots.append(_snapshot(warehouse, result))
    events = query(
        warehouse,
        "select audience_id, user_id, event, run_id, as_of from fct_audience_membership_event",
    )
    return Runs(base, warehouse, tuple(snapshots), tuple(events))  # type: ignore[arg-type]
