"""Fixtures for HR Import tests: inline feed files and one-call imports."""

from __future__ import annotations

import datetime
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from flows.hr_import.config import HrImportRules, load_hr_import_rules
from flows.hr_import.importer import ImportContext, ImportSummary, import_feeds
from flows.state_schema import ensure_state_schema


def csv_text(text: str) -> str:
    """Dedent an inline CSV and drop the blank first line of a triple-quoted string."""
    return textwrap.dedent(text).lstrip("\n")


@dataclass
class Importer:
    """One warehouse and a counter of runs; `run` writes a feed directory and imports it."""

    tmp_path: Path
    con: duckdb.DuckDBPyConnection
    ordinal: int = 0  # runs imported so far; run N has run_id rN
    site_tz: str = "UTC"

    @property
    def archive_dir(self) -> Path:
        return self.tmp_path / "archive"

    def feeds(self, files: dict[str, str | bytes], rules: str | None = None) -> Path:
        """Write the next run's feed directory (and rules dir); return the feeds dir."""
        run_dir = self.tmp_path / f"run{self.ordinal + 1}"
        feeds_dir = run_dir / "feeds"
        rules_dir = run_dir / "rules"
        feeds_dir.mkdir(parents=True, exist_ok=True)
        rules_dir.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            target = feeds_dir / name
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(csv_text(content), encoding="utf-8")
        if rules is not None:
            (rules_dir / "hr_import.yaml").write_text(csv_text(rules), encoding="utf-8")
        return feeds_dir

    def rules(self) -> HrImportRules:
        return load_hr_import_rules(self.tmp_path / f"run{self.ordinal + 1}" / "rules")

    def run(
        self,
        files: dict[str, str | bytes] | None = None,
        rules: str | None = None,
        *,
        allow_mass_removal: frozenset[str] = frozenset(),
        feeds_dir: Path | None = None,
    ) -> ImportSummary:
        """Import one run; files map file names to inline CSV text (dedented) or bytes."""
        if feeds_dir is None:
            feeds_dir = self.feeds(files or {}, rules)
        loaded = self.rules()
        self.ordinal += 1
        return import_feeds(
            self.con,
            feeds_dir,
            loaded,
            ImportContext(
                run_id=f"r{self.ordinal}",
                run_ordinal=self.ordinal,
                as_of=datetime.datetime(2026, 1, self.ordinal),
                site_tz=self.site_tz,
                archive_dir=self.archive_dir,
                allow_mass_removal=allow_mass_removal,
            ),
        )

    def mark_succeeded(self) -> None:
        """Log the last run as succeeded, as the pipeline does when it publishes: only such
        runs count as imported when a later run looks for unchanged inputs."""
        self.con.execute(
            "insert into learnops.run_log (run_id, as_of, started_at, status) "
            "values (?, ?, ?, 'succeeded')",
            [f"r{self.ordinal}", datetime.datetime(2026, 1, self.ordinal), datetime.datetime.now()],
        )

    # --- reading the state back ---------------------------------------------------------

    def rows(self, sql: str, params: list[object] | None = None) -> list[tuple]:
        return self.con.execute(sql, params or []).fetchall()

    def users(self) -> dict[str, str]:
        """user_id -> status."""
        return dict(self.rows("select user_id, status from hr.user order by user_id"))

    def orgs(self) -> dict[str, str | None]:
        """organisation_id -> parent_id."""
        return dict(self.rows("select organisation_id, parent_id from hr.organisation"))

    def rejects(self, run_id: str | None = None) -> list[tuple]:
        """(element, row_number, record_id, reason_code) of one run (default: the last)."""
        run_id = run_id or f"r{self.ordinal}"
        return self.rows(
            "select element, row_number, record_id, reason_code from learnops.import_reject_log "
            "where run_id = ? order by element, row_number",
            [run_id],
        )

    def reject_codes(self, run_id: str | None = None) -> dict[str, str]:
        """record_id -> reason_code of one run (default: the last)."""
        return {record: code for _, _, record, code in self.rejects(run_id)}

    def snapshot(self) -> dict[str, list[tuple]]:
        """Every hr.* table's sorted contents, to prove a run changed nothing."""
        tables = [
            t
            for (t,) in self.rows(
                "select table_name from information_schema.tables where table_schema = 'hr'"
            )
        ]
        return {
            t: sorted(self.rows(f'select * from hr."{t}"'), key=repr)  # noqa: S608 - catalog names
            for t in tables
        }


@pytest.fixture
def importer(tmp_path: Path) -> Iterator[Importer]:
    con = duckdb.connect(":memory:")
    ensure_state_schema(con)
    yield Importer(tmp_path=tmp_path, con=con)
    con.close()


def user_csv(ids: list[str], *, extra_header: str = "", extra: str = "") -> str:
    """A user file with one plain row per id (u01 -> username u01, email u01@example.com)."""
    lines = [f"idnumber,username,firstname,lastname,email{extra_header}"]
    lines += [f"{i},{i},First {i},Last {i},{i}@example.com{extra}" for i in ids]
    return "\n".join(lines) + "\n"


def user_ids(count: int) -> list[str]:
    """u01, u02, ... u<count>."""
    return [f"u{n:02d}" for n in range(1, count + 1)]
