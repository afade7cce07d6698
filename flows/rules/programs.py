"""`rules/programs.yaml` and `rules/certifications.yaml` (SPEC §4.2, §4.3) as strict models.

The format and its meaning are docs/programs.md (a public contract). A program's `content`
(a certification's `primary` / `recertification`) alternates course sets and the operators
`then`, `and`, `or`::

    programs:
      - id: induction
        name: Company induction
        content:
          - {kind: all, courses: [C0001, C0002, C0003], min_time: {days: 5}}
          - then
          - {id: electives, kind: some, courses: [C0004, C0005, C0006], min_courses: 2}
        assignments:
          - audience: new_starters
            due: {after: assignment, days: 30}

`then` starts the next sequential group; inside a group `and` binds tighter than `or`, so a
group is a disjunction of runs of `and`-ed sets (:func:`content_layout`). Every error points
at the offending node (`file:line:column`), as for audiences.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from flows.rules.audiences import CustomFieldName, Day, ItemId, Slug
from flows.rules.loader import load_model, suggest

PROGRAMS_FILE = "programs.yaml"
CERTIFICATIONS_FILE = "certifications.yaml"

#: months of the approximate length a calendar month is compared by (400 years / 4800)
DAYS_PER_MONTH = 30.436875
UNITS = ("hours", "days", "weeks", "months", "years")
_UNIT_SECONDS = {"hours": 3600, "days": 86_400, "weeks": 7 * 86_400}
_UNIT_MONTHS = {"months": 1, "years": 12}
OPERATORS = ("then", "and", "or")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _fail(loc: tuple[str | int, ...], message: str, value: Any) -> ValidationError:
    """A validation error at `loc` below the node being validated (pydantic prefixes it)."""
    error = PydanticCustomError("program_rule", message)
    return ValidationError.from_exception_data(
        "programs", [InitErrorDetails(type=error, loc=loc, input=value)]
    )


def _one_of(model: BaseModel, keys: tuple[str, ...], what: str) -> str | None:
    """The one key of `keys` that is set on `model`; a ValueError when none or several are."""
    present = [key for key in keys if getattr(model, key) is not None]
    if len(present) == 1:
        return present[0]
    listed = ", ".join(keys)
    if not present:
        raise ValueError(f"{what} needs exactly one of {listed}")
    raise ValueError(f"{what} has exactly one of {listed}, not several ({', '.join(present)})")


def _exactly_one_schema(keys: tuple[str, ...]) -> dict[str, Any]:
    return {"oneOf": [{"required": [key]} for key in keys]}


# --- periods --------------------------------------------------------------------------------

PositiveInt = Annotated[int, Field(gt=0)]


@dataclass(frozen=True, order=True)
class Span:
    """A period as stored: calendar months, then seconds (docs/programs.md)."""

    months: int = 0
    seconds: int = 0

    @property
    def approximate_seconds(self) -> float:
        """The length periods are compared by: a month is 30.436875 days."""
        return self.months * DAYS_PER_MONTH * 86_400 + self.seconds

    def __add__(self, other: Span) -> Span:
        return Span(self.months + other.months, self.seconds + other.seconds)


def _unit_span(unit: str, amount: int) -> Span:
    if unit in _UNIT_MONTHS:
        return Span(months=amount * _UNIT_MONTHS[unit])
    return Span(seconds=amount * _UNIT_SECONDS[unit])


def _unit_text(unit: str, amount: int) -> str:
    return f"{amount} {unit if amount != 1 else unit.removesuffix('s')}"


class Period(_Strict):
    """Exactly one of hours, days, weeks, months, years, a positive integer."""

    model_config = ConfigDict(json_schema_extra=_exactly_one_schema(UNITS))

    hours: PositiveInt | None = None
    days: PositiveInt | None = None
    weeks: PositiveInt | None = None
    months: PositiveInt | None = None
    years: PositiveInt | None = None

    @model_validator(mode="after")
    def _one_unit(self) -> Period:
        _one_of(self, UNITS, "a period")
        return self

    @property
    def unit(self) -> str:
        return next(unit for unit in UNITS if getattr(self, unit) is not None)

    @property
    def span(self) -> Span:
        return _unit_span(self.unit, getattr(self, self.unit))

    def __str__(self) -> str:
        return _unit_text(self.unit, getattr(self, self.unit))


def longest(periods: list[Period | None]) -> Span:
    """The longest of `periods` by approximate length (the first of equals); none -> 0."""
    spans = [period.span for period in periods if period is not None]
    return max(spans, key=lambda span: span.approximate_seconds, default=Span())


# --- course sets and content ----------------------------------------------------------------

NonNegativeInt = Annotated[int, Field(ge=0)]


class CourseSet(_Strict):
    """`kind` all | any | some | optional over `courses`; `min_courses` / `min_score` for
    `some` only (default 0); `min_time` a period; `id` defaults to `set_<n>`."""

    id: Slug | None = None
    kind: Literal["all", "any", "some", "optional"]
    courses: list[ItemId] = []
    min_courses: NonNegativeInt | None = None
    min_score: NonNegativeInt | None = None
    min_time: Period | None = None

    @model_validator(mode="after")
    def _fits_its_kind(self) -> CourseSet:
        if self.kind != "optional" and not self.courses:
            where = ("courses",) if "courses" in self.model_fields_set else ()
            raise _fail(where, f"a set of kind '{self.kind}' needs at least one course", [])
        for name in ("min_courses", "min_score"):
            if self.kind != "some" and getattr(self, name) is not None:
                raise _fail((name,), f"{name} is only for kind some", getattr(self, name))
        distinct = len(self.distinct_courses)
        if self.min_courses is not None and self.min_courses > distinct:
            message = f"the set has only {distinct} distinct course(s)"
            raise _fail(("min_courses",), message, self.min_courses)
        return self

    @property
    def distinct_courses(self) -> list[str]:
        """The courses in the order written, each once (a course listed twice counts once)."""
        return list(dict.fromkeys(self.courses))


Operator = Literal["then", "and", "or"]


def _content_item_kind(value: Any) -> str | None:
    if isinstance(value, CourseSet | dict):
        return "~set"
    return "~operator" if isinstance(value, str) else None


ContentItem = Annotated[
    Union[Annotated[CourseSet, Tag("~set")], Annotated[Operator, Tag("~operator")]],  # noqa: UP007
    Discriminator(_content_item_kind),
]


def _is_set(value: Any) -> bool:
    return isinstance(value, CourseSet | dict)


def _grammar_errors(items: list[Any]) -> list[InitErrorDetails]:
    """Sets and operators alternate, a set first and last; one error per misplaced item.

    Read left to right expecting a set, then an operator, and so on; an item that is not what
    is expected is reported and read as if it were, so one mistake gives one error.
    """
    errors: list[InitErrorDetails] = []

    def add(index: int | None, message: str, value: Any) -> None:
        loc = () if index is None else (index,)
        error = PydanticCustomError("content_grammar", message)
        errors.append(InitErrorDetails(type=error, loc=loc, input=value))

    expect_set = True
    for index, item in enumerate(items):
        is_text = isinstance(item, str)
        near = is_text and item not in OPERATORS and bool(suggest(item, OPERATORS))
        if _is_set(item):
            if not expect_set:
                add(index, "two course sets in a row: join them with then, and or or", item)
            expect_set = False
        elif item in OPERATORS or near:
            if near:
                add(index, f"unknown operator '{item}'{suggest(item, OPERATORS)}", item)
            elif expect_set and index == 0:
                add(index, "content must start with a course set, not an operator", item)
            elif expect_set:
                message = f"expected a course set after '{items[index - 1]}', not an operator"
                add(index, message, item)
            expect_set = True
        elif expect_set:
            add(index, "expected a course set: a mapping with kind and courses", item)
            expect_set = False
        else:
            if is_text:
                add(index, f"unknown operator '{item}': use then, and or or", item)
            else:
                add(index, "expected then, and or or between two course sets", item)
            expect_set = True
    if not items:
        add(None, "at least one course set is required", items)
    elif expect_set:
        add(len(items) - 1, "content must end with a course set, not an operator", items[-1])
    return errors


def _as_details(error: Any, skip: set[Any]) -> list[InitErrorDetails]:
    """A pydantic error dict as raisable details again (same type, message and place)."""
    if error["loc"] and error["loc"][0] in skip:
        return []
    custom = PydanticCustomError(error["type"], str(error["msg"]))
    return [InitErrorDetails(type=custom, loc=tuple(error["loc"]), input=error.get("input"))]


def _check_content(value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
    """The grammar, each item, then default set ids (`set_<n>`) and unique set ids.

    Grammar errors and the errors inside well-placed sets are reported together.
    """
    errors = _grammar_errors(value) if isinstance(value, list) else []
    try:
        items = handler(value)
    except ValidationError as err:
        if not errors:
            raise
        misplaced = {error["loc"][0] for error in errors if error["loc"]}
        for error in err.errors():
            errors += _as_details(error, misplaced)
        raise ValidationError.from_exception_data("content", errors) from None
    if errors:
        raise ValidationError.from_exception_data("content", errors)
    first: dict[str, int] = {}
    result: list[Any] = []
    for index, item in enumerate(items):
        if isinstance(item, CourseSet):
            if item.id is None:
                item = item.model_copy(update={"id": f"set_{index // 2 + 1}"})
            assert item.id is not None
            if item.id in first:
                error = PydanticCustomError(
                    "content_grammar",
                    f"duplicate course set id '{item.id}' "
                    f"(also {info.field_name}.{first[item.id]}); give each set its own id",
                )
                raw = value[index]
                explicit = isinstance(raw, dict) and "id" in raw
                where, shown = ((index, "id"), item.id) if explicit else ((index,), raw)
                errors.append(InitErrorDetails(type=error, loc=where, input=shown))
            first.setdefault(item.id, index)
        result.append(item)
    if errors:
        raise ValidationError.from_exception_data("content", errors)
    return result


Content = Annotated[list[ContentItem], WrapValidator(_check_content)]


@dataclass(frozen=True)
class PlacedSet:
    """A course set with its place in a path (docs/programs.md "Groups")."""

    course_set: CourseSet
    set_position: int  # 1-based among the sets
    group_number: int  # 1-based; `then` starts the next group
    run_number: int  # 1-based within the group; `or` starts the next run

    @property
    def set_id(self) -> str:
        assert self.course_set.id is not None
        return self.course_set.id


def content_layout(content: list[Any]) -> list[PlacedSet]:
    """Each set of a validated content with its position, group and run."""
    placed: list[PlacedSet] = []
    group, run, operator = 1, 1, None
    for item in content:
        if not isinstance(item, CourseSet):
            operator = item
            continue
        if operator == "then":
            group, run = group + 1, 1
        elif operator == "or":
            run += 1
        placed.append(PlacedSet(item, len(placed) + 1, group, run))
    return placed


def minimum_time(content: list[Any]) -> Span:
    """Sum over the groups of the longest `min_time` in each (approximate lengths compared)."""
    groups: dict[int, list[Period | None]] = {}
    for placed in content_layout(content):
        groups.setdefault(placed.group_number, []).append(placed.course_set.min_time)
    total = Span()
    for periods in groups.values():
        total += longest(periods)
    return total


# --- routes ---------------------------------------------------------------------------------

ROUTE_KINDS = ("organisation", "position", "audience", "manager", "users", "group")
DUE_BASES = (
    "first_access",
    "assignment",
    "job_start",
    "position_assigned",
    "course_completion",
    "program_completion",
    "custom_field",
)
#: base -> the key naming what it is relative to
DUE_BASE_KEYS = {
    "position_assigned": "position",
    "course_completion": "course",
    "program_completion": "program",
    "custom_field": "field",
}
_DUE_REFERENCE_KEYS = tuple(DUE_BASE_KEYS.values())
GroupFile = Annotated[str, Field(pattern=r"^[^/\\].*\.csv$")]


class Due(_Strict):
    """`{date: D}`, or `{after: BASE, <unit>: N}` plus the key BASE needs."""

    model_config = ConfigDict(json_schema_extra=_exactly_one_schema(("date", "after")))

    date: Day | None = None
    after: (
        Literal[
            "first_access",
            "assignment",
            "job_start",
            "position_assigned",
            "course_completion",
            "program_completion",
            "custom_field",
        ]
        | None
    ) = None
    hours: PositiveInt | None = None
    days: PositiveInt | None = None
    weeks: PositiveInt | None = None
    months: PositiveInt | None = None
    years: PositiveInt | None = None
    position: ItemId | None = None
    course: ItemId | None = None
    program: Slug | None = None
    field: CustomFieldName | None = None

    @model_validator(mode="after")
    def _fixed_or_relative(self) -> Due:
        if _one_of(self, ("date", "after"), "a due date") == "date":
            others = [k for k in (*UNITS, *_DUE_REFERENCE_KEYS) if getattr(self, k) is not None]
            if others:
                raise ValueError(f"date cannot be combined with {', '.join(others)}")
            return self
        _one_of(self, UNITS, "a relative due date")
        wanted = DUE_BASE_KEYS.get(self.after or "")
        if wanted is not None and getattr(self, wanted) is None:
            raise ValueError(f"after: {self.after} needs {wanted}")
        for key in _DUE_REFERENCE_KEYS:
            if key != wanted and getattr(self, key) is not None:
                base = next(b for b, k in DUE_BASE_KEYS.items() if k == key)
                raise _fail((key,), f"{key} is only for after: {base}", getattr(self, key))
        return self

    @property
    def span(self) -> Span:
        unit = next(unit for unit in UNITS if getattr(self, unit) is not None)
        return _unit_span(unit, getattr(self, unit))

    @property
    def base_ref(self) -> str | None:
        key = DUE_BASE_KEYS.get(self.after or "")
        return getattr(self, key) if key else None


class RouteHierarchy(_Strict):
    ids: list[ItemId] = Field(min_length=1)
    include_children: bool = False


class RouteManager(_Strict):
    user: ItemId
    job: ItemId | None = None
    scope: Literal["direct", "all_below"]


class Route(_Strict):
    """Exactly one of organisation, position, audience, manager, users, group; optional due."""

    model_config = ConfigDict(json_schema_extra=_exactly_one_schema(ROUTE_KINDS))

    organisation: RouteHierarchy | None = None
    position: RouteHierarchy | None = None
    audience: Slug | None = None
    manager: RouteManager | None = None
    users: Annotated[list[ItemId], Field(min_length=1)] | None = None
    group: GroupFile | None = None
    due: Due | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Route:
        _one_of(self, ROUTE_KINDS, "a route")
        return self

    @property
    def kind(self) -> str:
        return next(kind for kind in ROUTE_KINDS if getattr(self, kind) is not None)

    @property
    def key(self) -> str:
        """The route's identity across runs (docs/programs.md "Route keys")."""
        kind = self.kind
        if self.organisation is not None or self.position is not None:
            hierarchy = self.organisation or self.position
            assert hierarchy is not None
            ids = ",".join(sorted(set(hierarchy.ids)))
            return f"{kind}:{ids}{'+children' if hierarchy.include_children else ''}"
        if self.manager is not None:
            job = f"/{self.manager.job}" if self.manager.job is not None else ""
            return f"manager:{self.manager.user}{job}:{self.manager.scope}"
        if self.users is not None:
            return "users"
        return f"{kind}:{getattr(self, kind)}"


def _check_routes(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """Every route, then one route per key (two routes selecting alike would be one)."""
    routes = handler(value)
    first: dict[str, int] = {}
    errors = []
    for index, route in enumerate(routes):
        if route.key in first:
            error = PydanticCustomError(
                "duplicate_route",
                f"duplicate route '{route.key}' (also assignments.{first[route.key]}): "
                "a program has one route per key, merge them",
            )
            raw = value[index] if isinstance(value, list) else route
            errors.append(InitErrorDetails(type=error, loc=(index,), input=raw))
        first.setdefault(route.key, index)
    if errors:
        raise ValidationError.from_exception_data("assignments", errors)
    return routes


Routes = Annotated[list[Route], WrapValidator(_check_routes)]
Resolution = Literal["open", "assign", "realistic_due_date", "dismiss"]


class Exceptions(_Strict):
    """How exceptions are resolved: per user, else the default (`open` leaves them open)."""

    default: Resolution = "open"
    users: dict[ItemId, Resolution] = {}


# --- programs and certifications ------------------------------------------------------------


class Program(_Strict):
    """A program: its content, the routes that assign it, how exceptions are resolved."""

    id: Slug
    name: str = Field(min_length=1)
    description: str | None = None
    content: Content
    assignments: Routes = []
    exceptions: Exceptions = Exceptions()

    def paths(self) -> dict[str, list[Any]]:
        return {"primary": self.content}


class Certification(_Strict):
    """A program with a primary and a recertification path and an active period."""

    id: Slug
    name: str = Field(min_length=1)
    description: str | None = None
    primary: Content
    recertification: Content | None = None
    active_period: Period
    window_period: Period
    expiry_method: Literal["expiry_date", "completion_date", "fixed"] = "expiry_date"
    min_active_period: Period | None = None
    assignments: Routes = []
    exceptions: Exceptions = Exceptions()

    @model_validator(mode="after")
    def _periods_fit(self) -> Certification:
        active, window = self.active_period, self.window_period
        if _length(window) > _length(active):
            message = f"window_period ({window}) is longer than active_period ({active})"
            raise _fail(("window_period",), message, _raw(window))
        minimum = self.min_active_period
        if self.expiry_method != "fixed":
            if minimum is not None:
                message = "min_active_period is only for expiry_method fixed"
                raise _fail(("min_active_period",), message, _raw(minimum))
            return self
        if minimum is None:
            raise _fail(("expiry_method",), "expiry_method fixed needs min_active_period", "fixed")
        if _length(minimum) < _length(window):
            message = f"min_active_period ({minimum}) is shorter than window_period ({window})"
            raise _fail(("min_active_period",), message, _raw(minimum))
        if _length(minimum) > _length(active):
            message = f"min_active_period ({minimum}) is longer than active_period ({active})"
            raise _fail(("min_active_period",), message, _raw(minimum))
        return self

    def paths(self) -> dict[str, list[Any]]:
        """Both paths; recertification defaults to the primary content."""
        return {"primary": self.primary, "recertification": self.recertification or self.primary}


def _raw(period: Period) -> dict[str, int]:
    return period.model_dump(exclude_none=True)


def _length(period: Period) -> float:
    return period.span.approximate_seconds


class ProgramsFile(_Strict):
    """The whole of `rules/programs.yaml`."""

    programs: list[Program] = []


class CertificationsFile(_Strict):
    """The whole of `rules/certifications.yaml`."""

    certifications: list[Certification] = []


def load_programs(rules_dir: Path) -> ProgramsFile:
    """Read `rules_dir/programs.yaml` (schema layer only); missing or empty means none."""
    return load_model(rules_dir / PROGRAMS_FILE, ProgramsFile)


def load_certifications(rules_dir: Path) -> CertificationsFile:
    """Read `rules_dir/certifications.yaml` (schema layer only); missing or empty: none."""
    return load_model(rules_dir / CERTIFICATIONS_FILE, CertificationsFile)


def iter_sets(item: Program | Certification) -> Iterator[tuple[str, PlacedSet]]:
    """(path, placed set) of every course set of every path of a program or certification."""
    for path, content in item.paths().items():
        for placed in content_layout(content):
            yield path, placed
