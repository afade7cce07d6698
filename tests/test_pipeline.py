"""A whole run: lock, import, dbt build, atomic publish, history, faults (SPEC §2, §3.4)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from flows.hr_import.importer import RemovalGuardError
from flows.pipeline import RunRefusedError, RunRequest, parse_as_of, run_pipeline
from flows.warehouse import WarehouseLockedError, warehouse_paths, writer_lock

from .conftest import REPO_ROOT

CONTRACT_TABLES = (
    "dim_user",
    "dim_organisation",
    "dim_job_assignment",
    "bdg_management",
    "import_reject",
)


def request(feeds: Path, rules: Path, warehouse: Path, as_of: str, **extra: object) -> RunRequest:
    return RunRequest(
        feeds=feeds, rules=rules, warehouse=warehouse, as_of=parse_as_of(as_of, "UTC"), **extra
    )


def query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def fingerprint(warehouse: Path) -> dict[str, str]:
    """A content hash per contract table, independent of row order."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        hashes = {}
        for table in CONTRACT_TABLES:
            rows = con.execute(f"select * from {table}").fetchall()  # noqa: S608 - constants
            hashes[table] = hashlib.sha256("\n".join(sorted(map(repr, rows))).encode()).hexdigest()
        return hashes


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Run 1 on 1 Jan; run 2 on 1 Feb after U4 moved to Finance and U3 left; run 3 = run 2 again."""
    base = tmp_path_factory.mktemp("e2e")
    rules = base / "rules"
    rules.mkdir()
    (rules / "hr_import.yaml").write_text("defaults:\n  max_removed_fraction: 0.5\n")
    day1, day2 = base / "day1", base / "day2"
    from .conftest import JOB_CSV, ORG_CSV, USER_CSV

    for directory, users, jobs in (
        (day1, USER_CSV, JOB_CSV),
        (
            day2,
            USER_CSV.replace("    U3,pay1,Pat,Pay,pat@example.com,NZ\n", ""),
            JOB_CSV.replace("    J1,U3,Payroll Officer,O3,U2,2022-05-01\n", "").replace(
                "J1,U4,Payroll Officer,O3,U3,2023-07-01", "J1,U4,Analyst,O2,U2,2023-07-01"
            ),
        ),
    ):
        directory.mkdir()
        for name, text in (("org.csv", ORG_CSV), ("user.csv", users), ("jobassignment.csv", jobs)):
            (directory / name).write_text(textwrap.dedent(text))
    warehouse = base / "warehouse.duckdb"
    first = run_pipeline(request(day1, rules, warehouse, "2026-01-01T06:00:00Z"))
    snapshot_1 = fingerprint(warehouse)
    second = run_pipeline(request(day2, rules, warehouse, "2026-02-01T06:00:00Z"))
    snapshot_2 = fingerprint(warehouse)
    third = run_pipeline(request(day2, rules, warehouse, "2026-02-01T06:00:00Z"))
    return {
        "warehouse": warehouse,
        "rules": rules,
        "day2": day2,
        "runs": (first, second, third),
        "fingerprints": (snapshot_1, snapshot_2, fingerprint(warehouse)),
    }


def test_runs_succeed_and_are_logged(two_runs: dict) -> None:
    warehouse = two_runs["warehouse"]
    rows = query(warehouse, "select run_id, status, as_of from pipeline_run order by started_at")
    assert [r[1] for r in rows] == ["succeeded"] * 3
    assert [r[0] for r in rows] == [run.run_id for run in two_runs["runs"]]
    assert rows[0][2] == datetime(2026, 1, 1, 6)


def test_second_run_applies_leaver_and_move(two_runs: dict) -> None:
    warehouse = two_runs["warehouse"]
    status = dict(query(warehouse, "select user_id, status from dim_user"))
    assert status == {"U1": "active", "U2": "active", "U3": "suspended", "U4": "active"}
    jobs = query(
        warehouse,
        "select user_id, organisation_id, manager_user_id from dim_job_assignment order by user_id",
    )
    assert jobs == [("U1", "O1", None), ("U2", "O2", "U1"), ("U4", "O2", "U2")]
    closure = set(
        query(warehouse, "select manager_user_id, report_user_id, depth from bdg_management")
    )
    assert closure == {("U1", "U2", 1), ("U2", "U4", 1), ("U1", "U4", 2)}


def test_history_answers_where_someone_was_on_a_date(two_runs: dict) -> None:
    warehouse = two_runs["warehouse"]

    def org_of(user: str, day: str) -> list[tuple]:
        return query(
            warehouse,
            f"""select organisation_id from dim_job_assignment_history
                where user_id = '{user}' and valid_from <= timestamp '{day}'
                  and (valid_to is null or valid_to > timestamp '{day}')""",  # noqa: S608 - test literals
        )

    assert org_of("U4", "2026-01-15") == [("O3",)]
    assert org_of("U4", "2026-02-15") == [("O2",)]
    assert org_of("U3", "2026-01-15") == [("O3",)]
    assert org_of("U3", "2026-02-15") == []


def test_rerun_with_identical_inputs_changes_no_contract_table(two_runs: dict) -> None:
    _, second, third = two_runs["fingerprints"]
    assert second == third
    history = query(two_runs["warehouse"], "select count(*) from dim_job_assignment_history")[0][0]
    assert history == 5  # 4 jobs from run 1, U4's move in run 2, nothing from run 3


def test_as_of_before_last_published_run_is_refused(two_runs: dict) -> None:
    before = fingerprint(two_runs["warehouse"])
    with pytest.raises(RunRefusedError, match="earlier than the last published run"):
        run_pipeline(
            request(two_runs["day2"], two_runs["rules"], two_runs["warehouse"], "2026-01-15")
        )
    assert fingerprint(two_runs["warehouse"]) == before


def test_second_writer_is_refused_while_the_lock_is_held(
    small_org: Path, rules_dir: Path, tmp_path: Path
) -> None:
    warehouse = tmp_path / "w.duckdb"
    with writer_lock(warehouse_paths(warehouse)):
        started = time.monotonic()
        with pytest.raises(WarehouseLockedError, match="is being written by pid"):
            run_pipeline(
                request(small_org, rules_dir, warehouse, "2026-01-01", lock_wait_seconds=1.0)
            )
        assert time.monotonic() - started >= 1.0
    assert not warehouse.exists()


def test_failed_run_publishes_only_its_log_row(two_runs: dict, tmp_path: Path, write_feeds) -> None:
    """An empty full user file trips the removal guard: state unchanged, run logged failed."""
    warehouse = tmp_path / "copy.duckdb"
    warehouse.write_bytes(two_runs["warehouse"].read_bytes())
    before = fingerprint(warehouse)
    feeds = write_feeds(tmp_path / "empty", {"user.csv": "idnumber,username,firstname,lastname\n"})
    with pytest.raises(RemovalGuardError, match="user would remove 3 of 4"):
        run_pipeline(request(feeds, two_runs["rules"], warehouse, "2026-03-01"))
    assert fingerprint(warehouse) == before
    status, message = query(
        warehouse, "select status, message from pipeline_run order by started_at desc limit 1"
    )[0]
    assert status == "failed" and "--allow-mass-removal user" in message


def test_reader_keeps_reading_while_a_run_publishes(two_runs: dict, tmp_path: Path) -> None:
    warehouse = tmp_path / "read.duckdb"
    warehouse.write_bytes(two_runs["warehouse"].read_bytes())
    reader = duckdb.connect(str(warehouse), read_only=True)
    try:
        users_before = reader.execute("select count(*) from dim_user").fetchone()[0]
        run_pipeline(request(two_runs["day2"], two_runs["rules"], warehouse, "2026-03-01"))
        assert reader.execute("select count(*) from dim_user").fetchone()[0] == users_before
    finally:
        reader.close()
    assert query(warehouse, "select count(*) from pipeline_run")[0][0] == 4


KILL_SCRIPT = """
import sys, time
from pathlib import Path
import flows.pipeline as pipeline
original = pipeline.build_stage
def slow_build(paths, result):
    original(paths, result)           # the build really runs, into the building copy
    Path(sys.argv[2]).write_text("built")
    time.sleep(60)                     # killed here, before publish
pipeline.build_stage = slow_build
pipeline.run_pipeline(pipeline.RunRequest(
    feeds=Path(sys.argv[1]), rules=Path(sys.argv[3]), warehouse=Path(sys.argv[4]),
    as_of=pipeline.parse_as_of("2026-03-01", "UTC")))
"""


def test_run_killed_mid_build_leaves_previous_state_published(
    two_runs: dict, tmp_path: Path
) -> None:
    warehouse = tmp_path / "killed.duckdb"
    warehouse.write_bytes(two_runs["warehouse"].read_bytes())
    before = fingerprint(warehouse)
    signal_file = tmp_path / "built"
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            KILL_SCRIPT,
            str(two_runs["day2"]),
            str(signal_file),
            str(two_runs["rules"]),
            str(warehouse),
        ],
        cwd=REPO_ROOT,
    )
    try:
        deadline = time.monotonic() + 120
        while not signal_file.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert signal_file.exists(), "the build never finished in the child process"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert fingerprint(warehouse) == before
    assert query(warehouse, "select count(*) from pipeline_run where status = 'running'")[0][0] == 0
    # The lock died with the process: the next run goes ahead.
    result = run_pipeline(request(two_runs["day2"], two_runs["rules"], warehouse, "2026-03-01"))
    assert result.status == "succeeded"
