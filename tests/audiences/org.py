"""One tiny organisation, two weeks of it, and every audience the suite checks (SPEC §4.1).

Run 1 is as of 2026-03-02T06:00Z (A1), run 2 a week later (A2 = 2026-03-09T06:00Z) after:
U12 is deleted, U14 moves from the Leeds Branch (O4) to Finance (O5), U18 joins O4, HR
removes the Closing Office (O6) and the admins pause / switch some audiences. Run 3 repeats
run 2 exactly.

Organisation tree (type, customfield_costcentre)::

    O1 Head Office (-, CC100)
    ├── O2 Sales (division, CC200)
    │   └── O3 Sales North (region, -)
    │       └── O4 Leeds Branch (branch, CC410)
    ├── O5 Finance (Division, CC500)
    └── O6 Closing Office (branch, CC600)        removed in run 2

Position tree (type, customfield_grade)::

    P1 Director (leadership, G7)
    ├── P2 Manager (leadership, G5)
    │   └── P3 Team Lead (role, G4)
    │       └── P4 Associate (role, G2)
    └── P5 Analyst (specialist, -)

Management: U01 > U02 > U03 > {U04, U05, U06, U11, U12, U14, U17}; U01 > U07 > U15;
U01 > U08 > {U06 (second job), U10, U13}. U06 and U07 hold two jobs, U09 none. U11 is
suspended, U10 has no e-mail, U13's last name is an SQL injection attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

AS_OF_1 = "2026-03-02T06:00:00Z"
AS_OF_2 = "2026-03-09T06:00:00Z"
A1 = datetime(2026, 3, 2, 6)
A2 = datetime(2026, 3, 9, 6)

NASTY = "O'Brien; drop table dim_user; --"

HR_IMPORT_YAML = """\
defaults:
  max_removed_fraction: 0.5
elements:
  user:
    on_remove: delete
    custom_fields:
      hiredate: {type: date}
"""

ORG_CSV = """\
idnumber,fullname,parentidnumber,typeidnumber,customfield_costcentre
O1,Head Office,,,CC100
O2,Sales,O1,division,CC200
O3,Sales North,O2,region,
O4,Leeds Branch,O3,branch,CC410
O5,Finance,O1,Division,CC500
O6,Closing Office,O1,branch,CC600
"""

POS_CSV = """\
idnumber,fullname,parentidnumber,typeidnumber,customfield_grade
P1,Director,,leadership,G7
P2,Manager,P1,leadership,G5
P3,Team Lead,P2,role,G4
P4,Associate,P3,role,G2
P5,Analyst,P1,specialist,
"""

USER_CSV = f"""\
idnumber,username,firstname,lastname,email,city,country,department,suspended,deleted,customfield_hiredate,customfield_employeetype
U01,ada,Ada,Boss,ada@example.com,London,GB,Executive,0,0,2015-01-10,Permanent
U02,bea,Bea,Seller,bea@example.com,Leeds,GB,Sales,0,0,2018-06-01,Permanent
U03,cal,Cal,Northam,cal@example.com,Leeds,GB,Sales,0,0,2020-02-15,Permanent
U04,dee,Dee,Rep,dee@example.com,leeds,GB,Sales,0,0,2026-02-25,Contractor
U05,eve,Eve,Rep,eve@sales.example.org,York,GB,Sales,0,0,2026-03-10,Intern
U06,fay,Fay,Twojobs,fay@example.com,Dublin,IE,Sales,0,0,2019-09-09,permanent
U07,gus,Gus,Manyhats,gus@example.com,LEEDS,GB,Operations,0,0,,Contractor
U08,hal,Hal,Finn,hal@example.com,Wellington,NZ,Finance,0,0,2024-05-01,Permanent
U09,ivy,Ivy,Nojob,ivy@example.com,,,,0,0,,
U10,jon,Jon,Nomail,,Leeds,GB,Finance,0,0,2021-01-01,Contractor
U11,kim,Kim,Away,kim@example.com,Leeds,GB,Sales,1,0,2017-03-03,Permanent
U12,leo,Leo,Gone,leo@example.com,York,GB,Sales,0,0,2022-02-02,Permanent
U13,mia,Mia,{NASTY},mia@example.com,Cork,IE,Finance,0,0,2023-03-03,Permanent
U14,ned,Ned,Mover,ned@example.com,Leeds,GB,Sales,0,0,2025-12-01,Permanent
U15,ola,Ola,Closer,ola@example.com,Hull,GB,Operations,0,0,2016-06-06,Contractor
U16,pam_l,Pam,Listed,pam@example.com,Bristol,GB,Marketing,0,0,2010-10-10,Permanent
U17,rae,Rae,Future,rae@example.com,York,GB,Sales,0,0,2026-06-01,Intern
"""

JOB_CSV = """\
idnumber,useridnumber,fullname,orgidnumber,posidnumber,manageridnumber,startdate,enddate
J1,U01,Chief Executive,O1,P1,,2015-01-10,
J1,U02,Head of Sales,O2,P2,U01,2018-06-01,
J1,U03,Regional Sales Manager,O3,P3,U02,2020-02-15,
J1,U04,Sales Associate,O4,P4,U03,2026-02-25,2026-03-20
J1,U05,Sales Associate,O4,P4,U03,2026-03-01,
J1,U06,Sales Associate,O4,P4,U03,2019-09-09,
J2,U06,Finance Analyst,O5,P5,U08,2024-01-01,2026-06-30
J1,U07,Operations Manager,O1,,U01,2023-01-01,
J2,U07,Trainee,,P4,,2025-01-01,
J1,U08,Head of Finance,O5,P2,U01,2024-05-01,
J1,U10,Accountant,O5,P5,U08,2021-01-01,
J1,U11,Sales Associate,O4,P4,U03,2017-03-03,
J1,U12,Sales Associate,O4,P4,U03,2022-02-02,
J1,U13,Payroll Clerk,O5,P5,U08,2023-03-03,
J1,U14,Sales Associate,O4,P4,U03,2025-12-01,
J1,U15,Office Closer,O6,P4,U07,2016-06-06,
J1,U16,Marketing Lead,O1,,,2010-10-10,
J1,U17,Sales Trainee,O3,P4,U03,2026-06-01,
"""

COURSE_CSV = """\
idnumber,fullname
C1,Induction
C2,Safety
C3,Ethics
"""

# U08's completion lies after A1: run 1 must ignore it.
COMPLETION_CSV = """\
useridnumber,courseidnumber,timecompleted
U01,C1,2025-01-10T10:00:00Z
U01,C1,2026-02-20T10:00:00Z
U01,C2,2025-02-01T10:00:00Z
U02,C1,2026-02-25T10:00:00Z
U02,C2,2026-02-26T10:00:00Z
U03,C1,2024-06-01T10:00:00Z
U04,C2,2026-03-01T09:00:00Z
U06,C1,2026-01-05T10:00:00Z
U06,C2,2023-12-31T23:00:00Z
U08,C1,2026-03-05T10:00:00Z
U11,C1,2025-05-05T10:00:00Z
U11,C2,2025-05-05T11:00:00Z
U12,C1,2025-05-06T10:00:00Z
U12,C2,2025-05-06T11:00:00Z
"""

# U05 and U17 have no row, U09 a row without any access: all three never logged in.
# Boundaries (A1 = 2026-03-02T06:00): U08 = A1 - 10 days exactly, U10 one second earlier,
# U14 = A1 exactly, U13's first access = A1 - 365 days exactly, U02 late on 15 Jan,
# U03 at the very start of 16 Jan.
ACCESS_CSV = """\
useridnumber,firstaccess,lastaccess
U01,2015-02-01T09:00:00Z,2026-03-01T10:00:00Z
U02,2018-06-02T08:00:00Z,2026-01-15T18:00:00Z
U03,2020-03-01T08:00:00Z,2026-01-16T00:00:00Z
U04,2026-02-26T09:00:00Z,2026-03-02T05:00:00Z
U06,2019-09-10T08:00:00Z,2025-12-01T08:00:00Z
U07,2024-01-01T08:00:00Z,2026-02-27T08:00:00Z
U08,2024-05-02T08:00:00Z,2026-02-20T06:00:00Z
U09,,
U10,2021-01-05T08:00:00Z,2026-02-20T05:59:59Z
U11,2017-03-04T08:00:00Z,2025-06-01T08:00:00Z
U12,2022-02-03T08:00:00Z,2026-02-28T08:00:00Z
U13,2025-03-02T06:00:00Z,2026-03-01T08:00:00Z
U14,2025-12-02T08:00:00Z,2026-03-02T06:00:00Z
U15,2016-06-07T08:00:00Z,2025-11-11T08:00:00Z
U16,2010-10-11T08:00:00Z,2026-01-10T08:00:00Z
"""

STATIC_MEMBERS_CSV = "useridnumber\nU01\nU05\n"


def _replace(text: str, old: str, new: str) -> str:
    assert old in text, f"run-2 edit does not apply: {old!r}"
    return text.replace(old, new)


def feeds_run_1() -> dict[str, str]:
    return {
        "org.csv": ORG_CSV,
        "pos.csv": POS_CSV,
        "user.csv": USER_CSV,
        "jobassignment.csv": JOB_CSV,
        "course.csv": COURSE_CSV,
        "course_completion.csv": COMPLETION_CSV,
        "user_access.csv": ACCESS_CSV,
    }


def feeds_run_2() -> dict[str, str]:
    """U12 deleted, U14 moves O4 -> O5, U18 joins O4, O6 removed (U15's job loses it)."""
    feeds = feeds_run_1()
    feeds["org.csv"] = _replace(ORG_CSV, "O6,Closing Office,O1,branch,CC600\n", "")
    users = _replace(
        USER_CSV,
        "U12,leo,Leo,Gone,leo@example.com,York,GB,Sales,0,0,",
        "U12,leo,Leo,Gone,leo@example.com,York,GB,Sales,0,1,",
    )
    feeds["user.csv"] = (
        users + "U18,quinn,Quinn,New,quinn@example.com,Leeds,GB,Sales,0,0,2026-03-05,Contractor\n"
    )
    jobs = _replace(JOB_CSV, "J1,U12,Sales Associate,O4,P4,U03,2022-02-02,\n", "")
    jobs = _replace(
        jobs,
        "J1,U14,Sales Associate,O4,P4,U03,2025-12-01,",
        "J1,U14,Finance Analyst,O5,P5,U08,2025-12-01,",
    )
    jobs = _replace(jobs, "J1,U15,Office Closer,O6,P4,U07,", "J1,U15,Office Closer,,P4,U07,")
    feeds["jobassignment.csv"] = jobs + "J1,U18,Sales Associate,O4,P4,U03,2026-03-05,\n"
    return feeds


def users(text: str) -> frozenset[str]:
    """`users("1 2 15")` -> {"U01", "U02", "U15"}."""
    return frozenset(f"U{int(n):02d}" for n in text.split())


EVERYONE_1 = users(" ".join(str(n) for n in range(1, 18)))  # U01..U17, nobody deleted yet
EVERYONE_2 = (EVERYONE_1 - users("12")) | users("18")


def everyone_but(text: str) -> frozenset[str]:
    return EVERYONE_1 - users(text)


@dataclass(frozen=True)
class Case:
    """One audience: its id (named for the statement it checks), rule and run-1 members."""

    id: str
    rules: str | None  # YAML of the rule tree (flow or block style); None = no rules
    expected: frozenset[str]
    options: str = ""  # extra YAML keys of the audience, one per line


O4_PEOPLE = users("4 5 6 11 12 14")
SALES = users("2 3 4 5 6 11 12 14 17")

CASES: tuple[Case, ...] = (
    # --- user fields, text operators (case-insensitive; negatives match missing) ---------
    Case(
        "city_equals_leeds_any_case",
        "{user_field: city, operator: equals, values: [LeEdS]}",
        users("2 3 4 7 10 11 14"),
    ),
    Case(
        "lastname_equals_either_value",
        "{user_field: lastname, operator: equals, values: [rep, BOSS]}",
        users("1 4 5"),
    ),
    Case(
        "city_not_equals_two_values_matches_neither_and_missing",
        "{user_field: city, operator: not_equals, values: [leeds, YORK]}",
        users("1 6 8 9 13 15 16"),
    ),
    Case("email_contains", "{user_field: email, operator: contains, values: [SALES.]}", users("5")),
    Case(
        "email_not_contains_matches_missing",
        "{user_field: email, operator: not_contains, values: [EXAMPLE.COM]}",
        users("5 10"),
    ),
    Case(  # a field no other case reads: the text subjects take only the fields leaves read
        "firstname_equals_is_read_lower_cased",
        '{user_field: firstname, operator: equals, values: [" ADA ", bea]}',
        users("1 2"),
    ),
    Case(
        "lastname_starts_with",
        "{user_field: lastname, operator: starts_with, values: [NO]}",
        users("3 9 10"),
    ),
    Case(
        "username_ends_with_any_value",
        "{user_field: username, operator: ends_with, values: [AL, e]}",
        users("3 4 5 8 17"),
    ),
    Case("country_in", "{user_field: country, operator: in, values: [ie, Nz]}", users("6 8 13")),
    Case(
        "country_not_in_matches_missing",
        "{user_field: country, operator: not_in, values: [gb]}",
        users("6 8 9 13"),
    ),
    Case("city_in", "{user_field: city, operator: in, values: [york, Hull]}", users("5 12 15 17")),
    Case(
        "city_not_in_matches_missing",
        "{user_field: city, operator: not_in, values: [york, Hull]}",
        everyone_but("5 12 15 17"),
    ),
    Case("city_is_empty_matches_missing", "{user_field: city, operator: is_empty}", users("9")),
    Case("email_is_empty", "{user_field: email, operator: is_empty}", users("10")),
    Case(
        "department_not_empty", "{user_field: department, operator: not_empty}", everyone_but("9")
    ),
    Case(
        "idnumber_in_any_case",
        "{user_field: idnumber, operator: in, values: [u01, U02]}",
        users("1 2"),
    ),
    Case(
        "suspended_equals_1",
        '{user_field: suspended, operator: equals, values: ["1"]}',
        users("11"),
    ),
    Case(
        "suspended_equals_0",
        '{user_field: suspended, operator: equals, values: ["0"]}',
        everyone_but("11"),
    ),
    Case(
        "everyone_by_idnumber_not_empty", "{user_field: idnumber, operator: not_empty}", EVERYONE_1
    ),
    Case(
        "username_contains_underscore_is_literal",
        '{user_field: username, operator: contains, values: ["_"]}',
        users("16"),
    ),
    Case(
        "pattern_wildcards_are_literal",
        """\
any:
  - {user_field: username, operator: contains, values: ["%"]}
  - {user_field: email, operator: starts_with, values: ["_"]}
  - {user_field: lastname, operator: ends_with, values: ["%", "_"]}
""",
        frozenset(),
    ),
    Case(
        "values_are_trimmed",
        '{user_field: city, operator: equals, values: ["  leeds "]}',
        users("2 3 4 7 10 11 14"),
    ),
    Case(
        "not_equals_a_value_nobody_has_matches_everyone",
        "{user_field: city, operator: not_equals, values: [Atlantis]}",
        EVERYONE_1,
    ),
    # custom text field
    Case(
        "custom_text_equals_any_case",
        "{user_field: 'custom:employeetype', operator: equals, values: [PERMANENT]}",
        users("1 2 3 6 8 11 12 13 14 16"),
    ),
    Case(
        "custom_text_not_equals_two_values_matches_neither_and_missing",
        "{user_field: 'custom:employeetype', operator: not_equals,"
        " values: [Permanent, contractor]}",
        users("5 9 17"),
    ),
    Case(
        "custom_text_contains",
        "{user_field: 'custom:employeetype', operator: contains, values: [TERN]}",
        users("5 17"),
    ),
    Case(
        "custom_text_not_contains_matches_missing",
        "{user_field: 'custom:employeetype', operator: not_contains, values: [A]}",
        users("5 9 17"),
    ),
    Case(
        "custom_text_starts_with",
        "{user_field: 'custom:employeetype', operator: starts_with, values: [con]}",
        users("4 7 10 15"),
    ),
    Case(
        "custom_text_ends_with",
        "{user_field: 'custom:employeetype', operator: ends_with, values: [NENT]}",
        users("1 2 3 6 8 11 12 13 14 16"),
    ),
    Case(
        "custom_text_in",
        "{user_field: 'custom:employeetype', operator: in, values: [intern, Contractor]}",
        users("4 5 7 10 15 17"),
    ),
    Case(
        "custom_text_not_in_matches_missing",
        "{user_field: 'custom:employeetype', operator: not_in, values: [intern]}",
        everyone_but("5 17"),
    ),
    Case(
        "custom_text_is_empty_matches_missing",
        "{user_field: 'custom:employeetype', operator: is_empty}",
        users("9"),
    ),
    Case(
        "custom_text_not_empty",
        "{user_field: 'custom:employeetype', operator: not_empty}",
        everyone_but("9"),
    ),
    Case(
        "custom_field_nobody_has_is_empty_for_everyone",
        "{user_field: 'custom:nosuchfield', operator: is_empty}",
        EVERYONE_1,
    ),
    # --- security: rule values are data ----------------------------------------------------
    Case(
        "lastname_equals_sql_injection_text",
        """\
any:
  - {user_field: lastname, operator: equals, values: ["O'Brien; drop table dim_user; --"]}
  - {user_field: lastname, operator: equals, values: ['x"); drop table dim_user; --']}
""",
        users("13"),
    ),
    Case(
        "lastname_contains_sql_injection_text",
        '{user_field: lastname, operator: contains, values: ["brien; DROP TABLE dim_user; --"]}',
        users("13"),
    ),
    # --- date fields (inclusive bounds; a missing date never matches) ---------------------
    Case(
        "last_access_before_is_inclusive_of_the_day",
        "{date_field: last_access, operator: before, date: 2026-01-15}",
        users("2 6 11 15 16"),
    ),
    Case(
        "last_access_after_is_inclusive_of_the_day",
        "{date_field: last_access, operator: after, date: 2026-01-16}",
        users("1 3 4 7 8 10 12 13 14"),
    ),
    Case(
        "last_access_within_last_10_days",
        "{date_field: last_access, operator: within_last_days, days: 10}",
        users("1 4 7 8 12 13 14"),
    ),
    Case(
        "last_access_beyond_next_0_days_is_the_as_of_itself",
        "{date_field: last_access, operator: beyond_next_days, days: 0}",
        users("14"),
    ),
    Case(
        "first_access_older_than_365_days",
        "{date_field: first_access, operator: older_than_days, days: 365}",
        users("1 2 3 6 7 8 10 11 12 13 15 16"),
    ),
    Case(
        "first_access_older_than_0_days_never_matches_never_logged_in",
        "{date_field: first_access, operator: older_than_days, days: 0}",
        everyone_but("5 9 17"),
    ),
    Case(
        "custom_date_within_last_30_days",
        "{date_field: 'custom:hiredate', operator: within_last_days, days: 30}",
        users("4"),
    ),
    Case(
        "custom_date_within_next_14_days",
        "{date_field: 'custom:hiredate', operator: within_next_days, days: 14}",
        users("5"),
    ),
    Case(
        "custom_date_older_than_1000_days",
        "{date_field: 'custom:hiredate', operator: older_than_days, days: 1000}",
        users("1 2 3 6 10 11 12 13 15 16"),
    ),
    Case(
        "custom_date_beyond_next_30_days",
        "{date_field: 'custom:hiredate', operator: beyond_next_days, days: 30}",
        users("17"),
    ),
    Case(
        "custom_date_before",
        "{date_field: 'custom:hiredate', operator: before, date: 2020-01-01}",
        users("1 2 6 11 15 16"),
    ),
    Case(
        "custom_date_after_is_inclusive",
        "{date_field: 'custom:hiredate', operator: after, date: 2026-03-10}",
        users("5 17"),
    ),
    Case(
        "custom_date_before_is_inclusive",
        "{date_field: 'custom:hiredate', operator: before, date: 2026-02-25}",
        everyone_but("5 7 9 17"),
    ),
    Case(
        "custom_date_older_than_0_days_missing_never_matches",
        "{date_field: 'custom:hiredate', operator: older_than_days, days: 0}",
        everyone_but("5 7 9 17"),
    ),
    Case(
        "job_end_date_within_next_30_days",
        "{date_field: job_end_date, operator: within_next_days, days: 30}",
        users("4"),
    ),
    Case(
        "job_start_date_within_last_30_days",
        "{date_field: job_start_date, operator: within_last_days, days: 30}",
        users("4 5"),
    ),
    Case(
        "job_start_date_beyond_next_30_days",
        "{date_field: job_start_date, operator: beyond_next_days, days: 30}",
        users("17"),
    ),
    # --- organisation / position ------------------------------------------------------------
    Case("organisation_exact", "organisation: {ids: [O2]}", users("2")),
    Case("organisation_any_of_two", "organisation: {ids: [O2, O5]}", users("2 6 8 10 13")),
    Case(
        "organisation_include_children_two_levels_below",
        "organisation: {ids: [O2], include_children: true}",
        users("2 3 4 5 6 11 12 14 17"),
    ),
    Case(
        "organisation_include_children_from_the_root_covers_every_level",
        "organisation: {ids: [O1], include_children: true}",
        everyone_but("9"),
    ),
    Case(
        "organisation_negated_matches_users_without_a_job",
        "organisation: {ids: [O4], negate: true}",
        everyone_but("4 5 6 11 12 14"),
    ),
    Case(
        "organisation_negated_with_children",
        "organisation: {ids: [O2], include_children: true, negate: true}",
        users("1 7 8 9 10 13 15 16"),
    ),
    Case("position_exact", "position: {ids: [P3]}", users("3")),
    Case(
        "position_include_children_three_levels",
        "position: {ids: [P2], include_children: true}",
        users("2 3 4 5 6 7 8 11 12 14 15 17"),
    ),
    Case(
        "position_negated_matches_users_without_a_job",
        "position: {ids: [P4], negate: true}",
        users("1 2 3 8 9 10 13 16"),
    ),
    # exists a job whose item passes; no job never matches, also for negative operators
    Case(
        "organisation_type_equals_any_case",
        "organisation_type: {operator: equals, values: [DIVISION]}",
        users("2 6 8 10 13"),
    ),
    Case(
        "organisation_type_not_equals_exists_a_passing_job",
        "organisation_type: {operator: not_equals, values: [branch]}",
        users("1 2 3 6 7 8 10 13 16 17"),
    ),
    Case(
        "organisation_type_in",
        "organisation_type: {operator: in, values: [Region, branch]}",
        users("3 4 5 6 11 12 14 15 17"),
    ),
    Case(
        "organisation_type_not_in_exists_a_passing_job",
        "organisation_type: {operator: not_in, values: [branch, region, division]}",
        users("1 7 16"),
    ),
    Case(
        "organisation_type_is_empty_needs_a_job",
        "organisation_type: {operator: is_empty}",
        users("1 7 16"),
    ),
    Case(
        "organisation_custom_field_starts_with",
        "{organisation_custom_field: costcentre, operator: starts_with, values: [cc4, CC5]}",
        users("4 5 6 8 10 11 12 13 14"),
    ),
    Case(
        "organisation_custom_field_is_empty_needs_a_job",
        "{organisation_custom_field: costcentre, operator: is_empty}",
        users("3 17"),
    ),
    Case(
        "organisation_custom_field_not_equals_exists_a_passing_job",
        "{organisation_custom_field: costcentre, operator: not_equals, values: [cc410]}",
        users("1 2 3 6 7 8 10 13 15 16 17"),
    ),
    Case(
        "position_type_equals",
        "position_type: {operator: equals, values: [Leadership]}",
        users("1 2 8"),
    ),
    Case(
        "position_type_not_in_exists_a_passing_job",
        "position_type: {operator: not_in, values: [ROLE]}",
        users("1 2 6 8 10 13"),
    ),
    Case(
        "position_custom_field_in",
        "{position_custom_field: grade, operator: in, values: [g5, g7]}",
        users("1 2 8"),
    ),
    Case(
        "position_custom_field_is_empty_needs_a_job",
        "{position_custom_field: grade, operator: is_empty}",
        users("6 10 13"),
    ),
    Case(
        "position_custom_field_not_equals_exists_a_passing_job",
        "{position_custom_field: grade, operator: not_equals, values: [G2]}",
        users("1 2 3 6 8 10 13"),
    ),
    Case("job_title_contains", "job_title: {operator: contains, values: [MANAGER]}", users("3 7")),
    Case(
        "job_title_equals",
        "job_title: {operator: equals, values: [sales associate]}",
        users("4 5 6 11 12 14"),
    ),
    Case(
        "job_title_starts_with", "job_title: {operator: starts_with, values: [head]}", users("2 8")
    ),
    Case(
        "job_title_not_contains_exists_a_passing_job",
        "job_title: {operator: not_contains, values: [sales]}",
        users("1 6 7 8 10 13 15 16"),
    ),
    # --- management ----------------------------------------------------------------------------
    Case("has_direct_reports_true", "{has_direct_reports: true}", users("1 2 3 7 8")),
    Case("has_direct_reports_false", "{has_direct_reports: false}", everyone_but("1 2 3 7 8")),
    Case("reports_to_direct_only", "reports_to: {managers: [U02], direct_only: true}", users("3")),
    Case(
        "reports_to_all_below",
        "reports_to: {managers: [U02], direct_only: false}",
        users("3 4 5 6 11 12 14 17"),
    ),
    Case(
        "reports_to_all_below_from_the_top",
        "reports_to: {managers: [U01], direct_only: false}",
        everyone_but("1 9 16"),
    ),
    Case(
        "reports_to_any_of_two_managers", "reports_to: {managers: [U07, U08]}", users("6 10 13 15")
    ),
    # --- learning --------------------------------------------------------------------------------
    Case("courses_all", "course_completion: {ids: [C1, C2], match: all}", users("1 2 6 11 12")),
    Case(
        "courses_any_ignores_completions_after_the_as_of",
        "course_completion: {ids: [C1, C2], match: any}",
        users("1 2 3 4 6 11 12"),
    ),
    Case(
        "courses_not_all_includes_who_did_one_of_two",
        "course_completion: {ids: [C1, C2], match: not_all}",
        everyone_but("1 2 6 11 12"),
    ),
    Case(
        "courses_none_excludes_who_did_one_of_two",
        "course_completion: {ids: [C1, C2], match: none}",
        everyone_but("1 2 3 4 6 11 12"),
    ),
    Case(
        "courses_all_completed_after_applies_to_every_item",
        "course_completion: {ids: [C1, C2], match: all, completed_after: 2025-06-01}",
        users("2"),
    ),
    Case(
        "courses_any_completed_before",
        "course_completion: {ids: [C1, C2], match: any, completed_before: 2024-12-31}",
        users("3 6"),
    ),
    Case(
        "courses_any_within_last_30_days",
        "course_completion: {ids: [C1, C2], match: any, within_last_days: 30}",
        users("1 2 4"),
    ),
    Case(
        "courses_all_within_last_30_days",
        "course_completion: {ids: [C1, C2], match: all, within_last_days: 30}",
        users("2"),
    ),
    Case(
        "course_completed_between_two_dates",
        "course_completion: {ids: [C1], match: any, completed_after: 2025-01-01, "
        "completed_before: 2025-12-31}",
        users("1 11 12"),
    ),
    Case(
        "courses_none_within_last_30_days",
        "course_completion: {ids: [C1, C2], match: none, within_last_days: 30}",
        everyone_but("1 2 4"),
    ),
    Case(  # one course under two bounds: each leaf counts its own completions of it
        "course_completed_long_ago_and_again_lately",
        """\
all:
  - course_completion: {ids: [C1], match: any, completed_before: 2025-12-31}
  - course_completion: {ids: [C1], match: any, within_last_days: 30}
""",
        users("1"),
    ),
    # --- trees ---------------------------------------------------------------------------
    Case(
        "tree_depth_3_all_any_not",
        """\
all:
  - any:
      - {user_field: city, operator: equals, values: [Leeds]}
      - all:
          - {user_field: country, operator: equals, values: [IE]}
          - not: {user_field: department, operator: equals, values: [Finance]}
  - not:
      any:
        - {user_field: suspended, operator: equals, values: ["1"]}
        - {has_direct_reports: true}
""",
        users("4 6 10 14"),
    ),
    Case(
        "tree_of_negative_leaves",
        """\
any:
  - all:
      - {user_field: country, operator: not_equals, values: [GB]}
      - organisation: {ids: [O5], negate: true}
  - not:
      any:
        - {user_field: department, operator: not_equals, values: [Marketing]}
        - {user_field: city, operator: equals, values: [Hull]}
""",
        users("9 16"),
    ),
    Case(
        "tree_depth_6_double_not",
        """\
not:
  not:
    all:
      - {user_field: country, operator: equals, values: [GB]}
      - any:
          - position: {ids: [P4]}
          - not:
              course_completion: {ids: [C1], match: any}
""",
        users("4 5 7 10 11 12 14 15 16 17"),
    ),
    Case(
        "suspended_excluded_by_a_rule",
        """\
all:
  - {user_field: department, operator: equals, values: [sales]}
  - not: {user_field: suspended, operator: equals, values: ["1"]}
""",
        SALES - users("11"),
    ),
    Case(
        "any_of_a_rule_and_its_negation_is_everyone",
        """\
any:
  - organisation: {ids: [O4]}
  - organisation: {ids: [O4], negate: true}
""",
        EVERYONE_1,
    ),
    Case(
        "all_of_a_rule_and_its_negation_is_nobody",
        """\
all:
  - organisation: {ids: [O4]}
  - not: {organisation: {ids: [O4]}}
""",
        frozenset(),
    ),
    Case("dynamic_without_rules_has_no_members", None, frozenset()),
    # --- static ----------------------------------------------------------------------------------
    Case(
        "static_inline_list",
        None,
        users("9 11 12 16"),
        options="kind: static\nmembers: [U16, U09, U11, U12]",
    ),
    Case(
        "static_members_file",
        None,
        users("1 5"),
        options="kind: static\nmembers_file: static_members.csv",
    ),
    # --- membership (chain_c depends on chain_b, which depends on chain_a; file order reversed)
    Case(
        "chain_c",
        """\
all:
  - member_of: {audiences: [chain_b]}
  - {has_direct_reports: false}
""",
        users("4 11 14"),
    ),
    Case(
        "chain_b",
        """\
all:
  - member_of: {audiences: [chain_a]}
  - {user_field: city, operator: equals, values: [leeds]}
""",
        users("2 3 4 11 14"),
    ),
    Case("chain_a", "{user_field: department, operator: equals, values: [Sales]}", SALES),
    Case(
        "not_member_of_chain_b",
        "not_member_of: {audiences: [chain_b]}",
        everyone_but("2 3 4 11 14"),
    ),
    Case(
        "not_of_member_of",
        "not: {member_of: {audiences: [chain_b]}}",
        everyone_but("2 3 4 11 14"),
    ),
    Case(
        "member_of_broken",
        "member_of: {audiences: [broken_when_o6_is_removed]}",
        users("15"),
    ),
    Case(
        "member_of_any_listed",
        "member_of: {audiences: [static_inline_list, static_members_file]}",
        users("1 5 9 11 12 16"),
    ),
    # --- window and switches (run 2 checked in test_runs.py) ---------------------------------
    Case("org_o4", "organisation: {ids: [O4]}", O4_PEOPLE),
    Case("org_o5", "organisation: {ids: [O5]}", users("6 8 10 13")),
    Case(
        "window_until_as_of_day_is_open_then_frozen",
        "organisation: {ids: [O4]}",
        O4_PEOPLE,
        options="active_until: 2026-03-02",
    ),
    Case(
        "window_from_future_is_frozen_empty",
        "{user_field: department, operator: equals, values: [Sales]}",
        frozenset(),
        options="active_from: 2026-04-01",
    ),
    Case(
        "window_opening_on_run_2_day",
        "organisation: {ids: [O4]}",
        frozenset(),
        options="active_from: 2026-03-09\nactive_until: 2026-12-31",
    ),
    Case(
        "add_only",
        "organisation: {ids: [O4]}",
        O4_PEOPLE,
        options="add_members: true\nremove_members: false",
    ),
    Case(
        "remove_only_from_the_start_never_adds",
        "organisation: {ids: [O4]}",
        frozenset(),
        options="add_members: false\nremove_members: true",
    ),
    Case(
        "remove_only_in_run_2",
        "organisation: {ids: [O4]}",
        O4_PEOPLE,
        options="add_members: true  # run 2: false\nremove_members: true",
    ),
    Case(
        "paused_in_run_2",
        "organisation: {ids: [O4]}",
        O4_PEOPLE,
        options="add_members: true  # run 2: false\nremove_members: true  # run 2: false",
    ),
    Case("member_of_paused", "member_of: {audiences: [paused_in_run_2]}", O4_PEOPLE),
    Case("broken_when_o6_is_removed", "organisation: {ids: [O6]}", users("15")),
)

CASE_BY_ID = {case.id: case for case in CASES}


def audiences_yaml(run: int) -> str:
    """audiences.yaml of run 1 or run 2 (run 2 turns the `# run 2: false` switches off)."""
    lines = ["audiences:"]
    for case in CASES:
        options = case.options
        if run == 2:
            options = options.replace("true  # run 2: false", "false")
        body = [f"id: {case.id}", f"name: {case.id.replace('_', ' ').capitalize()}"]
        if "kind: static" not in options:
            body.append("kind: dynamic")
        body += options.splitlines()
        if case.rules is not None:
            body.append("rules:")
            body += ["  " + line for line in case.rules.rstrip("\n").splitlines()]
        lines.append("  - " + body[0])
        lines += ["    " + line for line in body[1:]]
    return "\n".join(lines) + "\n"
