"""The feed elements HR Import knows: Totara file names, columns and keys (SPEC §3.1)."""

from __future__ import annotations

from dataclasses import dataclass

CUSTOM_FIELD_PREFIX = "customfield_"


@dataclass(frozen=True)
class ElementSpec:
    """Static description of one feed element."""

    name: str  # file stem, also the `element` value in import_reject
    key: tuple[str, ...]
    required: tuple[str, ...]
    optional: tuple[str, ...]
    date_columns: tuple[str, ...] = ()
    timestamp_columns: tuple[str, ...] = ()
    flag_columns: tuple[str, ...] = ()
    integer_columns: tuple[str, ...] = ()
    number_columns: tuple[str, ...] = ()
    has_custom_fields: bool = False
    is_hr: bool = True  # HR elements have full/delta semantics; learning records accumulate

    @property
    def known_columns(self) -> frozenset[str]:
        return frozenset(self.required + self.optional)

    def default_file(self) -> str:
        return f"{self.name}.csv"


_HIERARCHY_COLUMNS = (
    "shortname",
    "description",
    "frameworkidnumber",
    "parentidnumber",
    "typeidnumber",
    "deleted",
    "timemodified",
)


def _hierarchy(name: str, extra: tuple[str, ...] = ()) -> ElementSpec:
    return ElementSpec(
        name=name,
        key=("idnumber",),
        required=("idnumber", "fullname"),
        optional=_HIERARCHY_COLUMNS + extra,
        flag_columns=("deleted",),
        integer_columns=("timemodified",),
        has_custom_fields=True,
    )


ORG = _hierarchy("org")
POS = _hierarchy("pos")
COMP = _hierarchy("comp", ("aggregationmethod",))

USER = ElementSpec(
    name="user",
    key=("idnumber",),
    required=("idnumber", "username", "firstname", "lastname"),
    optional=(
        "email",
        "suspended",
        "deleted",
        "emailstop",
        "city",
        "country",
        "lang",
        "timezone",
        "institution",
        "department",
        "timemodified",
    ),
    flag_columns=("suspended", "deleted", "emailstop"),
    integer_columns=("timemodified",),
    has_custom_fields=True,
)

JOB_ASSIGNMENT = ElementSpec(
    name="jobassignment",
    key=("useridnumber", "idnumber"),
    required=("idnumber", "useridnumber"),
    optional=(
        "fullname",
        "startdate",
        "enddate",
        "orgidnumber",
        "posidnumber",
        "manageridnumber",
        "managerjobassignmentidnumber",
        "appraiseridnumber",
        "deleted",
        "timemodified",
    ),
    date_columns=("startdate", "enddate"),
    flag_columns=("deleted",),
    integer_columns=("timemodified",),
)

COURSE = ElementSpec(
    name="course",
    key=("idnumber",),
    required=("idnumber", "fullname"),
    optional=("score",),
    integer_columns=("score",),
    is_hr=False,
)

COURSE_COMPLETION = ElementSpec(
    name="course_completion",
    key=("useridnumber", "courseidnumber", "timecompleted"),
    required=("useridnumber", "courseidnumber", "timecompleted"),
    optional=("grade",),
    timestamp_columns=("timecompleted",),
    number_columns=("grade",),
    is_hr=False,
)

USER_ACCESS = ElementSpec(
    name="user_access",
    key=("useridnumber",),
    required=("useridnumber",),
    optional=("firstaccess", "lastaccess"),
    timestamp_columns=("firstaccess", "lastaccess"),
    is_hr=False,
)

ELEMENTS: dict[str, ElementSpec] = {
    spec.name: spec
    for spec in (ORG, POS, COMP, USER, JOB_ASSIGNMENT, COURSE, COURSE_COMPLETION, USER_ACCESS)
}
"""Every element, in the order they are imported (each after the elements it references)."""
