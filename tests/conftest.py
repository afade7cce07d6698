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

