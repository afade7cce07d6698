"""`rules/hr_import.yaml`: how each feed element is read and applied (SPEC §3.2).

A missing or empty file means every default. Any element setting may be given once under
`defaults:` and overridden per element under `elements:`::

    defaults:
      mode: full                # full | delta
      empty_fields: keep        # keep | erase
      max_removed_fraction: 0.10
    elements:
      user:
        on_remove: suspend      # keep | suspend | delete
        custom_fields:
          hiredate: {type: date}
      org:
        file: organisations.csv
        csv: {delimiter: "\\t"}
        date_format: "%d/%m/%Y"
    archive:
      retention_days: 365
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from flows.hr_import.elements import ELEMENTS
from flows.hr_import.reader import CsvOptions
from flows.rules.loader import load_model

HR_IMPORT_FILE = "hr_import.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class CsvSettings(_Strict):
    delimiter: str = ","
    encoding: str = "utf-8"
    quote_char: str = '"'

    @field_validator("delimiter", "quote_char")
    @classmethod
    def _one_character(cls, value: str) -> str:
        if len(value) != 1:
            raise ValueError('must be exactly one character (write a tab as "\\t")')
        return value

    def as_options(self) -> CsvOptions:
        return CsvOptions(
            delimiter=self.delimiter, encoding=self.encoding, quote_char=self.quote_char
        )


class CustomFieldSettings(_Strict):
    type: Literal["text", "date", "menu", "checkbox"] = "text"
    # YAML gives a list; strict mode would accept only a real tuple.
    options: tuple[str, ...] = Field(default=(), strict=False)


class ElementOverrides(_Strict):
    """Settings of one element; unset fields fall back to `defaults`, then to built-ins."""

    file: str | None = None
    mode: Literal["full", "delta"] | None = None
    on_remove: Literal["keep", "suspend", "delete"] | None = None
    empty_fields: Literal["keep", "erase"] | None = None
    max_removed_fraction: float | None = Field(default=None, ge=0, le=1)
    csv: CsvSettings | None = None
    date_format: str | None = None  # "iso" or a strftime pattern such as "%d/%m/%Y"
    columns: dict[str, str] | None = None  # feed column -> Totara column
    custom_fields: dict[str, CustomFieldSettings] | None = None


class ArchiveSettings(_Strict):
    retention_days: int = Field(default=365, ge=1)


class HrImportRules(_Strict):
    defaults: ElementOverrides = ElementOverrides()
    elements: dict[str, ElementOverrides] = {}
    archive: ArchiveSettings = ArchiveSettings()

    @field_validator("elements")
    @classmethod
    def _known_elements(cls, value: dict[str, ElementOverrides]) -> dict[str, ElementOverrides]:
        unknown = sorted(set(value) - set(ELEMENTS))
        if unknown:
            raise ValueError(f"unknown element(s) {unknown}; elements are {sorted(ELEMENTS)}")
        return value

    def element(self, name: str) -> ElementSettings:
        """The effective settings of one element."""
        own = self.elements.get(name, ElementOverrides())

        def pick(field: str, builtin: object) -> object:
            for layer in (own, self.defaults):
                value = getattr(layer, field)
                if value is not None:
                    return value
            return builtin

        return ElementSettings(
            name=name,
            file=own.file or ELEMENTS[name].default_file(),
            mode=pick("mode", "full"),
            on_remove=pick("on_remove", "suspend"),
            empty_fields=pick("empty_fields", "keep"),
            max_removed_fraction=pick("max_removed_fraction", 0.10),
            csv=pick("csv", CsvSettings()),
            date_format=pick("date_format", "iso"),
            columns=pick("columns", {}),
            custom_fields=pick("custom_fields", {}),
        )


class ElementSettings(BaseModel):
    """Effective settings of one element after defaults were applied."""

    model_config = ConfigDict(frozen=True)

    name: str
    file: str
    mode: Literal["full", "delta"]
    on_remove: Literal["keep", "suspend", "delete"]
    empty_fields: Literal["keep", "erase"]
    max_removed_fraction: float
    csv: CsvSettings
    date_format: str
    columns: dict[str, str]
    custom_fields: dict[str, CustomFieldSettings]


def load_hr_import_rules(rules_dir: Path) -> HrImportRules:
    """Read `rules_dir/hr_import.yaml`; missing or empty means the defaults of SPEC §3.2."""
    return load_model(rules_dir / HR_IMPORT_FILE, HrImportRules)
