"""The `learnops` command line: exit codes, one-line errors, help (SPEC §8)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import JOB_CSV, ORG_CSV, REPO_ROOT, USER_CSV

LEARNOPS = [sys.executable, "-m", "flows.cli"]


def run_local(
    feeds: Path, rules: Path, warehouse: Path, as_of: str
) -> subprocess.CompletedProcess[str]:
    """`learnops run` without Prefect (the same stages; Prefect has its own test)."""
    return learnops(
        "run",
        "--engine",
        "local",
        "--feeds",
        feeds,
        "--rules",
        rules,
        "--warehouse",
        warehouse,
        "--as-of",
        as_of,
    )


def learnops(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LEARNOPS, *map(str, args)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("command", ["run", "validate", "demo", "generate", "restore-feeds"])
def test_every_command_has_help(command: str) -> None:
    result = learnops(command, "--help")
    assert result.returncode == 0
    assert "Usage: " in result.stdout


def test_run_options_are_the_public_contract() -> None:
    help_text = learnops("run", "--help").stdout
    for option in ("--feeds", "--rules", "--warehouse", "--as-of", "--allow-mass-removal"):
        assert option in help_text


def test_malformed_feed_fails_with_one_line_and_no_traceback(
    tmp_path: Path, write_feeds, rules_dir: Path
) -> None:
    feeds = write_feeds(tmp_path / "feeds", {"org.csv": "idnumber\tfullname\nO1\tHead Office\n"})
    result = run_local(feeds, rules_dir, tmp_path / "w.duckdb", "2026-01-01")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "learnops: error: org.csv: the header has one column 'idnumber\\tfullname': the file looks "
        "delimited by TAB, not ','; set csv.delimiter for this element in rules/hr_import.yaml"
    ]


def test_invalid_rules_refuse_the_run_before_reading_feeds(tmp_path: Path, small_org: Path) -> None:
    rules = tmp_path / "bad_rules"
    rules.mkdir()
    (rules / "hr_import.yaml").write_text("defaults:\n  mode: ful\n")
    result = run_local(small_org, rules, tmp_path / "w.duckdb", "2026-01-01")
    assert result.returncode == 2
    assert (
        "hr_import.yaml:2:9: defaults.mode: Input should be 'full' or 'delta' (got 'ful')"
        in result.stderr
    )
    assert not (tmp_path / "w.duckdb").exists()


def test_validate_lists_every_rejected_row_and_exits_1(
    tmp_path: Path, write_feeds, rules_dir: Path
) -> None:
    feeds = write_feeds(
        tmp_path / "feeds",
        {
            "user.csv": (
                "idnumber,username,firstname,lastname,email,country\n"
                "U1,ann,Ann,Lee,ann@example.com,XX\n"
                "U2,bob,Bob,Ray,not-an-email,GB\n"
                "U3,cy,Cy,Oh,cy@example.com,NZ\n"
            )
        },
    )
    result = learnops(
        "validate", "--feeds", feeds, "--rules", rules_dir, "--warehouse", tmp_path / "none.duckdb"
    )
    assert result.returncode == 1
    assert f"{feeds / 'user.csv'}:2: [U1] country_invalid:" in result.stdout
    assert f"{feeds / 'user.csv'}:3: [U2] email_invalid:" in result.stdout
    assert "learnops: error: 2 row(s) would be rejected, 0 rule reference(s)" in result.stderr
    assert not (tmp_path / "none.duckdb").exists()


def test_validate_checks_rule_references_against_the_feeds_it_would_import(
    tmp_path: Path, small_org: Path, rules_dir: Path
) -> None:
    (rules_dir / "audiences.yaml").write_text(
        "audiences:\n"
        "  - id: finance\n"
        "    name: Finance\n"
        "    kind: dynamic\n"
        "    rules:\n"
        "      organisation: {ids: [O2, O22], include_children: true}\n",
        encoding="utf-8",
    )
    result = learnops(
        "validate", "--feeds", small_org, "--rules", rules_dir, "--warehouse", tmp_path / "w.duckdb"
    )
    assert result.returncode == 1
    where = f"{rules_dir / 'audiences.yaml'}:6:32"
    assert f"{where}: [finance] unknown organisation 'O22'; did you mean 'O2'?" in result.stdout
    assert "0 row(s) would be rejected, 1 rule reference(s) unknown" in result.stderr


@dataclass(frozen=True)
class CliRun:
    """What one `learnops run` of the four-person organisation left behind."""

    feeds: Path
    rules: Path
    warehouse: Path
    run: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> CliRun:
    """One `learnops run` (1 Feb 2026) shared by the tests that read what it printed and
    published: each run is a subprocess that pays dbt's import, a full parse and a build
    (about 40 s on 2 cores). Nothing here writes the warehouse afterwards: going back in
    time is refused before the building copy is made, and restore-feeds only reads."""
    base = tmp_path_factory.mktemp("cli_run")
    feeds = base / "feeds"
    feeds.mkdir()
    for name, text in (
        ("org.csv", ORG_CSV),
        ("user.csv", USER_CSV),
        ("jobassignment.csv", JOB_CSV),
    ):
        (feeds / name).write_text(textwrap.dedent(text), encoding="utf-8")
    rules = base / "rules"
    rules.mkdir()
    (rules / "hr_import.yaml").write_text("defaults:\n  max_removed_fraction: 0.5\n")
    warehouse = base / "w.duckdb"
    return CliRun(
        feeds, rules, warehouse, run_local(feeds, rules, warehouse, "2026-02-01T00:00:00Z")
    )


def test_run_prints_summary_and_refuses_going_back_in_time(cli_run: CliRun) -> None:
    first, warehouse = cli_run.run, cli_run.warehouse
    assert first.returncode == 0, first.stderr
    assert "succeeded" in first.stdout and "user" in first.stdout and str(warehouse) in first.stdout
    published = warehouse.read_bytes()
    back = run_local(cli_run.feeds, cli_run.rules, warehouse, "2026-01-01")
    assert back.returncode == 2
    assert "earlier than the last published run" in back.stderr
    assert warehouse.read_bytes() == published


def test_restore_feeds_writes_back_exactly_what_a_run_read(cli_run: CliRun, tmp_path: Path) -> None:
    assert cli_run.run.returncode == 0, cli_run.run.stderr
    import duckdb

    with duckdb.connect(str(cli_run.warehouse), read_only=True) as con:
        (run_id,) = con.execute("select run_id from pipeline_run").fetchall()[0]
    restored = learnops(
        "restore-feeds", run_id, "--warehouse", cli_run.warehouse, "--out", tmp_path / "replay"
    )
    assert restored.returncode == 0, restored.stderr
    assert "--as-of 2026-02-01T00:00:00Z" in restored.stdout
    for name in ("org.csv", "user.csv", "jobassignment.csv"):
        assert (tmp_path / "replay" / name).read_bytes() == (cli_run.feeds / name).read_bytes()
