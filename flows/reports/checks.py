"""The meaning layer of `rules/reports.yaml` (called by `flows.rules.validation`).

Checked without a warehouse: the source is a report mart; every column a report names
(columns, filters, sort, chart) is one of that mart's contract columns, with a type that
fits its use (`is_true` on a boolean, `lt` on a number or an instant, `within_*_days` on an
instant, a value of the column's type); the scope fits what a row of the mart is about (no
team scope for organisation rows, only `all` for rows about nobody); audiences exist; a
sender is set (here or in notifications.yaml). Organisation ids need the imported state:
they are references (`check_references`, and the sender skips a report whose organisation
HR removed).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from flows.reports.sources import Source, report_sources
from flows.rules.audiences import AudiencesFile
from flows.rules.loader import RuleIssue, suggest
from flows.rules.notifications import NotificationsFile
from flows.rules.reports import (
    DAYS_OPERATORS,
    LIST_OPERATORS,
    Report,
    ReportsFile,
    scope_kind,
)
from flows.rules.validation import Reference


def _items(tree: Any) -> list[CommentedMap]:
    if isinstance(tree, CommentedMap) and isinstance(tree.get("reports"), CommentedSeq):
        return [item for item in tree["reports"] if isinstance(item, CommentedMap)]
    return []


def _where(node: Any, key: Any) -> tuple[int, int]:
    """1-based (line, column) of `node[key]`, else of `node`."""
    try:
        if isinstance(node, CommentedMap):
            line, column = node.lc.value(key)
            return line + 1, column + 1
        if isinstance(node, CommentedSeq):
            line, column = node.lc.item(key)
            return line + 1, column + 1
    except (KeyError, TypeError, IndexError, AttributeError):
        pass
    return (node.lc.line + 1, node.lc.col + 1) if hasattr(node, "lc") else (1, 1)


def report_references(path: Path, tree: Any) -> Iterator[Reference]:
    """Every organisation id a report's scope (or an address's own scope) names."""
    for item in _items(tree):
        scopes = [item.get("scope")]
        for recipient in item.get("recipients") or ():
            if isinstance(recipient, CommentedMap):
                scopes.append(recipient.get("scope"))
        for scope in scopes:
            ids = scope.get("organisations") if isinstance(scope, CommentedMap) else None
            for index, target in enumerate(ids if isinstance(ids, CommentedSeq) else ()):
                line, column = _where(ids, index)
                yield Reference("organisation", str(target), str(path), line, column,
                                str(item["id"]))  # fmt: skip


def report_issues(
    path: Path,
    tree: Any,
    reports: ReportsFile,
    audiences: AudiencesFile | None,
    notifications: NotificationsFile | None,
) -> list[RuleIssue]:
    """Every meaning problem of the reports file."""
    issues: list[RuleIssue] = []
    sources = report_sources()
    audience_ids = {a.id for a in audiences.audiences} if audiences else None
    for report, item in zip(reports.reports, _items(tree), strict=True):

        def issue(node: Any, key: Any, message: str, owner: str = report.id) -> None:
            line, column = _where(node, key)
            issues.append(RuleIssue(str(path), line, column, message, object_id=owner))

        source = sources.get(report.source)
        if source is None:
            hint = suggest(report.source, sources) or f"; use one of {', '.join(sources)}"
            issue(item, "source", f"unknown report source '{report.source}'{hint}")
            continue
        _column_issues(report, item, source, issue)
        _scope_issues(report, item, source, issue)
        if audience_ids is not None:
            for recipient in item.get("recipients") or ():
                if isinstance(recipient, CommentedMap) and "audience" in recipient:
                    target = str(recipient["audience"])
                    if target not in audience_ids:
                        message = f"unknown audience '{target}'{suggest(target, audience_ids)}"
                        issue(recipient, "audience", message)
    has_sender = reports.settings.sender is not None or (
        notifications is not None and notifications.settings.sender is not None
    )
    if reports.reports and not has_sender:
        issues.append(RuleIssue(str(path), 1, 1, "settings.sender is required to send reports "
                                "(here, or in notifications.yaml)"))  # fmt: skip
    return issues


def _column_issues(report: Report, item: CommentedMap, source: Source, issue: Any) -> None:
    known = source.columns

    def check(node: Any, key: Any, column: str) -> bool:
        if column in known:
            return True
        hint = suggest(column, known) or ""
        issue(node, key, f"{source.name} has no column '{column}'{hint}")
        return False

    for index, entry in enumerate(item.get("columns") or ()):
        name = entry.get("column") if isinstance(entry, CommentedMap) else entry
        node, key = (
            (entry, "column") if isinstance(entry, CommentedMap) else (item["columns"], index)
        )
        check(node, key, str(name))
    for index, entry in enumerate(item.get("sort") or ()):
        name = entry.get("column") if isinstance(entry, CommentedMap) else entry
        node, key = (entry, "column") if isinstance(entry, CommentedMap) else (item["sort"], index)
        check(node, key, str(name))
    for f, node in zip(report.filters, item.get("filters") or (), strict=True):
        if check(node, "column", f.column):
            problem = _filter_problem(f, source.kind_of(f.column))
            if problem:
                issue(node, "operator", f"{f.column}: {problem}")
    chart, chart_node = report.chart, item.get("chart")
    if chart is not None:
        check(chart_node, "x", chart.x)
        numeric = chart.y is not None and source.kind_of(chart.y) == "number"
        aggregated = chart.aggregate != "count"
        if chart.y is not None and check(chart_node, "y", chart.y) and aggregated and not numeric:
            issue(chart_node, "y", f"{chart.aggregate} needs a numeric column, "
                      f"{chart.y} is {source.columns[chart.y]}")  # fmt: skip


def _filter_problem(f: Any, kind: str) -> str | None:
    """Why a filter does not fit its column's kind (text, number, boolean, time), or None."""
    op = f.operator
    if op in ("is_true", "is_false") and kind != "boolean":
        return f"{op} needs a boolean column (this one is {kind})"
    if op in ("lt", "lte", "gt", "gte") and kind not in ("number", "time"):
        return f"{op} compares numbers or instants (this column is {kind})"
    if op in DAYS_OPERATORS and kind != "time":
        return f"{op} needs a date or timestamp column (this one is {kind})"
    values = [f.value] if f.value is not None else list(f.values or ())
    for value in values:
        problem = _value_problem(value, kind)
        if problem:
            return problem
    if op in LIST_OPERATORS and kind == "boolean":
        return "in / not_in do not apply to a boolean column; use is_true or is_false"
    return None


def _value_problem(value: Any, kind: str) -> str | None:
    if kind == "number" and (isinstance(value, bool) or not isinstance(value, int | float)):
        return f"{value!r} is not a number"
    if kind == "boolean" and not isinstance(value, bool):
        return f"{value!r} is not true or false"
    if kind == "text" and not isinstance(value, str):
        return f"{value!r} is not text (quote it)"
    if kind == "time":
        try:
            datetime.fromisoformat(str(value))
        except ValueError:
            return f"{value!r} is not an ISO date or instant (2026-12-31)"
    return None


def _scope_issues(report: Report, item: CommentedMap, source: Source, issue: Any) -> None:
    kinds = [scope_kind(s) for s in report.all_scopes()]
    if source.subject == "none" and any(k != "all" for k in kinds):
        issue(item, "scope", f"{source.name} rows are about no person or organisation: "
              "only scope all can send it")  # fmt: skip
    if source.subject == "organisation" and any(k in ("team_direct", "team_all") for k in kinds):
        issue(item, "scope", f"{source.name} rows are organisations: use scope organisation, "
              "organisations: [...] or all (a team scope needs rows about people)")  # fmt: skip
