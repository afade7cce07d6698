"""Identity marts of the dbt project, built through ``flows.build.build_warehouse``.

A tiny organisation is written straight into the ``hr.*`` / ``learnops.*`` source tables of a
temporary warehouse, built three times (2026-01-01, 2026-02-01 with changes, 2026-03-01
unchanged), and every contract mart is read back after each run. The tests assert on those
captures, so the whole module costs three builds plus one deliberately failing build.

The organisation (users: jobs; "->" reads "manages"):

    acme > sales > sales_nz                 ceo:main -> mgr_a:main, mgr_a:second, rep2:extra
    acme > ops                              mgr_a:main -> mgr_b:alpha, gone:g
    ceo_pos > manager_pos > clerk_pos       mgr_a:second -> mgr_b:zulu (named in the feed)
                                            mgr_b:zulu (mgr_b's first job) -> rep1:r
                                            mgr_b:alpha (named in the feed) -> rep2:r
                                            gone (deleted):g -> under_gone:u
                                            tie_boss:a (tie, job_id decides) -> rep3:r
                                            jobless_boss (holds no job) -> rep4:r
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pytest

from flows.build import PRODUCTION_EXCLUDE, BuildError, BuildResult, build_warehouse
from flows.state_schema import ensure_state_schema

RUN_1 = dt.datetime(2026, 1, 1)
RUN_2 = dt.datetime(2026, 2, 1)
RUN_3 = dt.datetime(2026, 3, 1)

CONTRACT_MARTS = (
    "import_reject",
    "dim_user",
    "dim_organisation",
    "dim_position",
    "dim_job_assignment",
    "bdg_management",
    "bdg_management_job",
    "bdg_organisation_ancestry",
    "bdg_position_ancestry",
    "dim_user_history",
    "dim_job_assignment_history",
    "dim_organisation_history",
    "dim_position_history",
)
SNAPSHOTS = (
    "snp_hr__users",
    "snp_hr__job_assignments",
    "snp_hr__organisations",
    "snp_hr__positions",
)

ORGANISATIONS = [
    {"organisation_id": "acme", "name": "Acme", "parent_id": None},
    # children listed before their parent on purpose: the walk must not depend on row order
    {"organisation_id": "sales_nz", "name": "Sales NZ", "parent_id": "sales"},
    {"organisation_id": "sales", "name": "Sales", "parent_id": "acme"},
    {"organisation_id": "ops", "name": "Operations", "parent_id": "acme"},
]
POSITIONS = [
    {"position_id": "ceo_pos", "name": "Chief executive", "parent_id": None},
    {"position_id": "manager_pos", "name": "Manager", "parent_id": "ceo_pos"},
    {"position_id": "clerk_pos", "name": "Clerk", "parent_id": "manager_pos"},
]
USER_STATUSES = {
    "ceo": "active",
    "mgr_a": "active",
    "mgr_b": "suspended",  # suspended managers stay in the chain
    "rep1": "active",
    "rep2": "active",
    "rep3": "active",
    "rep4": "active",
    "gone": "deleted",
    "under_gone": "active",
    "tie_boss": "active",
    "jobless_boss": "active",
}
# (user, job, organisation, manager user, manager job as given in the feed, first_seen_order)
JOBS = [
    ("ceo", "main", "acme", None, None, 10),
    ("mgr_a", "main", "acme", "ceo", None, 20),
    ("mgr_a", "second", "ops", "ceo", "main", 21),
    # mgr_b's first job is zulu: seen first, although "alpha" sorts first
    ("mgr_b", "alpha", "sales", "mgr_a", None, 31),
    ("mgr_b", "zulu", "ops", "mgr_a", "second", 30),
    ("rep1", "r", "sales", "mgr_b", None, 40),
    ("rep2", "r", "sales_nz", "mgr_b", "alpha", 41),
    ("rep2", "extra", "ops", "ceo", "main", 42),
    ("gone", "g", "ops", "mgr_a", "main", 50),
    ("under_gone", "u", "ops", "gone", None, 51),
    # tie_boss holds two jobs seen at the same order: job_id breaks the tie, so "a"
    ("tie_boss", "b", "ops", None, None, 60),
    ("tie_boss", "a", "ops", None, None, 60),
    ("rep3", "r", "ops", "tie_boss", None, 61),
    ("rep4", "r", "ops", "jobless_boss", None, 62),
]


@dataclass
class Capture:
    """What one build returned and what the warehouse held right after it."""

    result: BuildResult
    marts: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    snapshot_rows: dict[str, int] = field(default_factory=dict)
    snapshot_stamps: set[dt.datetime] = field(default_factory=set)
    pipeline_run_status: str | None = None


@dataclass
class BuiltWarehouse:
    """The warehouse of this module and its captures after runs 1, 2 and 3."""

    database: Path
    state_dir: Path
    runs: list[Capture]


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: Sequence[dict[str, Any]]) -> None:
    """Insert dict rows (column -> value) into a source table."""
    columns = list(rows[0])
    placeholders = ", ".join("?" for _ in columns)
    sql = f"insert into {table} ({', '.join(columns)}) values ({placeholders})"  # noqa: S608 (test constants)
    con.executemany(sql, [[row[column] for column in columns] for row in rows])


def _seed_live_state(con: duckdb.DuckDBPyConnection) -> None:
    """Write the organisation above as HR Import would leave it after run 1."""
    _insert(con, "hr.organisation", [{**row, "first_seen_run_id": "r1"} for row in ORGANISATIONS])
    _insert(con, "hr.position", [{**row, "first_seen_run_id": "r1"} for row in POSITIONS])
    _insert(
        con,
        "hr.user",
        [
            {
                "user_id": user_id,
                "username": user_id,
                "email": f"{user_id}@example.com",
                "first_name": user_id.title(),
                "last_name": "Tester",
                "city": "Wellington",
                "country": "NZ",
                "status": status,
                "is_suspended": status == "suspended",
                "first_seen_run_id": "r1",
            }
            for user_id, status in USER_STATUSES.items()
        ],
    )
    _insert(
        con,
        "hr.job_assignment",
        [
            {
                "user_id": user_id,
                "job_id": job_id,
                "full_name": f"{user_id} {job_id}",
                "start_date": dt.date(2025, 1, 1),
                "end_date": None,
                "organisation_id": organisation_id,
                "position_id": "clerk_pos",
                "manager_user_id": manager_user,
                "manager_job_id": manager_job,
                "first_seen_order": seen_order,
                "first_seen_run_id": "r1",
            }
            for user_id, job_id, organisation_id, manager_user, manager_job, seen_order in JOBS
        ],
    )
    _insert(
        con,
        "hr.user_access",
        [{"user_id": "rep1", "first_access_at": RUN_1, "last_access_at": RUN_1}],
    )


def _start_run(database: Path, run_id: str, as_of: dt.datetime) -> None:
    """What the flow does before a build: one run_context row, a 'running' run_log row."""
    with duckdb.connect(str(database)) as con:
        con.execute("delete from learnops.run_context")
        con.execute(
            "insert into learnops.run_context (run_id, as_of) values (?, ?)", [run_id, as_of]
        )
        con.execute(
            "insert into learnops.run_log (run_id, as_of, started_at, status) "
            "values (?, ?, ?, 'running')",
            [run_id, as_of, as_of],
        )


def _finish_run(database: Path, run_id: str) -> None:
    """What the flow does after a successful build: mark the run succeeded."""
    with duckdb.connect(str(database)) as con:
        con.execute(
            "update learnops.run_log set status = 'succeeded', finished_at = as_of "
            "where run_id = ?",
            [run_id],
        )


def _capture(database: Path, result: BuildResult, run_id: str) -> Capture:
    """Read every contract mart (sorted) and the snapshot sizes."""
    capture = Capture(result=result)
    with duckdb.connect(str(database), read_only=True) as con:
        for mart in CONTRACT_MARTS:
            capture.marts[mart] = con.sql(f"select * from {mart} order by all").fetchall()  # noqa: S608
        for snapshot in SNAPSHOTS:
            (count,) = con.execute(f"select count(*) from snapshots.{snapshot}").fetchone()  # noqa: S608
            capture.snapshot_rows[snapshot] = count
            # every instant dbt stamped: window edges and the row's "updated at"
            capture.snapshot_stamps |= {
                stamp
                for row in con.execute(
                    f"select dbt_valid_from, dbt_valid_to, dbt_updated_at from snapshots.{snapshot}"  # noqa: S608
                ).fetchall()
                for stamp in row
                if stamp is not None
            }
        (capture.pipeline_run_status,) = con.execute(
            "select status from pipeline_run where run_id = ?", [run_id]
        ).fetchone()
    return capture


def _build_run(
    built: BuiltWarehouse,
    run_id: str,
    as_of: dt.datetime,
    *,
    exclude: str | None = PRODUCTION_EXCLUDE,
) -> None:
    """One pipeline run as far as the build is concerned; its capture is appended."""
    _start_run(built.database, run_id, as_of)
    result = build_warehouse(built.database, state_dir=built.state_dir, exclude=exclude)
    _finish_run(built.database, run_id)
    built.runs.append(_capture(built.database, result, run_id))


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltWarehouse]:
    """The organisation built at three as-of instants.

    Run 1 builds everything (unit and exhaustive tests included); runs 2 and 3 build as the
    pipeline does (build.PRODUCTION_EXCLUDE). Run 2 moves rep1 from sales to ops, suspends
    rep2 and removes sales_nz (rep2's job there moves to sales). Run 3 changes nothing.
    """
    directory = tmp_path_factory.mktemp("identity")
    built = BuiltWarehouse(
        database=directory / "warehouse.duckdb", state_dir=directory / "state", runs=[]
    )
    with duckdb.connect(str(built.database)) as con:
        ensure_state_schema(con)
        _seed_live_state(con)
    _build_run(built, "r1", RUN_1, exclude=None)  # everything, unit tests included

    with duckdb.connect(str(built.database)) as con:
        con.execute(
            "update hr.job_assignment set organisation_id = 'ops' "
            "where user_id = 'rep1' and job_id = 'r'"
        )
        con.execute(
            "update hr.user set status = 'suspended', is_suspended = true where user_id = 'rep2'"
        )
        con.execute("delete from hr.organisation where organisation_id = 'sales_nz'")
        con.execute(
            "update hr.job_assignment set organisation_id = 'sales' "
            "where user_id = 'rep2' and job_id = 'r'"
        )
    _build_run(built, "r2", RUN_2)
    _build_run(built, "r3", RUN_3)
    yield built


@pytest.fixture(scope="module")
def run_1(warehouse: BuiltWarehouse) -> Capture:
    """The captures of the first build (the identity assertions read these)."""
    return warehouse.runs[0]


def _rows(capture: Capture, mart: str, *, columns: Sequence[int]) -> set[tuple[Any, ...]]:
    """Project a captured mart on some column positions (lists become tuples)."""
    return {
        tuple(tuple(value) if isinstance(value, list) else value for value in row)
        for row in ([row[index] for index in columns] for row in capture.marts[mart])
    }


# --------------------------------------------------------------------------- the build


def test_build_result_counts_models_tests_and_timings(run_1: Capture) -> None:
    assert run_1.result.models_built >= 30
    assert run_1.result.tests_passed >= 60
    assert run_1.result.elapsed_s > 0
    assert "bdg_management" in run_1.result.node_timings
    assert "management_tree_paths" in run_1.result.node_timings  # a unit test ran
    assert "unique_combination_bdg_management_manager_user_id__report_user_id" in (
        run_1.result.node_timings
    )


def test_pipeline_builds_leave_out_unit_and_exhaustive_tests(warehouse: BuiltWarehouse) -> None:
    timings = warehouse.runs[1].result.node_timings
    assert "bdg_management" in timings
    assert "management_tree_paths" not in timings
    assert not [name for name in timings if name.startswith("unique_combination_bdg_management")]


def test_pipeline_run_is_a_view_that_shows_the_status_set_after_the_build(
    warehouse: BuiltWarehouse,
) -> None:
    assert [capture.pipeline_run_status for capture in warehouse.runs] == ["succeeded"] * 3


# --------------------------------------------------------------------------- hierarchies


def test_organisation_depth_and_path_from_the_root(run_1: Capture) -> None:
    # dim_organisation: organisation_id, name, short_name, description, parent_id, depth, path
    assert _rows(run_1, "dim_organisation", columns=(0, 4, 5, 6)) == {
        ("acme", None, 1, ("acme",)),
        ("sales", "acme", 2, ("acme", "sales")),
        ("sales_nz", "sales", 3, ("acme", "sales", "sales_nz")),
        ("ops", "acme", 2, ("acme", "ops")),
    }


def test_position_depth_and_path_from_the_root(run_1: Capture) -> None:
    assert _rows(run_1, "dim_position", columns=(0, 5, 6)) == {
        ("ceo_pos", 1, ("ceo_pos",)),
        ("manager_pos", 2, ("ceo_pos", "manager_pos")),
        ("clerk_pos", 3, ("ceo_pos", "manager_pos", "clerk_pos")),
    }


def test_organisation_ancestry_is_the_whole_subtree_including_self(run_1: Capture) -> None:
    ancestry = set(run_1.marts["bdg_organisation_ancestry"])
    below_acme = {(d, depth) for a, d, depth in ancestry if a == "acme"}
    assert below_acme == {("acme", 0), ("sales", 1), ("ops", 1), ("sales_nz", 2)}
    assert {(d, depth) for a, d, depth in ancestry if a == "sales"} == {
        ("sales", 0),
        ("sales_nz", 1),
    }
    assert len(ancestry) == 4 + 3 + 1  # self rows + (acme: 3 below) + (sales: 1 below)


# --------------------------------------------------------------------------- jobs and managers


def test_manager_job_is_the_named_job_else_the_managers_first_job(run_1: Capture) -> None:
    # dim_job_assignment: user_id, job_id, ..., manager_user_id (5), manager_job_id (6),
    # is_manager_job_default (7), ..., is_first_job (11)
    resolved = {
        (row[0], row[1]): (row[5], row[6], row[7]) for row in run_1.marts["dim_job_assignment"]
    }
    assert resolved[("mgr_a", "main")] == ("ceo", "main", True)  # ceo's only job
    assert resolved[("mgr_b", "zulu")] == ("mgr_a", "second", False)  # named in the feed
    assert resolved[("mgr_b", "alpha")] == ("mgr_a", "main", True)  # mgr_a's first job
    assert resolved[("rep1", "r")] == ("mgr_b", "zulu", True)  # first seen, not first by name
    assert resolved[("rep2", "r")] == ("mgr_b", "alpha", False)
    assert resolved[("rep3", "r")] == ("tie_boss", "a", True)  # same order: job_id decides
    assert resolved[("rep4", "r")] == ("jobless_boss", None, True)  # manager holds no job
    assert resolved[("ceo", "main")] == (None, None, False)


def test_first_job_is_the_earliest_seen(run_1: Capture) -> None:
    first_jobs = {(row[0], row[1]) for row in run_1.marts["dim_job_assignment"] if row[11]}
    assert {job for job in first_jobs if job[0] in {"mgr_a", "mgr_b", "rep2", "tie_boss"}} == {
        ("mgr_a", "main"),
        ("mgr_b", "zulu"),
        ("rep2", "r"),
        ("tie_boss", "a"),
    }


def test_management_closure_keeps_the_smallest_depth_and_skips_deleted_users(
    run_1: Capture,
) -> None:
    assert set(run_1.marts["bdg_management"]) == {
        ("ceo", "mgr_a", 1, True),
        ("ceo", "mgr_b", 2, False),
        ("ceo", "rep1", 3, False),
        ("ceo", "rep2", 1, True),  # directly through rep2's extra job, not 3 through r
        ("mgr_a", "mgr_b", 1, True),
        ("mgr_a", "rep1", 2, False),
        ("mgr_a", "rep2", 2, False),
        ("mgr_b", "rep1", 1, True),
        ("mgr_b", "rep2", 1, True),
        ("tie_boss", "rep3", 1, True),
        ("jobless_boss", "rep4", 1, True),
        # gone is deleted: neither managed nor managing, so under_gone has no manager
    }


def test_job_bridge_follows_the_resolved_manager_jobs(run_1: Capture) -> None:
    job_bridge = set(run_1.marts["bdg_management_job"])
    assert ("mgr_b", "zulu", "rep1", "r", 1) in job_bridge
    assert ("mgr_a", "second", "rep1", "r", 2) in job_bridge
    assert ("ceo", "main", "rep1", "r", 3) in job_bridge
    assert ("mgr_a", "main", "rep1", "r", 2) not in job_bridge  # not on rep1's job path
    assert ("ceo", "main", "rep2", "extra", 1) in job_bridge
    assert ("ceo", "main", "rep2", "r", 3) in job_bridge
    assert ("jobless_boss", None, "rep4", "r", 1) in job_bridge
    assert not {row for row in job_bridge if "gone" in (row[0], row[2])}


# --------------------------------------------------------------------------- history


def _where_was(capture: Capture, user_id: str, job_id: str, on: dt.datetime) -> list[str]:
    """Organisation of a job on a date, from dim_job_assignment_history's windows."""
    # dim_job_assignment_history: user_id, job_id, full_name, organisation_id (3), ...,
    # valid_from (10), valid_to (11), is_current (12)
    return [
        row[3]
        for row in capture.marts["dim_job_assignment_history"]
        if row[0] == user_id
        and row[1] == job_id
        and row[10] <= on
        and (row[11] is None or on < row[11])
    ]


def test_history_answers_where_a_person_was_on_a_date(warehouse: BuiltWarehouse) -> None:
    latest = warehouse.runs[-1]
    assert _where_was(latest, "rep1", "r", dt.datetime(2026, 1, 15)) == ["sales"]
    assert _where_was(latest, "rep1", "r", dt.datetime(2026, 2, 15)) == ["ops"]
    assert _where_was(latest, "rep1", "r", dt.datetime(2025, 12, 31)) == []  # before run 1
    rep1_windows = sorted(
        (row[3], row[10], row[11])
        for row in latest.marts["dim_job_assignment_history"]
        if row[:2] == ("rep1", "r")
    )
    assert rep1_windows == [("ops", RUN_2, None), ("sales", RUN_1, RUN_2)]


def test_history_is_stamped_with_the_runs_as_of_not_the_wall_clock(
    warehouse: BuiltWarehouse,
) -> None:
    latest = warehouse.runs[-1]
    stamps = {
        stamp
        for mart in ("dim_user_history", "dim_job_assignment_history", "dim_organisation_history")
        for row in latest.marts[mart]
        for stamp in row[-3:-1]  # valid_from, valid_to
        if stamp is not None
    }
    assert stamps == {RUN_1, RUN_2}
    assert latest.snapshot_stamps == {RUN_1, RUN_2}


def test_removed_organisation_and_changed_user_get_closed_windows(
    warehouse: BuiltWarehouse,
) -> None:
    latest = warehouse.runs[-1]
    sales_nz = [row for row in latest.marts["dim_organisation_history"] if row[0] == "sales_nz"]
    assert [(row[-3], row[-2], row[-1]) for row in sales_nz] == [(RUN_1, RUN_2, False)]
    # dim_user_history: user_id, ..., status (5), ..., valid_from, valid_to, is_current
    rep2 = sorted(
        (row[5], row[-3], row[-2]) for row in latest.marts["dim_user_history"] if row[0] == "rep2"
    )
    assert rep2 == [("active", RUN_1, RUN_2), ("suspended", RUN_2, None)]


def test_rerun_with_unchanged_sources_adds_nothing_and_changes_no_mart(
    warehouse: BuiltWarehouse,
) -> None:
    run_2, run_3 = warehouse.runs[1], warehouse.runs[2]
    assert run_3.snapshot_rows == run_2.snapshot_rows
    for mart in CONTRACT_MARTS:
        assert run_3.marts[mart] == run_2.marts[mart], mart
    # while run 2 added one version per change: rep1's and rep2's r jobs, rep2 (suspended);
    # removing sales_nz only closed its window
    run_1 = warehouse.runs[0]
    assert run_2.snapshot_rows["snp_hr__job_assignments"] == (
        run_1.snapshot_rows["snp_hr__job_assignments"] + 2
    )
    assert run_2.snapshot_rows["snp_hr__users"] == run_1.snapshot_rows["snp_hr__users"] + 1
    assert (
        run_2.snapshot_rows["snp_hr__organisations"] == run_1.snapshot_rows["snp_hr__organisations"]
    )


# --------------------------------------------------------------------------- failures


def test_failing_dbt_test_raises_build_error_naming_the_test(warehouse: BuiltWarehouse) -> None:
    """Runs last in this module: it leaves the warehouse built from broken sources."""
    with duckdb.connect(str(warehouse.database)) as con:
        # two live rows for one user, and a management cycle the import should have refused
        con.execute(
            "insert into hr.user (user_id, username, first_name, last_name, status, "
            "first_seen_run_id) values ('rep1', 'rep1bis', 'Rep', 'Twice', 'active', 'r4'), "
            "('loop_a', 'loop_a', 'Loop', 'A', 'active', 'r4'), "
            "('loop_b', 'loop_b', 'Loop', 'B', 'active', 'r4')"
        )
        con.execute(
            "insert into hr.job_assignment (user_id, job_id, manager_user_id, manager_job_id, "
            "first_seen_order, first_seen_run_id) values "
            "('loop_a', 'j', 'loop_b', 'j', 70, 'r4'), ('loop_b', 'j', 'loop_a', 'j', 71, 'r4')"
        )
    _start_run(warehouse.database, "r4", dt.datetime(2026, 4, 1))

    with pytest.raises(BuildError) as raised:
        build_warehouse(warehouse.database, state_dir=warehouse.state_dir)

    message = str(raised.value)
    assert "test unique_dim_user_user_id: Got 1 result" in message
    assert "test assert_management_chains_reach_a_root: Got 2 results" in message
    assert "Traceback" not in message
    assert all("\n" not in line for line in raised.value.failures)
