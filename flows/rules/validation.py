"""Layered validation of every rules file (SPEC §4): syntax, schema, then meaning.

`validate_rules` needs no warehouse: it reports every syntax and schema issue of every file,
then (for the files that passed) ids unique across files, `member_of` references that
exist, `member_of` cycles and static member files that exist, all in one RulesError.

`check_references` checks the ids that need the imported state (organisations, positions,
users, courses) against sets the caller read from the warehouse; it never reads one itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from flows.hr_import.config import HR_IMPORT_FILE, HrImportRules
from flows.rules.audiences import AUDIENCES_FILE, AudiencesFile
from flows.rules.loader import RuleIssue, RulesError, parse_yaml, suggest, validate_tree

RULES_FILES = (HR_IMPORT_FILE, AUDIENCES_FILE)

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


def validate_rules(rules_dir: Path) -> LoadedRules:
    """Validate every rules file in `rules_dir`; raise RulesError listing ALL issues."""
    issues: list[RuleIssue] = []
    trees = {name: _parse(rules_dir / name, issues) for name in RULES_FILES}
    hr_import = _schema(rules_dir / HR_IMPORT_FILE, trees, HrImportRules, issues)
    audiences = _schema(rules_dir / AUDIENCES_FILE, trees, AudiencesFile, issues)
    references: list[Reference] = []
    if audiences is not None:
        path = rules_dir / AUDIENCES_FILE
        tree = trees[AUDIENCES_FILE]
        references = list(_audience_references(path, tree))
        issues += _duplicate_ids(path, tree)
        issues += _unknown_audiences(audiences, references)
        issues += _membership_cycles(references)
        issues += _missing_member_files(path, tree, rules_dir)
    if issues:
        raise RulesError(issues)
    assert hr_import is not None and audiences is not None
    return LoadedRules(hr_import, audiences, tuple(references))


def check_references(loaded: LoadedRules, known: dict[str, set[str]]) -> list[RuleIssue]:
    """Ids in rules that are not in `known[kind]` (kinds: organisation, position, user,
    course, program, certification), with the closest known id suggested. A kind missing
    from `known` is not checked (programs and certifications: once they exist)."""
    issues = []
    for ref in loaded.references:
        candidates = known.get(ref.kind)
        if ref.kind == "audience" or candidates is None or ref.target in candidates:
            continue
        issues.append(
            ref.issue(f"unknown {ref.kind} '{ref.target}'{suggest(ref.target, candidates)}")
        )
    return issues


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


def _audience_maps(tree: Any) -> Iterator[CommentedMap]:
    if isinstance(tree, CommentedMap) and isinstance(tree.get("audiences"), CommentedSeq):
        yield from (item for item in tree["audiences"] if isinstance(item, CommentedMap))


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


def _duplicate_ids(path: Path, tree: Any) -> list[RuleIssue]:
    """An id defined twice (ids are unique across all rules files; only audiences have ids)."""
    first: dict[str, tuple[int, int]] = {}
    issues = []
    for audience in _audience_maps(tree):
        object_id = str(audience["id"])
        line, column = (n + 1 for n in audience.lc.value("id"))
        if object_id in first:
            was = f"{path.name}:{first[object_id][0]}:{first[object_id][1]}"
            message = f"duplicate id '{object_id}' (first defined at {was})"
            issues.append(RuleIssue(str(path), line, column, message, object_id=object_id))
        else:
            first[object_id] = (line, column)
    return issues


def _unknown_audiences(audiences: AudiencesFile, refs: list[Reference]) -> list[RuleIssue]:
    ids = {audience.id for audience in audiences.audiences}
    return [
        ref.issue(f"unknown audience '{ref.target}'{suggest(ref.target, ids)}")
        for ref in refs
        if ref.kind == "audience" and ref.target not in ids
    ]


def _membership_cycles(refs: list[Reference]) -> list[RuleIssue]:
    """One issue per `member_of` / `not_member_of` cycle, naming it (`a -> b -> a`)."""
    edges: dict[str, list[Reference]] = {}
    for ref in refs:
        if ref.kind == "audience":
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
                    issues.append(ref.issue(f"member_of cycle: {path}"))
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
