"""`rules/reports.yaml`: scheduled reports, each rendered per recipient scope (SPEC §7).

The format is a public contract (docs/reports.md "Writing reports.yaml")::

    settings:
      sender: {address: reports@example.com, name: Learning reports}
    reports:
      - id: team_overdue
        name: Overdue learning in your team
        source: rpt_required_learning
        columns: [full_name, program_name, {column: due_at, label: Due}]
        filters:
          - {column: is_overdue, operator: is_true}
        sort: [{column: due_at}]
        chart: {kind: bar, x: program_name, title: Overdue by program}
        schedule: {every: week, day: monday, at: "07:00", timezone: Europe/London}
        formats: [html, csv, xlsx]
        scope: team_all
        recipients: [managers]
        when_empty: skip

This module is the schema layer: shapes, enumerations and combinations that need no other
file. Whether `source` is a report mart, the columns exist with a fitting type, audiences
and organisations exist is the meaning layer (`flows.rules.validation`, with
`flows.reports.sources`).
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
    model_validator,
)

from flows.rules.audiences import ItemId, Slug
from flows.rules.loader import load_model, suggest
from flows.rules.notifications import DisplayName, Email, Sender
from flows.settings import check_timezone

REPORTS_FILE = "reports.yaml"

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
EVERY = ("day", "week", "month", "hours")
FORMATS = ("html", "csv", "xlsx")
TEAM_SCOPES = ("team_direct", "team_all")
SCOPE_NAMES = ("team_direct", "team_all", "organisation", "all")
#: operators that take no value / one `value` / a `values` list / `days`
NO_VALUE_OPERATORS = ("is_null", "not_null", "is_true", "is_false")
VALUE_OPERATORS = ("equals", "not_equals", "lt", "lte", "gt", "gte")
LIST_OPERATORS = ("in", "not_in")
DAYS_OPERATORS = ("within_last_days", "within_next_days")
OPERATORS = (*NO_VALUE_OPERATORS, *VALUE_OPERATORS, *LIST_OPERATORS, *DAYS_OPERATORS)
AGGREGATES = ("count", "sum", "avg", "min", "max")

_TIME = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _check_in(choices: tuple[str, ...], what: str) -> Any:
    def check(value: str) -> str:
        if value not in choices:
            hint = suggest(value, choices) or f"; use one of {', '.join(choices)}"
            raise ValueError(f"unknown {what} '{value}'{hint}")
        return value

    return check


def _check_time(value: str) -> str:
    if not _TIME.match(value):
        raise ValueError('a time of day is HH:MM, 24-hour, quoted: "07:00"')
    return value


def _check_cron(value: str) -> str:
    from cronsim import CronSim, CronSimError  # the same parser the scheduler uses

    try:
        CronSim(value, _CRON_PROBE)
    except CronSimError as error:
        raise ValueError(f"not a cron expression: {error}") from None
    return value


_CRON_PROBE = datetime(2026, 1, 1)

Column = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*$")]
TimeOfDay = Annotated[
    str, AfterValidator(_check_time), WithJsonSchema({"type": "string", "pattern": _TIME.pattern})
]
Zone = Annotated[str, AfterValidator(check_timezone), WithJsonSchema({"type": "string"})]
Weekday = Annotated[
    str, AfterValidator(_check_in(WEEKDAYS, "day")), WithJsonSchema({"enum": list(WEEKDAYS)})
]
Every = Annotated[
    str, AfterValidator(_check_in(EVERY, "period")), WithJsonSchema({"enum": list(EVERY)})
]
Format = Annotated[
    str, AfterValidator(_check_in(FORMATS, "format")), WithJsonSchema({"enum": list(FORMATS)})
]
Operator = Annotated[
    str, AfterValidator(_check_in(OPERATORS, "operator")), WithJsonSchema({"enum": list(OPERATORS)})
]
Aggregate = Annotated[
    str,
    AfterValidator(_check_in(AGGREGATES, "aggregate")),
    WithJsonSchema({"enum": list(AGGREGATES)}),
]
Cron = Annotated[str, AfterValidator(_check_cron), WithJsonSchema({"type": "string"})]
Scalar = Union[bool, int, float, str]  # noqa: UP007


# --- schedule -------------------------------------------------------------------------------


class Schedule(_Strict):
    """When a report's periods start: `every` day/week/month/hours, or a `cron` expression,
    in `timezone` (default: the site timezone). `at` defaults to 07:00."""

    every: Every | None = None
    cron: Cron | None = None
    at: TimeOfDay | None = None
    day: Annotated[Union[Weekday, Annotated[int, Field(ge=1, le=31)]], Field()] | None = None  # noqa: UP007
    hours: Annotated[int, Field(ge=1, le=23)] | None = None
    timezone: Zone | None = None

    @model_validator(mode="after")
    def _fits(self) -> Schedule:
        if (self.every is None) == (self.cron is None):
            raise ValueError("a schedule has exactly one of every: day|week|month|hours, or cron")
        if self.cron is not None:
            extra = [k for k in ("at", "day", "hours") if getattr(self, k) is not None]
            if extra:
                raise ValueError(f"a cron schedule takes only timezone, not {', '.join(extra)}")
            return self
        need_day = self.every in ("week", "month")
        if need_day and self.day is None:
            raise ValueError(f"every: {self.every} needs day: (a weekday for week, 1-31 for month)")
        if self.every == "week" and not isinstance(self.day, str):
            raise ValueError("every: week takes day: monday ... sunday")
        if self.every == "month" and not isinstance(self.day, int):
            raise ValueError("every: month takes day: 1-31 (clamped to the month's end)")
        if not need_day and self.day is not None:
            raise ValueError(f"every: {self.every} takes no day")
        if self.every == "hours":
            if self.hours is None:
                raise ValueError("every: hours needs hours: N (1-23, aligned to midnight)")
            if self.at is not None:
                raise ValueError("every: hours is aligned to midnight and takes no at")
        elif self.hours is not None:
            raise ValueError(f"every: {self.every} takes no hours")
        return self

    @property
    def time_of_day(self) -> tuple[int, int]:
        """(hour, minute) of `at`, default 07:00."""
        hour, minute = (self.at or "07:00").split(":")
        return int(hour), int(minute)


# --- columns, filters, sort, chart ----------------------------------------------------------


class ColumnSpec(_Strict):
    """A column of the source with an optional heading."""

    column: Column
    label: DisplayName | None = None


def _column_kind(value: Any) -> str:
    return "~spec" if isinstance(value, ColumnSpec | dict) else "~name"


ColumnEntry = Annotated[
    Union[Annotated[Column, Tag("~name")], Annotated[ColumnSpec, Tag("~spec")]],  # noqa: UP007
    Discriminator(_column_kind),
]


class Filter(_Strict):
    """One condition on a column; all filters of a report must hold (AND)."""

    column: Column
    operator: Operator
    value: Scalar | None = None
    values: Annotated[list[Scalar], Field(min_length=1)] | None = None
    days: Annotated[int, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _operands(self) -> Filter:
        wanted = (
            "value" if self.operator in VALUE_OPERATORS
            else "values" if self.operator in LIST_OPERATORS
            else "days" if self.operator in DAYS_OPERATORS
            else None
        )  # fmt: skip
        given = [k for k in ("value", "values", "days") if getattr(self, k) is not None]
        if wanted is None and given:
            raise ValueError(f"{self.operator} takes no {', '.join(given)}")
        if wanted is not None and given != [wanted]:
            raise ValueError(f"{self.operator} takes {wanted} (and nothing else)")
        return self


class SortKey(_Strict):
    """Sort by `column`, ascending unless `order: desc`."""

    column: Column
    order: Literal["asc", "desc"] = "asc"


def _sort_kind(value: Any) -> str:
    return "~spec" if isinstance(value, SortKey | dict) else "~name"


SortEntry = Annotated[
    Union[Annotated[Column, Tag("~name")], Annotated[SortKey, Tag("~spec")]],  # noqa: UP007
    Discriminator(_sort_kind),
]


class Chart(_Strict):
    """A bar or line chart of `y` aggregated by `x` (default: the count of rows per x)."""

    kind: Literal["bar", "line"] = "bar"
    x: Column
    y: Column | None = None
    aggregate: Aggregate = "count"
    title: DisplayName | None = None

    @model_validator(mode="after")
    def _y_fits(self) -> Chart:
        if self.aggregate != "count" and self.y is None:
            raise ValueError(f"aggregate {self.aggregate} needs y: the column to aggregate")
        return self


# --- scope and recipients -------------------------------------------------------------------


class OrganisationScope(_Strict):
    """A fixed scope: these organisations (and, by default, everything below them)."""

    organisations: Annotated[list[ItemId], Field(min_length=1)]
    include_children: bool = True


def _check_scope_name(value: str) -> str:
    return _check_in(SCOPE_NAMES, "scope")(value)


ScopeName = Annotated[
    str, AfterValidator(_check_scope_name), WithJsonSchema({"enum": list(SCOPE_NAMES)})
]


def _scope_kind(value: Any) -> str:
    return "~fixed" if isinstance(value, OrganisationScope | dict) else "~name"


Scope = Annotated[
    Union[Annotated[ScopeName, Tag("~name")], Annotated[OrganisationScope, Tag("~fixed")]],  # noqa: UP007
    Discriminator(_scope_kind),
]


def scope_kind(scope: str | OrganisationScope) -> str:
    """`team_direct`, `team_all`, `organisation`, `all` or `organisations` (a fixed list)."""
    return "organisations" if isinstance(scope, OrganisationScope) else scope


def is_fixed(scope: str | OrganisationScope) -> bool:
    """A fixed scope is the same for every recipient: `all` or a list of organisations."""
    return scope_kind(scope) in ("all", "organisations")


class AudienceRecipients(_Strict):
    """Every active member of an audience (with an address) receives the report."""

    audience: Slug


class AddressRecipient(_Strict):
    """A fixed address; it needs a fixed scope (its own, or the report's)."""

    address: Email
    name: DisplayName | None = None
    timezone: Zone | None = None
    scope: Scope | None = None


def _recipient_kind(value: Any) -> str:
    if isinstance(value, AddressRecipient):
        return "~address"
    if isinstance(value, AudienceRecipients):
        return "~audience"
    if isinstance(value, dict):
        return "~audience" if "audience" in value else "~address"
    return "~managers"


def _check_managers(value: str) -> str:
    if value != "managers":
        hint = suggest(value, ["managers"]) or ""
        raise ValueError(
            f"unknown recipient '{value}'{hint}; use managers, {{audience: id}} or {{address: ...}}"
        )
    return value


Recipient = Annotated[
    Union[  # noqa: UP007
        Annotated[
            str,
            AfterValidator(_check_managers),
            WithJsonSchema({"const": "managers"}),
            Tag("~managers"),
        ],
        Annotated[AudienceRecipients, Tag("~audience")],
        Annotated[AddressRecipient, Tag("~address")],
    ],
    Discriminator(_recipient_kind),
]


# --- the report and the file ----------------------------------------------------------------


class Report(_Strict):
    """One scheduled report (SPEC §7)."""

    id: Slug
    name: DisplayName
    description: str | None = None
    subject: DisplayName | None = None
    source: Column
    columns: Annotated[list[ColumnEntry], Field(min_length=1)]
    filters: list[Filter] = []
    sort: list[SortEntry] = []
    chart: Chart | None = None
    schedule: Schedule
    formats: Annotated[list[Format], Field(min_length=1)] = ["html"]
    scope: Scope
    recipients: Annotated[list[Recipient], Field(min_length=1)]
    when_empty: Literal["skip", "send"] = "skip"
    max_rows_in_body: Annotated[int, Field(ge=1, le=1000)] = 50
    enabled: bool = True

    @model_validator(mode="after")
    def _fits(self) -> Report:
        if len(set(self.formats)) != len(self.formats):
            raise ValueError("a format is listed twice")
        names = [c if isinstance(c, str) else c.column for c in self.columns]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"columns listed twice: {', '.join(twice)}")
        for recipient in self.recipients:
            if isinstance(recipient, AddressRecipient):
                scope = recipient.scope if recipient.scope is not None else self.scope
                if not is_fixed(scope):
                    raise ValueError(
                        f"{recipient.address}: a fixed address needs a fixed scope (all or "
                        f"organisations: [...]); give it one with scope:, the report's scope "
                        f"{scope_kind(self.scope)} depends on who the recipient is"
                    )
        return self

    @property
    def column_names(self) -> list[str]:
        """The columns shown, in order."""
        return [c if isinstance(c, str) else c.column for c in self.columns]

    @property
    def labels(self) -> dict[str, str]:
        """column -> heading (the label, else the column name in words)."""
        return {
            (c if isinstance(c, str) else c.column): (
                c.replace("_", " ").capitalize()
                if isinstance(c, str)
                else c.label or c.column.replace("_", " ").capitalize()
            )
            for c in self.columns
        }

    @property
    def sort_keys(self) -> list[SortKey]:
        return [SortKey(column=s) if isinstance(s, str) else s for s in self.sort]

    def all_scopes(self) -> list[str | OrganisationScope]:
        """The report's scope and every address's own scope."""
        own = [r.scope for r in self.recipients if isinstance(r, AddressRecipient) and r.scope]
        return [self.scope, *own]

    @property
    def audience_ids(self) -> list[str]:
        return [r.audience for r in self.recipients if isinstance(r, AudienceRecipients)]


class ReportSettings(_Strict):
    """The From of every report mail (default: notifications.yaml's sender)."""

    sender: Sender | None = None
    reply_to: Email | None = None


class ReportsFile(_Strict):
    """The whole of `rules/reports.yaml`; a missing or empty file sends no report."""

    settings: ReportSettings = ReportSettings()
    reports: list[Report] = []


def load_reports(rules_dir: Path) -> ReportsFile:
    """Read `rules_dir/reports.yaml` (schema layer only); missing or empty: no report."""
    return load_model(rules_dir / REPORTS_FILE, ReportsFile)
