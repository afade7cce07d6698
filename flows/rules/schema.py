"""JSON Schemas of the rules files, generated from the models, committed for editors.

Regenerate after changing a model::

    .venv/bin/python -m flows.rules.schema

A test fails when a committed schema is out of date. See docs/rules.md for editor setup.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel

from flows.hr_import.config import HrImportRules
from flows.rules.audiences import AudiencesFile
from flows.rules.notifications import NotificationsFile
from flows.rules.programs import CertificationsFile, ProgramsFile
from flows.rules.reports import ReportsFile

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"
SCHEMAS: dict[str, type[BaseModel]] = {
    "audiences.schema.json": AudiencesFile,
    "hr_import.schema.json": HrImportRules,
    "programs.schema.json": ProgramsFile,
    "certifications.schema.json": CertificationsFile,
    "notifications.schema.json": NotificationsFile,
    "reports.schema.json": ReportsFile,
}


def schema_text(name: str) -> str:
    """The JSON Schema `name` as committed: sorted keys, two-space indent, final newline."""
    model = SCHEMAS[name]
    schema = model.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"learnops rules/{name.removesuffix('.schema.json')}.yaml"
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_schemas(rules_dir: Path = RULES_DIR) -> list[Path]:
    """Write every schema into `rules_dir`; returns the files written."""
    written = []
    for name in SCHEMAS:
        path = rules_dir / name
        path.write_text(schema_text(name), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_schemas():
        sys.stdout.write(f"wrote {path}\n")
