"""The report marts a report may name, and their columns: the allow-list (docs/reports.md).

A report's `source` and every column it names reach SQL text only after they were found
here, and then quoted. The columns and their types are read from the marts' contract
(`dbt_project/models/marts/reports/_reports__models.yml`), which dbt enforces on every
build, so this list cannot drift from the tables. What a row is *about* (its subject, the
key scope joins on) is declared here, per mart.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML

CONTRACT_FILE = (
    Path(__file__).resolve().parents[2]
    / "dbt_project" / "models" / "marts" / "reports" / "_reports__models.yml"
)  # fmt: skip

#: mart -> (subject, key column): `user` rows are scoped by the learner they are about,
#: `organisation` rows by their organisation, `none` rows only by scope `all`
SUBJECTS: dict[str, tuple[str, str | None]] = {
    "rpt_required_learning": ("user", "user_id"),
    "rpt_team_progress": ("user", "user_id"),
    "rpt_compliance_by_organisation": ("organisation", "organisation_id"),
    "rpt_certification_expiry": ("user", "user_id"),
    "rpt_audience_change": ("user", "user_id"),
    "rpt_import_health": ("none", None),
}

NUMERIC = ("integer", "bigint", "double", "decimal", "float", "hugeint", "smallint")
TEMPORAL = ("timestamp", "date", "timestamptz")


@dataclass(frozen=True)
class Source:
    """One report mart: its subject, the column scope joins on, and its typed columns."""

    name: str
    subject: str  # user | organisation | none
    key: str | None
    columns: dict[str, str]  # column -> contract data_type (lower case)

    def kind_of(self, column: str) -> str:
        """`text`, `number`, `boolean` or `time` for a column of this mart."""
        data_type = self.columns[column]
        if data_type.startswith(NUMERIC):
            return "number"
        if data_type == "boolean":
            return "boolean"
        if data_type.startswith(TEMPORAL):
            return "time"
        return "text"


@functools.lru_cache(maxsize=4)
def report_sources(contract_file: Path = CONTRACT_FILE) -> dict[str, Source]:
    """Every report mart of the contract with its columns, by name."""
    tree = YAML(typ="safe").load(contract_file.read_text(encoding="utf-8"))
    sources = {}
    for model in tree["models"]:
        name = model["name"]
        if name not in SUBJECTS:
            continue  # report_delivery: a contract table, not a report source
        columns = {c["name"]: str(c["data_type"]).lower() for c in model["columns"]}
        subject, key = SUBJECTS[name]
        sources[name] = Source(name, subject, key, columns)
    return sources
