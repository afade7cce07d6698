"""Rules as data: the validated audiences written into the warehouse's `rules` schema.

dbt evaluates every audience at once by joining these tables to the identity marts, so no
rule value ever reaches SQL as text (SPEC §4). Everything that depends only on the rule and
the run (the complement flags of docs/audiences.md, `member_of` stages, the as-of-relative
date bounds, the active window) is computed here, once, in Python; the SQL only compares.

Tables (replaced every run; columns in docs/audiences.md):
``rules.audience``, ``rules.audience_node``, ``rules.audience_node_value``,
``rules.audience_static_member``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import polars as pl
from pydantic import BaseModel

from flows.rules.audiences import (
    AUDIENCES_FILE,
    AllNode,
    AnyNode,
    CertificationState,
    Completion,
    DateFieldRule,
    DynamicAudience,
    HasDirectReportsRule,
    MemberOfRule,
    NotMemberOfRule,
    NotNode,
    StaticAudience,
)
from flows.rules.validation import LoadedRules, check_references

RULES_SCHEMA = "rules"

#: text operator -> (the positive operator SQL evaluates, whether the leaf is its complement)
TEXT_OPERATORS: dict[str, tuple[str, bool]] = {
    "equals": ("equals", False),
    "in": ("equals", False),
    "not_equals": ("equals", True),
    "not_in": ("equals", True),
    "contains": ("contains", False),
    "not_contains": ("contains", True),
    "starts_with": ("starts_with", False),
    "ends_with": ("ends_with", False),
    "not_empty": ("not_empty", False),
    "is_empty": ("not_empty", True),
}
#: completion match -> (positive twin, complement)
COMPLETION_MATCHES = {
    "all": ("all", False),
    "any": ("any", False),
    "not_all": ("all", True),
    "none": ("any", True),
}
_TEXT_MATCHES = frozenset(operator for operator, _ in TEXT_OPERATORS.values())
_ONE_MICROSECOND = timedelta(microseconds=1)

AUDIENCE_SCHEMA = {
    "audience_id": pl.String,
    "name": pl.String,
    "kind": pl.String,
    "stage": pl.Int32,
    "root_node_id": pl.Int64,
    "active_from": pl.Date,
    "active_until": pl.Date,
    "is_in_window": pl.Boolean,
    "add_members": pl.Boolean,
    "remove_members": pl.Boolean,
    "is_broken": pl.Boolean,
    "broken_reason": pl.String,
    "broken_since_run_id": pl.String,
    "definition": pl.String,
    "source_file": pl.String,
    "source_line": pl.Int32,
}
NODE_SCHEMA = {
    "node_id": pl.Int64,
    "audience_id": pl.String,
    "parent_node_id": pl.Int64,
    "depth": pl.Int32,
    "child_position": pl.Int32,
    "node_type": pl.String,
    "leaf_kind": pl.String,
    "field_name": pl.String,
    "is_custom_field": pl.Boolean,
    "operator": pl.String,
    "match_operator": pl.String,
    "is_complement": pl.Boolean,
    "positive_children": pl.Int32,
    "complement_children": pl.Int32,
    "include_children": pl.Boolean,
    "direct_only": pl.Boolean,
    "has_direct_reports": pl.Boolean,
    "match": pl.String,
    "lower_at": pl.Datetime("us"),
    "upper_at": pl.Datetime("us"),
    "lower_date": pl.Date,
    "upper_date": pl.Date,
    "value_count": pl.Int32,
    "certification_states": pl.List(pl.String),
}
VALUE_SCHEMA = {"node_id": pl.Int64, "value": pl.String, "value_lower": pl.String}
STATIC_MEMBER_SCHEMA = {"audience_id": pl.String, "user_id": pl.String}


@dataclass(frozen=True)
class RunClock:
    """The run's as-of (naive UTC) and the site timezone that gives dates their instants."""

    as_of: datetime
    site_timezone: str = "UTC"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.site_timezone)

    def start_of(self, day: date) -> datetime:
        """The first instant of `day` in the site timezone, as naive UTC."""
        local = datetime.combine(day, time.min, tzinfo=self.zone)
        return local.astimezone(UTC).replace(tzinfo=None)

    def local_date(self, instant: datetime) -> date:
        """The site-timezone date of a naive UTC instant."""
        return instant.replace(tzinfo=UTC).astimezone(self.zone).date()

    def first_date_starting_at_or_after(self, instant: datetime) -> date:
        day = self.local_date(instant)
        return day if self.start_of(day) >= instant else day + timedelta(days=1)


@dataclass
class RuleTables:
    """The rows of the four rule tables, before they are written."""

    audiences: list[dict[str, Any]] = field(default_factory=list)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    values: list[dict[str, Any]] = field(default_factory=list)
    static_members: list[dict[str, Any]] = field(default_factory=list)

    def frames(self) -> dict[str, pl.DataFrame]:
        return {
            "audience": pl.DataFrame(self.audiences, schema=AUDIENCE_SCHEMA),
            "audience_node": pl.DataFrame(self.nodes, schema=NODE_SCHEMA),
            "audience_node_value": pl.DataFrame(self.values, schema=VALUE_SCHEMA),
            "audience_static_member": pl.DataFrame(
                self.static_members, schema=STATIC_MEMBER_SCHEMA
            ),
        }


@dataclass(frozen=True)
class RulesLoadSummary:
    """What loading the rules found: audiences written, and those broken (new ones first)."""

    audiences: int
    newly_broken: dict[str, str]
    still_broken: dict[str, str]


# --- building the rows ----------------------------------------------------------------------


def build_rule_tables(
    loaded: LoadedRules, clock: RunClock, broken: dict[str, tuple[str, str]] | None = None
) -> RuleTables:
    """Rows of the rule tables. `broken` maps an audience id to (reason, broken since run)."""
    broken = broken or {}
    tables = RuleTables()
    stages = audience_stages(loaded)
    next_node_id = iter(range(1, 1 << 62))
    as_of_day = clock.local_date(clock.as_of)
    for audience in loaded.audiences.audiences:
        root_id = None
        if isinstance(audience, DynamicAudience) and audience.rules is not None:
            root_id, _ = _add_node(
                tables, audience.id, audience.rules, None, 1, 0, next_node_id, clock
            )
        if isinstance(audience, StaticAudience):
            members = dict.fromkeys(loaded.static_members.get(audience.id, ()))
            tables.static_members += [{"audience_id": audience.id, "user_id": u} for u in members]
        reason, since = broken.get(audience.id, (None, None))
        tables.audiences.append(
            {
                "audience_id": audience.id,
                "name": audience.name,
                "kind": audience.kind,
                "stage": stages[audience.id],
                "root_node_id": root_id,
                "active_from": audience.active_from,
                "active_until": audience.active_until,
                "is_in_window": (audience.active_from or as_of_day) <= as_of_day
                and as_of_day <= (audience.active_until or as_of_day),
                "add_members": audience.add_members,
                "remove_members": audience.remove_members,
                "is_broken": reason is not None,
                "broken_reason": reason,
                "broken_since_run_id": since,
                "definition": json.dumps(
                    audience.model_dump(mode="json", by_alias=True, exclude_none=True)
                ),
                "source_file": AUDIENCES_FILE,
                "source_line": loaded.audience_lines.get(audience.id),
            }
        )
    return tables


def audience_stages(loaded: LoadedRules) -> dict[str, int]:
    """0 for an audience that references no other, else 1 + the highest stage it references.

    Validation has refused cycles, so the recursion ends.
    """
    depends: dict[str, set[str]] = {a.id: set() for a in loaded.audiences.audiences}
    for ref in loaded.references:
        if ref.kind == "audience":
            depends[ref.object_id].add(ref.target)
    stages: dict[str, int] = {}

    def stage(audience_id: str) -> int:
        if audience_id not in stages:
            stages[audience_id] = 1 + max(map(stage, depends[audience_id]), default=-1)
        return stages[audience_id]

    for audience_id in depends:
        stage(audience_id)
    return stages


def _add_node(
    tables: RuleTables,
    audience_id: str,
    node: BaseModel,
    parent_id: int | None,
    depth: int,
    position: int,
    ids: Iterator[int],
    clock: RunClock,
) -> tuple[int, bool]:
    """Append `node` and its subtree; return its node_id and whether it is a complement."""
    node_id = next(ids)
    row: dict[str, Any] = {
        "node_id": node_id,
        "audience_id": audience_id,
        "parent_node_id": parent_id,
        "depth": depth,
        "child_position": position,
    }
    tables.nodes.append(row)  # filled in below; children are appended after it
    children = _children(node)
    if children is None:
        row.update(node_type="leaf", **_leaf_columns(node, clock))
        values = _leaf_values(node)
        if row.get("match_operator") in _TEXT_MATCHES:  # compared lower-cased: one row per text
            values = list({v.strip().lower(): v for v in values}.values())
        row["value_count"] = len(values)
        tables.values += [
            {"node_id": node_id, "value": v, "value_lower": v.strip().lower()} for v in values
        ]
        return node_id, row["is_complement"]
    flags = [
        _add_node(tables, audience_id, child, node_id, depth + 1, index, ids, clock)[1]
        for index, child in enumerate(children)
    ]
    node_type = (
        "all" if isinstance(node, AllNode) else "any" if isinstance(node, AnyNode) else "not"
    )
    complements = sum(flags)
    positives = len(flags) - complements
    row.update(
        node_type=node_type,
        is_complement=_inner_is_complement(node_type, positives, complements),
        positive_children=positives,
        complement_children=complements,
    )
    return node_id, row["is_complement"]


def _children(node: BaseModel) -> list[BaseModel] | None:
    if isinstance(node, AllNode):
        return list(node.all_)
    if isinstance(node, AnyNode):
        return list(node.any_)
    if isinstance(node, NotNode):
        return [node.not_]
    return None


def _inner_is_complement(node_type: str, positives: int, complements: int) -> bool:
    """The complement algebra of docs/audiences.md ("Sets and complements")."""
    if node_type == "not":
        return complements == 0  # the one child's flag, flipped
    if node_type == "all":
        return positives == 0
    return complements > 0  # any


def _leaf_columns(node: BaseModel, clock: RunClock) -> dict[str, Any]:
    """Every column of a leaf's node row, by leaf kind."""
    kind = next(name for name in type(node).model_fields if name in _LEAF_KINDS)
    columns: dict[str, Any] = {"leaf_kind": kind, "is_complement": False}
    inner = getattr(node, kind)
    operator = getattr(inner, "operator", None) or getattr(node, "operator", None)
    if kind in ("user_field", "date_field", "organisation_custom_field", "position_custom_field"):
        name = str(inner)
        columns["is_custom_field"] = kind.endswith("custom_field") or name.startswith("custom:")
        columns["field_name"] = name.removeprefix("custom:")
    if kind == "date_field":
        assert isinstance(node, DateFieldRule)
        columns["operator"] = columns["match_operator"] = node.operator
        columns.update(_bounds_columns(_date_rule_bounds(node, clock), clock))
    elif operator is not None:  # the text conditions
        columns["operator"] = operator
        columns["match_operator"], columns["is_complement"] = TEXT_OPERATORS[operator]
    elif kind in ("organisation", "position"):
        columns["include_children"] = inner.include_children
        columns["is_complement"] = inner.negate
    elif isinstance(node, HasDirectReportsRule):
        columns["has_direct_reports"] = node.has_direct_reports
        columns["is_complement"] = not node.has_direct_reports
    elif kind == "reports_to":
        columns["direct_only"] = inner.direct_only
    elif isinstance(inner, Completion):
        columns["match"] = inner.match
        columns["match_operator"], columns["is_complement"] = COMPLETION_MATCHES[inner.match]
        columns.update(_bounds_columns(_completion_bounds(inner, clock), clock))
    elif isinstance(inner, CertificationState):
        columns["certification_states"] = list(dict.fromkeys(inner.states))
    elif isinstance(node, NotMemberOfRule):
        columns["is_complement"] = True
    return columns


_LEAF_KINDS = frozenset(
    {
        "user_field",
        "date_field",
        "organisation",
        "position",
        "organisation_type",
        "position_type",
        "organisation_custom_field",
        "position_custom_field",
        "job_title",
        "has_direct_reports",
        "reports_to",
        "course_completion",
        "program_completion",
        "certification_state",
        "member_of",
        "not_member_of",
    }
)


def _leaf_values(node: BaseModel) -> list[str]:
    """The values or ids a leaf compares with, as written."""
    if isinstance(node, MemberOfRule | NotMemberOfRule):
        inner = node.member_of if isinstance(node, MemberOfRule) else node.not_member_of
        return list(inner.audiences)
    for name in type(node).model_fields:
        if name not in _LEAF_KINDS:
            continue
        inner = getattr(node, name)
        for attribute in ("values", "ids", "managers"):
            found = getattr(inner, attribute, None) or getattr(node, attribute, None)
            if found:
                return list(dict.fromkeys(found))  # `all` counts distinct ids
        certification = getattr(inner, "certification", None)
        return [certification] if certification else []
    return []


# --- as-of-relative bounds ------------------------------------------------------------------

Bounds = tuple[datetime | None, datetime | None]


def _date_rule_bounds(rule: DateFieldRule, clock: RunClock) -> Bounds:
    """Inclusive instant bounds of a date rule (docs/audiences.md, "date field")."""
    as_of = clock.as_of
    if rule.operator == "before":
        assert rule.date is not None
        return None, clock.start_of(rule.date + timedelta(days=1)) - _ONE_MICROSECOND
    if rule.operator == "after":
        assert rule.date is not None
        return clock.start_of(rule.date), None
    days = timedelta(days=rule.days or 0)
    return {
        "within_last_days": (as_of - days, as_of),
        "within_next_days": (as_of, as_of + days),
        "older_than_days": (None, as_of - days),
        "beyond_next_days": (as_of + days, None),
    }[rule.operator]


def _completion_bounds(rule: Completion, clock: RunClock) -> Bounds:
    """Every date condition at once, and never after the as-of (a replay sees the same)."""
    lowers = [clock.as_of - timedelta(days=rule.within_last_days)] if rule.within_last_days else []
    if rule.within_last_days == 0:
        lowers = [clock.as_of]
    if rule.completed_after:
        lowers.append(clock.start_of(rule.completed_after))
    uppers = [clock.as_of]
    if rule.completed_before:
        uppers.append(clock.start_of(rule.completed_before + timedelta(days=1)) - _ONE_MICROSECOND)
    return (max(lowers) if lowers else None), min(uppers)


def _bounds_columns(bounds: Bounds, clock: RunClock) -> dict[str, Any]:
    """Instant bounds for timestamp fields, and the date bounds equivalent for date fields.

    A date-valued field stands for the start of its day in the site timezone, so
    `lower ≤ start(d)` holds from the first day starting at or after `lower`, and
    `start(d) ≤ upper` up to the site-local day of `upper`.
    """
    lower, upper = bounds
    return {
        "lower_at": lower,
        "upper_at": upper,
        "lower_date": clock.first_date_starting_at_or_after(lower) if lower else None,
        "upper_date": clock.local_date(upper) if upper else None,
    }


# --- references and the warehouse -----------------------------------------------------------


def known_ids(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    """Ids of the imported live state that rules may reference, by kind."""
    queries = {
        "organisation": "select organisation_id from hr.organisation",
        "position": "select position_id from hr.position",
        "user": "select user_id from hr.user",
        "course": "select course_id from hr.course",
    }
    return {kind: {row[0] for row in con.execute(sql).fetchall()} for kind, sql in queries.items()}


def broken_reasons(loaded: LoadedRules, known: dict[str, set[str]]) -> dict[str, str]:
    """Audience id -> why it is broken, for every audience with an unresolved reference."""
    reasons: dict[str, list[str]] = {}
    for issue in check_references(loaded, known):
        assert issue.object_id is not None
        reasons.setdefault(issue.object_id, []).append(issue.message)
    return {audience_id: "; ".join(messages) for audience_id, messages in reasons.items()}


def load_rule_tables(
    con: duckdb.DuckDBPyConnection, loaded: LoadedRules, clock: RunClock, run_id: str
) -> RulesLoadSummary:
    """Check references against the imported state and (re)write the rule tables.

    An audience broken on the previous run keeps its `broken_since_run_id`, so the admins
    are told about it once (the run that broke it), not on every run.
    """
    reasons = broken_reasons(loaded, known_ids(con))
    since = _previously_broken(con)
    broken = {a: (reason, since.get(a, run_id)) for a, reason in reasons.items()}
    write_rule_tables(con, build_rule_tables(loaded, clock, broken))
    newly = {a: r for a, (r, s) in broken.items() if s == run_id}
    return RulesLoadSummary(
        audiences=len(loaded.audiences.audiences),
        newly_broken=newly,
        still_broken={a: r for a, (r, _) in broken.items() if a not in newly},
    )


def _previously_broken(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    rows = con.execute(
        "select audience_id, broken_since_run_id from rules.audience where is_broken"
    ).fetchall()
    return dict(rows)


def write_rule_tables(con: duckdb.DuckDBPyConnection, tables: RuleTables) -> None:
    """Replace the rows of the `rules` tables (DDL in flows/state_schema.py) in one go."""
    con.execute("begin")
    for name, frame in tables.frames().items():
        con.register("rule_rows", frame.to_arrow())
        # the table names are ours, never an admin's: rule values only travel as rows
        con.execute(f"delete from {RULES_SCHEMA}.{name}")  # noqa: S608
        con.execute(f"insert into {RULES_SCHEMA}.{name} by name select * from rule_rows")  # noqa: S608
        con.unregister("rule_rows")
    con.execute("commit")
