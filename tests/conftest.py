"""Shared fixtures: tiny inline organisations written as feed files."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from flows.runtime_env import configure_runtime_env

configure_runtime_env()
# The suite builds dozens of warehouses per process: parse the dbt project once per worker
# (and database name) instead of once per new warehouse path (flows/build.py).
os.environ.setdefault("LEARNOPS_DBT_REUSE_MANIFEST", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent

ORG_CSV = """\
    idnumber,fullname,parentidnumber
    O1,Head Office,
    O2,Finance,O1
    O3,Payroll,O2
"""

USER_CSV = """\
    idnumber,username,firstname,lastname,email,country
    U1,ceo,Ada,Boss,ada@example.com,GB
    U2,fin,Fin,Lead,fin@example.com,GB
    U3,pay1,Pat,Pay,pat@example.com,NZ
    U4,pay2,Sam,Pay,sam@example.com,NZ
"""

JOB_CSV = """\
    idnumber,useridnumber,fullname,orgidnumber,manageridnumber,startdate
    J1,U1,Chief Executive,O1,,2020-01-01
    J1,U2,Head of Finance,O2,U1,2021-03-01
    J1,U3,Payroll Officer,O3,U2,2022-05-01
    J1,U4,Payroll Officer,O3,U3,2023-07-01
"""


@pytest.fixture
def write_feeds() -> Callable[[Path, dict[str, str]], Path]:
    """Write {file name: dedented CSV text} into a directory and return it."""

    def write(directory: Path, files: dict[str, str]) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (directory / name).write_text(textwrap.dedent(text), encoding="utf-8")
        return directory

    return write


@pytest.fixture
def small_org(tmp_path: Path, write_feeds: Callable[[Path, dict[str, str]], Path]) -> Path:
    """Feeds of a four-person organisation: a management chain U1 > U2 > U3 > U4."""
    return write_feeds(
        tmp_path / "feeds", {"org.csv": ORG_CSV, "user.csv": USER_CSV, "jobassignment.csv": JOB_CSV}
    )


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """An empty rules directory: every HR Import default, except a guard small orgs can pass."""
    directory = tmp_path / "rules"
    directory.mkdir()
    (directory / "hr_import.yaml").write_text("defaults:\n  max_removed_fraction: 0.5\n")
    return directory


# --- scheduling on pytest-xdist (./dev.sh test: --dist loadfile --no-loadscope-reorder) ---

#: Test files that must run on one worker, one after the other, because they share a
#: package-scoped fixture: tests/audiences/conftest.py's three pipeline runs. Spread over
#: both workers (or interleaved with other packages) the fixture was built up to four times.
SHARED_FIXTURE_GROUPS = {"tests/audiences/": "tests/audiences/"}

#: Seconds each group costs (the sum of its test durations, measured with --durations=0 on
#: 2 cores at load ~10, December 2026), to hand out the longest first: xdist gives the next
#: group in this order to whichever worker is free, so both finish close together instead
#: of one waiting on a late long file. Groups not listed weigh nothing and run last, in
#: collection order; a list that is off makes the run slower, never wrong.
GROUP_SECONDS = {
    "tests/audiences/": 520,
    "tests/test_plan.py": 410,
    "tests/notifications/test_outbox.py": 355,
    "tests/notifications/test_incremental.py": 305,
    "tests/notifications/test_budget.py": 305,
    "tests/dbt_build/test_dbt_certifications.py": 300,
    "tests/test_pipeline.py": 260,
    "tests/test_prefect_flow.py": 155,
    "tests/dbt_build/test_dbt_identity.py": 155,
    "tests/test_cli.py": 130,
    "tests/programs/test_end_to_end.py": 130,
    "tests/dbt_build/test_dbt_programs.py": 125,
    "tests/test_explain_programs.py": 110,
    "tests/test_explain.py": 90,
    "tests/test_admin_guide.py": 60,
    "tests/programs/test_incremental_course_sets.py": 60,
    "tests/reports/test_scope.py": 37,
}


def xdist_group_of(nodeid: str) -> str:
    """The scheduling group of a test: its shared-fixture group, else its file."""
    path = nodeid.split("::", 1)[0]
    for prefix, group in SHARED_FIXTURE_GROUPS.items():
        if path.startswith(prefix):
            return group
    return path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order the groups longest first; tests keep their order within a group."""
    order = {item: index for index, item in enumerate(items)}
    items.sort(key=lambda item: (-GROUP_SECONDS.get(xdist_group_of(item.nodeid), 0), order[item]))


@pytest.hookimpl(optionalhook=True)  # without xdist (-p no:xdist) the hook is unknown
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """--dist loadfile, with the files of a SHARED_FIXTURE_GROUPS entry as one unit.

    (xdist's own --dist loadgroup left every test ungrouped here, xdist 3.8.0: its marks
    never reached the scheduler.) Other modes keep xdist's scheduler.
    """
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupedFileScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group_of(nodeid)

    return GroupedFileScheduling(config, log)
