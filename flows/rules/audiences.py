"""`rules/audiences.yaml`: static and dynamic audiences (SPEC §4.1), as strict typed models.

A dynamic audience's `rules:` is a tree. A node is exactly one of `all: [nodes]`,
`any: [nodes]`, `not: node` or a leaf; the key naming the kind is the discriminator::

    audiences:
      - id: leeds_sales
        name: Sales staff in Leeds
        kind: dynamic
        rules:
          all:
            - {user_field: city, operator: equals, values: [Leeds]}
            - organisation: {ids: [ORG00002], include_children: true}

Field leaves (`user_field`, `date_field`, `organisation_custom_field`,
`position_custom_field`) name the field in the kind key; every other leaf holds its
parameters in a mapping under the kind key. See docs/rules.md for every leaf.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
    model_validator,
)

from flows.rules.loader import UNKNOWN_KIND, load_model, suggest

AUDIENCES_FILE = "audiences.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# --- scalar types ---------------------------------------------------------------------------

Slug = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
ItemId = Annotated[str, Field(min_length=1)]


def _to_date(value: Any) -> Any:
    """YAML 1.2 gives `2026-01-31` as a date; also accept the same text quoted, never times."""
    if isinstance(value, datetime):
        raise ValueError("must be a date (YYYY-MM-DD) without a time")
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("must be a date written YYYY-MM-DD") from None
        raise ValueError("must be a date (YYYY-MM-DD) without a time")
    return value


Day = Annotated[date, BeforeValidator(_to_date)]
Days = Annotated[int, Field(ge=0)]

USER_FIELDS = (
    "idnumber",
    "username",
    "email",
    "firstname",
    "lastname",
    "city",
    "country",
    "lang",
    "institution",
    "department",
    "suspended",
)
DATE_FIELDS = ("first_access", "last_access", "job_start_date", "job_end_date")
_CUSTOM = re.compile(r"^custom:[a-z0-9_]+$")


def _field_name(builtin: tuple[str, ...], what: str) -> Any:
    """A field name type: one of `builtin` or `custom:<name>`, with a 'did you mean' hint."""

    def check(value: str) -> str:
        if value in builtin or _CUSTOM.match(value):
            return value
        hint = suggest(value, builtin) or f"; use one of {', '.join(builtin)} or custom:<name>"
        raise ValueError(f"unknown {what} '{value}'{hint}")

    schema = {"anyOf": [{"enum": list(builtin)}, {"type": "string", "pattern": _CUSTOM.pattern}]}
    return Annotated[str, AfterValidator(check), WithJsonSchema(schema)]


UserFieldName = _field_name(USER_FIELDS, "user field")
DateFieldName = _field_name(DATE_FIELDS, "date field")
CustomFieldName = Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]

TextOperator = Literal[
    "equals",
    "not_equals",
    "contains",
    "not_contains",
    "starts_with",
    "ends_with",
    "is_empty",
    "not_empty",
    "in",
    "not_in",
]
VALUELESS_OPERATORS = frozenset({"is_empty", "not_empty"})
DateOperator = Literal[
    "before", "after", "within_last_days", "within_next_days", "older_than_days", "beyond_next_days"
]
FIXED_DATE_OPERATORS = frozenset({"before", "after"})


# --- leaves ---------------------------------------------------------------------------------


class _TextCondition(_Strict):
    """`operator` + `values`; values are required except for is_empty / not_empty."""

    operator: TextOperator
    values: list[str] | None = None

    @model_validator(mode="after")
    def _values_match_operator(self) -> _TextCondition:
        if self.operator in VALUELESS_OPERATORS and self.values is not None:
            raise ValueError(f"values must not be given for operator '{self.operator}'")
        if self.operator not in VALUELESS_OPERATORS and not self.values:
            raise ValueError(f"values is required for operator '{self.operator}'")
        return self


class UserFieldRule(_TextCondition):
    """A user profile field (or `custom:<name>`) compared as text, case-insensitively."""

    user_field: UserFieldName


class DateFieldRule(_Strict):
    """A date field compared with a fixed `date` or a number of `days` from the as-of day."""

    date_field: DateFieldName
    operator: DateOperator
    date: Day | None = None
    days: Days | None = None

    @model_validator(mode="after")
    def _argument_matches_operator(self) -> DateFieldRule:
        fixed = self.operator in FIXED_DATE_OPERATORS
        wanted, unwanted = ("date", "days") if fixed else ("days", "date")
        if getattr(self, wanted) is None:
            raise ValueError(f"{wanted} is required for operator '{self.operator}'")
        if getattr(self, unwanted) is not None:
            raise ValueError(f"{unwanted} must not be given for operator '{self.operator}'")
        return self


class HierarchySelection(_Strict):
    """Organisations or positions by id, optionally with everything below them, or negated."""

    ids: list[ItemId] = Field(min_length=1)
    include_children: bool = False
    negate: bool = False


class OrganisationRule(_Strict):
    organisation: HierarchySelection


class PositionRule(_Strict):
    position: HierarchySelection


class OrganisationTypeRule(_Strict):
    organisation_type: _TextCondition


class PositionTypeRule(_Strict):
    position_type: _TextCondition


class OrganisationCustomFieldRule(_TextCondition):
    organisation_custom_field: CustomFieldName


class PositionCustomFieldRule(_TextCondition):
    position_custom_field: CustomFieldName


class JobTitleRule(_Strict):
    job_title: _TextCondition


class HasDirectReportsRule(_Strict):
    has_direct_reports: bool


class ReportsTo(_Strict):
    managers: list[ItemId] = Field(min_length=1)
    direct_only: bool = True


class ReportsToRule(_Strict):
    reports_to: ReportsTo


class Completion(_Strict):
    """Completion of courses or programs; date conditions apply to every listed item."""

    ids: list[ItemId] = Field(min_length=1)
    match: Literal["all", "any", "not_all", "none"]
    completed_before: Day | None = None
    completed_after: Day | None = None
    within_last_days: Days | None = None


class CourseCompletionRule(_Strict):
    course_completion: Completion


class ProgramCompletionRule(_Strict):
    program_completion: Completion


class CertificationState(_Strict):
    certification: ItemId
    states: list[Literal["assigned", "certified", "window_open", "expired"]] = Field(min_length=1)


class CertificationStateRule(_Strict):
    certification_state: CertificationState


class Membership(_Strict):
    audiences: list[Slug] = Field(min_length=1)


class MemberOfRule(_Strict):
    member_of: Membership


class NotMemberOfRule(_Strict):
    not_member_of: Membership


# --- the tree -------------------------------------------------------------------------------


class AllNode(_Strict):
    all_: list[RuleNode] = Field(alias="all", min_length=1)


class AnyNode(_Strict):
    any_: list[RuleNode] = Field(alias="any", min_length=1)


class NotNode(_Strict):
    not_: RuleNode = Field(alias="not")


NODE_KINDS: dict[str, type[BaseModel]] = {
    "all": AllNode,
    "any": AnyNode,
    "not": NotNode,
    "user_field": UserFieldRule,
    "date_field": DateFieldRule,
    "organisation": OrganisationRule,
    "position": PositionRule,
    "organisation_type": OrganisationTypeRule,
    "position_type": PositionTypeRule,
    "organisation_custom_field": OrganisationCustomFieldRule,
    "position_custom_field": PositionCustomFieldRule,
    "job_title": JobTitleRule,
    "has_direct_reports": HasDirectReportsRule,
    "reports_to": ReportsToRule,
    "course_completion": CourseCompletionRule,
    "program_completion": ProgramCompletionRule,
    "certification_state": CertificationStateRule,
    "member_of": MemberOfRule,
    "not_member_of": NotMemberOfRule,
}


def _node_kind(value: Any) -> str | None:
    """The tag of a rule node: `~<kind>` when exactly one kind key is present, else None."""
    if isinstance(value, BaseModel):
        return next(f"~{k}" for k, model in NODE_KINDS.items() if isinstance(value, model))
    if not isinstance(value, dict):
        return None
    present = [key for key in value if key in NODE_KINDS]
    return f"~{present[0]}" if len(present) == 1 else None


RuleNode = Annotated[
    Union[tuple(Annotated[model, Tag(f"~{kind}")] for kind, model in NODE_KINDS.items())],  # noqa: UP007
    Discriminator(
        _node_kind,
        custom_error_type=UNKNOWN_KIND,
        custom_error_message="a rule needs exactly one of the keys: " + ", ".join(NODE_KINDS),
    ),
]

for _model in (AllNode, AnyNode, NotNode):
    _model.model_rebuild()


# --- audiences ------------------------------------------------------------------------------


class _Audience(_Strict):
    id: Slug
    name: str = Field(min_length=1)
    description: str | None = None
    active_from: Day | None = None
    active_until: Day | None = None
    add_members: bool = True
    remove_members: bool = True

    @model_validator(mode="after")
    def _window_in_order(self) -> _Audience:
        if self.active_from and self.active_until and self.active_from > self.active_until:
            raise ValueError(
                f"active_from ({self.active_from}) is after active_until ({self.active_until})"
            )
        return self


class StaticAudience(_Audience):
    """A fixed member list: `members:` (user ids) or `members_file:` (a CSV), exactly one."""

    kind: Literal["static"]
    members: list[ItemId] | None = None
    members_file: Annotated[str, Field(pattern=r"^[^/\\].*\.csv$")] | None = None

    @model_validator(mode="after")
    def _one_member_source(self) -> StaticAudience:
        if (self.members is None) == (self.members_file is None):
            raise ValueError("a static audience needs exactly one of members, members_file")
        return self


class DynamicAudience(_Audience):
    """Members are the users the rule tree selects; no `rules:` means no members."""

    kind: Literal["dynamic"]
    rules: RuleNode | None = None


Audience = Annotated[StaticAudience | DynamicAudience, Field(discriminator="kind")]


class AudiencesFile(_Strict):
    """The whole of `rules/audiences.yaml`."""

    audiences: list[Audience] = []


def load_audiences(rules_dir: Path) -> AudiencesFile:
    """Read `rules_dir/audiences.yaml` (schema layer only); missing or empty means none."""
    return load_model(rules_dir / AUDIENCES_FILE, AudiencesFile)


def iter_nodes(node: BaseModel | None) -> Iterator[BaseModel]:
    """Every node of a rule tree, depth first, the node itself first."""
    if node is None:
        return
    yield node
    if isinstance(node, AllNode | AnyNode):
        for child in node.all_ if isinstance(node, AllNode) else node.any_:
            yield from iter_nodes(child)
    elif isinstance(node, NotNode):
        yield from iter_nodes(node.not_)
