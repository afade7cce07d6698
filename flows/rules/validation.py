"""Layered validation of every rules file (SPEC §4): syntax, schema, then meaning.

`validate_rules` needs no warehouse: it reports every syntax and schema issue of every file,
then (for the files that passed) ids unique across files, `member_of` references that
exist, `member_of` cycles and static member files that exist; for programs and
certifications, route audiences that exist, `program_completion` due dates naming a program
(and no cycle of them), group files that exist and custom due-date fields declared as
dates; for notifications, scope ids that exist and template files that do; all in one
RulesError.

`check_references` checks the ids that need the imported state (organisations, positions,
users, courses) against sets the caller read from the warehouse; it never reads one itself.
Program and certification ids in audience rules resolve against the ones the rules define.

A static audience's `members_file` and a route's `group` file are read here too (a CSV with a
`useridnumber` column), so their ids are references like any other and their rows reach the
rule tables.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from flows.hr_import.config import HR_IMPORT_FILE, HrImportRules
from flows.rules.audiences import AUDIENCES_FILE, AudiencesFile, StaticAudience
from flows.rules.loader import RuleIssue, RulesError, parse_yaml, suggest, validate_tree
from flows.rules.notifications import (
    ALERT_TEMPLATE,
    DIGEST_TEMPLATE,
    NOTIFICATIONS_FILE,
    TEMPLATES_DIR,
    NotificationsFile,
    missing_template_files,
)
from flows.rules.programs import (
    CERTIFICATIONS_FILE,
    PROGRAMS_FILE,
    CertificationsFile,
    ProgramsFile,
)
from flows.rules.reports import REPORTS_FILE, ReportsFile

RULES_FILES = (
    HR_IMPORT_FILE,
    AUDIENCES_FILE,
    NOTIFICATIONS_FILE,
    REPORTS_FILE,
    PROGRAMS_FILE,
    CERTIFICATIONS_FILE,
)
#: file -> its top-level list key, for the files whose items have ids
_ID_FILES = {
    AUDIENCES_FILE: "audiences",
    PROGRAMS_FILE: "programs",
    CERTIFICATIONS_FILE: "certifications",
    NOTIFICATIONS_FILE: "notifications",
    REPORTS_FILE: "reports",
}

# leaf key -> (key of its id list or id inside the leaf, kind of object referenced)
_RULE_REFERENCES = {
    "organisation": ("ids", "organisation"),
    "position": ("ids", "position"),
    "reports_to": ("managers", "user"),
    "course_completion": ("ids", "course"),
    "program_completion": ("ids", "program"),
    "certification_state": ("certification", "certification"),
    "member_of": ("audiences", "audience"),
    "not_member_of": ("audiences", "audience"),
}


@dataclass(frozen=True)
class Reference:
    """One id a rule refers to, with where it is written."""

    kind: str  # organisation | position | user | course | program | certification | audience
    target: str
    file: str
    line: int
    column: int
    object_id: str

    def issue(self, message: str) -> RuleIssue:
        return RuleIssue(self.file, self.line, self.column, message, object_id=self.object_id)


@dataclass(frozen=True)
class LoadedRules:
    """Every rules file, validated, with the references `check_references` needs."""

    hr_import: HrImportRules
    audiences: AudiencesFile
    references: tuple[Reference, ...] = field(default=())
    #: audience id -> member user ids, for every static audience (inline or from its file)
    static_members: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: audience id -> line of its `id:` in audiences.yaml
    audience_lines: dict[str, int] = field(default_factory=dict)
    programs: ProgramsFile = field(default_factory=ProgramsFile)
    certifications: CertificationsFile = field(default_factory=CertificationsFile)
    #: every id a program or certification refers to (object_id = the program's id)
    program_references: tuple[Reference, ...] = field(default=())
    #: (program or certification id, group file) -> the file's user ids
    group_members: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    #: program or certification id -> line of its `id:` in its file
    program_lines: dict[str, int] = field(default_factory=dict)
    notifications: NotificationsFile = field(default_factory=NotificationsFile)
    #: every audience, program or certification id a notification's scope names
    notification_references: tuple[Reference, ...] = field(default=())
    #: notification id -> line of its `id:` in notifications.yaml
    notification_lines: dict[str, int] = field(default_factory=dict)
    reports: ReportsFile = field(default_factory=ReportsFile)
    #: every organisation a report's fixed scope names (object_id = the report's id)
    report_references: tuple[Reference, ...] = field(default=())

    def without_program_references(self) -> LoadedRules:
        """The same rules, with only the audiences' references (for the audience tables,
        whose broken list must name audiences only)."""
        return replace(self, program_references=())

    def without_audience_references(self) -> LoadedRules:
        """The same rules, with only the programs' and certifications' references."""
        return replace(self, references=())


def validate_rules(rules_dir: Path, *, templates_dir: Path = TEMPLATES_DIR) -> LoadedRules:
    """Validate every rules file in `rules_dir`; raise RulesError listing ALL issues.

    Notification templates are looked up in `templates_dir` (notifications/templates/).
    """
    issues: list[RuleIssue] = []
    trees = {name: _parse(rules_dir / name, issues) for name in RULES_FILES}
    hr_import = _schema(rules_dir / HR_IMPORT_FILE, trees, HrImportRules, issues)
    audiences = _schema(rules_dir / AUDIENCES_FILE, trees, AudiencesFile, issues)
    programs = _schema(rules_dir / PROGRAMS_FILE, trees, ProgramsFile, issues)
    certifications = _schema(rules_dir / CERTIFICATIONS_FILE, trees, CertificationsFile, issues)
    notifications = _schema(rules_dir / NOTIFICATIONS_FILE, trees, NotificationsFile, issues)
    reports = _schema(rules_dir / REPORTS_FILE, trees, ReportsFile, issues)
    passed = {
        name: trees[name]
        for name, model in (
            (AUDIENCES_FILE, audiences),
            (PROGRAMS_FILE, programs),
            (CERTIFICATIONS_FILE, certifications),
            (NOTIFICATIONS_FILE, notifications),
            (REPORTS_FILE, reports),
        )
        if model is not None
    }
    issues += _duplicate_ids(rules_dir, passed)
    references: list[Reference] = []
    static_members: dict[str, tuple[str, ...]] = {}
    if audiences is not None:
        path = rules_dir / AUDIENCES_FILE
        tree = trees[AUDIENCES_FILE]
        references = list(_audience_references(path, tree))
        issues += _unknown_audiences(audiences, references)
        issues += _cycles(references, "audience", "member_of")
        issues += _missing_member_files(path, tree, rules_dir)
        if hr_import is not None:
            issues += _undeclared_custom_dates(path, tree, hr_import)
        static_members = {
            audience.id: tuple(audience.members)
            for audience in audiences.audiences
            if isinstance(audience, StaticAudience) and audience.members is not None
        }
        for owner, file_refs in _member_file_references(path, tree, rules_dir, issues):
            references += file_refs
            static_members[owner] = tuple(ref.target for ref in file_refs)
    program_refs: list[Reference] = []
    group_members: dict[tuple[str, str], tuple[str, ...]] = {}
    for name in (PROGRAMS_FILE, CERTIFICATIONS_FILE):
        if name not in passed:
            continue
        path, tree = rules_dir / name, passed[name]
        file_refs = list(_program_references(path, tree))
        program_refs += file_refs
        if audiences is not None:
            issues += _unknown_audiences(audiences, file_refs)
        if programs is not None:
            issues += _unknown_programs(programs, certifications, file_refs)
        issues += _missing_group_files(path, tree, rules_dir)
        if hr_import is not None:
            issues += _undeclared_due_fields(path, tree, hr_import)
        for owner, file_name, group_refs in _group_file_references(path, tree, rules_dir, issues):
            program_refs += group_refs
            group_members[(owner, file_name)] = tuple(ref.target for ref in group_refs)
    issues += _cycles(program_refs, "program", "program_completion")
    notification_refs: list[Reference] = []
    if notifications is not None:
        path, tree = rules_dir / NOTIFICATIONS_FILE, trees[NOTIFICATIONS_FILE]
        notification_refs = list(_scope_references(path, tree))
        issues += _unknown_scope_ids(notification_refs, audiences, programs, certifications)
        issues += _missing_templates(path, tree, notifications, templates_dir)
    report_refs: list[Reference] = []
    if reports is not None:
        from flows.reports.checks import report_issues, report_references

        path, tree = rules_dir / REPORTS_FILE, trees[REPORTS_FILE]
        report_refs = list(report_references(path, tree))
        issues += report_issues(path, tree, reports, audiences, notifications)
    if issues:
        raise RulesError(issues)
    assert reports is not None
    assert hr_import is not None and audiences is not None
    assert programs is not None and certifications is not None and notifications is not None
    lines = {str(item["id"]): item.lc.line + 1 for item in _audience_maps(trees[AUDIENCES_FILE])}
    program_lines = {
        str(item["id"]): item.lc.line + 1
        for name in (PROGRAMS_FILE, CERTIFICATIONS_FILE)
        for item in _item_maps(trees[name], _ID_FILES[name])
    }
    return LoadedRules(
        hr_import,
        audiences,
        tuple(references),
        static_members,
        lines,
        programs=programs,
        certifications=certifications,
        program_references=tuple(program_refs),
        group_members=group_members,
        program_lines=program_lines,
        notifications=notifications,
        notification_references=tuple(notification_refs),
        notification_lines={
            str(item["id"]): item.lc.line + 1
            for item in _item_maps(trees[NOTIFICATIONS_FILE], "notifications")
        },
        reports=reports,
        report_references=tuple(report_refs),
    )


def check_references(loaded: LoadedRules, known: dict[str, set[str]]) -> list[RuleIssue]:
    """Ids in rules that are not in `known[kind]` (kinds: organisation, position, user,
    course), with the closest known id suggested; audiences' and programs' references both.
    A kind missing from `known` is not checked. Program and certification ids resolve
    against the programs and certifications the rules define."""
    defined = {
        "program": {program.id for program in loaded.programs.programs},
        "certification": {cert.id for cert in loaded.certifications.certifications},
    }
    issues = []
    for ref in (*loaded.references, *loaded.program_references, *loaded.report_references):
        if ref.kind in defined:
            candidates: set[str] | None = defined[ref.kind] | known.get(ref.kind, set())
        else:
            candidates = known.get(ref.kind)
        if ref.kind == "audience" or candidates is None or ref.target in candidates:
            continue
        hint = suggest(ref.target, candidates)
        if ref.kind == "program" and ref.target in defined["certification"]:
            hint = _A_CERTIFICATION
        issues.append(ref.issue(f"unknown {ref.kind} '{ref.target}'{hint}"))
    return issues


_A_CERTIFICATION = " (that is a certification: program_completion names a program)"


# --- syntax and schema ----------------------------------------------------------------------


def _parse(path: Path, issues: list[RuleIssue]) -> Any:
    """The YAML tree of `path` (None if missing or empty); syntax issues go to `issues`."""
    if not path.exists():
        return None
    try:
        return parse_yaml(path)
    except RulesError as err:
        issues += err.issues
        return _SYNTAX_ERROR


_SYNTAX_ERROR = object()


def _schema(path: Path, trees: dict[str, Any], model: Any, issues: list[RuleIssue]) -> Any:
    """The validated model of one file, or None after adding its issues to `issues`."""
    tree = trees[path.name]
    if tree is _SYNTAX_ERROR:
        return None
    try:
        return validate_tree(path, tree, model)
    except RulesError as err:
        issues += err.issues
        return None


# --- meaning --------------------------------------------------------------------------------


def _item_maps(tree: Any, key: str) -> Iterator[CommentedMap]:
    """The mappings of the top-level list `key` (audiences, programs, certifications)."""
    if isinstance(tree, CommentedMap) and isinstance(tree.get(key), CommentedSeq):
        yield from (item for item in tree[key] if isinstance(item, CommentedMap))


def _audience_maps(tree: Any) -> Iterator[CommentedMap]:
    return _item_maps(tree, "audiences")


def _audience_references(path: Path, tree: Any) -> Iterator[Reference]:
    """Every id referenced by an audience: static members, then ids inside its rule tree."""
    for audience in _audience_maps(tree):
        owner = str(audience["id"])
        members = audience.get("members")
        if isinstance(members, CommentedSeq):
            for index, member in enumerate(members):
                line, column = members.lc.item(index)
                yield Reference("user", str(member), str(path), line + 1, column + 1, owner)
        for kind, target, (line, column) in _rule_references(audience.get("rules")):
            yield Reference(kind, target, str(path), line + 1, column + 1, owner)


def _rule_references(node: Any) -> Iterator[tuple[str, str, tuple[int, int]]]:
    """(kind, id, zero-based position) of every reference in a raw rule (sub)tree."""
    if isinstance(node, CommentedSeq):
        for child in node:
            yield from _rule_references(child)
        return
    if not isinstance(node, CommentedMap):
        return
    for key, value in node.items():
        if key in _RULE_REFERENCES and isinstance(value, CommentedMap):
            inner, kind = _RULE_REFERENCES[key]
            ids = value.get(inner)
            if isinstance(ids, CommentedSeq):
                for index, target in enumerate(ids):
                    yield kind, str(target), ids.lc.item(index)
            elif isinstance(ids, str):
                yield kind, ids, value.lc.value(inner)
        else:
            yield from _rule_references(value)


def _duplicate_ids(rules_dir: Path, trees: dict[str, Any]) -> list[RuleIssue]:
    """An id defined twice: ids are unique across audiences, programs and certifications."""
    first: dict[str, str] = {}
    issues = []
    for name, tree in trees.items():
        for item in _item_maps(tree, _ID_FILES[name]):
            object_id = str(item["id"])
            line, column = (n + 1 for n in item.lc.value("id"))
            if object_id in first:
                message = f"duplicate id '{object_id}' (first defined at {first[object_id]})"
                issues.append(
                    RuleIssue(str(rules_dir / name), line, column, message, object_id=object_id)
                )
            else:
                first[object_id] = f"{name}:{line}:{column}"
    return issues


def _unknown_audiences(audiences: AudiencesFile, refs: list[Reference]) -> list[RuleIssue]:
    ids = {audience.id for audience in audiences.audiences}
    return [
        ref.issue(f"unknown audience '{ref.target}'{suggest(ref.target, ids)}")
        for ref in refs
        if ref.kind == "audience" and ref.target not in ids
    ]


def _cycles(refs: list[Reference], kind: str, label: str) -> list[RuleIssue]:
    """One issue per cycle of `kind` references, naming it (`label cycle: a -> b -> a`)."""
    edges: dict[str, list[Reference]] = {}
    for ref in refs:
        if ref.kind == kind:
            edges.setdefault(ref.object_id, []).append(ref)
    done: set[str] = set()
    seen_cycles: set[tuple[str, ...]] = set()
    issues: list[RuleIssue] = []

    def visit(node: str, stack: list[str]) -> None:
        stack.append(node)
        for ref in edges.get(node, []):
            if ref.target in stack:
                cycle = stack[stack.index(ref.target) :]
                key = _canonical(cycle)
                if key not in seen_cycles:
                    seen_cycles.add(key)
                    path = " -> ".join([*cycle, ref.target])
                    issues.append(ref.issue(f"{label} cycle: {path}"))
            elif ref.target not in done:
                visit(ref.target, stack)
        stack.pop()
        done.add(node)

    for start in edges:
        if start not in done:
            visit(start, [])
    return issues


def _canonical(cycle: list[str]) -> tuple[str, ...]:
    """The same cycle found from another member compares equal."""
    first = cycle.index(min(cycle))
    return tuple(cycle[first:] + cycle[:first])


def _missing_member_files(path: Path, tree: Any, rules_dir: Path) -> list[RuleIssue]:
    issues = []
    for audience in _audience_maps(tree):
        name = audience.get("members_file")
        if isinstance(name, str) and not (rules_dir / name).is_file():
            line, column = (n + 1 for n in audience.lc.value("members_file"))
            message = f"members_file '{name}' not found in the rules directory"
            issues.append(RuleIssue(str(path), line, column, message, object_id=audience["id"]))
    return issues


MEMBER_FILE_COLUMN = "useridnumber"


def _member_file_references(
    path: Path, tree: Any, rules_dir: Path, issues: list[RuleIssue]
) -> Iterator[tuple[str, list[Reference]]]:
    """(audience id, one user reference per row) of every readable `members_file`."""
    for audience in _audience_maps(tree):
        name = audience.get("members_file")
        member_path = rules_dir / name if isinstance(name, str) else None
        if member_path is None or not member_path.is_file():
            continue  # reported by _missing_member_files
        owner = str(audience["id"])
        try:
            yield owner, list(_read_member_file(member_path, owner))
        except _MemberFileError as err:
            issues.append(RuleIssue(str(member_path), err.line, 1, str(err), object_id=owner))


class _MemberFileError(ValueError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def _read_member_file(member_path: Path, owner: str) -> Iterator[Reference]:
    """One user reference per non-empty row of a members CSV (header = line 1)."""
    try:
        text = member_path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise _MemberFileError(1, "the members file is not UTF-8 text") from None
    reader = csv.reader(text.splitlines())
    header = [column.strip().lower() for column in next(reader, [])]
    if MEMBER_FILE_COLUMN not in header:
        found = ", ".join(header) or "nothing"
        raise _MemberFileError(
            1, f"a members file needs a '{MEMBER_FILE_COLUMN}' column (found: {found})"
        )
    index = header.index(MEMBER_FILE_COLUMN)
    for line, row in enumerate(reader, start=2):
        user_id = row[index].strip() if index < len(row) else ""
        if user_id:
            yield Reference("user", user_id, str(member_path), line, index + 1, owner)


def _undeclared_custom_dates(path: Path, tree: Any, hr_import: HrImportRules) -> list[RuleIssue]:
    """A `date_field: custom:<name>` needs `<name>` declared `type: date` for users (§3.1)."""
    declared = hr_import.element("user").custom_fields
    issues = []
    for audience in _audience_maps(tree):
        for node in _raw_nodes(audience.get("rules")):
            field_name = node.get("date_field")
            if not (isinstance(field_name, str) and field_name.startswith("custom:")):
                continue
            name = field_name.removeprefix("custom:")
            settings = declared.get(name)
            if settings is None or settings.type != "date":
                line, column = (n + 1 for n in node.lc.value("date_field"))
                message = (
                    f"date_field '{field_name}': declare it in hr_import.yaml under "
                    f"elements.user.custom_fields.{name} with type: date"
                )
                issues.append(RuleIssue(str(path), line, column, message, audience["id"]))
    return issues


def _raw_nodes(node: Any) -> Iterator[CommentedMap]:
    """Every mapping inside a raw rule (sub)tree, depth first."""
    if isinstance(node, CommentedSeq):
        for child in node:
            yield from _raw_nodes(child)
    elif isinstance(node, CommentedMap):
        yield node
        for value in node.values():
            yield from _raw_nodes(value)


# --- programs and certifications ------------------------------------------------------------

_CONTENT_KEYS = ("content", "primary", "recertification")
#: route key -> kind of object its ids are (inside `ids` for the hierarchies)
_ROUTE_ID_LISTS = {"organisation": "organisation", "position": "position"}
#: due key -> kind of object it names
_DUE_REFERENCES = {"course": "course", "position": "position", "program": "program"}


def _program_items(path: Path, tree: Any) -> Iterator[CommentedMap]:
    return _item_maps(tree, _ID_FILES[path.name])


def _routes(item: CommentedMap) -> Iterator[CommentedMap]:
    routes = item.get("assignments")
    if isinstance(routes, CommentedSeq):
        yield from (route for route in routes if isinstance(route, CommentedMap))


def _program_references(path: Path, tree: Any) -> Iterator[Reference]:
    """Every id a program or certification names: courses of its sets, route targets, due
    bases, exception users (group files: `_group_file_references`)."""

    def at(kind: str, target: Any, where: tuple[int, int], owner: str) -> Reference:
        return Reference(kind, str(target), str(path), where[0] + 1, where[1] + 1, owner)

    def each(kind: str, seq: Any, owner: str) -> Iterator[Reference]:
        if isinstance(seq, CommentedSeq):
            for index, target in enumerate(seq):
                yield at(kind, target, seq.lc.item(index), owner)

    for item in _program_items(path, tree):
        owner = str(item["id"])
        for key in _CONTENT_KEYS:
            content = item.get(key)
            for course_set in content if isinstance(content, CommentedSeq) else ():
                if isinstance(course_set, CommentedMap):
                    yield from each("course", course_set.get("courses"), owner)
        for route in _routes(item):
            for key, kind in _ROUTE_ID_LISTS.items():
                hierarchy = route.get(key)
                if isinstance(hierarchy, CommentedMap):
                    yield from each(kind, hierarchy.get("ids"), owner)
            if isinstance(route.get("audience"), str):
                yield at("audience", route["audience"], route.lc.value("audience"), owner)
            manager = route.get("manager")
            if isinstance(manager, CommentedMap) and "user" in manager:
                yield at("user", manager["user"], manager.lc.value("user"), owner)
            yield from each("user", route.get("users"), owner)
            due = route.get("due")
            if isinstance(due, CommentedMap):
                for key, kind in _DUE_REFERENCES.items():
                    if key in due:
                        yield at(kind, due[key], due.lc.value(key), owner)
        exceptions = item.get("exceptions")
        users = exceptions.get("users") if isinstance(exceptions, CommentedMap) else None
        if isinstance(users, CommentedMap):
            for user in users:
                yield at("user", user, users.lc.key(user), owner)


def _unknown_programs(
    programs: ProgramsFile, certifications: CertificationsFile | None, refs: list[Reference]
) -> list[RuleIssue]:
    """A `program_completion` due date names a program (not a certification)."""
    ids = {program.id for program in programs.programs}
    certification_ids = {c.id for c in certifications.certifications} if certifications else set()
    issues = []
    for ref in refs:
        if ref.kind != "program" or ref.target in ids:
            continue
        known = ref.target in certification_ids
        hint = _A_CERTIFICATION if known else suggest(ref.target, ids)
        issues.append(ref.issue(f"unknown program '{ref.target}'{hint}"))
    return issues


def _group_routes(path: Path, tree: Any) -> Iterator[tuple[str, CommentedMap, str]]:
    """(owner id, route, file name) of every `group:` route."""
    for item in _program_items(path, tree):
        for route in _routes(item):
            if isinstance(route.get("group"), str):
                yield str(item["id"]), route, route["group"]


def _missing_group_files(path: Path, tree: Any, rules_dir: Path) -> list[RuleIssue]:
    issues = []
    for owner, route, name in _group_routes(path, tree):
        if not (rules_dir / name).is_file():
            line, column = (n + 1 for n in route.lc.value("group"))
            message = f"group file '{name}' not found in the rules directory"
            issues.append(RuleIssue(str(path), line, column, message, object_id=owner))
    return issues


def _group_file_references(
    path: Path, tree: Any, rules_dir: Path, issues: list[RuleIssue]
) -> Iterator[tuple[str, str, list[Reference]]]:
    """(owner id, file name, one user reference per row) of every readable group file."""
    for owner, _route, name in _group_routes(path, tree):
        group_path = rules_dir / name
        if not group_path.is_file():
            continue  # reported by _missing_group_files
        try:
            yield owner, name, list(_read_member_file(group_path, owner))
        except _MemberFileError as err:
            issues.append(RuleIssue(str(group_path), err.line, 1, str(err), object_id=owner))


def _undeclared_due_fields(path: Path, tree: Any, hr_import: HrImportRules) -> list[RuleIssue]:
    """`due: {after: custom_field, field: <name>}` needs `<name>` declared `type: date`."""
    declared = hr_import.element("user").custom_fields
    issues = []
    for item in _program_items(path, tree):
        for route in _routes(item):
            due = route.get("due")
            name = due.get("field") if isinstance(due, CommentedMap) else None
            if not isinstance(name, str):
                continue
            settings = declared.get(name)
            if settings is None or settings.type != "date":
                line, column = (n + 1 for n in due.lc.value("field"))
                message = (
                    f"due field '{name}': declare it in hr_import.yaml under "
                    f"elements.user.custom_fields.{name} with type: date"
                )
                issues.append(RuleIssue(str(path), line, column, message, str(item["id"])))
    return issues


# --- notifications --------------------------------------------------------------------------

#: scope key -> the kind of object its ids are
_SCOPE_KINDS = {"audiences": "audience", "programs": "program", "certifications": "certification"}
#: kind -> the scope key an id of that kind is listed under
_SCOPE_KEY_OF = {kind: key for key, kind in _SCOPE_KINDS.items()}


def _scope_references(path: Path, tree: Any) -> Iterator[Reference]:
    """Every id a notification's scope names (`scope: all` names none)."""
    for item in _item_maps(tree, "notifications"):
        scope = item.get("scope")
        if not isinstance(scope, CommentedMap):
            continue
        for key, kind in _SCOPE_KINDS.items():
            ids = scope.get(key)
            for index, target in enumerate(ids if isinstance(ids, CommentedSeq) else ()):
                line, column = ids.lc.item(index)
                yield Reference(kind, str(target), str(path), line + 1, column + 1, str(item["id"]))


def _unknown_scope_ids(
    refs: list[Reference],
    audiences: AudiencesFile | None,
    programs: ProgramsFile | None,
    certifications: CertificationsFile | None,
) -> list[RuleIssue]:
    """Scope ids the rules do not define; an id of the other kind says where it belongs.
    A kind whose file did not pass its own schema is not checked (its issues are listed)."""
    defined: dict[str, set[str] | None] = {
        "audience": {a.id for a in audiences.audiences} if audiences else None,
        "program": {p.id for p in programs.programs} if programs else None,
        "certification": (
            {c.id for c in certifications.certifications} if certifications else None
        ),
    }
    issues = []
    for ref in refs:
        ids = defined[ref.kind]
        if ids is None or ref.target in ids:
            continue
        hint = suggest(ref.target, ids)
        for other, other_ids in defined.items():
            if other != ref.kind and other_ids and ref.target in other_ids:
                hint = f" (that is {_article(other)} {other}: list it under {_SCOPE_KEY_OF[other]})"
        issues.append(ref.issue(f"unknown {ref.kind} '{ref.target}'{hint}"))
    return issues


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _missing_templates(
    path: Path, tree: Any, notifications: NotificationsFile, templates_dir: Path
) -> list[RuleIssue]:
    """Each template a notification, the digest or run alerts use needs its three parts."""
    issues = []
    items = list(_item_maps(tree, "notifications"))
    for notification, item in zip(notifications.notifications, items, strict=True):
        key = "template" if "template" in item else "trigger"  # the default is the trigger
        where = item.lc.value(key)
        issues += _template_issue(path, where, notification.template_name, templates_dir, item)
    settings = tree.get("settings") if isinstance(tree, CommentedMap) else None
    uses = (
        ("manager_digest", notifications.settings.manager_digest, DIGEST_TEMPLATE),
        ("alert_addresses", bool(notifications.settings.alert_addresses), ALERT_TEMPLATE),
    )
    for key, used, name in uses:
        if used and isinstance(settings, CommentedMap):
            issues += _template_issue(path, settings.lc.value(key), name, templates_dir, None)
    return issues


def _template_issue(
    path: Path, where: tuple[int, int], name: str, templates_dir: Path, item: Any
) -> list[RuleIssue]:
    missing = missing_template_files(name, templates_dir)
    if not missing:
        return []
    message = f"template '{name}' needs {', '.join(missing)} in the templates directory"
    owner = str(item["id"]) if item is not None else None
    return [RuleIssue(str(path), where[0] + 1, where[1] + 1, message, object_id=owner)]
