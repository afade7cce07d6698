"""`learnops explain`: why a user is, or is not, in an audience, a program or a certification
(SPEC §1, §4.1, §4.2, §4.3, §8).

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

Programs and certifications (:func:`explain_program`) follow the same rule: whether a route
selects the user, the learner's due date and its route, the exception, each course set's
status and the certification state and cycles are read from the marts the build wrote
(``fct_program_assignment_route``, ``fct_program_user``, ``fct_program_course_set_user``,
``fct_certification_user``, ``intermediate.int_certification_cycles``); beside each route and
course the user's values (jobs, memberships, managers, counted completions) are shown, and a
route whose values disagree with the build's verdict raises a drift warning.

:func:`explain_audience`, :func:`explain_program` and :func:`explain_user` return plain
dataclasses; :func:`render_text` and :func:`render_json` turn them into output. The CLI is a
thin shell.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

import duckdb

from flows import audience_sets
from flows.explain_user import (
    JobLine,
    MessageLine,
    jobs_of,
    mail_stoppers,
    messages_of,
    render_identity,
    render_messages,
)
from flows.rules.loader import suggest
from flows.warehouse import fetch_dicts

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
    ("intermediate", "int_audience_user_keys"),
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
class ProgramLine:
    """One program or certification the user is assigned to (the overview)."""

    program_id: str
    name: str
    kind: str  # program | certification
    status: str
    due_at: datetime | None
    is_overdue: bool
    state: str | None = None  # certifications: assigned | certified | window_open | expired
    expires_at: datetime | None = None


@dataclass
class UserExplanation:
    """Every audience one user is a member of, and every program they are assigned to."""

    user: UserSummary
    as_of: datetime | None
    run_id: str | None
    memberships: list[MembershipLine]
    programs: list[ProgramLine] = field(default_factory=list)
    jobs: list[JobLine] = field(default_factory=list)
    #: why the user gets no mail of their own, if so (suspended, emailstop, no address)
    mail_stoppers: list[str] = field(default_factory=list)
    messages: list[MessageLine] = field(default_factory=list)


@dataclass
class RouteResult:
    """One assignment route of a program, for one user: does it select them, and its dates."""

    route_key: str
    kind: str  # organisation | position | audience | manager | users | group
    target: str  # what the route selects by, one line
    selects: bool  # the build's verdict (fct_program_assignment_route)
    evidence: str  # the user's value(s) the route looks at
    due_rule: str  # the route's due date as written ("2 months after assignment")
    assigned_at: datetime | None = None
    due_base_at: datetime | None = None
    due_at: datetime | None = None
    is_future: bool = False
    is_base_missing: bool = False
    is_kept: bool = False
    sets_due_date: bool = False  # this route's date is the learner's (due_route_key)


@dataclass
class DueDate:
    """The learner's due date and where it came from."""

    due_at: datetime | None
    source: str  # route | kept | complete | broken | realistic_due_date | none
    route_key: str | None
    reason: str
    previous_due_at: datetime | None = None  # the previous run's date (learnops.previous_*)
    latest_route_due_at: datetime | None = None  # the latest date of a current route


@dataclass
class ExceptionInfo:
    """The learner's exception on record."""

    exception_type: str
    raised_at: datetime | None
    resolution: str | None  # None: open
    resolved_by: str  # exceptions.users | exceptions.default | ""
    meaning: str  # what the type means
    effect: str  # what it means for the assignment and for mail


@dataclass
class CourseLine:
    course_id: str
    name: str
    counted_at: datetime | None  # the completion that counts (earliest counted one)
    score: int | None = None
    note: str = ""  # e.g. a completion before the path counts


@dataclass
class CourseSetResult:
    """One course set of the learner's path (fct_program_course_set_user)."""

    set_id: str
    path: str
    set_position: int
    group_number: int
    run_number: int
    kind: str
    condition: str  # "all of 2", "at least 2 of 3", "optional", with min_time
    status: str  # not_started | in_progress | complete
    completed_at: datetime | None
    courses_completed: int
    is_current_group: bool
    opens_at: datetime | None
    due_at: datetime | None
    group_completed_at: datetime | None
    is_overdue: bool
    courses: list[CourseLine] = field(default_factory=list)


@dataclass
class CycleLine:
    """One certification cycle (intermediate.int_certification_cycles)."""

    cycle_number: int
    path: str
    counted_from: datetime | None
    opened_at: datetime | None
    completed_at: datetime | None
    closes_at: datetime | None
    certified_at: datetime | None
    certification_kind: str | None
    base_rule: str | None
    base_at: datetime | None
    window_opens_at: datetime | None
    expires_at: datetime | None
    outcome: str | None


@dataclass
class CertificationInfo:
    """A certification learner's state (fct_certification_user) and cycle history."""

    state: str
    certified_at: datetime | None
    window_opens_at: datetime | None
    expires_at: datetime | None
    base_rule: str | None
    base_at: datetime | None
    certification_kind: str | None
    certification_count: int | None
    current_path: str
    current_path_counted_from: datetime | None
    current_path_opened_at: datetime | None
    current_path_completed_at: datetime | None
    is_chain_truncated: bool
    expiry_method: str
    periods: str  # "active 1 year, window 2 months"
    cycles: list[CycleLine] = field(default_factory=list)


@dataclass
class ProgramExplanation:
    """Why one user is (not) assigned to one program or certification, and their status."""

    user: UserSummary
    program_id: str
    program_name: str
    kind: str  # program | certification
    source: str
    is_broken: bool
    broken_reason: str
    as_of: datetime | None
    run_id: str | None
    is_assigned: bool  # a row in fct_program_user (dismissed learners included)
    assigned_at: datetime | None
    status: str | None
    status_reason: str
    is_overdue: bool
    completed_at: datetime | None
    minimum_time: str
    routes: list[RouteResult]
    due: DueDate | None
    exception: ExceptionInfo | None
    current_group: int | None
    course_sets: list[CourseSetResult]
    certification: CertificationInfo | None
    not_assigned_reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


Explanation = AudienceExplanation | UserExplanation | ProgramExplanation


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
        rows = fetch_dicts(con, f"select * from dim_user where {column} = ?", [text])  # noqa: S608
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
    rows = fetch_dicts(con, "select * from rules.audience where audience_id = ?", [audience_id])
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
    rows = fetch_dicts(
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
    keys = _scalars(
        con, "select user_key from intermediate.int_audience_user_keys where user_id = ?", [user_id]
    )
    if not keys:
        return set()
    rows = con.execute(
        "select node_id, user_set from intermediate.int_audience_leaf_sets "
        "where list_contains(?, audience_id)",
        [list(audience_ids)],
    ).fetchall()
    return {node_id for node_id, blob in rows if audience_sets.blob_contains(blob, keys[0])}


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
        for row in fetch_dicts(
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
    return UserExplanation(
        user=_summary(user),
        as_of=as_of,
        run_id=run_id,
        memberships=lines,
        programs=programs_of(con, user["user_id"]),
        jobs=jobs_of(con, user["user_id"]),
        mail_stoppers=mail_stoppers(user),
        messages=messages_of(con, user["user_id"]),
    )


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
            self._jobs = fetch_dicts(
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


# --- programs and certifications -------------------------------------------------------------

PROGRAM_TABLES = (
    ("rules", "program"),
    ("rules", "program_route"),
    ("rules", "program_route_target"),
    ("rules", "program_course_set"),
    ("rules", "program_course_set_course"),
    ("rules", "program_exception_resolution"),
    ("main", "fct_program_user"),
    ("main", "fct_program_assignment_route"),
    ("main", "fct_program_course_set_user"),
    ("main", "fct_certification_user"),
)
CYCLES_TABLE = ("intermediate", "int_certification_cycles")
PREVIOUS_PROGRAM_USERS = ("learnops", "previous_program_user")

DUE_BASES = {
    "first_access": "first access",
    "assignment": "assignment",
    "job_start": "job start",
    "position_assigned": "position {ref} assigned",
    "course_completion": "completion of course {ref}",
    "program_completion": "completion of program {ref}",
    "custom_field": "custom field {ref}",
}
EXCEPTION_MEANINGS = {
    "duplicate_course": (
        "a course of this certification is also in another certification the learner is assigned to"
    ),
    "completion_time_unknown": (
        "a route with a relative due date has no base for the learner, so no due date can be "
        "computed"
    ),
    "time_allowance": "the due date left less than the minimum time ({minimum}) when checked",
}
RESOLUTION_EFFECTS = {
    "assign": (
        "resolved with assign: the due date is kept; the learner is assigned and gets mail "
        "(the assignment message when the resolution applied)"
    ),
    "realistic_due_date": (
        "resolved with realistic_due_date: the due date became the as-of of the run that "
        "applied it + minimum time + 7 days; the learner is assigned and gets mail (the "
        "assignment message when the resolution applied)"
    ),
    "dismiss": "resolved with dismiss: status dismissed, not treated as assigned, no mail",
}
PERIOD_UNITS = (("week", 7 * 86400), ("day", 86400), ("hour", 3600), ("second", 1))


def _tables(con: duckdb.DuckDBPyConnection) -> set[tuple[str, str]]:
    return set(
        con.execute("select table_schema, table_name from information_schema.tables").fetchall()
    )


def check_program_tables(con: duckdb.DuckDBPyConnection) -> set[tuple[str, str]]:
    """Refuse a warehouse published before programs were built; return the tables present."""
    check_tables(con)
    present = _tables(con)
    missing = [f"{s}.{n}" for s, n in PROGRAM_TABLES if (s, n) not in present]
    if missing:
        raise ExplainError(
            f"the published warehouse has no program tables ({', '.join(missing)}): "
            "run `learnops run` with this version first"
        )
    return present


def find_program(con: duckdb.DuckDBPyConnection, program_id: str, kind: str) -> dict[str, Any]:
    """The rules.program row of a program (or certification) id; else the closest id."""
    rows = fetch_dicts(con, "select * from rules.program where program_id = ?", [program_id])
    if rows:
        found = rows[0]["kind"]
        if found != kind:
            raise ExplainError(
                f"'{program_id}' is a {found}, not a {kind}: use --{found} {program_id}"
            )
        return rows[0]
    known = _scalars(con, "select program_id from rules.program where kind = ?", [kind])
    raise ExplainError(
        f"no {kind} '{program_id}' in the published warehouse{did_you_mean(program_id, known)}"
    )


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any]) -> dict[str, Any] | None:
    rows = fetch_dicts(con, sql, params)
    return rows[0] if rows else None


def explain_program(
    con: duckdb.DuckDBPyConnection, user_text: str, program_id: str, kind: str = "program"
) -> ProgramExplanation:
    """Why one user is (not) assigned to a program or certification, and their status there.

    Every verdict is read from the marts the build wrote (fct_program_user,
    fct_program_assignment_route, fct_program_course_set_user, fct_certification_user);
    the user's values beside each route and course are shown, never re-evaluated.
    """
    present = check_program_tables(con)
    user = find_user(con, user_text)
    program = find_program(con, program_id, kind)
    run_id, as_of = published_run(con)
    user_id = user["user_id"]
    key = [program_id, user_id]
    learner = _one(con, "select * from fct_program_user where program_id = ? and user_id = ?", key)
    previous = (
        _one(
            con,
            "select * from learnops.previous_program_user where program_id = ? and user_id = ?",
            key,
        )
        if PREVIOUS_PROGRAM_USERS in present
        else None
    )
    memberships = memberships_of(con, user_id)
    routes, warnings = _routes(con, program, user, learner, memberships)
    certification = (
        _certification(con, program, user_id, CYCLES_TABLE in present)
        if kind == "certification" and learner is not None
        else None
    )
    counted_from = certification.current_path_counted_from if certification else None
    course_sets = (
        _course_sets(con, program_id, user_id, as_of, counted_from) if learner is not None else []
    )
    minimum = _period(program["minimum_time_months"], program["minimum_time_seconds"])
    exception = _exception(con, program, learner, minimum) if learner is not None else None
    explanation = ProgramExplanation(
        user=_summary(user),
        program_id=program_id,
        program_name=program["name"],
        kind=kind,
        source=_source(_Audience(program)),  # source_file:source_line, as for audiences
        is_broken=bool(program["is_broken"]),
        broken_reason=_broken(program),
        as_of=as_of,
        run_id=run_id,
        is_assigned=learner is not None,
        assigned_at=learner["assigned_at"] if learner else None,
        status=learner["status"] if learner else None,
        status_reason="",
        is_overdue=bool(learner["is_overdue"]) if learner else False,
        completed_at=learner["completed_at"] if learner else None,
        minimum_time=minimum,
        routes=routes,
        due=_due_date(learner, routes, previous, program, minimum) if learner else None,
        exception=exception,
        current_group=learner["current_group_number"] if learner else None,
        course_sets=course_sets,
        certification=certification,
        warnings=warnings,
    )
    if learner is not None:
        explanation.status_reason = _status_reason(learner, course_sets, certification, exception)
    else:
        explanation.not_assigned_reasons = _not_assigned(program, user, routes, previous)
    return explanation


def _broken(program: dict[str, Any]) -> str:
    if not program["is_broken"]:
        return ""
    since = program.get("broken_since_run_id")
    reason = program.get("broken_reason") or "a reference no longer resolves"
    return f"broken{f' since run {since}' if since else ''} ({reason})"


# routes ---------------------------------------------------------------------------------------


def _routes(
    con: duckdb.DuckDBPyConnection,
    program: dict[str, Any],
    user: dict[str, Any],
    learner: dict[str, Any] | None,
    memberships: dict[str, datetime | None],
) -> tuple[list[RouteResult], list[str]]:
    """Every route of the program, as written, with the build's verdict and the user's values."""
    program_id, user_id = program["program_id"], user["user_id"]
    defined = fetch_dicts(
        con, "select * from rules.program_route where program_id = ? order by rowid", [program_id]
    )
    targets: dict[str, list[str]] = dict(
        con.execute(
            "select route_key, list(target_id order by rowid) from rules.program_route_target "
            "where program_id = ? group by route_key",
            [program_id],
        ).fetchall()
    )
    selected = {
        row["route_key"]: row
        for row in fetch_dicts(
            con,
            "select * from fct_program_assignment_route where program_id = ? and user_id = ?",
            [program_id, user_id],
        )
    }
    evidence = _Evidence(con, user, None)
    due_route = learner["due_route_key"] if learner else None
    routes, warnings = [], []
    deleted = user["status"] == "deleted"
    for route in defined:
        route_key = route["route_key"]
        listed = targets.get(route_key, [])
        rule_selects, shown = _route_evidence(evidence, route, listed, memberships)
        result = RouteResult(
            route_key=route_key,
            kind=route["route_kind"],
            target=describe_route_target(route, listed),
            selects=route_key in selected,
            evidence=shown,
            due_rule=describe_due(route),
        )
        row = selected.get(route_key)
        if row is not None:
            result.assigned_at = row["assigned_at"]
            result.due_base_at = row["due_base_at"]
            result.due_at = row["due_at"]
            result.is_future = bool(row["is_future"])
            result.is_base_missing = bool(row["is_base_missing"])
            result.is_kept = bool(row["is_kept"])
            result.sets_due_date = route_key == due_route
            if not rule_selects and not result.is_kept:
                warnings.append(
                    f"drift: fct_program_assignment_route says route {route_key} selects the "
                    f"user, but their values ({shown}) say it does not"
                )
        elif rule_selects and not deleted and not program["is_broken"]:
            warnings.append(
                f"drift: the user's values ({shown}) say route {route_key} selects them, but "
                "fct_program_assignment_route has no row"
            )
        routes.append(result)
    return routes, warnings


def describe_route_target(route: dict[str, Any], targets: Sequence[str]) -> str:
    """What a route selects by, one line (`organisation [O2] (+children)`, `audience x`)."""
    kind = route["route_kind"]
    if kind in ("organisation", "position"):
        return f"{kind} {_listed(targets)}" + (" (+children)" if route["include_children"] else "")
    if kind == "audience":
        return f"audience {targets[0] if targets else route['route_key'].split(':', 1)[-1]}"
    if kind == "manager":
        scope = "direct reports of" if route["manager_scope"] == "direct" else "everyone below"
        job = f" (job {route['manager_job_id']})" if route["manager_job_id"] else ""
        return f"{scope} {route['manager_user_id']}{job}"
    if kind == "group":
        return f"group file {route['route_key'].split(':', 1)[-1]} ({len(targets)} users)"
    return f"users {_listed(targets)}"


def describe_due(route: dict[str, Any]) -> str:
    """A route's due date as written: none, a fixed instant, or a period after a base."""
    if route["due_kind"] == "fixed":
        return f"due {_when(route['due_fixed_at'])} (fixed)"
    if route["due_kind"] == "relative":
        base = DUE_BASES.get(route["due_base"], route["due_base"] or "?")
        period = _period(route["due_months"], route["due_seconds"])
        return f"due {period} after {base.format(ref=route['due_base_ref'])}"
    return "no due date"


def _route_evidence(
    evidence: _Evidence,
    route: dict[str, Any],
    targets: Sequence[str],
    memberships: dict[str, datetime | None],
) -> tuple[bool, str]:
    """(whether the user's values fit the route, those values as one phrase)."""
    kind = route["route_kind"]
    if kind in ("organisation", "position"):
        return _hierarchy_evidence(evidence, kind, targets, bool(route["include_children"]))
    if kind == "audience":
        audience = targets[0] if targets else route["route_key"].split(":", 1)[-1]
        if audience in memberships:
            return True, f"member of {audience} since {_when(memberships[audience])}"
        hint = f"learnops explain {evidence.user_id} --audience {audience}"
        return False, f"not a member of {audience} ({hint})"
    if kind == "manager":
        return _manager_evidence(evidence, route)
    listed = evidence.user_id in targets
    if kind == "group":
        file = route["route_key"].split(":", 1)[-1]
        return listed, f"{'listed' if listed else 'not listed'} in {file}"
    return listed, "listed" if listed else "not listed"


def _hierarchy_evidence(
    evidence: _Evidence, item: str, targets: Sequence[str], include_children: bool
) -> tuple[bool, str]:
    column = f"{item}_id"
    held = sorted({job[column] for job in evidence.jobs if job[column]})
    if not held:
        return False, "no job" if not evidence.jobs else f"no job with an {item}"
    if include_children:
        matched = dict(
            evidence.con.execute(
                f"select descendant_id, min_by(ancestor_id, depth_below) "  # noqa: S608 - constant
                f"from bdg_{item}_ancestry "
                "where list_contains(?, descendant_id) and list_contains(?, ancestor_id) "
                "group by descendant_id",
                [held, list(targets)],
            ).fetchall()
        )
    else:
        matched = {held_id: held_id for held_id in held if held_id in targets}
    shown = ", ".join(f"{h} (below {matched[h]})" if matched.get(h, h) != h else h for h in held)
    if matched:
        return True, f"jobs in {shown}"
    where = "in or below" if include_children else "in"
    return False, f"jobs in {shown}: none {where} {_listed(targets)}"


def _manager_evidence(evidence: _Evidence, route: dict[str, Any]) -> tuple[bool, str]:
    manager, job = route["manager_user_id"], route["manager_job_id"]
    if job:
        depths = _scalars(
            evidence.con,
            "select min(depth) from bdg_management_job "
            "where manager_user_id = ? and manager_job_id = ? and report_user_id = ?",
            [manager, job, evidence.user_id],
        )
    else:
        depths = _scalars(
            evidence.con,
            "select min(depth) from bdg_management "
            "where manager_user_id = ? and report_user_id = ?",
            [manager, evidence.user_id],
        )
    depth = depths[0] if depths else None
    through = f" through job {job}" if job else ""
    if depth is None:
        return False, f"does not report to {manager}{through}"
    if depth == 1:
        return True, f"reports to {manager} directly{through}"
    fits = route["manager_scope"] == "all_below"
    only = "" if fits else " (the route takes direct reports only)"
    return fits, f"reports to {manager}{through} at level {depth}{only}"


def _not_assigned(
    program: dict[str, Any],
    user: dict[str, Any],
    routes: Sequence[RouteResult],
    previous: dict[str, Any] | None,
) -> list[str]:
    """Why a user has no row in fct_program_user, as far as the tables tell."""
    reasons = []
    if user["status"] == "deleted":
        reasons.append("the user is deleted: deleted users are never assigned")
    elif program["is_broken"]:
        reasons.append(
            f"the program is {_broken(program)}: it is not evaluated and keeps the previous "
            "run's assignments, which did not include the user"
        )
    elif not routes:
        reasons.append("the program has no assignment routes")
    else:
        reasons.append(f"no route selects the user ({len(routes)} route(s), each shown above)")
    if previous is not None:
        reasons.append(
            f"the user was assigned on the previous run (status {previous['status']}): losing "
            "the last route unassigned them; their completions stay, and a re-assignment "
            "derives the same status"
        )
    return reasons


# due date and exception -----------------------------------------------------------------------


def _due_date(
    learner: dict[str, Any],
    routes: Sequence[RouteResult],
    previous: dict[str, Any] | None,
    program: dict[str, Any],
    minimum: str,
) -> DueDate:
    """The learner's due date, and which rule of "Due dates" (docs/programs.md) gave it."""
    selecting = [route for route in routes if route.selects]
    dates = [route.due_at for route in selecting if route.due_at is not None]
    latest = max(dates) if dates else None
    previous_due = previous["due_at"] if previous else None
    due = DueDate(
        due_at=learner["due_at"],
        source="",
        route_key=learner["due_route_key"],
        reason="",
        previous_due_at=previous_due,
        latest_route_due_at=latest,
    )
    resolution = learner["exception_resolution"]
    previous_resolution = previous["exception_resolution"] if previous else None
    now = f"; the routes now give {_when(latest)}" if latest else "; no route gives a date now"
    if due.due_at is None:
        due.source = "none"
        waiting = [
            f"{route.route_key} "
            + ("waits on a first access" if route.is_future else "has no base for the user")
            for route in selecting
            if route.is_future or route.is_base_missing
        ]
        due.reason = "no due date: " + (
            "; ".join(waiting) if waiting else "no route of the user has one"
        )
    elif due.route_key:
        due.source = "route"
        unchanged = " (as on the previous run)" if previous_due == due.due_at else ""
        due.reason = f"the latest of the routes' due dates: {due.route_key}{unchanged}"
    elif resolution == "realistic_due_date" and previous_resolution != "realistic_due_date":
        due.source = "realistic_due_date"
        due.reason = (
            "set in this run by the exception's realistic_due_date resolution: as-of + "
            f"minimum time ({minimum}) + 7 days"
        )
    elif learner["status"] == "complete":
        due.source = "complete"
        due.reason = "kept from an earlier run: a complete learner's due date no longer moves" + now
    elif program["is_broken"]:
        due.source = "broken"
        due.reason = "kept from the previous run: the program is broken" + now
    else:
        due.source = "kept"
        realistic = (
            " (the realistic_due_date resolution set a date of as-of + minimum time + 7 days "
            "when it applied)"
            if resolution == "realistic_due_date"
            else ""
        )
        due.reason = f"kept from an earlier run: due dates never move earlier{realistic}" + now
    return due


def _exception(
    con: duckdb.DuckDBPyConnection,
    program: dict[str, Any],
    learner: dict[str, Any],
    minimum: str,
) -> ExceptionInfo | None:
    kind = learner["exception_type"]
    if not kind:
        return None
    resolution = learner["exception_resolution"]
    per_user = _scalars(
        con,
        "select resolution from rules.program_exception_resolution "
        "where program_id = ? and user_id = ?",
        [program["program_id"], learner["user_id"]],
    )
    default = program["exception_default"]
    if per_user:
        resolved_by = "exceptions.users" if resolution else f"exceptions.users says {per_user[0]}"
    elif resolution:
        resolved_by = "exceptions.default" + (
            "" if default == resolution else f" (it says {default} now: a resolution is kept)"
        )
    else:
        resolved_by = f"exceptions.default is {default}"
    if resolution:
        effect = RESOLUTION_EFFECTS.get(resolution, f"resolved with {resolution}")
    else:
        effect = (
            "open: the learner is not treated as assigned (status exception) and gets no mail "
            f"until it is resolved (exceptions.users.{learner['user_id']} or exceptions.default "
            f"in {program['source_file']}); admins are told of new exceptions"
        )
    return ExceptionInfo(
        exception_type=kind,
        raised_at=learner["exception_raised_at"],
        resolution=resolution,
        resolved_by=resolved_by,
        meaning=EXCEPTION_MEANINGS.get(kind, kind).format(minimum=minimum),
        effect=effect,
    )


# course sets, status, certification ------------------------------------------------------------


def _course_sets(
    con: duckdb.DuckDBPyConnection,
    program_id: str,
    user_id: str,
    as_of: datetime | None,
    counted_from: datetime | None,
) -> list[CourseSetResult]:
    """The learner's set rows, each with its definition and its courses' counted completions."""
    rows = fetch_dicts(
        con,
        "select s.*, d.min_courses, d.min_score, d.min_time_months, d.min_time_seconds, "
        "d.course_count from fct_program_course_set_user as s "
        "left join rules.program_course_set as d "
        "on d.program_id = s.program_id and d.path = s.path and d.set_id = s.set_id "
        "where s.program_id = ? and s.user_id = ? order by s.path, s.set_position",
        [program_id, user_id],
    )
    if not rows:
        return []
    paths = sorted({row["path"] for row in rows})
    courses: dict[tuple[str, str], list[CourseLine]] = {}
    for path, set_id, course_id, name, score, counted, latest in con.execute(
        "select c.path, c.set_id, c.course_id, any_value(k.name), any_value(k.score), "
        "min(cc.completed_at) filter (where coalesce(cc.completed_at >= ?, true)), "
        "max(cc.completed_at) "
        "from rules.program_course_set_course as c "
        "left join hr.course as k on k.course_id = c.course_id "
        "left join hr.course_completion as cc on cc.course_id = c.course_id "
        "and cc.user_id = ? and (? is null or cc.completed_at <= ?) "
        "where c.program_id = ? and list_contains(?, c.path) "
        "group by c.path, c.set_id, c.course_id order by min(c.rowid)",
        [counted_from, user_id, as_of, as_of, program_id, paths],
    ).fetchall():
        note = ""
        if counted is None and latest is not None:
            note = (
                f"completed {_when(latest)}, before this path counts (from {_when(counted_from)})"
            )
        courses.setdefault((path, set_id), []).append(
            CourseLine(
                course_id=course_id, name=name or "", counted_at=counted, score=score, note=note
            )
        )
    return [
        CourseSetResult(
            set_id=row["set_id"],
            path=row["path"],
            set_position=row["set_position"],
            group_number=row["group_number"],
            run_number=row["run_number"],
            kind=row["kind"],
            condition=describe_set(row),
            status=row["status"],
            completed_at=row["completed_at"],
            courses_completed=row["courses_completed"] or 0,
            is_current_group=bool(row["is_current_group"]),
            opens_at=row["opens_at"],
            due_at=row["due_at"],
            group_completed_at=row["group_completed_at"],
            is_overdue=bool(row["is_overdue"]),
            courses=courses.get((row["path"], row["set_id"]), []),
        )
        for row in rows
    ]


def describe_set(row: dict[str, Any]) -> str:
    """A course set's condition as written: `all of 3`, `at least 2 of 3, score ≥ 10`, ..."""
    kind, count = row["kind"], row.get("course_count") or 0
    min_courses, min_score = row.get("min_courses") or 0, row.get("min_score") or 0
    if kind in ("all", "any"):
        text = f"{kind} of {count}"
    elif kind == "some" and (min_courses or min_score):
        parts = [f"at least {min_courses} of {count}"] if min_courses else [f"some of {count}"]
        text = ", ".join(parts + ([f"score ≥ {min_score}"] if min_score else []))
    elif kind == "some":
        text = f"some of {count} (no threshold: complete at the opening)"
    else:
        text = "optional (complete at the opening)"
    if row.get("min_time_months") or row.get("min_time_seconds"):
        text += f", min time {_period(row['min_time_months'], row['min_time_seconds'])}"
    return text


def _status_reason(
    learner: dict[str, Any],
    sets: Sequence[CourseSetResult],
    certification: CertificationInfo | None,
    exception: ExceptionInfo | None,
) -> str:
    """The status in fct_program_user, and the rule of "Status" that gave it."""
    status = learner["status"]
    groups = max((s.group_number for s in sets), default=0)
    path = f"the {sets[0].path} path" if sets else "the content"
    if status == "dismissed":
        reason = (
            "dismissed: the exception was resolved with dismiss; not treated as assigned, no mail"
        )
    elif status == "exception" and exception is not None:
        reason = (
            f"exception: {exception.exception_type} raised {_when(exception.raised_at)} is open; "
            "not treated as assigned, no mail"
        )
    elif status == "future":
        reason = (
            "future: every route waits on a first access that never happened "
            "(no exception, no mail)"
        )
    elif status == "complete" and certification is not None:
        reason = (
            f"complete at {_when(learner['completed_at'])}: certified "
            f"({certification.certification_kind}), {certification.state} until the window "
            f"opens {_when(certification.window_opens_at)}"
        )
    elif status == "complete":
        reason = f"complete at {_when(learner['completed_at'])}" + _completed_last(
            sets, learner["completed_at"], groups
        )
    elif status == "in_progress":
        done = len({s.group_number for s in sets if s.group_completed_at is not None})
        current = learner["current_group_number"]
        reason = (
            f"in_progress: group {current} of {groups} is current, {done} of {groups} "
            f"group(s) complete; a course of {path} was completed"
        )
    else:
        since = (
            f" since {_when(certification.current_path_counted_from)}"
            if certification and certification.current_path_counted_from
            else ""
        )
        reason = f"not_started: no course of {path} completed{since}"
    if certification is not None and status != "complete":
        if certification.state == "window_open":
            reason += f"; the window is open: recertify by {_when(certification.expires_at)}"
        elif certification.state == "expired":
            reason += f"; expired at {_when(certification.expires_at)}: back on the primary path"
    if learner["is_overdue"]:
        if certification is not None and certification.certified_at is not None:
            reason += f"; overdue: the as-of is past the expiry {_when(certification.expires_at)}"
        else:
            reason += f"; overdue: the as-of is past the due date {_when(learner['due_at'])}"
    return reason


def _completed_last(
    sets: Sequence[CourseSetResult], completed_at: datetime | None, groups: int
) -> str:
    """`: group 2 completed last (set electives)`: the first group done at the completion."""
    last = min((s.group_number for s in sets if s.group_completed_at == completed_at), default=None)
    if last is None:
        return ""
    deciding = [s.set_id for s in sets if s.group_number == last and s.completed_at == completed_at]
    which = f" (set {', '.join(deciding)})" if deciding else ""
    return f": group {last} of {groups} completed last{which}"


def _certification(
    con: duckdb.DuckDBPyConnection, program: dict[str, Any], user_id: str, has_cycles: bool
) -> CertificationInfo | None:
    row = _one(
        con,
        "select * from fct_certification_user where certification_id = ? and user_id = ?",
        [program["program_id"], user_id],
    )
    if row is None:
        return None
    periods = [
        f"active {_period(program['active_period_months'], program['active_period_seconds'])}",
        f"window {_period(program['window_period_months'], program['window_period_seconds'])}",
    ]
    if program.get("min_active_period_months") is not None:
        minimum = _period(program["min_active_period_months"], program["min_active_period_seconds"])
        periods.append(f"min active {minimum}")
    info = CertificationInfo(
        state=row["state"],
        certified_at=row["certified_at"],
        window_opens_at=row["window_opens_at"],
        expires_at=row["expires_at"],
        base_rule=row.get("base_rule"),
        base_at=row.get("base_at"),
        certification_kind=row.get("certification_kind"),
        certification_count=row.get("certification_count"),
        current_path=row["current_path"],
        current_path_counted_from=row.get("current_path_counted_from"),
        current_path_opened_at=row.get("current_path_opened_at"),
        current_path_completed_at=row.get("current_path_completed_at"),
        is_chain_truncated=bool(row.get("is_chain_truncated")),
        expiry_method=program.get("expiry_method") or "expiry_date",
        periods=", ".join(periods),
    )
    if has_cycles:
        for cycle in fetch_dicts(
            con,
            "select * from intermediate.int_certification_cycles "
            "where certification_id = ? and user_id = ? order by cycle_number",
            [program["program_id"], user_id],
        ):
            info.cycles.append(
                CycleLine(
                    cycle_number=cycle["cycle_number"],
                    path=cycle.get("path") or "",
                    counted_from=cycle.get("counted_from"),
                    opened_at=cycle.get("opened_at"),
                    completed_at=cycle.get("completed_at"),
                    closes_at=cycle.get("closes_at"),
                    certified_at=cycle.get("certified_at"),
                    certification_kind=cycle.get("certification_kind"),
                    base_rule=cycle.get("base_rule"),
                    base_at=cycle.get("base_at"),
                    window_opens_at=cycle.get("window_opens_at"),
                    expires_at=cycle.get("expires_at"),
                    outcome=cycle.get("cycle_outcome"),
                )
            )
    return info


def programs_of(con: duckdb.DuckDBPyConnection, user_id: str) -> list[ProgramLine]:
    """Every program and certification the user has a row in fct_program_user for."""
    if any(table not in _tables(con) for table in PROGRAM_TABLES):
        return []  # published before programs were built: nothing to list
    return [
        ProgramLine(**row)
        for row in fetch_dicts(
            con,
            "select p.program_id, coalesce(r.name, '') as name, p.kind, p.status, p.due_at, "
            "p.is_overdue, c.state, c.expires_at from fct_program_user as p "
            "left join rules.program as r on r.program_id = p.program_id "
            "left join fct_certification_user as c "
            "on c.certification_id = p.program_id and c.user_id = p.user_id "
            "where p.user_id = ? order by p.kind desc, p.program_id",
            [user_id],
        )
    ]


def _count(value: int, unit: str) -> str:
    return f"{value} {unit}{'' if value == 1 else 's'}"


def _period(months: int | None, seconds: int | None) -> str:
    """A (months, seconds) period as written: `2 months`, `1 year`, `3 weeks`, `none`."""
    months, seconds = months or 0, seconds or 0
    parts = []
    if months:
        parts.append(_count(months // 12, "year") if months % 12 == 0 else _count(months, "month"))
    if seconds:
        unit, size = next((u, s) for u, s in PERIOD_UNITS if seconds % s == 0)
        parts.append(_count(seconds // size, unit))
    return " ".join(parts) or "none"


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
    if isinstance(explanation, ProgramExplanation):
        return _render_program(explanation)
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
    lines += [*render_identity(e.jobs, e.mail_stoppers), ""]
    if not e.memberships:
        lines.append("member of no audience")
    width = max((len(m.audience_id) for m in e.memberships), default=0)
    for m in e.memberships:
        rule = f"  rule {_mark(m.rule_holds)} {m.rule}" if m.kind == "dynamic" else "  (static)"
        lines.append(
            f"{m.audience_id:<{width}}  since {_when(m.joined_at)}{rule}  '{m.audience_name}'"
        )
    lines += ["", *_render_programs(e.programs)]
    lines += ["", *render_messages(e.messages)]
    lines += [
        "",
        "for one audience rule by rule: learnops explain USER --audience ID",
        "for one program or certification: learnops explain USER --program ID / --certification ID",
    ]
    return lines


SET_MARKS = {"complete": HOLDS, "in_progress": "…", "not_started": "·"}


def _render_programs(programs: Sequence[ProgramLine]) -> list[str]:
    """One line per program or certification: status, due date, overdue."""
    if not programs:
        return ["assigned to no program or certification"]
    rows = []
    for p in programs:
        status = p.status
        if p.state:
            status += (
                f" ({p.state}, expires {_when(p.expires_at)})" if p.expires_at else f" ({p.state})"
            )
        due = f"due {_when(p.due_at)}" if p.due_at else "no due date"
        rows.append(
            (
                p.program_id,
                p.kind,
                status,
                due,
                "OVERDUE" if p.is_overdue else "not overdue",
                p.name,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return [
        "  ".join(f"{cell:<{width}}" for cell, width in zip(row[:4], widths, strict=True))
        + f"  {row[4]}  '{row[5]}'"
        for row in rows
    ]


def _render_program(e: ProgramExplanation) -> list[str]:
    source = f" — {e.source}" if e.source else ""
    broken = f" [{e.broken_reason}]" if e.is_broken else ""
    lines = [
        f"{e.kind} {e.program_id} '{e.program_name}'{broken}{source}",
        _user_line(e.user, e.as_of, e.run_id),
        "",
    ]
    selecting = [route for route in e.routes if route.selects]
    if e.is_assigned:
        untreated = (
            f" — status {e.status}: not treated as assigned"
            if e.status in ("exception", "dismissed")
            else ""
        )
        lines.append(
            f"assigned: {HOLDS} since {_when(e.assigned_at)}, by {len(selecting)} of "
            f"{len(e.routes)} route(s){untreated}"
        )
    else:
        lines.append(f"assigned: {FAILS} not assigned")
    if e.routes:
        lines.append("routes:")
    for route in e.routes:
        lines += _render_route(route)
    lines += [f"  because {reason}" for reason in e.not_assigned_reasons[:1]]
    lines += [f"  note: {reason}" for reason in e.not_assigned_reasons[1:]]
    if e.due is not None:
        lines.append(
            f"due date: {_when(e.due.due_at) if e.due.due_at else 'none'} — {e.due.reason}"
        )
    if e.exception is not None:
        x = e.exception
        lines.append(f"exception: {x.exception_type} raised {_when(x.raised_at)} — {x.meaning}")
        lines.append(f"  {x.effect}" + (f" [by {x.resolved_by}]" if x.resolution else ""))
        if not x.resolution:
            lines.append(f"  resolution: none yet ({x.resolved_by})")
    if e.certification is not None:
        lines += _render_certification(e.certification)
    if e.course_sets:
        lines += _render_course_sets(e)
    if e.status is not None:
        lines.append(f"status: {e.status_reason}")
    lines += [f"warning: {warning}" for warning in e.warnings]
    return lines


def _render_route(route: RouteResult) -> list[str]:
    lines = [f"  {_mark(route.selects)} {route.route_key}  {route.target} — {route.evidence}"]
    if not route.selects:
        return lines
    parts = [f"assigned {_when(route.assigned_at)}", route.due_rule]
    if (
        route.due_base_at is not None
        and route.due_rule.startswith("due ")
        and " after " in (route.due_rule)
    ):
        parts[-1] += f" (base {_when(route.due_base_at)})"
    if route.due_at is not None and not route.due_rule.endswith("(fixed)"):
        parts[-1] += f": {_when(route.due_at)}"
    if route.is_future:
        parts.append("future: waits on a first access that never happened")
    if route.is_base_missing:
        parts.append("base missing: no date from this route")
    if route.is_kept:
        parts.append("kept from the previous run (the program is broken)")
    line = "      " + "; ".join(parts)
    if route.sets_due_date:
        line += "  ← sets the learner's due date"
    return [*lines, line]


def _render_certification(c: CertificationInfo) -> list[str]:
    if c.certified_at is None:
        head = f"certification: {c.state} — never certified"
    else:
        base = f"; expiry base {c.base_rule} {_when(c.base_at)}" if c.base_rule else ""
        count = f"; certified {c.certification_count} time(s)" if c.certification_count else ""
        head = (
            f"certification: {c.state} — certified {_when(c.certified_at)} "
            f"({c.certification_kind}{base}), window opens {_when(c.window_opens_at)}, "
            f"expires {_when(c.expires_at)}{count}"
        )
    lines = [head, f"  {c.expiry_method}: {c.periods}"]
    counted = (
        f"counting completions from {_when(c.current_path_counted_from)}"
        if c.current_path_counted_from
        else "counting every completion"
    )
    opened = f", opened {_when(c.current_path_opened_at)}" if c.current_path_opened_at else ""
    lines.append(f"current path: {c.current_path}, {counted}{opened}")
    if c.is_chain_truncated:
        lines.append("  warning: the cycle chain hit the build's step cap; the state may be behind")
    if c.cycles:
        lines.append("cycles:")
    for cycle in c.cycles:
        counted = f"from {_when(cycle.counted_from)}" if cycle.counted_from else "every completion"
        parts = [
            f"  {cycle.cycle_number} {cycle.path} ({counted}, opened {_when(cycle.opened_at)})"
        ]
        if cycle.certified_at is not None:
            parts.append(
                f"certified {_when(cycle.certified_at)} ({cycle.certification_kind}, base "
                f"{cycle.base_rule} {_when(cycle.base_at)}), window "
                f"{_when(cycle.window_opens_at)}, expires {_when(cycle.expires_at)}"
            )
        elif cycle.closes_at is not None:
            parts.append(f"to recertify by {_when(cycle.closes_at)}")
        lines.append(" — ".join(parts) + (f": {cycle.outcome}" if cycle.outcome else ""))
    return lines


def _render_course_sets(e: ProgramExplanation) -> list[str]:
    path = e.course_sets[0].path
    current = f"; current group {e.current_group}" if e.current_group else ""
    minimum = "no minimum time" if e.minimum_time == "none" else f"minimum time {e.minimum_time}"
    lines = [f"course sets ({path} path; {minimum}{current}):"]
    groups: dict[int, list[CourseSetResult]] = {}
    for course_set in e.course_sets:
        groups.setdefault(course_set.group_number, []).append(course_set)
    for number, sets in groups.items():
        runs: dict[int, list[str]] = {}
        for course_set in sets:
            runs.setdefault(course_set.run_number, []).append(course_set.set_id)
        joined = " or ".join(" and ".join(ids) for ids in runs.values())
        first = sets[0]
        if first.group_completed_at is not None:
            state = f"complete {_when(first.group_completed_at)}"
        elif first.opens_at is not None:
            state = f"open since {_when(first.opens_at)}"
        else:
            state = "not open yet"
        mark = " (current)" if first.is_current_group else ""
        lines.append(f"  group {number}{mark}: {joined} — {state}")
        for course_set in sets:
            lines += _render_course_set(course_set)
    return lines


def _render_course_set(s: CourseSetResult) -> list[str]:
    if s.status == "complete":
        state = f"complete {_when(s.completed_at)}"
    else:
        state = f"{s.status.replace('_', ' ')} ({s.courses_completed} of {len(s.courses)} courses)"
    dates = []
    if s.opens_at is not None:
        dates.append(f"opened {_when(s.opens_at)}")
    if s.due_at is not None:
        dates.append(f"set due {_when(s.due_at)}")
    if s.is_overdue:
        dates.append("OVERDUE")
    tail = f"; {', '.join(dates)}" if dates else ""
    lines = [f"    {SET_MARKS.get(s.status, '?')} {s.set_id}  {s.condition} — {state}{tail}"]
    for course in s.courses:
        score = f" (score {course.score})" if course.score is not None else ""
        done = f"completed {_when(course.counted_at)}" if course.counted_at else "not completed"
        note = f"; {course.note}" if course.note else ""
        name = f" '{course.name}'" if course.name else ""
        lines.append(f"        {course.course_id}{name}{score}: {done}{note}")
    return lines


def render_json(explanation: Explanation) -> str:
    """The explanation as JSON (dates ISO 8601, UTC instants with a Z)."""
    return json.dumps(asdict(explanation), indent=2, default=_json_value, ensure_ascii=False)


def _json_value(value: Any) -> str:
    return _when(value) if isinstance(value, date) else str(value)
