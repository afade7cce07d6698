"""`learnops explain`: why a user is, or is not, in an audience (SPEC §1, §4.1, §8).

Explain reads only the published warehouse, through a read-only connection, and never
evaluates a rule itself: the verdict of every leaf comes from the table the build used, so
explain cannot disagree with the build.

* a leaf holds for the user iff (user in its stored set) XOR ``is_complement``; the stored
  set is ``intermediate.int_audience_leaf_sets`` or, for ``member_of`` / ``not_member_of``,
  membership of any listed audience in ``fct_audience_membership``;
* ``all`` / ``any`` / ``not`` are folded here, in Python, from their children;
* the final verdict is the user's row in ``fct_audience_membership``; when it differs from
  the rule result the audience's state says why (broken, outside its window, paused,
  add-only, remove-only, deleted user). Where the rule result *implies* the membership and
  the two disagree, a warning is raised: that would be drift between explain and the build.

Beside each leaf, the user's own value(s) for it are fetched with small parameterised
queries, so an admin sees *what* decided it (``city = 'Leeds'``, ``jobs in ORG9, ORG11``).
Those values are shown, never re-evaluated.

:func:`explain_audience` and :func:`explain_user` return plain dataclasses;
:func:`render_text` and :func:`render_json` turn them into output. The CLI is a thin shell.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

import duckdb

from flows.rules.loader import suggest

HOLDS, FAILS = "✓", "✗"

#: feed name of a user field (as written in rules) -> column of dim_user
USER_FIELD_COLUMNS = {
    "idnumber": "user_id",
    "username": "username",
    "email": "email",
    "firstname": "first_name",
    "lastname": "last_name",
    "city": "city",
    "country": "country",
    "lang": "lang",
    "institution": "institution",
    "department": "department",
}
MEMBERSHIP_KINDS = frozenset({"member_of", "not_member_of"})
REQUIRED_TABLES = (
    ("rules", "audience"),
    ("rules", "audience_node"),
    ("rules", "audience_node_value"),
    ("intermediate", "int_audience_leaf_sets"),
    ("main", "fct_audience_membership"),
)
MAX_LISTED = 8  # values shown per leaf before "and N more"


class ExplainError(Exception):
    """A one-line reason explain cannot answer (unknown user or audience, no tables)."""


# --- the answer ------------------------------------------------------------------------------


@dataclass
class NodeResult:
    """One node of a rule tree, evaluated for one user."""

    node_id: int
    node_type: str  # all | any | not | leaf
    kind: str  # all | any | not | the leaf kind (user_field, organisation, member_of, ...)
    rule: str  # the rule, one line, as an admin wrote it
    holds: bool
    evidence: str = ""  # the user's value(s) that decided a leaf
    bounds: str = ""  # the as-of-relative window of a date condition
    source_line: int | None = None
    children: list[NodeResult] = field(default_factory=list)


@dataclass
class Verdict:
    """The user's membership as published, and why it differs from the rule result."""

    is_member: bool
    joined_at: datetime | None
    rule_holds: bool | None  # None: static audience (no rule tree)
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class UserSummary:
    user_id: str
    username: str
    name: str
    status: str


@dataclass
class AudienceExplanation:
    """Why one user is (not) in one audience."""

    user: UserSummary
    audience_id: str
    audience_name: str
    kind: str  # static | dynamic
    state: str  # evaluated | broken | outside window | paused | add-only | remove-only
    as_of: datetime | None
    run_id: str | None
    source: str
    tree: NodeResult | None
    verdict: Verdict


@dataclass
class MembershipLine:
    """One audience the user is in, with its rule's top-level verdict."""

    audience_id: str
    audience_name: str
    kind: str
    joined_at: datetime | None
    rule: str = ""
    rule_holds: bool | None = None


@dataclass
class UserExplanation:
    """Every audience one user is a member of."""

    user: UserSummary
    as_of: datetime | None
    run_id: str | None
    memberships: list[MembershipLine]


Explanation = AudienceExplanation | UserExplanation


# --- rows read from the warehouse ------------------------------------------------------------


@dataclass
class _Node:
    """A row of rules.audience_node (every column by name) plus its values."""

    columns: dict[str, Any]
    values: list[str] = field(default_factory=list)
    children: list[_Node] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)  # the node in rules.audience.definition

    def __getattr__(self, name: str) -> Any:
        try:
            return self.columns[name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass
class _Audience:
    columns: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.columns[name]
        except KeyError:
            raise AttributeError(name) from None


def _dicts(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> list[dict]:
    """Rows of a parameterised query as dictionaries."""
    cursor = con.execute(sql, list(params))
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _scalars(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    return [row[0] for row in con.execute(sql, list(params)).fetchall()]


def check_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Refuse a warehouse published before audiences were evaluated."""
    present = set(
        con.execute("select table_schema, table_name from information_schema.tables").fetchall()
    )
    missing = [
        f"{schema}.{name}" for schema, name in REQUIRED_TABLES if (schema, name) not in present
    ]
    if missing:
        raise ExplainError(
            f"the published warehouse has no audience tables ({', '.join(missing)}): "
            "run `learnops run` with this version first"
        )


def published_run(con: duckdb.DuckDBPyConnection) -> tuple[str | None, datetime | None]:
    """(run_id, as_of) of the run whose state is published."""
    rows = con.execute(
        "select run_id, as_of from learnops.run_log where status = 'succeeded' "
        "order by as_of desc, started_at desc limit 1"
    ).fetchall()
    return (rows[0][0], rows[0][1]) if rows else (None, None)


def find_user(con: duckdb.DuckDBPyConnection, text: str) -> dict[str, Any]:
    """The dim_user row of a user id (or, failing that, a username); else a did-you-mean."""
    for column in ("user_id", "username"):
        rows = _dicts(con, f"select * from dim_user where {column} = ?", [text])  # noqa: S608
        if len(rows) == 1:
            return rows[0]
    close = _scalars(
        con,
        "select user_id from dim_user "
        "order by jaro_winkler_similarity(lower(user_id), lower(?)) desc, user_id limit 20",
        [text],
    )
    raise ExplainError(f"no user '{text}' in the published warehouse{did_you_mean(text, close)}")


def did_you_mean(text: str, candidates: Sequence[str]) -> str:
    """The closest candidate (flows.rules.loader.suggest), else up to 3 that contain `text`."""
    hint = suggest(text, candidates)
    if hint or not text:
        return hint
    containing = sorted(c for c in candidates if text.lower() in c.lower())[:3]
    if not containing:
        return ""
    return "; did you mean " + " or ".join(f"'{c}'" for c in containing) + "?"


def find_audience(con: duckdb.DuckDBPyConnection, audience_id: str) -> _Audience:
    """The rules.audience row of `audience_id`; else the closest id."""
    rows = _dicts(con, "select * from rules.audience where audience_id = ?", [audience_id])
    if rows:
        return _Audience(rows[0])
    known = _scalars(con, "select audience_id from rules.audience")
    raise ExplainError(
        f"no audience '{audience_id}' in the published warehouse{did_you_mean(audience_id, known)}"
    )


def load_trees(
    con: duckdb.DuckDBPyConnection, audience_ids: Sequence[str]
) -> dict[str, _Node | None]:
    """audience id -> its rule tree (root node), with every node's values attached."""
    rows = _dicts(
        con,
        "select * from rules.audience_node where list_contains(?, audience_id) "
        "order by depth, parent_node_id, child_position",
        [list(audience_ids)],
    )
    nodes = {row["node_id"]: _Node(row) for row in rows}
    for node_id, value in con.execute(
        "select v.node_id, v.value from rules.audience_node_value as v "
        "inner join rules.audience_node as n on n.node_id = v.node_id "
        "where list_contains(?, n.audience_id) order by v.node_id, v.rowid",
        [list(audience_ids)],
    ).fetchall():
        nodes[node_id].values.append(value)
    roots: dict[str, _Node | None] = dict.fromkeys(audience_ids)
    for node in nodes.values():
        parent = nodes.get(node.parent_node_id) if node.parent_node_id is not None else None
        if parent is None:
            roots[node.audience_id] = node
        else:
            parent.children.append(node)
    for audience_id, definition in con.execute(
        "select audience_id, definition from rules.audience where list_contains(?, audience_id)",
        [list(audience_ids)],
    ).fetchall():
        root = roots.get(audience_id)
        if root is not None and definition:
            _attach_raw(root, json.loads(definition).get("rules"))
    return roots


def _attach_raw(node: _Node, raw: Any) -> None:
    """Pair each node with its part of the audience as written (same shape, same order)."""
    if not isinstance(raw, dict):
        return
    node.raw = raw
    if node.node_type in ("all", "any"):
        for child, raw_child in zip(node.children, raw.get(node.node_type) or [], strict=False):
            _attach_raw(child, raw_child)
    elif node.node_type == "not" and node.children:
        _attach_raw(node.children[0], raw.get("not"))


def leaf_sets_containing(
    con: duckdb.DuckDBPyConnection, user_id: str, audience_ids: Sequence[str]
) -> set[int]:
    """Ids of the leaves of these audiences whose stored set holds the user."""
    return set(
        _scalars(
            con,
            "select s.node_id from intermediate.int_audience_leaf_sets as s "
            "inner join rules.audience_node as n on n.node_id = s.node_id "
            "where s.user_id = ? and list_contains(?, n.audience_id)",
            [user_id, list(audience_ids)],
        )
    )


def memberships_of(con: duckdb.DuckDBPyConnection, user_id: str) -> dict[str, datetime | None]:
    """audience id -> joined_at, for every audience the user is published a member of."""
    return dict(
        con.execute(
            "select audience_id, joined_at from fct_audience_membership where user_id = ?",
            [user_id],
        ).fetchall()
    )


# --- folding the tree ------------------------------------------------------------------------


def leaf_holds(node: _Node, in_sets: set[int], memberships: dict[str, Any]) -> bool:
    """(user in the leaf's stored set) XOR is_complement — the build's own verdict."""
    if node.leaf_kind in MEMBERSHIP_KINDS:
        in_set = any(audience in memberships for audience in node.values)
    else:
        in_set = node.node_id in in_sets
    return in_set != bool(node.is_complement)


def fold(node: _Node, leaf: Callable[[_Node], bool]) -> bool:
    """all = every child holds; any = some child holds; not = its child does not."""
    if node.node_type == "all":
        return all([fold(child, leaf) for child in node.children])
    if node.node_type == "any":
        return any([fold(child, leaf) for child in node.children])
    if node.node_type == "not":
        return not fold(node.children[0], leaf)
    return leaf(node)


# --- explaining one audience -----------------------------------------------------------------


def explain_audience(
    con: duckdb.DuckDBPyConnection, user_text: str, audience_id: str
) -> AudienceExplanation:
    """Evaluate `audience_id`'s rule tree for one user from the build's own tables."""
    check_tables(con)
    user = find_user(con, user_text)
    audience = find_audience(con, audience_id)
    run_id, as_of = published_run(con)
    memberships = memberships_of(con, user["user_id"])
    tree: NodeResult | None = None
    rule_holds: bool | None
    if audience.kind == "static":
        rule_holds = bool(
            _scalars(
                con,
                "select count(*) from rules.audience_static_member "
                "where audience_id = ? and user_id = ?",
                [audience_id, user["user_id"]],
            )[0]
        )
    else:
        root = load_trees(con, [audience_id])[audience_id]
        in_sets = leaf_sets_containing(con, user["user_id"], [audience_id])
        context = _Evidence(con, user, as_of)
        if root is not None:
            tree = _explain_node(root, in_sets, memberships, context)
        rule_holds = tree.holds if tree is not None else False
    verdict = _verdict(audience, user, rule_holds, memberships)
    return AudienceExplanation(
        user=_summary(user),
        audience_id=audience_id,
        audience_name=audience.name,
        kind=audience.kind,
        state=audience_state(audience),
        as_of=as_of,
        run_id=run_id,
        source=_source(audience),
        tree=tree,
        verdict=verdict,
    )


def _explain_node(
    node: _Node, in_sets: set[int], memberships: dict[str, Any], context: _Evidence
) -> NodeResult:
    children = [_explain_node(child, in_sets, memberships, context) for child in node.children]
    if node.node_type == "all":
        holds = all(child.holds for child in children)
    elif node.node_type == "any":
        holds = any(child.holds for child in children)
    elif node.node_type == "not":
        holds = not children[0].holds
    else:
        holds = leaf_holds(node, in_sets, memberships)
    kind = node.node_type if node.node_type != "leaf" else node.leaf_kind
    result = NodeResult(
        node_id=node.node_id,
        node_type=node.node_type,
        kind=kind,
        rule=describe_rule(node),
        holds=holds,
        source_line=node.columns.get("source_line"),
        children=children,
    )
    if node.node_type == "leaf":
        result.evidence = context.evidence(node, memberships)
        result.bounds = describe_bounds(node)
    return result


def audience_state(audience: _Audience) -> str:
    """How a run treats the audience: evaluated, or why its membership is (partly) frozen."""
    if audience.is_broken:
        return "broken"
    if not audience.is_in_window:
        return "outside window"
    if not audience.add_members and not audience.remove_members:
        return "paused"
    if not audience.remove_members:
        return "add-only"
    if not audience.add_members:
        return "remove-only"
    return "evaluated"


def _verdict(
    audience: _Audience,
    user: dict[str, Any],
    rule_holds: bool,
    memberships: dict[str, datetime | None],
) -> Verdict:
    """The published membership, why it differs from the rule result, and drift warnings."""
    is_member = audience.audience_id in memberships
    verdict = Verdict(
        is_member=is_member,
        joined_at=memberships.get(audience.audience_id),
        rule_holds=rule_holds,
    )
    state = audience_state(audience)
    deleted = user["status"] == "deleted"
    frozen = _frozen_reason(audience, state)
    if deleted:
        if rule_holds:
            verdict.reasons.append("the user is deleted: deleted users are never members")
    elif frozen:
        verdict.reasons.append(frozen)
    elif state == "add-only" and is_member and not rule_holds:
        verdict.reasons.append(
            "remove_members is off: a member who no longer matches stays a member"
        )
    elif state == "remove-only" and rule_holds and not is_member:
        verdict.reasons.append("add_members is off: a user who matches is not added")
    expected = _expected_membership(state, rule_holds, is_member, deleted)
    if expected is not None and expected != is_member:
        verdict.warnings.append(
            f"drift: the rule result ({'holds' if rule_holds else 'fails'}) implies "
            f"{'member' if expected else 'not a member'}, but fct_audience_membership says "
            f"{'member' if is_member else 'not a member'}; explain and the build disagree"
        )
    return verdict


def _frozen_reason(audience: _Audience, state: str) -> str | None:
    """Why a run kept this audience's last membership unchanged, if it did."""
    if state == "broken":
        since = audience.columns.get("broken_since_run_id")
        reason = audience.columns.get("broken_reason") or "a reference no longer resolves"
        since_text = f" since run {since}" if since else ""
        return f"the audience is broken{since_text} ({reason}): membership is frozen"
    if state == "outside window":
        bounds = [
            f"{word} {day}"
            for word, day in (("from", audience.active_from), ("until", audience.active_until))
            if day
        ]
        return (
            f"the as-of is outside the audience's window ({' '.join(bounds)}): membership is frozen"
        )
    if state == "paused":
        return "the audience is paused (add_members and remove_members off): membership is frozen"
    return None


def _expected_membership(
    state: str, rule_holds: bool, is_member: bool, deleted: bool
) -> bool | None:
    """The membership the rule result forces, or None when previous state decides it."""
    if deleted:
        return False
    if state == "evaluated":
        return rule_holds
    if state == "add-only" and rule_holds:
        return True
    if state == "remove-only" and not rule_holds:
        return False
    return None


# --- every audience of one user --------------------------------------------------------------


def explain_user(con: duckdb.DuckDBPyConnection, user_text: str) -> UserExplanation:
    """Every audience the user is a member of, with each dynamic rule's top-level verdict."""
    check_tables(con)
    user = find_user(con, user_text)
    run_id, as_of = published_run(con)
    memberships = memberships_of(con, user["user_id"])
    audiences = [
        _Audience(row)
        for row in _dicts(
            con,
            "select * from rules.audience where list_contains(?, audience_id) order by audience_id",
            [list(memberships)],
        )
    ]
    dynamic = [a.audience_id for a in audiences if a.kind == "dynamic"]
    roots = load_trees(con, dynamic)
    in_sets = leaf_sets_containing(con, user["user_id"], dynamic)
    lines = []
    for audience in audiences:
        line = MembershipLine(
            audience_id=audience.audience_id,
            audience_name=audience.name,
            kind=audience.kind,
            joined_at=memberships[audience.audience_id],
        )
        root = roots.get(audience.audience_id)
        if root is not None:
            line.rule = describe_rule(root)
            line.rule_holds = fold(root, lambda n: leaf_holds(n, in_sets, memberships))
        elif audience.kind == "dynamic":
            line.rule, line.rule_holds = "no rules", False
        state = audience_state(audience)
        if state != "evaluated":
            line.rule = f"{line.rule} [{state}]" if line.rule else f"[{state}]"
        lines.append(line)
    return UserExplanation(user=_summary(user), as_of=as_of, run_id=run_id, memberships=lines)


# --- describing rules ------------------------------------------------------------------------


def _listed(values: Iterable[Any]) -> str:
    items = [str(value) for value in values]
    shown = ", ".join(items[:MAX_LISTED])
    more = f", … {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return f"[{shown}{more}]"


def _field(node: _Node) -> str:
    name = node.columns.get("field_name") or ""
    if node.columns.get("is_custom_field") and not name.startswith("custom:"):
        return f"custom:{name}"
    return name


def _text_condition(node: _Node) -> str:
    values = f" {_listed(node.values)}" if node.values else ""
    return f"{node.operator}{values}"


def describe_rule(node: _Node) -> str:
    """A node as one line an admin recognises from audiences.yaml."""
    kind = node.node_type if node.node_type != "leaf" else node.leaf_kind
    c = node.columns
    describe = {
        "all": lambda: f"all of ({len(node.children)})",
        "any": lambda: f"any of ({len(node.children)})",
        "not": lambda: "not",
        "user_field": lambda: f"{_field(node)} {_text_condition(node)}",
        "date_field": lambda: f"{_field(node)} {node.operator}{_date_argument(node)}",
        "organisation": lambda: _hierarchy_rule("organisation", node),
        "position": lambda: _hierarchy_rule("position", node),
        "organisation_type": lambda: f"organisation type {_text_condition(node)}",
        "position_type": lambda: f"position type {_text_condition(node)}",
        "organisation_custom_field": lambda: (
            f"organisation {_field(node).removeprefix('custom:')} {_text_condition(node)}"
        ),
        "position_custom_field": lambda: (
            f"position {_field(node).removeprefix('custom:')} {_text_condition(node)}"
        ),
        "job_title": lambda: f"job title {_text_condition(node)}",
        "has_direct_reports": lambda: (
            "has direct reports" if c.get("has_direct_reports") else "has no direct reports"
        ),
        "reports_to": lambda: (
            f"reports to {_listed(node.values)}"
            + (" (directly)" if c.get("direct_only") else " (at any depth)")
        ),
        "course_completion": lambda: _completion_rule("course", node),
        "program_completion": lambda: _completion_rule("program", node),
        "certification_state": lambda: _certification_rule(node),
        "member_of": lambda: f"member of any of {_listed(node.values)}",
        "not_member_of": lambda: f"not a member of any of {_listed(node.values)}",
    }.get(kind)
    return describe() if describe else f"{kind} {_listed(node.values)}"


def _date_argument(node: _Node) -> str:
    """` 2026-01-01` / ` 90`: a date rule's argument, from the audience as written."""
    for key in ("date", "days"):
        if node.raw.get(key) is not None:
            return f" {node.raw[key]}"
    return ""


def _params(node: _Node) -> dict[str, Any]:
    """A leaf's parameters as written: the mapping under its kind key, or the leaf itself."""
    nested = node.raw.get(node.leaf_kind)
    return nested if isinstance(nested, dict) else node.raw


def _hierarchy_rule(item: str, node: _Node) -> str:
    c = node.columns
    negated = bool(c.get("is_complement"))
    children = " (+children)" if c.get("include_children") else ""
    return f"{item} {'not in' if negated else 'in'} {_listed(node.values)}{children}"


def _completion_rule(item: str, node: _Node) -> str:
    params = _params(node)
    match = node.columns.get("match") or params.get("match") or "?"
    conditions = "".join(
        f", {key} {params[key]}"
        for key in ("completed_after", "completed_before", "within_last_days")
        if params.get(key) is not None
    )
    return f"{item} completion {match} of {_listed(node.values)}{conditions}"


def _certification_rule(node: _Node) -> str:
    states = _params(node).get("states") or []
    return f"certification {_listed(node.values)[1:-1]} in {_listed(states)}"


TIMESTAMP_FIELDS = frozenset({"first_access", "last_access"})


def describe_bounds(node: _Node) -> str:
    """The inclusive window a date condition was evaluated with, from the rule tables.

    Instants for timestamps (access, completions), days for date-valued fields (job dates,
    custom dates), exactly the bounds the build compared with.
    """
    c = node.columns
    instants = node.leaf_kind == "course_completion" or (
        not c.get("is_custom_field") and c.get("field_name") in TIMESTAMP_FIELDS
    )
    lower, upper = (
        (c.get("lower_at"), c.get("upper_at"))
        if instants
        else (c.get("lower_date"), c.get("upper_date"))
    )
    if lower is None and upper is None:
        return ""
    return f"counts from {_when(lower) if lower else '…'} to {_when(upper) if upper else '…'}"


def _when(value: date | datetime | None) -> str:
    if value is None:
        return "never"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return value.isoformat()


# --- the user's values that decided a leaf ---------------------------------------------------


class _Evidence:
    """Fetches the user's own values for a leaf (small parameterised queries, cached jobs)."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, user: dict[str, Any], as_of: datetime | None
    ) -> None:
        self.con = con
        self.user = user
        self.user_id: str = user["user_id"]
        self.as_of = as_of
        self._jobs: list[dict[str, Any]] | None = None

    @property
    def jobs(self) -> list[dict[str, Any]]:
        if self._jobs is None:
            self._jobs = _dicts(
                self.con,
                "select job_id, full_name, organisation_id, position_id, start_date, end_date "
                "from dim_job_assignment where user_id = ? order by job_id",
                [self.user_id],
            )
        return self._jobs

    def evidence(self, node: _Node, memberships: dict[str, Any]) -> str:
        """The value(s) of this user that the leaf looked at, as one short phrase."""
        kind = node.leaf_kind
        if kind in MEMBERSHIP_KINDS:
            return self.membership(node, memberships)
        handler = {
            "user_field": self.user_field,
            "date_field": self.date_field,
            "organisation": lambda n: self.hierarchy(n, "organisation"),
            "position": lambda n: self.hierarchy(n, "position"),
            "organisation_type": lambda n: self.item_property(n, "organisation", None),
            "position_type": lambda n: self.item_property(n, "position", None),
            "organisation_custom_field": lambda n: self.item_property(
                n, "organisation", _field(n).removeprefix("custom:")
            ),
            "position_custom_field": lambda n: self.item_property(
                n, "position", _field(n).removeprefix("custom:")
            ),
            "job_title": self.job_title,
            "has_direct_reports": self.direct_reports,
            "reports_to": self.managers,
            "course_completion": self.completions,
        }.get(kind)
        if handler is None:
            return f"{kind} is not built yet: nothing to show"
        return handler(node)

    # user profile ---------------------------------------------------------------------------

    def custom_value(self, name: str) -> str | None:
        rows = _scalars(
            self.con,
            "select value from hr.user_custom_field where user_id = ? and field_name = ?",
            [self.user_id, name],
        )
        return rows[0] if rows else None

    def user_field(self, node: _Node) -> str:
        name = _field(node)
        if name.startswith("custom:"):
            return _quoted(name, self.custom_value(name.removeprefix("custom:")))
        if name == "suspended":
            suspended = self.user["status"] == "suspended"  # as the build reads it
            why = self.user.get("removed_reason") or "suspended=1 in the HR feed"
            return f"suspended = {'1' if suspended else '0'}" + (f" ({why})" if suspended else "")
        column = USER_FIELD_COLUMNS.get(name, name)
        return _quoted(name, self.user.get(column))

    def date_field(self, node: _Node) -> str:
        name = _field(node)
        if name == "first_access":
            return f"first access {_when(self.user.get('first_access_at'))}"
        if name == "last_access":
            return f"last access {_when(self.user.get('last_access_at'))}"
        if name in ("job_start_date", "job_end_date"):
            column = "start_date" if name == "job_start_date" else "end_date"
            if not self.jobs:
                return "no job"
            what = column.removesuffix("_date")
            return "; ".join(
                f"job {job['job_id']} {what}s {_when(job[column])}"
                if job[column]
                else f"job {job['job_id']} has no {what} date"
                for job in self.jobs
            )
        return _quoted(name, self.custom_value(name.removeprefix("custom:")))

    # jobs and hierarchies -------------------------------------------------------------------

    def hierarchy(self, node: _Node, item: str) -> str:
        """Which organisations (positions) the user's jobs are in, and which listed id matched."""
        column = f"{item}_id"
        held = sorted({job[column] for job in self.jobs if job[column]})
        if not held:
            return "no job" if not self.jobs else f"no job with an {item}"
        below: dict[str, str] = {}
        if node.columns.get("include_children"):
            rows = self.con.execute(
                f"select descendant_id, min_by(ancestor_id, depth_below) "  # noqa: S608 - constant
                f"from bdg_{item}_ancestry "
                "where list_contains(?, descendant_id) and list_contains(?, ancestor_id) "
                "and depth_below > 0 group by descendant_id",
                [held, node.values],
            ).fetchall()
            below = dict(rows)
        shown = [
            f"{held_id} (below {below[held_id]})" if held_id in below else held_id
            for held_id in held
        ]
        return f"jobs in {', '.join(shown)}"

    def item_property(self, node: _Node, item: str, custom: str | None) -> str:
        """Per job: its organisation's (position's) type or custom field value."""
        column = f"{item}_id"
        held = sorted({job[column] for job in self.jobs if job[column]})
        if not held:
            return "no job" if not self.jobs else f"no job with an {item}"
        if custom is None:
            sql = f"select {column}, type_id from hr.{item} where list_contains(?, {column})"  # noqa: S608
            values = dict(self.con.execute(sql, [held]).fetchall())
            label = "type"
        else:
            sql = (
                f"select {column}, value from hr.{item}_custom_field "  # noqa: S608 - constants
                f"where list_contains(?, {column}) and field_name = ?"
            )
            values = dict(self.con.execute(sql, [held, custom]).fetchall())
            label = custom
        return "; ".join(_quoted(f"{held_id} {label}", values.get(held_id)) for held_id in held)

    def job_title(self, node: _Node) -> str:
        if not self.jobs:
            return "no job"
        return "; ".join(
            _quoted(f"job {job['job_id']} title", job["full_name"]) for job in self.jobs
        )

    def direct_reports(self, node: _Node) -> str:
        reports = _scalars(
            self.con,
            "select report_user_id from bdg_management where manager_user_id = ? and depth = 1 "
            "order by report_user_id",
            [self.user_id],
        )
        if not reports:
            return "no direct reports"
        return f"{len(reports)} direct report(s): {_listed(reports)[1:-1]}"

    def managers(self, node: _Node) -> str:
        rows = self.con.execute(
            "select manager_user_id, depth from bdg_management where report_user_id = ? "
            "order by depth, manager_user_id",
            [self.user_id],
        ).fetchall()
        if node.columns.get("direct_only"):
            direct = [manager for manager, depth in rows if depth == 1]
            return f"direct manager(s): {', '.join(direct)}" if direct else "no manager"
        if not rows:
            return "no manager"
        return "managers: " + ", ".join(f"{manager} (level {depth})" for manager, depth in rows)

    # learning and audiences -----------------------------------------------------------------

    def completions(self, node: _Node) -> str:
        """Per listed course: the user's completions up to the as-of (later ones never count)."""
        rows = self.con.execute(
            "select course_id, list(completed_at order by completed_at desc) "
            "from hr.course_completion where user_id = ? and list_contains(?, course_id) "
            "and (? is null or completed_at <= ?) group by course_id",
            [self.user_id, node.values, self.as_of, self.as_of],
        ).fetchall()
        done = dict(rows)
        parts = []
        for course in node.values:
            times = done.get(course)
            if not times:
                parts.append(f"{course} not completed")
            else:
                parts.append(f"{course} completed {', '.join(_when(t) for t in times[:3])}")
        return "; ".join(parts)

    def membership(self, node: _Node, memberships: dict[str, Any]) -> str:
        held = [audience for audience in node.values if audience in memberships]
        if held:
            return f"member of {', '.join(held)}"
        return f"member of none of {_listed(node.values)}"


def _quoted(name: str, value: Any) -> str:
    if value is None or str(value).strip() == "":
        return f"{name} is empty"
    return f"{name} = '{value}'"


def _summary(user: dict[str, Any]) -> UserSummary:
    name = " ".join(part for part in (user.get("first_name"), user.get("last_name")) if part)
    return UserSummary(
        user_id=user["user_id"], username=user["username"], name=name, status=user["status"]
    )


def _source(audience: _Audience) -> str:
    file, line = audience.columns.get("source_file"), audience.columns.get("source_line")
    return f"{file}:{line}" if file and line else (file or "")


# --- rendering -------------------------------------------------------------------------------


def _mark(holds: bool | None) -> str:
    return "?" if holds is None else (HOLDS if holds else FAILS)


def _user_line(user: UserSummary, as_of: datetime | None, run_id: str | None) -> str:
    who = f"{user.user_id} ({user.username}, {user.name}, {user.status})"
    when = f" as of {_when(as_of)} (run {run_id})" if as_of else ""
    return f"user {who}{when}"


def render_text(explanation: Explanation) -> list[str]:
    """The explanation as lines for a terminal."""
    if isinstance(explanation, UserExplanation):
        return _render_user(explanation)
    return _render_audience(explanation)


def _render_audience(e: AudienceExplanation) -> list[str]:
    state = "" if e.state == "evaluated" else f", {e.state}"
    source = f" — {e.source}" if e.source else ""
    lines = [
        f"audience {e.audience_id} '{e.audience_name}' ({e.kind}{state}){source}",
        _user_line(e.user, e.as_of, e.run_id),
        "",
    ]
    v = e.verdict
    if e.kind == "static":
        lines.append(
            f"{_mark(v.rule_holds)} {'listed' if v.rule_holds else 'not listed'} "
            "as a member of this static audience"
        )
    elif e.tree is None:
        lines.append(f"{FAILS} no rules: a dynamic audience without rules has no members")
    else:
        lines += _render_node(e.tree, 0)
        lines.append("")
        lines.append(
            f"rule result: {_mark(v.rule_holds)} {'matches' if v.rule_holds else 'does not match'}"
        )
    member = f"member since {_when(v.joined_at)}" if v.is_member else "not a member"
    lines.append(f"verdict: {_mark(v.is_member)} {member}")
    word = "because" if v.is_member != v.rule_holds else "note:"
    lines += [f"  {word} {reason}" for reason in v.reasons]
    lines += [f"warning: {warning}" for warning in v.warnings]
    return lines


def _render_node(node: NodeResult, depth: int) -> list[str]:
    indent = "  " * depth
    line = f"{indent}{_mark(node.holds)} {node.rule}"
    if node.evidence:
        line += f"  — {node.evidence}"
    if node.source_line:
        line += f"  (line {node.source_line})"
    lines = [line]
    if node.bounds:
        lines.append(f"{indent}    {node.bounds}")
    for child in node.children:
        lines += _render_node(child, depth + 1)
    return lines


def _render_user(e: UserExplanation) -> list[str]:
    lines = [_user_line(e.user, e.as_of, e.run_id), ""]
    if not e.memberships:
        lines.append("member of no audience")
    width = max((len(m.audience_id) for m in e.memberships), default=0)
    for m in e.memberships:
        rule = f"  rule {_mark(m.rule_holds)} {m.rule}" if m.kind == "dynamic" else "  (static)"
        lines.append(
            f"{m.audience_id:<{width}}  since {_when(m.joined_at)}{rule}  '{m.audience_name}'"
        )
    lines += ["", "for one audience rule by rule: learnops explain USER --audience ID"]
    return lines


def render_json(explanation: Explanation) -> str:
    """The explanation as JSON (dates ISO 8601, UTC instants with a Z)."""
    return json.dumps(asdict(explanation), indent=2, default=_json_value, ensure_ascii=False)


def _json_value(value: Any) -> str:
    return _when(value) if isinstance(value, date) else str(value)
