"""Load one rules YAML file into a typed model, with `file:line:column` errors.

YAML is read as YAML 1.2 by ruamel.yaml, which keeps the position of every node: `NO`, `on`
and `yes` stay text, duplicate keys are refused. libyaml's parser (ruamel.yaml.clib, C)
does the scanning when it is installed, which is 3-4x faster on a large file than ruamel's
pure-Python parser. The tree, its positions and the YAML 1.2 typing are the same
(tests/rules/test_loader.py compares the two on every rules file we ship); only an empty
value (`key:` and nothing) is placed right after its colon rather than at the next token.
libyaml scans YAML 1.1, so it refuses a little 1.2-only syntax (`{field: custom:region}`):
any file it refuses is read again by the pure-Python parser, whose messages are the
reference.

The parsed tree is then validated by a strict pydantic model; each pydantic error is mapped
back to the line and column of the offending node, quotes the value and, for a misspelt key,
suggests the closest valid one.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, get_args

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.resolver import VersionedResolver

try:
    from _ruamel_yaml import CParser  # ruamel.yaml.clib: libyaml's scanner and parser
except ImportError:  # pragma: no cover - an interpreter without the C extension
    CParser = None

ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class RuleIssue:
    """One problem in a rules file, printable as `file:line:column: [id] message`."""

    file: str
    line: int
    column: int
    message: str
    object_id: str | None = None

    def __str__(self) -> str:
        where = f"[{self.object_id}] " if self.object_id else ""
        return f"{self.file}:{self.line}:{self.column}: {where}{self.message}"


class RulesError(Exception):
    """Raised with every issue found in one or more rules files."""

    def __init__(self, issues: list[RuleIssue]) -> None:
        super().__init__("\n".join(str(issue) for issue in issues))
        self.issues = issues


class _TextTimestamps(RoundTripConstructor):
    """Dates stay text: YAML 1.2's core schema has no timestamp type, and ruamel's would
    turn `2026-02-30` into an error without a position. The models parse dates themselves,
    so a bad one gets a `file:line:column` error like any other value."""


_TextTimestamps.add_constructor("tag:yaml.org,2002:timestamp", _TextTimestamps.construct_yaml_str)


if CParser is not None:

    class _CRoundTripLoader(CParser, _TextTimestamps, VersionedResolver):
        """libyaml's parser with ruamel's round-trip constructor and YAML 1.2 resolver: the
        same CommentedMap / CommentedSeq tree, with positions, as `YAML(typ="rt")` builds
        (comments are dropped; nothing reads them)."""

        def __init__(self, text: str) -> None:
            CParser.__init__(self, text)
            self._parser = self._composer = self
            _TextTimestamps.__init__(self, loader=self)
            VersionedResolver.__init__(self, version=(1, 2), loader=self)
            self.allow_duplicate_keys = False
            self.comment_handling = None


def parse_yaml(path: Path) -> Any:
    """Parse a YAML 1.2 file, keeping positions; raise RulesError on a syntax error."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise RulesError([RuleIssue(str(path), 1, 1, "the file is not UTF-8 text")]) from None
    if CParser is not None:
        parsed, tree = _parse_fast(text)
        if parsed:
            return tree
    return _parse_pure(path, text)


def _parse_fast(text: str) -> tuple[bool, Any]:
    """(True, tree) from libyaml's parser, or (False, None) for anything it refuses."""
    loader = _CRoundTripLoader(text)
    try:
        return True, loader.get_single_data()
    except Exception:  # whatever the reason, the pure parser reads it again and words it
        return False, None
    finally:
        loader.dispose()


def _parse_pure(path: Path, text: str) -> Any:
    """ruamel's pure-Python round-trip parse: the reference, and the one whose errors we show."""
    yaml = YAML(typ="rt")
    yaml.Constructor = _TextTimestamps
    yaml.version = (1, 2)
    yaml.allow_duplicate_keys = False
    try:
        return yaml.load(text)
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = " ".join(str(part) for part in (err.context, err.problem) if part)
        raise RulesError([RuleIssue(str(path), line, column, f"YAML syntax: {problem}")]) from None


def load_model(path: Path, model: type[ModelT], *, empty: dict[str, Any] | None = None) -> ModelT:
    """Parse `path` and validate it as `model`; a missing or empty file gives `empty`."""
    tree = parse_yaml(path) if path.exists() else None
    return validate_tree(path, tree, model, empty=empty)


def validate_tree(
    path: Path, tree: Any, model: type[ModelT], *, empty: dict[str, Any] | None = None
) -> ModelT:
    """Validate an already parsed tree as `model`; RulesError lists every schema issue."""
    if tree is None:
        return model.model_validate(empty or {})
    try:
        return model.model_validate(tree)
    except ValidationError as err:
        known = sorted(_field_names(model))
        raise RulesError([_issue(path, tree, error, known) for error in err.errors()]) from None


def _issue(path: Path, tree: Any, error: Any, known: list[str]) -> RuleIssue:
    loc = tuple(error["loc"])
    node, parent, key, steps = _walk(tree, loc)
    if error["type"] == "missing" and loc:
        steps = [*steps, loc[-1]]
    line, column = _position(parent, key, node, key_position=error["type"] == "extra_forbidden")
    message = _message(error, key, known, steps)
    return RuleIssue(str(path), line, column, message, object_id=_object_id(tree, loc))


def _walk(tree: Any, loc: tuple[Any, ...]) -> tuple[Any, Any, Any, list[Any]]:
    """Follow a pydantic location into the YAML tree.

    Returns (node, its parent, key in parent, the real keys walked). Steps that are not keys
    of the current node (union tags such as `dynamic` or `~user_field`, a missing key) are
    skipped, so the position is the deepest real node and the path names only real keys.
    """
    node, parent, key, steps = tree, None, None, []
    for step in loc:
        in_map = isinstance(node, CommentedMap) and not _is_tag(step) and step in node
        in_seq = isinstance(node, CommentedSeq) and isinstance(step, int) and step < len(node)
        if in_map or in_seq:
            parent, key, node = node, step, node[step]
            steps.append(step)
    return node, parent, key, steps


def _is_tag(step: Any) -> bool:
    """A union tag in a pydantic location, never a key of the YAML tree."""
    return isinstance(step, str) and (step.startswith("~") or step.startswith("function"))


def _position(parent: Any, key: Any, node: Any, *, key_position: bool) -> tuple[int, int]:
    try:
        if isinstance(parent, CommentedMap):
            line, column = parent.lc.key(key) if key_position else parent.lc.value(key)
            return line + 1, column + 1
        if isinstance(parent, CommentedSeq):
            line, column = parent.lc.item(key)
            return line + 1, column + 1
    except (KeyError, TypeError, AttributeError):
        pass
    if hasattr(node, "lc"):
        return node.lc.line + 1, node.lc.col + 1
    return 1, 1


def _message(error: Any, key: Any, known: list[str], steps: list[Any]) -> str:
    field = ".".join(str(part) for part in steps)
    prefix = f"{field}: " if field else ""
    if error["type"] == "extra_forbidden":
        return f"unknown key '{key}'{suggest(str(key), known)}"
    if error["type"] == UNKNOWN_KIND:
        return prefix + _kind_message(error)
    value = error.get("input")
    quoted = f" (got {value!r})" if not isinstance(value, dict | list) else ""
    text = str(error["msg"]).removeprefix("Value error, ")
    return f"{prefix}{text}{quoted}"


UNKNOWN_KIND = "unknown_kind"
"""Error type of a callable discriminator finding no single kind key.

Its message ends with `: ` and the comma-separated kind keys, e.g. `...one of the keys: a, b`.
"""


def suggest(word: str, candidates: Any) -> str:
    """`; did you mean 'x'?` for the closest candidate, or '' when nothing is close."""
    hint = difflib.get_close_matches(word, sorted(candidates), n=1)
    return f"; did you mean '{hint[0]}'?" if hint else ""


def _kind_message(error: Any) -> str:
    """A node with no (or several) kind keys: name them and suggest for a misspelt one."""
    kinds = str(error["msg"]).rsplit(": ", 1)[-1].split(", ")
    value = error.get("input")
    keys = [str(k) for k in value] if isinstance(value, dict) else []
    present = [k for k in keys if k in kinds]
    if len(present) > 1:
        return f"a rule has exactly one kind key, not several ({', '.join(present)})"
    for key in keys:
        hint = suggest(key, kinds) if key not in kinds else ""
        if hint:
            return f"unknown rule '{key}'{hint}"
    return str(error["msg"])


def _field_names(model: type[BaseModel], seen: set[type] | None = None) -> set[str]:
    """Every key any model reachable from `model` accepts, for 'did you mean' hints."""
    seen = seen if seen is not None else set()
    if model in seen:
        return set()
    seen.add(model)
    names: set[str] = set()
    for name, info in model.model_fields.items():
        names.add(info.alias or name)
        for candidate in _nested_models(info.annotation):
            names |= _field_names(candidate, seen)
    return names


def _nested_models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _nested_models(arg)]


def _object_id(tree: Any, loc: tuple[Any, ...]) -> str | None:
    """The `id` of the innermost rule object on the path, if any."""
    found, node = None, tree
    for step in loc:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(node, CommentedMap) and isinstance(node.get("id"), str):
            found = node["id"]
    return found
