"""Row-by-row validation of one feed file (SPEC §3.3).

Two layers:

* **row checks** (one row at a time) run as a pandera DataFrameSchema over the text cells:
  non-empty keys and required values, flags, numbers, dates, e-mail, country, username,
  custom-field types;
* **set checks** (need other rows or the live state) run in polars afterwards: duplicate
  keys, username/e-mail uniqueness; references and cycles live in :mod:`references`.

The result is a :class:`Batch`: the file's rows and one reject per rejected row, each with a
stable ``reason_code`` and a reason a person can act on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandera.polars as pa
import polars as pl

from flows.hr_import.config import ElementSettings
from flows.hr_import.elements import CUSTOM_FIELD_PREFIX, ElementSpec
from flows.hr_import.parsing import (
    ISO_COUNTRIES,
    date_series,
    is_valid_flag,
    parse_flag,
    parse_integer,
    parse_number,
    timestamp_series,
)
from flows.hr_import.reader import LINE_COLUMN, FeedFileError, FeedTable

KEY_COLUMN = "_key"
TYPED_PREFIX = "__typed_"
"""Prefix of the parsed twin of a date or time column, computed once per file."""
REJECT_COLUMNS = {LINE_COLUMN: pl.Int64, "reason_code": pl.String, "reason": pl.String}

_EMAIL = r"^[^@\s,;<>()\[\]\\\"]+@[^@\s,;<>()\[\]\\\"]+\.[^@\s,;<>()\[\]\\\".]+$"
_USERNAME = r"^[a-z0-9_.@-]+$"


def empty_rejects() -> pl.DataFrame:
    return pl.DataFrame(schema=REJECT_COLUMNS)


@dataclass
class Batch:
    """One element's rows as read, and the rows rejected so far."""

    spec: ElementSpec
    settings: ElementSettings
    path: Path
    rows: pl.DataFrame  # text cells (Totara column names), LINE_COLUMN, KEY_COLUMN
    rejects: pl.DataFrame = field(default_factory=empty_rejects)
    warnings: list[str] = field(default_factory=list)
    malformed_raw: dict[int, dict[str, str]] = field(default_factory=dict)

    @property
    def columns(self) -> set[str]:
        return {c for c in self.rows.columns if c not in (LINE_COLUMN, KEY_COLUMN)} - set(
            c for c in self.rows.columns if c.startswith(TYPED_PREFIX)
        )

    def data_columns(self) -> list[str]:
        """The file's own columns, in file order (for the raw row of a reject)."""
        return [c for c in self.rows.columns if c in self.columns]

    def reject(self, rejects: pl.DataFrame) -> None:
        """Add rejects (LINE_COLUMN, reason_code, reason); a row keeps its first reason."""
        if rejects.height:
            self.rejects = pl.concat(
                [self.rejects, rejects.select(list(REJECT_COLUMNS)).cast(REJECT_COLUMNS)]
            ).unique(LINE_COLUMN, keep="first", maintain_order=True)

    def reject_where(self, condition: pl.Expr, code: str, reason: pl.Expr) -> None:
        """Reject every still-accepted row where `condition` holds."""
        hits = self.accepted().filter(condition)
        if hits.height:
            self.reject(
                hits.select(
                    pl.col(LINE_COLUMN),
                    pl.lit(code).alias("reason_code"),
                    reason.alias("reason"),
                )
            )

    def accepted(self) -> pl.DataFrame:
        return self.rows.join(self.rejects.select(LINE_COLUMN), on=LINE_COLUMN, how="anti")

    def rejected_keys(self) -> pl.Series:
        return self.rows.join(self.rejects.select(LINE_COLUMN), on=LINE_COLUMN, how="semi")[
            KEY_COLUMN
        ]

    def is_deleted(self) -> pl.Expr:
        """True for rows that ask to remove their record (`deleted=1`).

        In full mode only a user row can remove its record this way; `deleted` is ignored
        for other elements (SPEC §3.2), whose rows are then checked and stored like any other.
        """
        ignored = self.settings.mode == "full" and self.spec.name != "user"
        if "deleted" not in self.columns or ignored:
            return pl.lit(False)
        return parse_flag(pl.col("deleted")).fill_null(False)


def prepare_batch(table: FeedTable, spec: ElementSpec, settings: ElementSettings) -> Batch:
    """Rename columns, check the header, attach keys and structural rejects."""
    frame = table.frame.rename(
        {k: v for k, v in settings.columns.items() if k in table.frame.columns}
    )
    found = [c for c in frame.columns if c != LINE_COLUMN]
    missing = [c for c in spec.required if c not in found]
    if missing:
        raise FeedFileError(
            table.path,
            "file.missing_columns",
            f"missing required column(s) {', '.join(missing)}; the header has "
            f"{', '.join(found) or 'no columns'}. Rename the columns or map them with "
            f"`columns:` in rules/hr_import.yaml",
        )
    if spec.is_hr and settings.mode == "delta" and "deleted" not in found:
        raise FeedFileError(
            table.path,
            "file.no_deleted_column",
            "a delta feed needs a 'deleted' column (1 = remove the record, empty or 0 = "
            "keep it); add it or set mode: full for this element",
        )
    batch = Batch(spec=spec, settings=settings, path=table.path, rows=frame)
    unknown = sorted(c for c in found if c not in spec.known_columns and not _is_custom(spec, c))
    if unknown:
        batch.warnings.append(f"{table.path.name}: ignored unknown column(s) {', '.join(unknown)}")
        frame = frame.drop(unknown)
    batch.rows = frame.with_columns(_key_expr(spec).alias(KEY_COLUMN))
    if table.malformed:
        batch.reject(
            pl.DataFrame(
                {
                    LINE_COLUMN: [m.line for m in table.malformed],
                    "reason_code": ["row_malformed"] * len(table.malformed),
                    "reason": [m.reason for m in table.malformed],
                },
                schema=REJECT_COLUMNS,
            )
        )
        batch.malformed_raw = {m.line: m.raw for m in table.malformed}
    return batch


def _is_custom(spec: ElementSpec, column: str) -> bool:
    return spec.has_custom_fields and column.startswith(CUSTOM_FIELD_PREFIX)


def _key_expr(spec: ElementSpec) -> pl.Expr:
    parts = [pl.col(c).str.strip_chars() for c in spec.key]
    return parts[0] if len(parts) == 1 else pl.concat_str(parts, separator="/")


# --- row checks (pandera) ---------------------------------------------------------------


@dataclass(frozen=True)
class _RowCheck:
    column: str
    code: str
    is_valid: pl.Expr  # over the text cells; true = fine
    reason: str  # template with {column} and {value}


def _row_checks(batch: Batch, site_tz: str) -> list[_RowCheck]:
    spec, settings, columns = batch.spec, batch.settings, batch.columns
    not_deleted = ~batch.is_deleted()
    checks: list[_RowCheck] = []

    def text(c: str) -> pl.Expr:
        return pl.col(c).str.strip_chars()

    for c in spec.key:
        checks.append(
            _RowCheck(
                c, "idnumber_missing", text(c) != "", "{column} is empty: every record needs one"
            )
        )
    for c in spec.required:
        if c not in spec.key:
            checks.append(
                _RowCheck(
                    c,
                    "required_missing",
                    (text(c) != "") | ~not_deleted,
                    "required column {column} is empty: fill it in",
                )
            )
    for c in spec.flag_columns:
        if c in columns:
            checks.append(
                _RowCheck(
                    c, "flag_invalid", is_valid_flag(pl.col(c)), "{column} is '{value}': use 0 or 1"
                )
            )
    for c in spec.integer_columns:
        if c in columns:
            valid = (text(c) == "") | parse_integer(pl.col(c)).is_not_null()
            checks.append(
                _RowCheck(c, "number_invalid", valid, "{column} '{value}' is not a whole number")
            )
    for c in spec.number_columns:
        if c in columns:
            valid = (text(c) == "") | parse_number(pl.col(c)).is_not_null()
            checks.append(
                _RowCheck(c, "number_invalid", valid, "{column} '{value}' is not a number")
            )
    date_hint = "YYYY-MM-DD" if settings.date_format == "iso" else settings.date_format
    for c in spec.date_columns:
        if c in columns:
            valid = (text(c) == "") | pl.col(typed_name(c)).is_not_null()
            checks.append(
                _RowCheck(
                    c,
                    "date_invalid",
                    valid,
                    f"{{column}} '{{value}}' is not a valid date ({date_hint} or Unix seconds); "
                    "correct it or set date_format for this element",
                )
            )
    for c in spec.timestamp_columns:
        if c in columns:
            valid = (text(c) == "") | pl.col(typed_name(c)).is_not_null()
            checks.append(
                _RowCheck(
                    c,
                    "date_invalid",
                    valid,
                    "{column} '{value}' is not a valid date-time (ISO 8601 such as "
                    "2026-03-01T09:30:00Z, or Unix seconds)",
                )
            )
    if "email" in columns:
        valid = (text("email") == "") | text("email").str.contains(_EMAIL)
        checks.append(
            _RowCheck(
                "email",
                "email_invalid",
                valid,
                "email '{value}' is not a valid address: correct it or leave it empty",
            )
        )
    if "country" in columns:
        valid = (text("country") == "") | text("country").is_in(sorted(ISO_COUNTRIES))
        checks.append(
            _RowCheck(
                "country",
                "country_invalid",
                valid,
                "country '{value}' is not an ISO 3166-1 alpha-2 code (such as GB, NZ, US)",
            )
        )
    if spec.name == "user":
        valid = (text("username") == "") | text("username").str.to_lowercase().str.contains(
            _USERNAME
        )
        checks.append(
            _RowCheck(
                "username",
                "username_invalid",
                valid,
                "username '{value}' may hold only letters, digits and . _ - @",
            )
        )
    checks.extend(_custom_field_checks(batch, site_tz))
    return checks


def _custom_field_checks(batch: Batch, site_tz: str) -> list[_RowCheck]:
    checks = []
    for name, declared in batch.settings.custom_fields.items():
        c = CUSTOM_FIELD_PREFIX + name
        if c not in batch.columns:
            continue
        value = pl.col(c).str.strip_chars()
        if declared.type == "date":
            valid = (value == "") | pl.col(typed_name(c)).is_not_null()
            checks.append(
                _RowCheck(
                    c, "custom_field_invalid", valid, "{column} '{value}' is not a valid date"
                )
            )
        elif declared.type == "menu":
            options = ", ".join(declared.options)
            checks.append(
                _RowCheck(
                    c,
                    "custom_field_invalid",
                    (value == "") | value.is_in(list(declared.options)),
                    f"{{column}} '{{value}}' is not one of the menu options ({options})",
                )
            )
        elif declared.type == "checkbox":
            checks.append(
                _RowCheck(
                    c,
                    "custom_field_invalid",
                    is_valid_flag(pl.col(c)),
                    "{column} '{value}': use 0 or 1",
                )
            )
    return checks


def typed_name(column: str) -> str:
    return TYPED_PREFIX + column


def add_typed_columns(batch: Batch, site_tz: str) -> None:
    """Parse every date and time column once; checks and apply both read the result."""
    fmt = batch.settings.date_format
    dates = [c for c in batch.spec.date_columns if c in batch.columns] + [
        CUSTOM_FIELD_PREFIX + name
        for name, declared in batch.settings.custom_fields.items()
        if declared.type == "date" and CUSTOM_FIELD_PREFIX + name in batch.columns
    ]
    times = [c for c in batch.spec.timestamp_columns if c in batch.columns]
    batch.rows = batch.rows.with_columns(
        *(date_series(batch.rows[c], fmt, site_tz).alias(typed_name(c)) for c in dates),
        *(timestamp_series(batch.rows[c], fmt, site_tz).alias(typed_name(c)) for c in times),
    )


def run_row_checks(batch: Batch, site_tz: str) -> None:
    """Validate every row with a pandera schema; failing rows become rejects."""
    add_typed_columns(batch, site_tz)
    checks = _row_checks(batch, site_tz)
    by_name = {f"{check.code}:{i}": check for i, check in enumerate(checks)}
    columns: dict[str, list[pa.Check]] = {c: [] for c in batch.columns}
    for name, check in by_name.items():
        columns[check.column].append(
            pa.Check(lambda data, expr=check.is_valid: data.lazyframe.select(expr), name=name)
        )
    schema = pa.DataFrameSchema(
        {c: pa.Column(pl.String, checks=cs, nullable=False) for c, cs in columns.items()},
        strict=False,
    )
    frame = batch.rows.drop(KEY_COLUMN)
    try:
        schema.validate(frame, lazy=True)
        return
    except pa.errors.SchemaErrors as err:
        failures = err.failure_cases
    failures = failures.filter(pl.col("index").is_not_null() & pl.col("check").is_in(list(by_name)))
    if not failures.height:
        return
    lines = frame[LINE_COLUMN]
    order = {name: i for i, name in enumerate(by_name)}
    records = []
    for row in failures.iter_rows(named=True):
        check = by_name[row["check"]]
        value = str(row["failure_case"])[:200]
        records.append(
            (
                int(lines[row["index"]]),
                order[row["check"]],
                check.code,
                check.reason.format(column=check.column, value=value),
            )
        )
    rejects = (
        pl.DataFrame(records, schema=[LINE_COLUMN, "_order", "reason_code", "reason"], orient="row")
        .sort(LINE_COLUMN, "_order")
        .group_by(LINE_COLUMN, maintain_order=True)
        .agg(pl.col("reason_code").first(), pl.col("reason").str.join("; "))
    )
    batch.reject(rejects)


# --- set checks ---------------------------------------------------------------------------


def reject_duplicate_keys(batch: Batch) -> None:
    """Every copy of a key that appears more than once is rejected (SPEC §3.3).

    Copies are counted over every row, rejected or not: when one copy is invalid, the file
    still says two things about one record, so the other copy must not win either.
    """
    if not batch.rows[KEY_COLUMN].is_duplicated().any():
        return
    if batch.spec.name == "course_completion":
        # A completion history may repeat a row verbatim: identical copies are one fact.
        batch.rows = batch.rows.unique(batch.data_columns(), keep="first", maintain_order=True)
        kept_lines = pl.concat(
            [batch.rows[LINE_COLUMN], pl.Series(list(batch.malformed_raw), dtype=pl.Int64)]
        )
        batch.rejects = batch.rejects.filter(pl.col(LINE_COLUMN).is_in(kept_lines.implode()))
    counts = (
        batch.rows.filter(pl.col(KEY_COLUMN) != "")
        .group_by(KEY_COLUMN)
        .agg(pl.len().alias("_copies"), pl.col(LINE_COLUMN).sort().alias("_lines"))
    )
    dupes = batch.accepted().join(counts.filter(pl.col("_copies") > 1), on=KEY_COLUMN)
    if dupes.height:
        batch.reject(
            dupes.select(
                pl.col(LINE_COLUMN),
                pl.lit("duplicate_key").alias("reason_code"),
                pl.format(
                    "key '{}' appears {} times in the file (lines {}): keep one row per key",
                    pl.col(KEY_COLUMN),
                    pl.col("_copies"),
                    pl.col("_lines").cast(pl.List(pl.String)).list.join(", "),
                ).alias("reason"),
            )
        )


def reject_duplicates_in_column(batch: Batch, column: str, code: str, what: str) -> None:
    """Reject every row sharing a non-empty, case-insensitive value of `column`."""
    if column not in batch.columns:
        return
    accepted = batch.accepted().filter(~batch.is_deleted())
    normal = pl.col(column).str.strip_chars().str.to_lowercase()
    counted = accepted.with_columns(normal.alias("_value")).filter(pl.col("_value") != "")
    dupes = counted.filter(pl.len().over("_value") > 1)
    if dupes.height:
        batch.reject(
            dupes.select(
                pl.col(LINE_COLUMN),
                pl.lit(code).alias("reason_code"),
                pl.format(
                    "{} '{}' is used by {} rows of this file: each user needs their own",
                    pl.lit(what),
                    pl.col(column),
                    pl.len().over("_value"),
                ).alias("reason"),
            )
        )
