"""Per-recipient scope, enforced in SQL: one query for every recipient of a report (SPEC §7).

The report's recipient rules travel as rows (`report_grant`, registered from Python; no
rule value is ever part of the SQL text). One statement resolves them against the
warehouse into people with an address, expands each grant into the set of subject keys it
may see (users for user-grained marts, organisations for organisation-grained ones), takes
the union per person (a person reached twice gets one mail with the union of their scopes),
and joins the mart once. Python then only splits the result by recipient.

Scope kinds (docs/reports.md "Scope"):

- `team_direct`: the recipient's direct reports (bdg_management depth 1);
- `team_all`: everyone below the recipient (bdg_management, any depth);
- `organisation`: everyone with a job in the subtree of any of the recipient's own jobs'
  organisations (organisation marts: those subtrees' organisations);
- `organisations` (a fixed list): the same for the listed organisations, with or without
  their children;
- `all`: every row.

Column names come from the report after `flows.reports.sources` allowed them; they are
quoted here. Filter operands are bound parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb
import polars as pl

from flows.reports.sources import Source
from flows.rules.reports import (
    AddressRecipient,
    AudienceRecipients,
    Filter,
    OrganisationScope,
    Report,
    scope_kind,
)

WAREHOUSE = "wh"  # the catalog the published warehouse is attached as (read-only)
RECIPIENT = "__recipient"  # the column of the result naming the recipient (lower-case email)

GRANT_SCHEMA = {
    "via": pl.String,  # managers | audience | address
    "audience_id": pl.String,
    "email": pl.String,
    "name": pl.String,
    "timezone": pl.String,
    "scope_kind": pl.String,
    "organisation_id": pl.String,
    "include_children": pl.Boolean,
}


class ScopeError(ValueError):
    """The report cannot be scoped (a column the published mart lacks, ...)."""


def quote(identifier: str) -> str:
    """A double-quoted SQL identifier (callers pass allow-listed names only)."""
    return '"' + identifier.replace('"', '""') + '"'


def grant_rows(report: Report) -> list[dict[str, Any]]:
    """The recipient rules of `report` as rows: one per (recipient rule, fixed organisation)."""
    rows: list[dict[str, Any]] = []
    for recipient in report.recipients:
        scope = report.scope
        base: dict[str, Any] = {"via": "managers", "audience_id": None, "email": None,
                                "name": None, "timezone": None}  # fmt: skip
        if isinstance(recipient, AudienceRecipients):
            base |= {"via": "audience", "audience_id": recipient.audience}
        elif isinstance(recipient, AddressRecipient):
            scope = recipient.scope if recipient.scope is not None else report.scope
            base |= {"via": "address", "email": recipient.address, "name": recipient.name,
                     "timezone": recipient.timezone}  # fmt: skip
        rows += _scoped(base, scope)
    return rows


def _scoped(base: dict[str, Any], scope: str | OrganisationScope) -> list[dict[str, Any]]:
    kind = scope_kind(scope)
    if isinstance(scope, OrganisationScope):
        return [
            base
            | {
                "scope_kind": kind,
                "organisation_id": org,
                "include_children": scope.include_children,
            }
            for org in dict.fromkeys(scope.organisations)
        ]
    return [base | {"scope_kind": kind, "organisation_id": None, "include_children": True}]


# Grants resolved to people: one row per (person, scope grant). People are active users
# with an address who did not opt out of mail; addresses are fixed rows.
_GRANTS = f"""
grant_rules as (select * from report_grant),
managers as (
    select distinct manager_user_id as user_id
    from {WAREHOUSE}.main.dim_job_assignment where manager_user_id is not null
),
people as (
    select managers.user_id, g.scope_kind, g.organisation_id, g.include_children
    from grant_rules as g inner join managers on g.via = 'managers'
    union all
    select m.user_id, g.scope_kind, g.organisation_id, g.include_children
    from grant_rules as g
    inner join {WAREHOUSE}.main.fct_audience_membership as m on m.audience_id = g.audience_id
    where g.via = 'audience'
),
grants as (
    select lower(u.email) as recipient, u.email, u.user_id,
        trim(coalesce(u.first_name, '') || ' ' || coalesce(u.last_name, '')) as name,
        u.timezone, 0 as via_order,
        p.scope_kind, p.organisation_id, p.include_children
    from people as p inner join {WAREHOUSE}.main.dim_user as u on u.user_id = p.user_id
    where u.status = 'active' and coalesce(u.email, '') <> '' and not coalesce(u.email_stop, false)
    union all
    select lower(email), email, null, name, timezone, 1, scope_kind, organisation_id,
        include_children
    from grant_rules where via = 'address'
)
"""  # noqa: S608 (the catalog name is a constant)

# Grant -> organisations it covers (fixed lists and the recipient's own jobs' organisations).
_ORGANISATIONS = f"""
granted_roots as (
    select g.recipient, g.organisation_id, g.include_children
    from grants as g where g.scope_kind = 'organisations'
    union all
    select g.recipient, j.organisation_id, true
    from grants as g
    inner join {WAREHOUSE}.main.dim_job_assignment as j on j.user_id = g.user_id
    where g.scope_kind = 'organisation' and j.organisation_id is not null
),
scope_organisations as (
    select r.recipient, a.descendant_id as organisation_id
    from granted_roots as r
    inner join {WAREHOUSE}.main.bdg_organisation_ancestry as a on a.ancestor_id = r.organisation_id
    where r.include_children or a.depth_below = 0
)
"""  # noqa: S608

_USERS = f"""
scope_users as (
    select g.recipient, b.report_user_id as scope_key
    from grants as g
    inner join {WAREHOUSE}.main.bdg_management as b on b.manager_user_id = g.user_id
    where g.scope_kind = 'team_direct' and b.depth = 1
    union all
    select g.recipient, b.report_user_id
    from grants as g
    inner join {WAREHOUSE}.main.bdg_management as b on b.manager_user_id = g.user_id
    where g.scope_kind = 'team_all'
    union all
    select o.recipient, j.user_id
    from scope_organisations as o
    inner join {WAREHOUSE}.main.dim_job_assignment as j on j.organisation_id = o.organisation_id
),
"""  # noqa: S608


def recipients_sql() -> str:
    """One row per person the report reaches: recipient key, address, name, timezone."""
    return (
        "with " + _GRANTS + ", "  # noqa: S608 (constants only)
        "people_reached as (select recipient, arg_min(email, via_order) as email, "
        "arg_min(name, via_order) as name, arg_min(timezone, via_order) as timezone, "
        "arg_min(user_id, via_order) as user_id from grants group by recipient) "
        "select * from people_reached order by recipient"
    )


def rows_sql(report: Report, source: Source, data_as_of: datetime) -> tuple[str, list[Any]]:
    """The scoped rows of every recipient: (SQL, parameters). Columns: RECIPIENT, then the
    report's columns (and the chart's), each recipient's rows in the report's sort order."""
    shown = list(dict.fromkeys([*report.column_names, *_chart_columns(report)]))
    select = ", ".join(f"s.{quote(c)}" for c in shown)
    where, params = _filters(report.filters, source, data_as_of)
    key = quote(source.key) if source.key else "null"
    mart = f"{WAREHOUSE}.main.{quote(source.name)}"
    ctes = [_GRANTS]
    if source.subject == "user":
        ctes += [_ORGANISATIONS, _USERS.rstrip().rstrip(",")]
    elif source.subject == "organisation":
        ctes += [_ORGANISATIONS, "scope_users as (select recipient, organisation_id as scope_key "
                 "from scope_organisations)"]  # fmt: skip
    else:
        ctes += ["scope_users as (select null::varchar as recipient, null::varchar as scope_key "
                 "where false)"]  # fmt: skip
    order = ", ".join(
        [RECIPIENT] + [f"{quote(k.column)} {k.order} nulls last" for k in report.sort_keys]
    )
    # every name was allow-listed and is quoted; every value is a parameter
    sql = (
        "with " + ", ".join(ctes) + ", "  # noqa: S608
        "everything as (select distinct recipient from grants where scope_kind = 'all'), "
        "scoped_keys as (select distinct recipient, scope_key from scope_users "
        "where recipient not in (select recipient from everything)), "
        f"selected as (select {key} as __key, * from {mart} where {where}), "
        f"rows as (select k.recipient as {RECIPIENT}, {select} from selected as s "
        "inner join scoped_keys as k on k.scope_key = s.__key "
        f"union all select e.recipient as {RECIPIENT}, {select} from selected as s "
        "cross join everything as e) "
        f"select * from rows order by {order}"
    )
    return sql, params


def _chart_columns(report: Report) -> list[str]:
    chart = report.chart
    return [c for c in ((chart.x, chart.y) if chart else ()) if c]


def _filters(filters: list[Filter], source: Source, as_of: datetime) -> tuple[str, list[Any]]:
    """The WHERE text (quoted columns, `?` placeholders) and its parameters."""
    parts: list[str] = []
    params: list[Any] = []
    for f in filters:
        column = quote(f.column)
        kind = source.kind_of(f.column)
        if f.operator == "is_null":
            parts.append(f"{column} is null")
        elif f.operator == "not_null":
            parts.append(f"{column} is not null")
        elif f.operator == "is_true":
            parts.append(f"{column} is true")
        elif f.operator == "is_false":
            parts.append(f"{column} is not true")
        elif f.operator in ("in", "not_in"):
            values = [_operand(v, kind) for v in f.values or ()]
            negate = "not " if f.operator == "not_in" else ""
            # negative operators also keep missing values (as in audience rules)
            keep_null = f" or {column} is null" if negate else ""
            parts.append(f"({negate}list_contains(?, {column}){keep_null})")
            params.append(values)
        elif f.operator in ("within_last_days", "within_next_days"):
            span = timedelta(days=f.days or 0)
            lower, upper = (as_of - span, as_of) if f.operator == "within_last_days" else (
                as_of, as_of + span)  # fmt: skip
            parts.append(f"{column} between ? and ?")
            params += [lower, upper]
        else:
            symbol = {"equals": "=", "not_equals": "is distinct from", "lt": "<", "lte": "<=",
                      "gt": ">", "gte": ">="}[f.operator]  # fmt: skip
            parts.append(f"{column} {symbol} ?")
            params.append(_operand(f.value, kind))
    return (" and ".join(parts) or "true"), params


def _operand(value: Any, kind: str) -> Any:
    """A filter value as the column's type expects it (dates as instants)."""
    if kind == "time" and isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


@dataclass(frozen=True)
class ScopedReport:
    """Every recipient of one report (with or without rows) and all their rows."""

    recipients: pl.DataFrame  # recipient, email, name, timezone, user_id
    rows: pl.DataFrame  # RECIPIENT, then the report's columns

    def split(self) -> dict[str, pl.DataFrame]:
        """recipient -> their rows (every recipient, an empty frame when nothing is in scope)."""
        parts = (
            self.rows.partition_by(RECIPIENT, as_dict=True, maintain_order=True)
            if self.rows.height
            else {}
        )
        empty = self.rows.clear().drop(RECIPIENT)
        by_key = {key[0]: frame.drop(RECIPIENT) for key, frame in parts.items()}
        return {r: by_key.get(r, empty) for r in self.recipients["recipient"].to_list()}


def scoped_report(
    con: duckdb.DuckDBPyConnection, report: Report, source: Source, data_as_of: datetime
) -> ScopedReport:
    """Run the two scoped queries for `report` on `con` (the warehouse attached as `wh`)."""
    published = _published_columns(con, source.name)
    named = [
        *report.column_names,
        *_chart_columns(report),
        *(f.column for f in report.filters),
        *(k.column for k in report.sort_keys),
    ]
    missing = [c for c in named if c not in published]
    if missing:
        raise ScopeError(
            f"report {report.id}: {source.name} in the published warehouse has no column "
            f"{', '.join(sorted(set(missing)))} (run the pipeline to rebuild it)"
        )
    grants = pl.DataFrame(grant_rows(report), schema=GRANT_SCHEMA)
    con.register("report_grant", grants.to_arrow())
    try:
        recipients = con.sql(recipients_sql()).pl()
        sql, params = rows_sql(report, source, data_as_of)
        rows = con.sql(sql, params=params).pl()
    finally:
        con.unregister("report_grant")
    return ScopedReport(recipients=recipients, rows=rows)


def _published_columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    rows = con.execute(
        "select column_name from information_schema.columns "
        "where table_catalog = ? and table_schema = 'main' and table_name = ?",
        [WAREHOUSE, table],
    ).fetchall()
    return {name for (name,) in rows}
