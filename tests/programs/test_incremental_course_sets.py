"""int_program_course_sets_evaluated is kept up to date run by run: it must equal a full
evaluation of the same state after every run, and evaluate again only what changed.

Two runs on one warehouse; each program isolates one reason to evaluate a learner again:

    alpha   A, then any of B or C; U1-U4, U6. U3's B is dated after R1's as-of (it counts
            from R2 on, though R2's feed is the same for it); U2 completes B in R2's feed;
            U4's route goes in R2; U6 joins in R2
    beta    some of A, B, C worth 5 points; U1, U5. R2's course feed raises C's score from
            1 to 5 (U5 did C: beta completes for U5 though U5's completions did not change)
    bb      added in R2: it sorts between alpha and beta, so the program keys of beta, delta
            and gamma move (keys are per run) and bb takes beta's old key
    delta   all of A; U1, U2: nothing about it changes but its program key
    gamma   all of A, B; U1, U2. R2's YAML drops B from the set (U1 completes gamma)

    cert    a certification on A (completion date, active 4 weeks, window 2 weeks); U1 did
            A on 1 Feb: R1 finds U1's window open (the recertification path, counting from
            15 Feb), R2 finds the certification expired (the primary path again, counted
            from the expiry)

int_program_certification_course_sets_evaluated is built the same way; it is checked
against a full evaluation too.

Between R1 and R2 a row of a learner that nothing concerns (U1 in alpha) is altered in the
published table: R2 must leave it as it is, the proof that R2 did not evaluate U1 again.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from flows.build import build_warehouse
from flows.pipeline import RunRequest, parse_as_of, run_pipeline

AS_OF = ("2014-03-01T06:00:00Z", "2014-03-10T06:00:00Z")

ORG_CSV = "idnumber,fullname,parentidnumber\nOA,Head Office,\n"
USER_CSV = "idnumber,username,firstname,lastname,email\n" + "".join(
    f"U{n},user{n},User,Number{n},u{n}@example.com\n" for n in range(1, 7)
)
JOB_CSV = "idnumber,useridnumber,fullname,orgidnumber,startdate\nJ1,U1,Clerk,OA,2010-01-01\n"
ACCESS_CSV = "useridnumber,firstaccess,lastaccess\nU1,2013-01-01T08:00:00Z,2014-02-01T08:00:00Z\n"
COMPLETIONS_R1 = """\
useridnumber,courseidnumber,timecompleted
U1,A,2014-02-01T10:00:00Z
U1,B,2014-02-02T10:00:00Z
U2,A,2014-02-03T10:00:00Z
U3,A,2014-02-04T10:00:00Z
U3,B,2014-03-05T10:00:00Z
U5,C,2014-02-05T10:00:00Z
"""
U2_B = "U2,B,2014-03-08T10:00:00Z\n"


def course_csv(run: int) -> str:
    c_score = 1 if run == 1 else 5
    return f"idnumber,fullname,score\nA,Course A,1\nB,Course B,1\nC,Course C,{c_score}\n"


def programs_yaml(run: int) -> str:
    alpha_users = "[U1, U2, U3, U4]" if run == 1 else "[U1, U2, U3, U6]"
    gamma_courses = "[A, B]" if run == 1 else "[A]"
    bb = (
        ""
        if run == 1
        else """
  - id: bb
    name: Sorts second
    content:
      - {kind: all, courses: [A]}
    assignments:
      - users: [U1]
"""
    )
    return f"""\
programs:
  - id: alpha
    name: A then B or C
    content:
      - {{kind: all, courses: [A]}}
      - then
      - {{kind: any, courses: [B, C]}}
    assignments:
      - users: {alpha_users}
{bb}
  - id: beta
    name: Five points
    content:
      - {{kind: some, courses: [A, B, C], min_courses: 1, min_score: 5}}
    assignments:
      - users: [U1, U5]

  - id: delta
    name: A
    content:
      - {{kind: all, courses: [A]}}
    assignments:
      - users: [U1, U2]

  - id: gamma
    name: A and B
    content:
      - {{kind: all, courses: {gamma_courses}}}
    assignments:
      - users: [U1, U2]
"""


def _write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


CERTIFICATIONS_YAML = """\
certifications:
  - id: cert
    name: Four weeks
    primary:
      - {kind: all, courses: [A]}
    active_period: {weeks: 4}
    window_period: {weeks: 2}
    expiry_method: completion_date
    assignments:
      - users: [U1]
"""
#: the incremental tables, checked against a full evaluation after every run
TABLES = (
    "intermediate.int_program_course_sets_evaluated",
    "intermediate.int_program_certification_course_sets_evaluated",
)


def _run(base: Path, warehouse: Path, run: int) -> None:
    completions = COMPLETIONS_R1 + (U2_B if run >= 2 else "")
    feeds = _write(
        base / f"feeds{run}",
        {
            "org.csv": ORG_CSV,
            "user.csv": USER_CSV,
            "jobassignment.csv": JOB_CSV,
            "user_access.csv": ACCESS_CSV,
            "course.csv": course_csv(run),
            "course_completion.csv": completions,
        },
    )
    rules = _write(
        base / f"rules{run}",
        {
            "hr_import.yaml": "defaults:\n  max_removed_fraction: 0.5\n",
            "programs.yaml": programs_yaml(run),
            "certifications.yaml": CERTIFICATIONS_YAML,
        },
    )
    result = run_pipeline(
        RunRequest(
            feeds=feeds,
            rules=rules,
            warehouse=warehouse,
            as_of=parse_as_of(AS_OF[run - 1], "UTC"),
            send=False,
        )
    )
    assert result.status == "succeeded", f"run {run}: {result.message}"


def _evaluated_in_full(warehouse: Path, scratch: Path) -> Path:
    """A copy of the warehouse whose incremental tables were evaluated from nothing."""
    copy = scratch / "full.duckdb"
    shutil.copyfile(warehouse, copy)
    with duckdb.connect(str(copy)) as con:
        for table in TABLES:
            con.execute(f"drop table {table}")
    build_warehouse(
        copy,
        state_dir=scratch / "state",
        select=" ".join(table.split(".")[1] for table in TABLES),
    )
    return copy


def _differences(left: Path, right: Path) -> list[tuple[object, ...]]:
    """Rows of one warehouse's incremental tables missing from the other's, both ways
    (duplicates counted), each with its table's name."""
    differences = []
    with duckdb.connect(str(left), read_only=True) as con:
        con.execute("attach ? as other (read_only)", [str(right)])
        for table in TABLES:
            name = table.split(".")[1]
            # the table names are this module's constants
            differences += con.execute(
                f"""
                with
                incremental as (select * from {table}),
                full_evaluation as (select * from other.{table})
                (select 'only incremental', '{name}', * from incremental
                 except all select 'only incremental', '{name}', * from full_evaluation)
                union all
                (select 'only full', '{name}', * from full_evaluation
                 except all select 'only full', '{name}', * from incremental)
                order by all
                """  # noqa: S608
            ).fetchall()
    return differences


def _learner(warehouse: Path, program: str, user: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(
            """
            select row_kind, set_id, set_completed_at, path_completed_at, path_courses_completed
            from intermediate.int_program_course_sets_evaluated
            where program_id = ? and user_id = ?
            order by set_position
            """,
            [program, user],
        ).fetchall()


def _copy(warehouse: Path, directory: Path) -> Path:
    """The warehouse and its state folder, copied into `directory` (later runs go there)."""
    directory.mkdir()
    copy = directory / warehouse.name
    shutil.copyfile(warehouse, copy)
    state = warehouse.with_name(warehouse.name + ".learnops")
    shutil.copytree(state, copy.with_name(copy.name + ".learnops"), ignore=_no_dbt_state)
    return copy


def _no_dbt_state(directory: str, names: list[str]) -> list[str]:
    return ["dbt"] if Path(directory).name.endswith(".learnops") else []


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("incremental_course_sets")


@pytest.fixture(scope="module")
def after_r1(base: Path) -> Path:
    warehouse = base / "r1" / "warehouse.duckdb"
    warehouse.parent.mkdir()
    _run(base, warehouse, 1)
    return warehouse


def test_the_first_run_is_a_full_evaluation(after_r1: Path, tmp_path: Path) -> None:
    assert _differences(after_r1, _evaluated_in_full(after_r1, tmp_path)) == []
    # U3's B is dated after R1's as-of: not counted yet
    assert [row[2] is not None for row in _learner(after_r1, "alpha", "U3")] == [True, False]


@pytest.fixture(scope="module")
def after_r2(base: Path, after_r1: Path) -> Path:
    warehouse = _copy(after_r1, base / "r2")
    # a row nothing in R2 concerns, altered: kept as it is if U1 is not evaluated again
    with duckdb.connect(str(warehouse)) as con:
        altered = con.execute(
            """
            update intermediate.int_program_course_sets_evaluated
            set path_courses_completed = 99
            where program_id = 'alpha' and user_id = 'U1'
            """
        ).fetchall()[0][0]
    assert altered == 2  # U1's two sets
    _run(base, warehouse, 2)
    return warehouse


def test_a_run_evaluates_again_only_the_learners_whose_inputs_changed(
    after_r2: Path, tmp_path: Path
) -> None:
    full = _evaluated_in_full(after_r2, tmp_path)
    altered = [
        row
        for row in _differences(after_r2, full)
        if row[1] == "int_program_course_sets_evaluated" and row[2] == "alpha" and row[4] == "U1"
    ]
    assert _differences(after_r2, full) == altered, "only U1's altered alpha rows differ"
    assert {row[0] for row in altered} == {"only incremental", "only full"}
    assert all(row[-1] == 99 for row in _learner(after_r2, "alpha", "U1"))


def test_each_change_of_input_is_evaluated(after_r2: Path) -> None:
    # U3: B dated 5 Mar, after R1's as-of, counts in R2 (alpha complete)
    assert _learner(after_r2, "alpha", "U3")[-1][3] is not None
    # U2: B first seen in R2's feed
    assert _learner(after_r2, "alpha", "U2")[-1][3] is not None
    # U4 left alpha, U6 joined it (no completion: one templated row)
    assert _learner(after_r2, "alpha", "U4") == []
    assert [row[0] for row in _learner(after_r2, "alpha", "U6")] == ["templated_learner"]
    # C is worth 5 points now: beta complete for U5, whose completions did not change
    assert _learner(after_r2, "beta", "U5")[0][3] is not None
    # gamma lists A only now: complete for U1 and U2
    assert all(_learner(after_r2, "gamma", user)[0][3] is not None for user in ("U1", "U2"))


def test_a_certification_learner_changing_path_is_evaluated_again(
    after_r1: Path, after_r2: Path
) -> None:
    def path(warehouse: Path) -> list[tuple[object, ...]]:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            return con.execute(
                """
                select path, row_kind
                from intermediate.int_program_certification_course_sets_evaluated
                where user_id = 'U1'
                """
            ).fetchall()

    assert path(after_r1) == [("recertification", "templated_learner")]
    # expired: the primary path again, counting from the expiry (1 Feb's A does not count)
    assert path(after_r2) == [("primary", "templated_learner")]


def test_learners_whose_program_key_moved_are_evaluated_again(
    after_r1: Path, after_r2: Path
) -> None:
    def program_keys(warehouse: Path) -> set[int]:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            return {
                key
                for (key,) in con.execute(
                    "select distinct learner_key // 4294967296"
                    " from intermediate.int_program_course_sets_evaluated"
                    " where program_id = 'delta' and learner_key is not null"
                ).fetchall()
            }

    # alpha, beta, cert, delta in R1; alpha, bb, beta, cert, delta in R2
    assert (program_keys(after_r1), program_keys(after_r2)) == ({4}, {5})
    # bb took beta's old key: bb's U1 row is bb's own, not beta's of R1
    assert [row[0] for row in _learner(after_r2, "bb", "U1")] == ["learner"]
    assert _learner(after_r2, "beta", "U1")[0][4] == 2  # A and B, each worth 1


def test_tables_made_before_input_hash_existed_are_evaluated_again(
    base: Path, after_r1: Path, tmp_path: Path
) -> None:
    # a warehouse of an earlier version: no input_hash column, every learner's rows stale
    warehouse = _copy(after_r1, base / "upgrade")
    with duckdb.connect(str(warehouse)) as con:
        for table in TABLES:  # this module's constants
            con.execute(f"alter table {table} drop column input_hash")
            con.execute(f"update {table} set path_courses_completed = 99")  # noqa: S608
    _run(base, warehouse, 2)
    assert _differences(warehouse, _evaluated_in_full(warehouse, tmp_path)) == []
