"""Deterministic demo organisation, written as Totara HR Import feeds (SPEC §3.1, §9).

``generate_feeds(out_dir, users)`` writes ``org.csv``, ``pos.csv``, ``user.csv``,
``jobassignment.csv``, ``course.csv``, ``course_completion.csv`` and ``user_access.csv`` for
an organisation of any size: an organisation tree (about one item per 50 users, up to six
levels), a position tree (job families and roles), users, job assignments with a management
tree (one CEO, spans of about 5-10, some people with a second job), a course catalogue, a
completion history with annual recertification, and LMS access dates.

Determinism. The same (users, seed, epoch, bad_rows, as_of) gives byte-identical files.
Small tables (organisations, positions, courses) are built in Python with ``random.Random``
seeded by a string (string seeds go through SHA-512: stable across runs and machines). Every
per-person and per-row value comes from splitmix64 written as polars expressions (UInt64
arithmetic wraps), keyed by (seed, a stream name, the row's keys). polars' own ``hash`` is
not promised to be stable across versions, so it is not used. Each file is sorted on its key.

Time. Hire dates and contract ends are anchored to ``REFERENCE_DATE`` rather than ``as_of``,
so moving ``as_of`` does not rewrite everyone; ``as_of`` cuts the completion history and
sets the access dates (everything is strictly before ``as_of`` 00:00 UTC). Epoch ``k`` is the
organisation after ``k`` rounds of churn, one round a week (``EPOCH_DAYS``) ending on
``as_of``: for a consistent timeline run epoch k with ``as_of = start + 7k days``.

Churn per round: ~1 % leavers (reports go to the leaver's manager), ~1 % joiners (new
idnumbers after the original range), ~1.5 % moves to another team (org, manager, position),
~0.5 % promotions, a few surname, email and suspension changes, two organisations renamed,
one small organisation subtree dissolved (its jobs moved to its parent first), and ~5 % of
learners completing one more course that week. Removals stay far below 10 % of any element.

Management graph. Only people who manage nobody ever gain a new manager edge (second jobs,
moves, joiners), and leavers are contracted into their manager, so the graph stays acyclic by
construction; tests walk it anyway.

Bad rows (``bad_rows=True``): thirteen rows, the same whatever the size, each listed in the
report; they are extra rows (or rows of extra users and organisations) that no good row
depends on.

Formats: UTF-8 CSV, comma, header row, LF line ends, no quoting needed (no value holds
a comma, quote or newline). Empty cell = no value. ``timemodified`` is Unix seconds; dates
(``startdate``, ``enddate``, ``customfield_hiredate``) are ``YYYY-MM-DD``; ``timecompleted``,
``firstaccess`` and ``lastaccess`` are ``YYYY-MM-DDTHH:MM:SSZ`` (UTC); flags are 0/1 and
``deleted`` is 0 on every row (full feeds: absence is the removal). ``FEED_COLUMNS`` lists
the columns of each file.

Timings (2-core machine shared with other work, polars 2.1, measured by hand: wall clock of
``generate_feeds`` with the files written, and the peak RSS of the process):

=========  ========  ==============================================  ========
users      seconds   rows written                                    peak RSS
=========  ========  ==============================================  ========
10,000     0.2       203 orgs, 11k jobs, 0.19M completions            0.13 GB
100,000    1.5-2.0   2k orgs, 110k jobs, 1.9M completions             0.5 GB
1,000,000  17-25     20k orgs, 1.1M jobs, 19.3M completions (1 GB)    3.5 GB
=========  ========  ==============================================  ========

Epoch 1 at 1M users took 28-31 s.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import random
import unicodedata
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from flows.hr_import.elements import ELEMENTS

# --- public API ----------------------------------------------------------------------------


@dataclass(frozen=True)
class InjectedBadRow:
    """One deliberately invalid row and the rejection the importer should give it."""

    element: str  # file stem: org, pos, user, jobassignment, course, course_completion, ...
    record_id: str  # key of the bad row (jobassignment: "<useridnumber>/<idnumber>")
    reason_code: str
    description: str


@dataclass(frozen=True)
class GenerationReport:
    """What :func:`generate_feeds` wrote."""

    out_dir: Path
    users: int
    seed: int
    epoch: int
    rows: dict[str, int]  # element -> data rows written (excluding header, including bad rows)
    bad_rows: tuple[InjectedBadRow, ...]
    rule_mix: dict[str, str]  # short notes for docs: how the population splits


REFERENCE_DATE = date(2026, 11, 1)
"""Anchor of hire dates and contract ends (not ``as_of``, so history does not move with it)."""
LMS_LAUNCH = date(2019, 1, 7)
"""The LMS went live: no completion or access before this day."""
EPOCH_DAYS = 7
"""One churn round is a week; round k of an epoch-n file ends (n - k) weeks before as_of."""
MAX_USERS = 4_000_000
"""Beyond this the extra idnumbers of the bad rows (U99999xx, ORG999xx) could collide."""

COMPANY = "Northwind"
ORG_FRAMEWORK = "ORGFW1"
POS_FRAMEWORK = "POSFW1"
EMAIL_DOMAIN = "example.com"


def _feed_columns(element: str, *custom_fields: str) -> tuple[str, ...]:
    """Every Totara column HR Import knows for `element`, in its order, then custom fields."""
    spec = ELEMENTS[element]
    return spec.required + spec.optional + tuple(f"customfield_{name}" for name in custom_fields)


FEED_COLUMNS: dict[str, tuple[str, ...]] = {
    "org": _feed_columns("org", "costcentre"),
    "pos": _feed_columns("pos", "grade"),
    "user": _feed_columns("user", "hiredate", "employeetype", "region"),
    "jobassignment": _feed_columns("jobassignment"),
    "course": _feed_columns("course"),
    "course_completion": _feed_columns("course_completion"),
    "user_access": _feed_columns("user_access"),
}
"""Columns written per file, in order (file name = element + '.csv')."""

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
DATE_FORMAT = "%Y-%m-%d"


def generate_feeds(
    out_dir: Path,
    users: int,
    *,
    seed: int = 7,
    epoch: int = 0,
    bad_rows: bool = True,
    as_of: date = date(2026, 11, 1),
) -> GenerationReport:
    """Write the seven feed files of a ``users``-person organisation into ``out_dir``.

    ``epoch`` k > 0 applies k weekly rounds of churn to the same organisation; ``as_of`` is
    the snapshot date (completions and access strictly before it). With ``bad_rows`` a fixed
    set of invalid rows is mixed in and listed in the report.
    """
    if not 1 <= users <= MAX_USERS:
        raise ValueError(f"users must be between 1 and {MAX_USERS:,}, got {users}")
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    as_of_day = _day(as_of)

    positions = _positions()
    catalogue = _catalogue(_course_count(users), seed)
    state = _initial_state(users, seed)
    churn_notes: list[str] = []
    for step in range(1, epoch + 1):
        state, note = _churn(state, seed, step, as_of_day - (epoch - step) * EPOCH_DAYS)
        churn_notes.append(note)

    completions = _completions(state.users, catalogue, seed, epoch, as_of_day)
    access = _access(state.users, completions, seed, as_of_day)
    tables = {
        "org": _org_rows(state.orgs),
        "pos": positions.rows,
        "user": _user_rows(state.users),
        "jobassignment": _job_rows(state.jobs),
        "course": catalogue.courses.select(FEED_COLUMNS["course"]),
        "course_completion": _completion_rows(completions),
        "user_access": _access_rows(access),
    }
    injected: dict[str, list[tuple[float, dict[str, str]]]] = {name: [] for name in tables}
    listed: tuple[InjectedBadRow, ...] = ()
    if bad_rows:
        injected, listed = _bad_rows(state, as_of_day)

    rows = {}
    for element, frame in tables.items():
        _write_feed(out_dir / f"{element}.csv", frame, injected[element])
        rows[element] = frame.height + len(injected[element])

    mix = _rule_mix(state, completions, access, catalogue, churn_notes)
    return GenerationReport(
        out_dir=out_dir,
        users=users,
        seed=seed,
        epoch=epoch,
        rows=rows,
        bad_rows=listed,
        rule_mix=mix,
    )


# --- reference data ------------------------------------------------------------------------

# (name, short code, share of the organisation, customer-facing: sites are "Branch"es)
DIVISIONS: tuple[tuple[str, str, float, bool], ...] = (
    ("Sales", "SAL", 1.6, True),
    ("Operations", "OPS", 1.5, True),
    ("Customer Service", "CSV", 1.4, True),
    ("Finance", "FIN", 0.7, False),
    ("Human Resources", "HR", 0.5, False),
    ("Information Technology", "IT", 0.8, False),
    ("Engineering", "ENG", 1.2, False),
    ("Marketing", "MKT", 0.5, False),
    ("Supply Chain", "SCM", 1.0, True),
    ("Legal", "LEG", 0.3, False),
    ("Research and Development", "RND", 0.6, False),
    ("Procurement", "PRC", 0.3, False),
)

DIVISION_RENAMES = {
    "Human Resources": "People and Culture",
    "Customer Service": "Customer Experience",
    "Information Technology": "Digital and Technology",
    "Supply Chain": "Logistics",
    "Research and Development": "Innovation",
    "Procurement": "Strategic Sourcing",
    "Marketing": "Brand and Marketing",
    "Operations": "Service Delivery",
}

# Job families in DIVISIONS order, then the executive family: name, four individual
# contributor roles (most junior first), the team lead role and the head role, with grades.
_Role = tuple[str, str]
FAMILIES: tuple[tuple[str, tuple[_Role, _Role, _Role, _Role], _Role, _Role], ...] = (
    (
        "Sales",
        (
            ("Sales Representative", "G3"),
            ("Account Manager", "G4"),
            ("Senior Account Manager", "G5"),
            ("Key Account Director", "G7"),
        ),
        ("Sales Manager", "G6"),
        ("Sales Director", "G9"),
    ),
    (
        "Operations",
        (
            ("Operations Coordinator", "G3"),
            ("Operations Analyst", "G4"),
            ("Senior Operations Analyst", "G5"),
            ("Operations Specialist", "G6"),
        ),
        ("Operations Manager", "G6"),
        ("Operations Director", "G9"),
    ),
    (
        "Customer Service",
        (
            ("Customer Service Advisor", "G2"),
            ("Senior Customer Service Advisor", "G3"),
            ("Complaints Specialist", "G4"),
            ("Customer Experience Analyst", "G5"),
        ),
        ("Customer Service Team Leader", "G5"),
        ("Customer Service Director", "G9"),
    ),
    (
        "Finance",
        (
            ("Finance Assistant", "G2"),
            ("Accountant", "G4"),
            ("Senior Accountant", "G5"),
            ("Financial Controller", "G7"),
        ),
        ("Finance Manager", "G6"),
        ("Finance Director", "G9"),
    ),
    (
        "Human Resources",
        (
            ("HR Administrator", "G2"),
            ("HR Advisor", "G4"),
            ("Senior HR Advisor", "G5"),
            ("HR Business Partner", "G6"),
        ),
        ("HR Manager", "G6"),
        ("People Director", "G9"),
    ),
    (
        "Information Technology",
        (
            ("Service Desk Analyst", "G2"),
            ("Systems Administrator", "G4"),
            ("Senior Systems Engineer", "G5"),
            ("Cloud Architect", "G7"),
        ),
        ("IT Manager", "G6"),
        ("Head of IT", "G9"),
    ),
    (
        "Engineering",
        (
            ("Graduate Engineer", "G3"),
            ("Engineer", "G4"),
            ("Senior Engineer", "G5"),
            ("Principal Engineer", "G7"),
        ),
        ("Engineering Manager", "G6"),
        ("Head of Engineering", "G9"),
    ),
    (
        "Marketing",
        (
            ("Marketing Assistant", "G2"),
            ("Marketing Executive", "G4"),
            ("Senior Marketing Executive", "G5"),
            ("Brand Strategist", "G6"),
        ),
        ("Marketing Manager", "G6"),
        ("Marketing Director", "G9"),
    ),
    (
        "Supply Chain",
        (
            ("Warehouse Operative", "G1"),
            ("Logistics Coordinator", "G3"),
            ("Supply Chain Analyst", "G4"),
            ("Senior Planner", "G5"),
        ),
        ("Warehouse Manager", "G6"),
        ("Supply Chain Director", "G9"),
    ),
    (
        "Legal",
        (
            ("Paralegal", "G3"),
            ("Solicitor", "G5"),
            ("Senior Solicitor", "G6"),
            ("Senior Counsel", "G7"),
        ),
        ("Legal Team Leader", "G7"),
        ("General Counsel", "G9"),
    ),
    (
        "Research and Development",
        (
            ("Research Assistant", "G3"),
            ("Research Scientist", "G5"),
            ("Senior Research Scientist", "G6"),
            ("Principal Scientist", "G7"),
        ),
        ("Research Manager", "G7"),
        ("Head of Research", "G9"),
    ),
    (
        "Procurement",
        (
            ("Buyer", "G3"),
            ("Category Specialist", "G4"),
            ("Senior Category Manager", "G6"),
            ("Contracts Specialist", "G5"),
        ),
        ("Procurement Manager", "G6"),
        ("Procurement Director", "G9"),
    ),
    (
        "Executive",
        (
            ("Executive Assistant", "G4"),
            ("Business Analyst", "G5"),
            ("Strategy Analyst", "G5"),
            ("Communications Adviser", "G5"),
        ),
        ("Chief of Staff", "G8"),
        ("Chief Executive Officer", "G10"),
    ),
)
EXECUTIVE_FAMILY = len(FAMILIES) - 1
IC_WEIGHTS = (0.30, 0.42, 0.21, 0.07)
SECONDARY_ROLES = (
    "Fire Warden",
    "First Aider",
    "Mentor",
    "Project Lead",
    "Health and Safety Representative",
    "Graduate Buddy",
    "Wellbeing Champion",
)
# Positions are numbered 7 per family (family node, 4 ICs, lead, head), so a position
# number is arithmetic on the family index, cheap to compute for a million people.
_POS_PER_FAMILY = 7
_POS_IC, _POS_LEAD, _POS_HEAD = 2, 6, 7
_SECONDARY_BASE = _POS_PER_FAMILY * len(FAMILIES) + 1  # the "Additional Duties" family node

# region -> (short code, staffing multiplier)
REGIONS: dict[str, tuple[str, float]] = {
    "UK & Ireland": ("UKI", 1.5),
    "APAC": ("APAC", 1.2),
    "EMEA": ("EMEA", 0.8),
    "Americas": ("AMER", 0.7),
}
COUNTRY_REGION = {
    "GB": "UK & Ireland",
    "IE": "UK & Ireland",
    "NZ": "APAC",
    "AU": "APAC",
    "IN": "APAC",
    "SG": "APAC",
    "DE": "EMEA",
    "FR": "EMEA",
    "ZA": "EMEA",
    "US": "Americas",
    "CA": "Americas",
}
# (city, code, ISO 3166-1 country, IANA timezone, relative share of people living there)
CITIES: tuple[tuple[str, str, str, str, float], ...] = (
    ("London", "LON", "GB", "Europe/London", 14.0),
    ("Manchester", "MAN", "GB", "Europe/London", 5.0),
    ("Birmingham", "BHM", "GB", "Europe/London", 4.0),
    ("Leeds", "LDS", "GB", "Europe/London", 3.0),
    ("Bristol", "BRS", "GB", "Europe/London", 3.0),
    ("Edinburgh", "EDI", "GB", "Europe/London", 3.0),
    ("Glasgow", "GLA", "GB", "Europe/London", 3.0),
    ("Cardiff", "CWL", "GB", "Europe/London", 2.0),
    ("Belfast", "BFS", "GB", "Europe/London", 1.5),
    ("Dublin", "DUB", "IE", "Europe/Dublin", 2.0),
    ("Cork", "ORK", "IE", "Europe/Dublin", 0.5),
    ("Auckland", "AKL", "NZ", "Pacific/Auckland", 7.0),
    ("Wellington", "WLG", "NZ", "Pacific/Auckland", 4.0),
    ("Christchurch", "CHC", "NZ", "Pacific/Auckland", 3.0),
    ("Hamilton", "HLZ", "NZ", "Pacific/Auckland", 1.0),
    ("Dunedin", "DUD", "NZ", "Pacific/Auckland", 1.0),
    ("Sydney", "SYD", "AU", "Australia/Sydney", 5.0),
    ("Melbourne", "MEL", "AU", "Australia/Melbourne", 4.0),
    ("Brisbane", "BNE", "AU", "Australia/Brisbane", 2.0),
    ("Perth", "PER", "AU", "Australia/Perth", 1.5),
    ("Adelaide", "ADL", "AU", "Australia/Adelaide", 1.0),
    ("Mumbai", "BOM", "IN", "Asia/Kolkata", 2.0),
    ("Bengaluru", "BLR", "IN", "Asia/Kolkata", 2.5),
    ("Pune", "PNQ", "IN", "Asia/Kolkata", 1.0),
    ("Singapore", "SIN", "SG", "Asia/Singapore", 1.0),
    ("Berlin", "BER", "DE", "Europe/Berlin", 2.5),
    ("Munich", "MUC", "DE", "Europe/Berlin", 2.0),
    ("Hamburg", "HAM", "DE", "Europe/Berlin", 1.5),
    ("Frankfurt", "FRA", "DE", "Europe/Berlin", 1.0),
    ("Düsseldorf", "DUS", "DE", "Europe/Berlin", 0.8),
    ("Paris", "PAR", "FR", "Europe/Paris", 3.0),
    ("Lyon", "LYS", "FR", "Europe/Paris", 1.0),
    ("Toulouse", "TLS", "FR", "Europe/Paris", 0.8),
    ("Johannesburg", "JNB", "ZA", "Africa/Johannesburg", 1.5),
    ("Cape Town", "CPT", "ZA", "Africa/Johannesburg", 1.5),
    ("Durban", "DUR", "ZA", "Africa/Johannesburg", 0.5),
    ("New York", "NYC", "US", "America/New_York", 4.0),
    ("Chicago", "CHI", "US", "America/Chicago", 2.0),
    ("Austin", "AUS", "US", "America/Chicago", 1.5),
    ("Denver", "DEN", "US", "America/Denver", 1.0),
    ("San Francisco", "SFO", "US", "America/Los_Angeles", 2.0),
    ("Seattle", "SEA", "US", "America/Los_Angeles", 1.0),
    ("Boston", "BOS", "US", "America/New_York", 1.5),
    ("Toronto", "YYZ", "CA", "America/Toronto", 1.5),
    ("Vancouver", "YVR", "CA", "America/Vancouver", 0.8),
)
INSTITUTIONS = {
    "GB": "Northwind UK Ltd",
    "IE": "Northwind Ireland Ltd",
    "NZ": "Northwind New Zealand Ltd",
    "AU": "Northwind Australia Pty Ltd",
    "IN": "Northwind India Pvt Ltd",
    "SG": "Northwind Singapore Pte Ltd",
    "DE": "Northwind Deutschland GmbH",
    "FR": "Northwind France SAS",
    "ZA": "Northwind South Africa (Pty) Ltd",
    "US": "Northwind Inc.",
    "CA": "Northwind Canada Inc.",
}
LANGUAGES = {"US": "en_us", "DE": "de", "FR": "fr"}  # everyone else: en
EMPLOYEE_TYPES = ("Permanent", "Contractor", "Intern")
EMPLOYEE_TYPE_WEIGHTS = (0.85, 0.12, 0.03)
TEAM_WORDS = (
    "Kauri",
    "Rimu",
    "Tōtara",
    "Kōwhai",
    "Pōhutukawa",
    "Harakeke",
    "Oak",
    "Ash",
    "Birch",
    "Cedar",
    "Maple",
    "Rowan",
    "Willow",
    "Hazel",
    "Alder",
    "Elm",
    "Aspen",
    "Juniper",
    "Larch",
    "Banksia",
    "Wattle",
    "Jacaranda",
    "Protea",
    "Baobab",
    "Linden",
    "Magnolia",
    "Sequoia",
    "Redwood",
)

FIRST_NAMES = (
    "Oliver", "Amelia", "Jack", "Isla", "Noah", "Olivia", "Harry", "Ava", "George", "Mia",
    "Leo", "Charlotte", "Arthur", "Sophia", "Oscar", "Grace", "William", "Lily", "James",
    "Emily", "Thomas", "Freya", "Henry", "Ella", "Charlie", "Zoë", "Chloé", "José", "Renée",
    "Siobhán", "Seán", "Aoife", "Niamh", "Ciarán", "Pádraig", "Aroha", "Mere", "Wiremu",
    "Tāne", "Hēmi", "Ngaio", "Rangi", "Anahera", "Kiri", "Manaia", "Sione", "Losa", "Mele",
    "Tevita", "Priya", "Arjun", "Ananya", "Rohan", "Aarav", "Diya", "Vikram", "Kavya",
    "Sanjay", "Lakshmi", "Wei", "Mei", "Jun", "Hana", "Yuki", "Hiroshi", "Min-jun", "Ji-woo",
    "Thandiwe", "Sipho", "Lerato", "Themba", "Naledi", "Johan", "Pieter", "Anneke", "Lukas",
    "Lena", "Jürgen", "Jörg", "Björn", "Søren", "Maximilian", "Sophie", "Felix", "Emma",
    "Hannah", "Paul", "Léa", "Hugo", "Louis", "Inès", "Théo", "Manon", "Gaël", "Camille",
    "Jules", "Élodie", "François", "Matteo", "Giulia", "Lucía", "Mateo", "Sofía", "Javier",
    "Ana", "Carlos", "Fatima", "Omar", "Aisha", "Yusuf", "Layla", "Ibrahim", "Olga",
    "Dmitri", "Katarzyna", "Piotr", "Zofia", "Michael", "Jennifer", "David", "Sarah", "John",
    "Jessica", "Robert", "Ashley", "Daniel", "Tyler", "Madison", "Brandon", "Hailey", "Jacob",
    "Abigail", "Ethan", "Liam", "Ruby", "Mason", "Harper", "Lucas", "Zara", "Nathan",
    "Tegan", "Callum", "Eilidh", "Rhys", "Cerys", "Dylan", "Megan", "Ryan", "Kirsty", "Jamie",
    "Bethany", "Sam", "Alex", "Morgan", "Ingrid", "Astrid", "Mohammed", "Nadia", "Tomás",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Jones", "Williams", "Brown", "Taylor", "Davies", "Evans", "Wilson", "Thomas",
    "Johnson", "Roberts", "Walker", "Wright", "Robinson", "Thompson", "White", "Hughes",
    "Edwards", "Green", "Hall", "Wood", "Harris", "Clarke", "Jackson", "Turner", "Hill",
    "Moore", "Cooper", "Ward", "Morris", "King", "Baker", "Harrison", "Morgan", "Patel",
    "Shah", "Singh", "Kaur", "Sharma", "Gupta", "Iyer", "Reddy", "Nair", "Das", "O'Brien",
    "O'Connor", "O'Sullivan", "Murphy", "Kelly", "Byrne", "Ryan", "Walsh", "McCarthy",
    "MacDonald", "McLeod", "Campbell", "Stewart", "Murray", "Ngata", "Te Whāiti", "Pōmare",
    "Parata", "Tuhiwai", "Horomona", "Tamihana", "Faleolo", "Tuilagi", "Fonoti", "Tupou",
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
    "Schäfer", "Koch", "Krüger", "Hoffmann", "Schröder", "Martin", "Bernard", "Dubois",
    "Petit", "Durand", "Leroy", "Moreau", "Lefèvre", "Girard", "Rousseau", "Nguyễn", "Tran",
    "Pham", "Wang", "Li", "Zhang", "Chen", "Liu", "Yang", "Huang", "Kim", "Park", "Lee",
    "Choi", "Tanaka", "Suzuki", "Sato", "Dlamini", "Nkosi", "Ndlovu", "Mokoena", "Khumalo",
    "van der Merwe", "Botha", "Pretorius", "du Plessis", "Naidoo", "Pillay", "García",
    "Rodríguez", "Fernández", "López", "Martínez", "González", "Silva", "Santos", "Rossi",
    "Bianchi", "Kowalski", "Nowak", "Wiśniewski", "Andersen", "Johansson", "Nilsson",
    "Núñez", "Østergaard", "Ahmed", "Khan", "Ali", "Hussain", "Rahman", "Cohen", "Levi",
    "Miller", "Davis", "Anderson", "Hernandez", "Young", "Allen", "Scott", "Adams", "Nelson",
    "Carter", "Mitchell", "Perez", "Phillips", "Parker", "Collins", "Hunt", "Sanders",
)  # fmt: skip

RECURRING_COURSES: tuple[tuple[str, float], ...] = (
    ("Data Protection Essentials", 0.90),
    ("Code of Conduct", 0.60),
    ("Information Security Awareness", 0.45),
    ("Health and Safety Refresher", 0.30),
    ("Diversity and Inclusion", 0.20),
    ("Anti-Bribery and Corruption", 0.15),
    ("Manual Handling", 0.10),
)
"""Annual recertification courses, with the share of people enrolled in each."""
VERSIONED_COURSE = "Fire Safety"
VERSIONED_YEARS = (2021, 2022, 2023, 2024, 2025, 2026)
VERSIONED_TAKE_UP = 0.75
ELECTIVE_TOPICS = (
    "Excel", "Presenting with Confidence", "Negotiation Skills", "Project Management",
    "Agile Ways of Working", "SQL for Analysts", "Python Programming", "Customer Empathy",
    "Time Management", "Coaching Conversations", "Unconscious Bias", "Resilience at Work",
    "Mental Health First Aid", "Budgeting", "Contract Law", "Cloud Computing",
    "Cyber Security", "Data Visualisation", "Giving Feedback", "Leading Remote Teams",
    "Change Management", "Business Writing", "Critical Thinking", "Design Thinking",
    "Stakeholder Management", "Emotional Intelligence", "Sales Prospecting",
    "Complaint Handling", "Lean Six Sigma", "Risk Management", "Financial Modelling",
    "Procurement Basics", "Supply Chain Planning", "Warehouse Safety", "Forklift Operation",
    "Recruitment and Interviewing", "Performance Conversations", "Accessibility",
    "Sustainability at Work", "Te Reo Māori", "Conflict Resolution", "Public Speaking",
    "Product Management", "UX Research", "Machine Learning", "Statistics", "Power BI",
    "Network Fundamentals", "Linux Administration", "Software Testing", "Copywriting",
    "Social Media Marketing", "Brand Storytelling", "Influencing Skills",
    "Decision Making", "Delegation", "Mentoring", "Well-being", "Intercultural Awareness",
    "Plain Language",
)  # fmt: skip
ELECTIVE_LEVELS = ("Essentials", "Intermediate", "Advanced", "Masterclass")
ELECTIVE_VARIANTS = ("", " for Managers", " in Practice")

# --- small helpers -------------------------------------------------------------------------

_EPOCH_DATE = date(1970, 1, 1)
_SECONDS_PER_DAY = 86_400
_REF_DAY = (REFERENCE_DATE - _EPOCH_DATE).days
_LMS_DAY = (LMS_LAUNCH - _EPOCH_DATE).days


def _day(value: date) -> int:
    """Days since 1970-01-01 (the integer form of pl.Date)."""
    return (value - _EPOCH_DATE).days


def _date(day: int) -> date:
    return _EPOCH_DATE + timedelta(days=day)


def _fold(name: str) -> str:
    """ASCII letters of a name, lower case, for usernames and emails ("Te Whāiti" -> tewhaiti)."""
    special = {"ß": "ss", "ø": "o", "Ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d"}
    text = "".join(special.get(ch, ch) for ch in name)
    text = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in text.lower() if "a" <= ch <= "z")


def _apportion(total: int, weights: Sequence[float]) -> list[int]:
    """Split ``total`` into integers proportional to ``weights`` (largest remainder)."""
    weight_sum = sum(weights)
    if total <= 0 or weight_sum <= 0:
        return [0] * len(weights)
    shares = [total * w / weight_sum for w in weights]
    counts = [math.floor(s) for s in shares]
    by_remainder = sorted(range(len(weights)), key=lambda i: (counts[i] - shares[i], i))
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _removal_count(population: int, rate: float) -> int:
    """How many to remove or change: ``rate`` of the population, at least one when one is
    still a small share (so tiny demos churn too, but never past the 10 % removal guard)."""
    if population * 0.05 < 1:
        return 0
    return max(1, round(population * rate))


def _rng(seed: int, stream: str) -> random.Random:
    return random.Random(f"{seed}:{stream}")


# --- deterministic hashing (splitmix64 in polars) ------------------------------------------

_U64 = pl.UInt64
_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB
_KEY_MULTIPLIERS = (0xD6E8FEB86659FD93, 0xA0761D6478BD642F, 0xE7037ED1A0B428DB)


def _splitmix(value: int) -> int:
    z = (value + _GOLDEN) & _MASK64
    z = ((z ^ (z >> 30)) * _MIX1) & _MASK64
    z = ((z ^ (z >> 27)) * _MIX2) & _MASK64
    return z ^ (z >> 31)


def _stream_key(seed: int, stream: str) -> int:
    # crc32, not hash(): Python salts str hashes per process.
    return _splitmix(_splitmix(seed & _MASK64) ^ zlib.crc32(stream.encode()))


def _shr(expr: pl.Expr, bits: int) -> pl.Expr:
    return expr // pl.lit(1 << bits, dtype=_U64)


def _mix(x: pl.Expr) -> pl.Expr:
    z = x + pl.lit(_GOLDEN, dtype=_U64)
    z = (z ^ _shr(z, 30)) * pl.lit(_MIX1, dtype=_U64)
    z = (z ^ _shr(z, 27)) * pl.lit(_MIX2, dtype=_U64)
    return z ^ _shr(z, 31)


def _hash(seed: int, stream: str, *keys: pl.Expr | int) -> pl.Expr:
    """A uniform UInt64 per row from (seed, stream, keys); keys are non-negative integers."""
    if len(keys) > len(_KEY_MULTIPLIERS):
        raise ValueError("at most three hash keys")
    x = pl.lit(_stream_key(seed, stream), dtype=_U64)
    for multiplier, key in zip(_KEY_MULTIPLIERS, keys, strict=False):
        key_expr = key if isinstance(key, pl.Expr) else pl.lit(key)
        x = x + key_expr.cast(_U64) * pl.lit(multiplier, dtype=_U64)
    return _mix(x)


def _unit(h: pl.Expr) -> pl.Expr:
    """Uniform float in [0, 1) from the top 53 bits of a hash."""
    return _shr(h, 11).cast(pl.Float64) * (1.0 / (1 << 53))


def _bits(h: pl.Expr, shift: int, modulo: int | pl.Expr) -> pl.Expr:
    """An integer in [0, modulo) from the bits of ``h`` above ``shift`` (independent fields
    of one hash, so a 20M-row table needs one hash per row, not five)."""
    m = modulo.cast(_U64) if isinstance(modulo, pl.Expr) else pl.lit(modulo, dtype=_U64)
    return (_shr(h, shift) % m).cast(pl.Int64)


def _pick(values: Sequence[str], index: pl.Expr) -> pl.Expr:
    return pl.lit(pl.Series(list(values), dtype=pl.String)).gather(index)


def _weighted(u: pl.Expr, weights: Sequence[float]) -> pl.Expr:
    """Index of the bucket a uniform ``u`` falls in, buckets sized by ``weights``."""
    total = sum(weights)
    bounds, running = [], 0.0
    for w in weights[:-1]:
        running += w / total
        bounds.append(running)
    return pl.lit(pl.Series(bounds, dtype=pl.Float64)).search_sorted(u, side="right").cast(pl.Int64)


def _code(prefix: str, width: int, number: pl.Expr) -> pl.Expr:
    """``prefix`` + zero-padded number (null stays null, i.e. an empty cell)."""
    return pl.concat_str(pl.lit(prefix), number.cast(pl.String).str.zfill(width))


def _user_id(number: pl.Expr) -> pl.Expr:
    return _code("U", 7, number)


def _org_id(number: pl.Expr) -> pl.Expr:
    return _code("ORG", 5, number)


def _pos_id(number: pl.Expr) -> pl.Expr:
    return _code("POS", 4, number)


def _course_id(number: pl.Expr) -> pl.Expr:
    return _code("C", 4, number)


# --- organisation tree (Python: at most ~20k items at 1M users) ----------------------------


@dataclass
class _Org:
    no: int
    parent: _Org | None
    name: str
    short: str
    type: str
    division: int | None = None  # index into DIVISIONS; None for the root
    region: str | None = None
    city: str | None = None
    costcentre: str = ""
    description: str = ""
    children: list[_Org] = field(default_factory=list)

    @property
    def depth(self) -> int:
        return 1 if self.parent is None else self.parent.depth + 1

    def below(self, no: int, name: str, short: str, kind: str, **fields: str | None) -> _Org:
        """A child inheriting division, region, city and cost centre unless given."""
        inherited: dict = {
            "division": self.division,
            "region": self.region,
            "city": self.city,
            "costcentre": self.costcentre,
        }
        return _Org(no, self, name, short, kind, **{**inherited, **fields})


def _org_count(users: int) -> int:
    return max(8, round(users / 50))


def _growth(target: float, levels: int) -> float:
    """g with g + g^2 + ... + g^levels == target (bisection)."""
    lo, hi = 0.0, max(1.0, target)
    for _ in range(100):
        mid = (lo + hi) / 2
        if sum(mid**k for k in range(1, levels + 1)) < target:
            lo = mid
        else:
            hi = mid
    return hi


def _level_counts(n_orgs: int) -> list[int]:
    """Items per depth: the root, the divisions, then up to four levels growing by a factor
    of at most ~7, so 20k items reach depth 6 and 40 items stop at depth 3."""
    divisions = min(len(DIVISIONS), n_orgs - 1)
    rest = n_orgs - 1 - divisions
    if divisions <= 0:
        return [1]
    if rest == 0:
        return [1, divisions]
    levels, growth = 1, rest / divisions
    for levels in range(1, 5):
        growth = _growth(rest / divisions, levels)
        if growth <= 7.0:
            break
    sizes = [divisions * growth**k for k in range(1, levels + 1)]
    scale = rest / sum(sizes)
    cumulative, running = [0], 0.0
    for size in sizes:  # cumulative rounding: the levels add up to exactly `rest`
        running += size * scale
        cumulative.append(round(running))
    return [1, divisions, *(b - a for a, b in itertools.pairwise(cumulative))]


class _OrgNamer:
    """Realistic, mostly unique names: "APAC Sales", "Auckland Sales", "Auckland Branch 12"."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.cities_by_region: dict[str, list[tuple[str, str, float]]] = {}
        for city, code, country, _tz, weight in CITIES:
            region = COUNTRY_REGION[country]
            self.cities_by_region.setdefault(region, []).append((city, code, weight))
        self.city_code = {city: code for city, code, *_ in CITIES}
        self.used_names: dict[str, int] = {}
        self.site_numbers: dict[str, int] = {}
        self.team_offset: dict[int, int] = {}
        self.region_order: dict[int, list[str]] = {}

    def _unique(self, name: str) -> str:
        seen = self.used_names.get(name, 0)
        self.used_names[name] = seen + 1
        return name if seen == 0 else f"{name} {seen + 1}"

    def child(self, parent: _Org, index: int, no: int) -> _Org:
        """The ``index``-th child of ``parent``, named for its level."""
        depth = parent.depth + 1
        own_costcentre = f"CC{10000 + no}"
        if depth == 2:
            name, code, _weight, _facing = DIVISIONS[index]
            org = parent.below(no, name, code, "division", costcentre=own_costcentre)
            org.division = index
            org.description = f"{name} division of {COMPANY} Group"
            return org
        div_name, div_code, _weight, facing = DIVISIONS[parent.division or 0]
        if depth == 3:
            if parent.no not in self.region_order:  # which regions a division covers first
                self.region_order[parent.no] = self.rng.sample(list(REGIONS), len(REGIONS))
            region = self.region_order[parent.no][index % len(REGIONS)]
            name = self._unique(f"{region} {div_name}")
            short = f"{REGIONS[region][0]}-{div_code}"
            org = parent.below(no, name, short, "region", region=region, costcentre=own_costcentre)
            org.description = f"{div_name} in the {region} region"
            return org
        if depth == 4:
            cities = self.cities_by_region[parent.region or "UK & Ireland"]
            city, code, _w = self.rng.choices(cities, weights=[c[2] for c in cities])[0]
            name = self._unique(f"{city} {div_name}")
            short = f"{code}-{div_code}" + name.removeprefix(f"{city} {div_name}").replace(" ", "")
            return parent.below(no, name, short, "department", city=city, costcentre=own_costcentre)
        if depth == 5:
            label = "Branch" if facing else "Office"
            site = f"{parent.city} {label}"
            self.site_numbers[site] = self.site_numbers.get(site, 0) + 1
            number = self.site_numbers[site]
            short = f"{parent.short}-{label[0]}{number}"
            return parent.below(no, f"{site} {number}", short, label.lower())
        offset = self.team_offset.setdefault(parent.no, self.rng.randrange(len(TEAM_WORDS)))
        word = TEAM_WORDS[(offset + index) % len(TEAM_WORDS)]
        lap = index // len(TEAM_WORDS)
        name = f"Team {word}" + (f" {lap + 1}" if lap else "")
        return parent.below(no, name, f"{parent.short}-T{index + 1}", "team")


def _build_org_tree(n_orgs: int, seed: int) -> list[_Org]:
    """Organisations in breadth-first order (parents before children), numbered from 1."""
    rng = _rng(seed, "orgs")
    root = _Org(1, None, f"{COMPANY} Group", "NWG", "company", costcentre="CC10001")
    root.description = f"{COMPANY} Group: all staff"
    orgs, level, namer = [root], [root], _OrgNamer(rng)
    for depth, count in enumerate(_level_counts(n_orgs)[1:], start=2):
        if depth == 2:
            weights = [1.0] * len(level)
        elif depth == 3:
            weights = [DIVISIONS[p.division or 0][2] * rng.uniform(0.6, 1.4) for p in level]
        else:
            # Some items stay leaves at every depth, so the tree is ragged like a real one.
            weights = [0.0 if rng.random() < 0.12 else rng.uniform(0.5, 1.5) for _ in level]
            if not any(weights):
                weights = [1.0] * len(level)
        children = []
        allocation = [count] if depth == 2 else _apportion(count, weights)
        for parent, n_children in zip(level, allocation, strict=True):
            for index in range(n_children):
                child = namer.child(parent, index, len(orgs) + 1)
                parent.children.append(child)
                orgs.append(child)
                children.append(child)
        level = children
    return orgs


def _staff_weights(orgs: list[_Org], seed: int) -> list[float]:
    """Relative headcount per organisation: leaves hold most people, the root a few."""
    rng = _rng(seed, "headcount")
    weights = []
    for org in orgs:
        base = 0.08 if org.parent is None else (1.0 if not org.children else 0.3)
        region_factor = REGIONS[org.region][1] if org.region else 1.0
        weights.append(base * region_factor * rng.uniform(0.6, 1.4))
    return weights


def _org_frame(orgs: list[_Org]) -> pl.DataFrame:
    """The live organisation table (internal columns; see _org_rows for the feed)."""

    def division_no(org: _Org) -> int | None:
        while org.parent is not None and org.depth > 2:
            org = org.parent
        return org.no if org.depth == 2 else None

    base_ts = (_REF_DAY - 300) * _SECONDS_PER_DAY + 9 * 3600
    return pl.DataFrame(
        {
            "org_no": [o.no for o in orgs],
            "parent_no": [o.parent.no if o.parent else None for o in orgs],
            "depth": [o.depth for o in orgs],
            "fullname": [o.name for o in orgs],
            "shortname": [o.short for o in orgs],
            "description": [o.description or None for o in orgs],
            "type": [o.type for o in orgs],
            "costcentre": [o.costcentre for o in orgs],
            "division_no": [division_no(o) for o in orgs],
            "family": [EXECUTIVE_FAMILY if o.division is None else o.division for o in orgs],
            "region": [o.region for o in orgs],
            "city": [o.city for o in orgs],
            "timemodified": [base_ts] * len(orgs),
        },
        schema_overrides={
            "parent_no": pl.Int64,
            "division_no": pl.Int64,
            "region": pl.String,
            "city": pl.String,
        },
    )


# --- positions and courses (small, static) -------------------------------------------------


@dataclass(frozen=True)
class _Positions:
    rows: pl.DataFrame  # the pos.csv table
    titles: pl.Series  # fullname by pos_no - 1


def _positions() -> _Positions:
    """Job families with four individual-contributor roles, a lead and a head each, plus an
    "Additional Duties" family for second jobs. Numbering is fixed (see _POS_PER_FAMILY)."""
    records: list[tuple[int, str, str, str, int | None, str, str]] = []

    def add(no: int, name: str, kind: str, parent: int | None, grade: str, text: str) -> None:
        records.append((no, name, _short_code(name), kind, parent, grade, text))

    for f, (family, ics, lead, head) in enumerate(FAMILIES):
        family_no = _POS_PER_FAMILY * f + 1
        add(family_no, family, "jobfamily", None, "", f"{family} job family")
        for offset, (title, grade) in enumerate((*ics, lead, head), start=1):
            add(family_no + offset, title, "role", family_no, grade, "")
    add(_SECONDARY_BASE, "Additional Duties", "jobfamily", None, "", "Roles held as a second job")
    for offset, title in enumerate(SECONDARY_ROLES, start=1):
        add(_SECONDARY_BASE + offset, title, "role", _SECONDARY_BASE, "", "")
    frame = pl.DataFrame(
        records,
        schema={
            "pos_no": pl.Int64,
            "fullname": pl.String,
            "shortname": pl.String,
            "typeidnumber": pl.String,
            "parent_no": pl.Int64,
            "customfield_grade": pl.String,
            "description": pl.String,
        },
        orient="row",
    )
    rows = frame.select(
        _pos_id(pl.col("pos_no")).alias("idnumber"),
        "fullname",
        "shortname",
        pl.col("description").replace("", None),
        pl.lit(POS_FRAMEWORK).alias("frameworkidnumber"),
        _pos_id(pl.col("parent_no")).alias("parentidnumber"),
        "typeidnumber",
        pl.lit(0, dtype=pl.Int8).alias("deleted"),
        pl.lit((_REF_DAY - 300) * _SECONDS_PER_DAY + 9 * 3600).alias("timemodified"),
        pl.col("customfield_grade").replace("", None),
    )
    return _Positions(rows=rows, titles=frame["fullname"])


def _short_code(name: str) -> str:
    """ "Senior Account Manager" -> "SEN-ACC-MAN" (positions are few: Python is fine)."""
    return "-".join(_fold(word)[:3].upper() for word in name.split() if _fold(word))


def _course_count(users: int) -> int:
    return max(20, min(600, users // 100))


@dataclass(frozen=True)
class _Catalogue:
    courses: pl.DataFrame  # course_no, idnumber, fullname, score
    recurring: pl.DataFrame  # course_no, take_up
    versioned: pl.DataFrame  # course_no, first_day, last_day (the calendar year)
    first_elective: int
    electives: int


def _catalogue(n_courses: int, seed: int) -> _Catalogue:
    """Recurring compliance courses, one "Fire Safety <year>" per year, then electives."""
    rng = _rng(seed, "courses")
    names: list[tuple[str, int]] = [(n, rng.randint(1, 3)) for n, _ in RECURRING_COURSES]
    names += [(f"{VERSIONED_COURSE} {y}", 1) for y in VERSIONED_YEARS]
    electives = [
        f"{topic}: {level}{variant}"
        for variant in ELECTIVE_VARIANTS
        for topic in ELECTIVE_TOPICS
        for level in ELECTIVE_LEVELS
    ]
    first_batch = len(ELECTIVE_TOPICS) * len(ELECTIVE_LEVELS)
    # Shuffle within the plain variants first, so a 20-course catalogue is still varied.
    head, tail = electives[:first_batch], electives[first_batch:]
    rng.shuffle(head)
    rng.shuffle(tail)
    wanted = max(1, n_courses - len(names))
    names += [(name, rng.randint(1, 10)) for name in (head + tail)[:wanted]]
    courses = pl.DataFrame(
        {
            "course_no": range(1, len(names) + 1),
            "fullname": [n for n, _ in names],
            "score": [s for _, s in names],
        },
        schema={"course_no": pl.Int64, "fullname": pl.String, "score": pl.Int64},
    ).with_columns(_course_id(pl.col("course_no")).alias("idnumber"))
    n_recurring = len(RECURRING_COURSES)
    recurring = pl.DataFrame(
        {
            "course_no": range(1, n_recurring + 1),
            "take_up": [p for _, p in RECURRING_COURSES],
        },
        schema={"course_no": pl.Int64, "take_up": pl.Float64},
    )
    versioned = pl.DataFrame(
        {
            "course_no": [n_recurring + 1 + i for i in range(len(VERSIONED_YEARS))],
            "first_day": [_day(date(y, 1, 1)) for y in VERSIONED_YEARS],
            "last_day": [_day(date(y, 12, 31)) for y in VERSIONED_YEARS],
        },
        schema={"course_no": pl.Int64, "first_day": pl.Int64, "last_day": pl.Int64},
    )
    first_elective = n_recurring + len(VERSIONED_YEARS) + 1
    return _Catalogue(courses, recurring, versioned, first_elective, wanted)


# --- people --------------------------------------------------------------------------------


@dataclass
class _State:
    """The organisation at one moment (internal columns; the feeds are derived from it)."""

    orgs: pl.DataFrame
    users: pl.DataFrame
    jobs: pl.DataFrame
    next_user_no: int


def _city_table() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "city": [c[0] for c in CITIES],
            "country": [c[2] for c in CITIES],
            "timezone": [c[3] for c in CITIES],
        }
    ).with_columns(
        pl.col("country").replace_strict(COUNTRY_REGION).alias("region"),
        pl.col("country").replace_strict(INSTITUTIONS).alias("institution"),
    )


def _people(frame: pl.DataFrame, orgs: pl.DataFrame, seed: int, joined: int | None) -> pl.DataFrame:
    """Personal attributes for ``frame`` (user_no, org_no, is_manager), row order kept.

    ``joined`` is None for the original staff (hired over the decades before
    REFERENCE_DATE) or the day a churn round ends (hired in the week before it).
    """
    user = pl.col("user_no")
    people = frame.join(
        orgs.select(
            "org_no", pl.col("city").alias("org_city"), pl.col("region").alias("org_region")
        ),
        on="org_no",
        how="left",
        maintain_order="left",
    ).with_columns(
        _bits(_hash(seed, "first", user), 0, len(FIRST_NAMES)).alias("first_idx"),
        _bits(_hash(seed, "last", user), 0, len(LAST_NAMES)).alias("last_idx"),
        _unit(_hash(seed, "flags", user)).alias("_u_flags"),
        _unit(_hash(seed, "type", user)).alias("_u_type"),
        _unit(_hash(seed, "tenure", user)).alias("_u_tenure"),
        _hash(seed, "place", user).alias("_h_place"),
    )
    people = people.with_columns(
        _home_city(pl.col("_h_place")).alias("city"),
        pl.when(pl.col("is_manager"))
        .then(pl.lit("Permanent"))
        .otherwise(_pick(EMPLOYEE_TYPES, _weighted(pl.col("_u_type"), EMPLOYEE_TYPE_WEIGHTS)))
        .alias("employeetype"),
    ).join(_city_table(), on="city", how="left", maintain_order="left")

    people = people.with_columns(_hire_day(joined, seed).alias("hire_day"))
    first_ascii = _pick([_fold(n) for n in FIRST_NAMES], pl.col("first_idx"))
    last_ascii = _pick([_fold(n) for n in LAST_NAMES], pl.col("last_idx"))
    u_flags = pl.col("_u_flags")
    lang_other = _bits(_hash(seed, "lang", user), 0, 100)
    return people.select(
        "user_no",
        "first_idx",
        "last_idx",
        pl.concat_str(first_ascii.str.head(1), last_ascii, user.cast(pl.String)).alias("username"),
        _pick(FIRST_NAMES, pl.col("first_idx")).alias("firstname"),
        _pick(LAST_NAMES, pl.col("last_idx")).alias("lastname"),
        pl.when(_bits(_hash(seed, "email", user), 0, 100) == 0)
        .then(None)
        .otherwise(_email(first_ascii, last_ascii, user, EMAIL_DOMAIN))
        .alias("email"),
        (u_flags < 0.02).cast(pl.Int8).alias("suspended"),
        ((u_flags >= 0.02) & (u_flags < 0.025)).cast(pl.Int8).alias("emailstop"),
        "city",
        "country",
        # Most German and French staff use their language; some prefer English.
        pl.when(pl.col("country").is_in(["DE", "FR"]) & (lang_other < 15))
        .then(pl.lit("en"))
        .otherwise(pl.col("country").replace_strict(LANGUAGES, default="en"))
        .alias("lang"),
        "timezone",
        "institution",
        "region",
        "hire_day",
        "employeetype",
        pl.lit(None, dtype=pl.String).alias("department"),
        (pl.col("hire_day") * _SECONDS_PER_DAY + 9 * 3600).alias("timemodified"),
    )


def _home_city(h: pl.Expr) -> pl.Expr:
    """95 % live in their organisation's city; people of a regional organisation anywhere
    in its region; head-office staff and the remaining 5 % anywhere, by CITIES weights."""
    u = _unit(h)
    anywhere = _pick([c[0] for c in CITIES], _weighted(u, [c[4] for c in CITIES]))
    local = _bits(h, 0, 100) >= 5
    by_region = pl.when(pl.lit(False)).then(pl.lit(None, dtype=pl.String))
    for region in REGIONS:
        cities = [c for c in CITIES if COUNTRY_REGION[c[2]] == region]
        in_region = _pick([c[0] for c in cities], _weighted(u, [c[4] for c in cities]))
        by_region = by_region.when(pl.col("org_region") == region).then(in_region)
    return (
        pl.when(local & pl.col("org_city").is_not_null())
        .then(pl.col("org_city"))
        .when(local & pl.col("org_region").is_not_null())
        .then(by_region.otherwise(anywhere))
        .otherwise(anywhere)
    )


def _email(first: pl.Expr, last: pl.Expr, user: pl.Expr, domain: str) -> pl.Expr:
    """first.last.N@domain: the user number keeps it unique (folded names carry no digits)."""
    return pl.concat_str(
        first, pl.lit("."), last, pl.lit("."), user.cast(pl.String), pl.lit(f"@{domain}")
    )


def _hire_day(joined: int | None, seed: int) -> pl.Expr:
    """Original staff: tenure roughly exponential (mean ~5 years, at most 30), interns
    hired in the last six months. Joiners: during the week before ``joined``."""
    if joined is not None:
        return joined - 1 - _bits(_hash(seed, "joined", pl.col("user_no")), 0, 7)
    u = pl.col("_u_tenure")
    tenure = (-(1.0 - u).log() * 5 * 365.25).clip(0, 30 * 365).cast(pl.Int64)
    intern = pl.col("employeetype") == "Intern"
    return (
        pl.when(intern)
        .then(_REF_DAY - 30 - (u * 150).cast(pl.Int64))
        .otherwise(_REF_DAY - 30 - tenure)
    )


def _with_departments(users: pl.DataFrame, jobs: pl.DataFrame, orgs: pl.DataFrame) -> pl.DataFrame:
    """department = the current name of the division of the person's first job."""
    division_names = orgs.select(
        "org_no",
        pl.col("division_no").alias("_division"),
    ).join(
        orgs.select(pl.col("org_no").alias("_division"), pl.col("fullname").alias("_dname")),
        on="_division",
        how="left",
    )
    first = jobs.filter(pl.col("job_no") == 1).select("user_no", "org_no")
    department = first.join(division_names, on="org_no", how="left").select(
        "user_no", pl.col("_dname").fill_null("Executive Office").alias("_dept")
    )
    return (
        users.join(department, on="user_no", how="left", maintain_order="left")
        .with_columns(pl.col("_dept").alias("department"))
        .drop("_dept")
    )


# --- the original organisation -------------------------------------------------------------


def _initial_state(n_users: int, seed: int) -> _State:
    """Epoch 0: organisations, people and jobs with a management tree."""
    tree = _build_org_tree(_org_count(n_users), seed)
    orgs = _org_frame(tree)
    blocks = _org_blocks(tree, n_users, seed)
    slots = _slots(blocks, orgs, n_users, seed)
    users = _people(slots.select("user_no", "org_no", "is_manager"), orgs, seed, joined=None)
    first_jobs = _first_jobs(slots, users, seed)
    second_jobs = _second_jobs(slots, users, blocks, n_users, seed)
    jobs = pl.concat([first_jobs, second_jobs]).sort("user_no", "job_no")
    users = _with_departments(users.sort("user_no"), jobs, orgs)
    return _State(orgs=orgs, users=users, jobs=jobs, next_user_no=n_users + 1)


def _org_blocks(tree: list[_Org], n_users: int, seed: int) -> pl.DataFrame:
    """Headcount per organisation and how its people are arranged.

    People are laid out in "slots", one contiguous block per organisation. Slot 0 of a
    block is its head, who reports to the nearest head above; the others form a tree of
    span ``span`` under the head (the head keeps ``first_line`` direct reports of their own
    besides the heads of child organisations), so managers sit at or above their reports.
    """
    weights = _staff_weights(tree, seed)
    if n_users >= len(tree):
        counts = [1 + c for c in _apportion(n_users - len(tree), weights)]
    else:  # fewer people than organisations: the root keeps the CEO, some stay empty
        counts = _apportion(n_users - 1, weights)
        counts[0] += 1
    rng = _rng(seed, "spans")
    head_of: dict[int, int | None] = {}
    rows = []
    start = 0
    for org, count in zip(tree, counts, strict=True):
        above = head_of[org.parent.no] if org.parent else None
        head_of[org.no] = start if count else above
        span = rng.randint(5, 9)
        first_line = max(2, span - len(org.children)) if org.children else span
        rows.append((org.no, start, count, span, first_line, above, head_of[org.no]))
        start += count
    return pl.DataFrame(
        rows,
        schema={
            "org_no": pl.Int64,
            "start": pl.Int64,
            "count": pl.Int64,
            "span": pl.Int64,
            "first_line": pl.Int64,
            "above_slot": pl.Int64,
            "head_slot": pl.Int64,
        },
        orient="row",
    )


def _slots(blocks: pl.DataFrame, orgs: pl.DataFrame, n_users: int, seed: int) -> pl.DataFrame:
    """One row per person of the original organisation, in slot order, with the manager's
    slot, and user numbers shuffled so that idnumbers say nothing about the structure."""
    i = pl.col("i")
    slots = (
        blocks.filter(pl.col("count") > 0)
        .with_columns(pl.int_ranges(0, pl.col("count")).alias("i"))
        .explode("i")
        .with_columns(
            (pl.col("start") + i).alias("slot"),
            pl.when(i == 0)
            .then(pl.col("above_slot"))
            .when(i <= pl.col("first_line"))
            .then(pl.col("start"))
            .otherwise(pl.col("start") + (i - pl.col("first_line") - 1) // pl.col("span") + 1)
            .alias("manager_slot"),
        )
        .join(orgs.select("org_no", "depth", "family"), on="org_no", maintain_order="left")
    )
    managers = slots["manager_slot"].drop_nulls().unique()
    user_of_slot = (
        pl.select(_hash(seed, "perm", pl.int_range(n_users, dtype=pl.Int64)).rank("ordinal"))
        .to_series()
        .cast(pl.Int64)
    )
    manager_of_slot = slots["manager_slot"]
    return slots.with_columns(
        pl.col("slot").is_in(managers.implode()).alias("is_manager"),
        pl.lit(user_of_slot).gather(pl.col("slot")).alias("user_no"),
        pl.lit(user_of_slot).gather(pl.col("manager_slot")).alias("manager_no"),
        pl.lit(user_of_slot)
        .gather(pl.lit(manager_of_slot).gather(pl.col("manager_slot")))
        .alias("grand_manager_no"),
    )


def _first_jobs(slots: pl.DataFrame, users: pl.DataFrame, seed: int) -> pl.DataFrame:
    """J1 for everyone: position by role in the tree, dates by contract type."""
    user = pl.col("user_no")
    h = _hash(seed, "job1", user)
    family_base = pl.col("family") * _POS_PER_FAMILY
    is_head = (pl.col("i") == 0) & (pl.col("depth") <= 2)
    pos_no = (
        pl.when(is_head)
        .then(family_base + _POS_HEAD)
        .when(pl.col("is_manager"))
        .then(family_base + _POS_LEAD)
        .otherwise(family_base + _POS_IC + _weighted(_unit(h), IC_WEIGHTS))
    )
    hire = pl.col("hire_day")
    permanent = pl.col("employeetype") == "Permanent"
    # 30 % of permanent staff started their current role some time after joining.
    later = (_bits(h, 0, 100) < 30) & permanent
    role_start = hire + ((_REF_DAY - 30 - hire) * _unit(_hash(seed, "role", user))).cast(pl.Int64)
    start = pl.when(later).then(role_start).otherwise(hire)
    fixed_term = (pl.col("employeetype") == "Intern") | (
        (pl.col("employeetype") == "Contractor") & (_bits(h, 8, 2) == 0)
    )
    end = pl.when(fixed_term).then(_REF_DAY + 30 + _bits(h, 16, 510))
    return (
        slots.join(
            users.select("user_no", "hire_day", "employeetype"), on="user_no", maintain_order="left"
        )
        .with_columns(pos_no.alias("pos_no"))
        .select(
            "user_no",
            pl.lit(1, dtype=pl.Int64).alias("job_no"),
            "org_no",
            "pos_no",
            start.alias("start_day"),
            end.alias("end_day"),
            "manager_no",
            pl.when(pl.col("manager_no").is_not_null() & (_bits(h, 24, 4) == 0))
            .then(pl.lit("J1"))
            .alias("manager_job"),
            pl.when(_bits(h, 32, 10) < 3).then(pl.col("grand_manager_no")).alias("appraiser_no"),
            (start * _SECONDS_PER_DAY + 10 * 3600).alias("timemodified"),
        )
    )


def _second_jobs(
    slots: pl.DataFrame, users: pl.DataFrame, blocks: pl.DataFrame, n_users: int, seed: int
) -> pl.DataFrame:
    """J2 for ~10 % of people: an additional duty in another organisation, managed by that
    organisation's head. Only people who manage nobody and head nothing get one, so the
    new manager edges cannot close a cycle."""
    user = pl.col("user_no")
    eligible = slots.filter((pl.col("i") > 0) & ~pl.col("is_manager"))
    if eligible.height == 0:
        return _empty_jobs()
    share = min(1.0, 0.10 * n_users / eligible.height)
    h = _hash(seed, "job2", user)
    org_of_slot = slots["org_no"]
    user_of_slot = slots.sort("slot")["user_no"]
    head_user_of_org = (
        blocks.sort("org_no")
        .select(pl.lit(user_of_slot).gather(pl.col("head_slot")).alias("head"))
        .to_series()
    )
    other = _bits(h, 0, n_users)
    org2 = pl.lit(org_of_slot).gather(other)
    org2_alt = pl.lit(org_of_slot).gather((other + n_users // 2) % n_users)
    hire = pl.col("hire_day")
    return (
        eligible.filter(_unit(_hash(seed, "has_job2", user)) < share)
        .join(users.select("user_no", "hire_day"), on="user_no", maintain_order="left")
        .with_columns(pl.when(org2 == pl.col("org_no")).then(org2_alt).otherwise(org2).alias("o2"))
        .select(
            "user_no",
            pl.lit(2, dtype=pl.Int64).alias("job_no"),
            pl.col("o2").alias("org_no"),
            (_SECONDARY_BASE + 1 + _bits(h, 24, len(SECONDARY_ROLES))).alias("pos_no"),
            (
                hire
                + ((_REF_DAY - 30 - hire) * _unit(_hash(seed, "job2start", user))).cast(pl.Int64)
            ).alias("start_day"),
            pl.when(_bits(h, 32, 10) < 3).then(_REF_DAY + 30 + _bits(h, 40, 335)).alias("end_day"),
            pl.lit(head_user_of_org).gather(pl.col("o2") - 1).alias("manager_no"),
            pl.when(_bits(h, 48, 4) == 0).then(pl.lit("J1")).alias("manager_job"),
            pl.lit(None, dtype=pl.Int64).alias("appraiser_no"),
            (hire * _SECONDS_PER_DAY + 11 * 3600).alias("timemodified"),
        )
    )


_JOB_SCHEMA = {
    "user_no": pl.Int64,
    "job_no": pl.Int64,
    "org_no": pl.Int64,
    "pos_no": pl.Int64,
    "start_day": pl.Int64,
    "end_day": pl.Int64,
    "manager_no": pl.Int64,
    "manager_job": pl.String,
    "appraiser_no": pl.Int64,
    "timemodified": pl.Int64,
}


def _empty_jobs() -> pl.DataFrame:
    return pl.DataFrame(schema=_JOB_SCHEMA)


# --- churn ---------------------------------------------------------------------------------


def _churn(state: _State, seed: int, step: int, day: int) -> tuple[_State, str]:
    """One weekly round of change ending on ``day`` (see the module docstring)."""
    ts = day * _SECONDS_PER_DAY - 4 * 3600  # the HR export runs at 20:00 the evening before
    users, jobs, orgs = state.users, state.jobs, state.orgs
    users, jobs, left = _leavers(users, jobs, seed, step, ts)
    orgs, jobs, dissolved = _dissolve_org(orgs, jobs, seed, step, ts)
    orgs, renamed = _rename_orgs(orgs, seed, step, ts)
    jobs, moved = _move_people(users, jobs, seed, step, ts)
    jobs, promoted = _promote(jobs, seed, step, ts)
    users, jobs, joined = _joiners(
        users, jobs, orgs, seed, step, day, state.next_user_no, state.users.height
    )
    users, personal = _personal_changes(users, seed, step, ts)
    old_departments = users["department"]
    users = _with_departments(users, jobs, orgs)
    users = users.with_columns(
        pl.when(pl.col("department") != pl.lit(old_departments))
        .then(ts)
        .otherwise(pl.col("timemodified"))
        .alias("timemodified")
    )
    note = (
        f"round {step} (week to {_date(day)}): {left} left, {joined} joined, {moved} moved "
        f"team, {promoted} promoted, {personal}, orgs renamed: {renamed or 'none'}, "
        f"dissolved: {dissolved or 'none'}"
    )
    new_state = _State(
        orgs, users.sort("user_no"), jobs.sort("user_no", "job_no"), state.next_user_no + joined
    )
    return new_state, note


def _overwrite(frame: pl.DataFrame, changes: pl.DataFrame, on: list[str], ts: int) -> pl.DataFrame:
    """Replace the columns of ``changes`` in the matching rows of ``frame`` (nulls
    included) and stamp those rows' timemodified."""
    columns = [c for c in changes.columns if c not in on]
    joined = frame.join(
        changes.with_columns(pl.lit(True).alias("_hit")),
        on=on,
        how="left",
        suffix="_new",
        maintain_order="left",
    )
    hit = pl.col("_hit").fill_null(False)
    return joined.with_columns(
        *(pl.when(hit).then(pl.col(f"{c}_new")).otherwise(pl.col(c)).alias(c) for c in columns),
        pl.when(hit).then(pl.lit(ts)).otherwise(pl.col("timemodified")).alias("timemodified"),
    ).select(frame.columns)


def _pick_rows(frame: pl.DataFrame, n: int, seed: int, stream: str, step: int) -> pl.DataFrame:
    """``n`` rows of ``frame`` chosen by hash of user_no (stable, no sampling state)."""
    if n <= 0 or frame.height == 0:
        return frame.head(0)
    keyed = frame.with_columns(_hash(seed, stream, pl.col("user_no"), step).alias("_h"))
    return keyed.bottom_k(min(n, frame.height), by="_h").sort("user_no").drop("_h")


def _leavers(
    users: pl.DataFrame, jobs: pl.DataFrame, seed: int, step: int, ts: int
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """~1 % leave (never the CEO). Their reports move to the leaver's own manager."""
    first = jobs.filter(pl.col("job_no") == 1)
    candidates = first.filter(pl.col("manager_no").is_not_null())
    leaving = _pick_rows(candidates, _removal_count(users.height, 0.01), seed, "leave", step)
    if leaving.height == 0:
        return users, jobs, 0
    successor = dict(
        zip(leaving["user_no"].to_list(), leaving["manager_no"].to_list(), strict=True)
    )
    for leaver, manager in list(successor.items()):
        while manager in successor:  # a chain of leavers: go up to the first who stays
            manager = successor[manager]
        successor[leaver] = manager
    mapping = pl.DataFrame(
        {"manager_no": list(successor), "_new_manager": list(successor.values())},
        schema={"manager_no": pl.Int64, "_new_manager": pl.Int64},
    )
    gone = leaving["user_no"].implode()
    jobs = jobs.filter(~pl.col("user_no").is_in(gone)).join(
        mapping, on="manager_no", how="left", maintain_order="left"
    )
    reassigned = pl.col("_new_manager").is_not_null()
    lost_appraiser = pl.col("appraiser_no").is_in(gone).fill_null(False)
    jobs = jobs.with_columns(
        pl.coalesce("_new_manager", "manager_no").alias("manager_no"),
        pl.when(reassigned).then(None).otherwise(pl.col("manager_job")).alias("manager_job"),
        pl.when(lost_appraiser).then(None).otherwise(pl.col("appraiser_no")).alias("appraiser_no"),
        pl.when(reassigned | lost_appraiser)
        .then(pl.lit(ts))
        .otherwise(pl.col("timemodified"))
        .alias("timemodified"),
    ).drop("_new_manager")
    return users.filter(~pl.col("user_no").is_in(gone)), jobs, leaving.height


def _dissolve_org(
    orgs: pl.DataFrame, jobs: pl.DataFrame, seed: int, step: int, ts: int
) -> tuple[pl.DataFrame, pl.DataFrame, str]:
    """Remove one small subtree (at most 3 items and 5 % of the tree) at depth >= 3; its
    jobs move to the subtree's parent first."""
    limit = min(3, math.floor(0.05 * orgs.height))
    if limit < 1:
        return orgs, jobs, ""
    parent_of = dict(zip(orgs["org_no"].to_list(), orgs["parent_no"].to_list(), strict=True))
    depth_of = dict(zip(orgs["org_no"].to_list(), orgs["depth"].to_list(), strict=True))
    size = dict.fromkeys(parent_of, 1)
    for org in sorted(parent_of, reverse=True):  # children are numbered after parents
        parent = parent_of[org]
        if parent is not None:
            size[parent] += size[org]
    candidates = [o for o in parent_of if depth_of[o] >= 3 and size[o] <= limit]
    if not candidates:
        return orgs, jobs, ""
    key = _stream_key(seed, f"dissolve:{step}")
    root = min(candidates, key=lambda o: _splitmix(key ^ o))
    subtree = {root}
    for org in sorted(parent_of):
        if parent_of[org] in subtree:
            subtree.add(org)
    target = parent_of[root]
    gone = pl.Series(sorted(subtree), dtype=pl.Int64).implode()
    moving = pl.col("org_no").is_in(gone)
    jobs = jobs.with_columns(
        pl.when(moving).then(pl.lit(target)).otherwise(pl.col("org_no")).alias("org_no"),
        pl.when(moving).then(pl.lit(ts)).otherwise(pl.col("timemodified")).alias("timemodified"),
    )
    names = orgs.filter(pl.col("org_no").is_in(gone))["fullname"].to_list()
    return orgs.filter(~pl.col("org_no").is_in(gone)), jobs, ", ".join(names)


def _rename_orgs(orgs: pl.DataFrame, seed: int, step: int, ts: int) -> tuple[pl.DataFrame, str]:
    """Rename one division (e.g. Human Resources -> People and Culture) and one site
    ("Auckland Sales" -> "Auckland Central Sales"), when such candidates remain."""
    key = _stream_key(seed, f"rename:{step}")
    records = orgs.select("org_no", "depth", "fullname", "city").to_dicts()
    renames: dict[int, str] = {}
    divisions = [r for r in records if r["depth"] == 2 and r["fullname"] in DIVISION_RENAMES]
    if divisions:
        pick = min(divisions, key=lambda r: _splitmix(key ^ r["org_no"]))
        renames[pick["org_no"]] = DIVISION_RENAMES[pick["fullname"]]
    sites = [
        r
        for r in records
        if r["depth"] >= 4
        and r["city"]
        and r["fullname"].startswith(f"{r['city']} ")
        and " Central " not in r["fullname"]
    ]
    if sites:
        pick = min(sites, key=lambda r: _splitmix(key ^ (r["org_no"] << 1)))
        city = pick["city"]
        renames[pick["org_no"]] = f"{city} Central {pick['fullname'].removeprefix(city + ' ')}"
    if not renames:
        return orgs, ""
    changes = pl.DataFrame(
        {"org_no": list(renames), "fullname": list(renames.values())},
        schema={"org_no": pl.Int64, "fullname": pl.String},
    )
    old = dict(zip(orgs["org_no"].to_list(), orgs["fullname"].to_list(), strict=True))
    described = ", ".join(f"{old[o]} -> {n}" for o, n in renames.items())
    return _overwrite(orgs, changes, ["org_no"], ts), described


def _is_ic_position(pos: pl.Expr) -> pl.Expr:
    offset = (pos - 1) % _POS_PER_FAMILY + 1
    return (pos < _SECONDARY_BASE) & (offset >= _POS_IC) & (offset < _POS_LEAD)


def _movable(users: pl.DataFrame, jobs: pl.DataFrame) -> pl.DataFrame:
    """First jobs of people who manage nobody (through any job) and have a manager."""
    managers = jobs["manager_no"].drop_nulls().unique().implode()
    return jobs.filter(
        (pl.col("job_no") == 1)
        & pl.col("manager_no").is_not_null()
        & ~pl.col("user_no").is_in(managers)
    )


def _buddy_of(
    people: pl.DataFrame, buddies: pl.DataFrame, seed: int, stream: str, step: int
) -> pl.DataFrame:
    """For each person, a random other person's first job (the team they join)."""
    n = buddies.height
    index = _bits(_hash(seed, stream, pl.col("user_no"), step), 0, n)
    picked = people.with_columns(index.alias("_b"))
    clash = pl.lit(buddies["user_no"]).gather(pl.col("_b")) == pl.col("user_no")
    picked = picked.with_columns(
        pl.when(clash).then((pl.col("_b") + 1) % n).otherwise(pl.col("_b")).alias("_b")
    )
    return picked.with_columns(
        pl.lit(buddies["org_no"]).gather(pl.col("_b")).alias("_b_org"),
        pl.lit(buddies["pos_no"]).gather(pl.col("_b")).alias("_b_pos"),
        pl.coalesce(
            pl.lit(buddies["manager_no"]).gather(pl.col("_b")),
            pl.lit(buddies["user_no"]).gather(pl.col("_b")),
        ).alias("_b_manager"),
    )


def _move_people(
    users: pl.DataFrame, jobs: pl.DataFrame, seed: int, step: int, ts: int
) -> tuple[pl.DataFrame, int]:
    """~1.5 % join another team: the org, manager and (for a peer role) position of a
    random colleague. Movers manage nobody and their new manager already manages someone,
    so no cycle can appear."""
    movable = _movable(users, jobs)
    movers = _pick_rows(movable, _removal_count(users.height, 0.015), seed, "move", step)
    buddies = jobs.filter((pl.col("job_no") == 1) & pl.col("manager_no").is_not_null()).sort(
        "user_no"
    )
    if movers.height == 0 or buddies.height < 2:
        return jobs, 0
    day = ts // _SECONDS_PER_DAY + 1
    changes = _buddy_of(movers, buddies, seed, "move_to", step).select(
        "user_no",
        "job_no",
        pl.col("_b_org").alias("org_no"),
        pl.when(_is_ic_position(pl.col("_b_pos")))
        .then(pl.col("_b_pos"))
        .otherwise(pl.col("pos_no"))
        .alias("pos_no"),
        pl.lit(day).alias("start_day"),
        pl.col("_b_manager").alias("manager_no"),
        pl.lit(None, dtype=pl.String).alias("manager_job"),
    )
    return _overwrite(jobs, changes, ["user_no", "job_no"], ts), movers.height


def _promote(jobs: pl.DataFrame, seed: int, step: int, ts: int) -> tuple[pl.DataFrame, int]:
    """~0.5 % move up one individual-contributor role in their family."""
    pos = pl.col("pos_no")
    offset = (pos - 1) % _POS_PER_FAMILY + 1
    promotable = jobs.filter(
        (pl.col("job_no") == 1) & _is_ic_position(pos) & (offset < _POS_LEAD - 1)
    )
    n_users = jobs.filter(pl.col("job_no") == 1).height
    chosen = _pick_rows(promotable, _removal_count(n_users, 0.005), seed, "promote", step)
    if chosen.height == 0:
        return jobs, 0
    changes = chosen.select("user_no", "job_no", (pos + 1).alias("pos_no"))
    return _overwrite(jobs, changes, ["user_no", "job_no"], ts), chosen.height


def _joiners(
    users: pl.DataFrame,
    jobs: pl.DataFrame,
    orgs: pl.DataFrame,
    seed: int,
    step: int,
    day: int,
    next_user_no: int,
    headcount: int,
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """~1 % of the round's starting ``headcount`` join (so the size holds steady), with new
    idnumbers, each in a random colleague's team."""
    n = _removal_count(headcount, 0.01)
    buddies = _movable(users, jobs).sort("user_no")
    if n == 0 or buddies.height == 0:
        return users, jobs, 0
    newcomers = pl.DataFrame(
        {"user_no": range(next_user_no, next_user_no + n)}, schema={"user_no": pl.Int64}
    )
    placed = _buddy_of(newcomers, buddies, seed, "join", step)
    people = _people(
        placed.select(
            "user_no", pl.col("_b_org").alias("org_no"), pl.lit(False).alias("is_manager")
        ),
        orgs,
        seed,
        joined=day,
    ).with_columns(pl.lit(None, dtype=pl.String).alias("department"))
    h = _hash(seed, "joiner_job", pl.col("user_no"))
    fixed_term = pl.col("employeetype") != "Permanent"
    new_jobs = placed.join(
        people.select("user_no", "hire_day", "employeetype"), on="user_no", maintain_order="left"
    ).select(
        "user_no",
        pl.lit(1, dtype=pl.Int64).alias("job_no"),
        pl.col("_b_org").alias("org_no"),
        pl.col("_b_pos").alias("pos_no"),
        pl.col("hire_day").alias("start_day"),
        pl.when(fixed_term).then(pl.col("hire_day") + 180 + _bits(h, 0, 360)).alias("end_day"),
        pl.col("_b_manager").alias("manager_no"),
        pl.lit(None, dtype=pl.String).alias("manager_job"),
        pl.lit(None, dtype=pl.Int64).alias("appraiser_no"),
        (pl.col("hire_day") * _SECONDS_PER_DAY + 10 * 3600).alias("timemodified"),
    )
    users = pl.concat([users, people.select(users.columns)])
    return users, pl.concat([jobs, new_jobs]), n


def _personal_changes(
    users: pl.DataFrame, seed: int, step: int, ts: int
) -> tuple[pl.DataFrame, str]:
    """A few surname changes (email follows, username stays), email moves to a new
    domain, and suspensions lifted or imposed."""
    n = users.height
    renamed = _pick_rows(users, _removal_count(n, 0.002), seed, "surname", step)
    first_ascii = _pick([_fold(x) for x in FIRST_NAMES], pl.col("first_idx"))
    new_last = _bits(_hash(seed, "new_surname", pl.col("user_no"), step), 0, len(LAST_NAMES))
    surname_changes = renamed.with_columns(new_last.alias("last_idx")).select(
        "user_no",
        "last_idx",
        _pick(LAST_NAMES, pl.col("last_idx")).alias("lastname"),
        pl.when(pl.col("email").is_null())
        .then(None)
        .otherwise(
            _email(
                first_ascii,
                _pick([_fold(x) for x in LAST_NAMES], pl.col("last_idx")),
                pl.col("user_no"),
                EMAIL_DOMAIN,
            )
        )
        .alias("email"),
    )
    users = _overwrite(users, surname_changes, ["user_no"], ts)
    with_email = users.filter(pl.col("email").str.ends_with(f"@{EMAIL_DOMAIN}"))
    moved = _pick_rows(with_email, _removal_count(n, 0.001), seed, "email", step)
    email_changes = moved.select(
        "user_no", pl.col("email").str.replace(f"@{EMAIL_DOMAIN}$", "@example.net").alias("email")
    )
    users = _overwrite(users, email_changes, ["user_no"], ts)
    toggled = _pick_rows(users, _removal_count(n, 0.002), seed, "suspend", step)
    users = _overwrite(
        users,
        toggled.select("user_no", (1 - pl.col("suspended")).alias("suspended")),
        ["user_no"],
        ts,
    )
    note = (
        f"{renamed.height} surname changes, {moved.height} email changes, "
        f"{toggled.height} suspensions toggled"
    )
    return users, note


# --- learning records ----------------------------------------------------------------------


def _learners(users: pl.DataFrame, seed: int) -> pl.DataFrame:
    """People with their LMS habits; ~5 % never log in (and complete nothing)."""
    return users.select(
        "user_no",
        "hire_day",
        "suspended",
        (_bits(_hash(seed, "never", pl.col("user_no")), 0, 1000) < 50).alias("never_logged_in"),
    )


def _stamp(day: pl.Expr, h: pl.Expr) -> pl.Expr:
    """Unix seconds on ``day`` during working hours (07:00-19:00 UTC)."""
    return day * _SECONDS_PER_DAY + 7 * 3600 + _bits(h, 20, 12 * 3600)


def _grade(h: pl.Expr) -> pl.Expr:
    """0-100, mostly passes; ~12 % not graded (empty)."""
    return pl.when(_bits(h, 40, 100) < 12).then(None).otherwise(40 + _bits(h, 48, 61))


def _completions(
    users: pl.DataFrame, catalogue: _Catalogue, seed: int, epoch: int, as_of_day: int
) -> pl.DataFrame:
    """(user_no, course_no, t, grade) before as_of: recurring compliance cycles, one Fire
    Safety course per year employed, electives, and each churn round's new completions."""
    learners = _learners(users, seed).filter(~pl.col("never_logged_in"))
    parts = [
        _recurring(learners, catalogue, seed, as_of_day),
        _versioned(learners, catalogue, seed, as_of_day),
        _electives(learners, catalogue, seed, as_of_day),
    ]
    for step in range(1, epoch + 1):
        parts.append(
            _weekly(learners, catalogue, seed, step, as_of_day - (epoch - step) * EPOCH_DAYS)
        )
    return (
        pl.concat(parts)
        .filter(pl.col("t") < as_of_day * _SECONDS_PER_DAY)
        .sort("user_no", "t", "course_no")
    )


def _first_lms_day(hire: pl.Expr) -> pl.Expr:
    return pl.max_horizontal(hire, pl.lit(_LMS_DAY))


def _recurring(
    learners: pl.DataFrame, catalogue: _Catalogue, seed: int, as_of_day: int
) -> pl.DataFrame:
    """Annual recertification: first completion soon after joining (or during the LMS
    roll-out), then roughly every 365 days; a quarter of enrolments lapse after 1-4 cycles."""
    keys = (pl.col("user_no"), pl.col("course_no"))
    h = _hash(seed, "recurring", *keys)
    hire = pl.col("hire_day")
    first = (
        pl.when(hire + 7 >= _LMS_DAY)
        .then(hire + 7 + _bits(h, 0, 60))
        .otherwise(_LMS_DAY + _bits(h, 0, 365))
    )
    cap = pl.when(_bits(h, 8, 4) == 0).then(1 + _bits(h, 12, 4)).otherwise(1000)
    cycles = pl.min_horizontal((as_of_day - pl.col("first")) // 365 + 1, cap)
    enrolled = (
        learners.join(catalogue.recurring, how="cross")
        .filter(_unit(h) < pl.col("take_up"))
        .with_columns(first.alias("first"), h.alias("_h"))
        .filter(pl.col("first") < as_of_day)
        .with_columns(pl.int_ranges(0, cycles).alias("cycle"))
        .explode("cycle")
    )
    h_cycle = _hash(seed, "cycle", pl.col("user_no"), pl.col("course_no"), pl.col("cycle"))
    # Each renewal lands 0-39 days after the anniversary: never twice in one day.
    late = pl.when(pl.col("cycle") > 0).then(_bits(h_cycle, 0, 40)).otherwise(0)
    day = pl.col("first") + pl.col("cycle") * 365 + late
    return enrolled.select(
        "user_no", "course_no", _stamp(day, h_cycle).alias("t"), _grade(h_cycle).alias("grade")
    )


def _versioned(
    learners: pl.DataFrame, catalogue: _Catalogue, seed: int, as_of_day: int
) -> pl.DataFrame:
    """ "Fire Safety <year>": three in four people take the year's course while employed."""
    h = _hash(seed, "versioned", pl.col("user_no"), pl.col("course_no"))
    lo = pl.max_horizontal(pl.col("first_day"), pl.col("hire_day") + 7, pl.lit(_LMS_DAY))
    # The day ignores as_of (the cut happens later), so moving as_of only adds rows.
    hi = pl.col("last_day")
    return (
        learners.join(catalogue.versioned, how="cross")
        .with_columns(lo.alias("lo"), hi.alias("hi"), h.alias("_h"))
        .filter(
            (_unit(pl.col("_h")) < VERSIONED_TAKE_UP)
            & (pl.col("lo") <= pl.col("hi"))
            & (pl.col("lo") < as_of_day)
        )
        .select(
            "user_no",
            "course_no",
            _stamp(
                pl.col("lo") + _bits(pl.col("_h"), 0, pl.col("hi") - pl.col("lo") + 1),
                pl.col("_h"),
            ).alias("t"),
            _grade(pl.col("_h")).alias("grade"),
        )
    )


def _elective_plan(seed: int, electives: int) -> tuple[pl.Expr, pl.Expr]:
    """(count, first course offset) of a person's electives: 0-27 courses, a run of
    consecutive catalogue entries starting early in the catalogue more often."""
    h = _hash(seed, "electives", pl.col("user_no"))
    count = pl.min_horizontal(_bits(h, 0, 28), pl.lit(electives))
    start = (electives * _unit(h).pow(2)).cast(pl.Int64)
    return count, start


_ELECTIVE_HORIZON = _REF_DAY + 2 * 365
"""Electives are spread from joining to two years after REFERENCE_DATE and cut at as_of:
the days do not depend on as_of, so a later as_of only adds completions."""


def _electives(
    learners: pl.DataFrame, catalogue: _Catalogue, seed: int, as_of_day: int
) -> pl.DataFrame:
    """Electives taken at a random moment after joining (see _ELECTIVE_HORIZON)."""
    count, start = _elective_plan(seed, catalogue.electives)
    lo = _first_lms_day(pl.col("hire_day")) + 1
    h = _hash(seed, "elective", pl.col("user_no"), pl.col("j"))
    return (
        learners.with_columns(count.alias("n"), start.alias("s"), lo.alias("lo"))
        .filter((pl.col("n") > 0) & (pl.col("lo") < min(as_of_day, _ELECTIVE_HORIZON)))
        .with_columns(pl.int_ranges(0, pl.col("n")).alias("j"))
        .explode("j")
        .with_columns(h.alias("_h"))
        .select(
            "user_no",
            (catalogue.first_elective + (pl.col("s") + pl.col("j")) % catalogue.electives).alias(
                "course_no"
            ),
            _stamp(
                pl.col("lo") + _bits(pl.col("_h"), 0, _ELECTIVE_HORIZON - pl.col("lo")),
                pl.col("_h"),
            ).alias("t"),
            _grade(pl.col("_h")).alias("grade"),
        )
    )


def _weekly(
    learners: pl.DataFrame, catalogue: _Catalogue, seed: int, step: int, day: int
) -> pl.DataFrame:
    """Churn round ``step``: ~5 % of learners finish one more elective in the week before
    ``day``, in the evening (19:00-22:00 UTC). Every other completion is stamped in working
    hours and each round has its own week, so these keys never collide with any other."""
    count, start = _elective_plan(seed, catalogue.electives)
    h = _hash(seed, "weekly", pl.col("user_no"), step)
    offset = pl.col("n") + step - 1  # the next course after their own electives
    evening = (day - 1 - _bits(pl.col("_h"), 8, 7)) * _SECONDS_PER_DAY + 19 * 3600
    return (
        learners.with_columns(count.alias("n"), start.alias("s"), h.alias("_h"))
        .filter((_bits(pl.col("_h"), 0, 100) < 5) & (pl.col("hire_day") <= day - 8))
        .select(
            "user_no",
            (catalogue.first_elective + (pl.col("s") + offset) % catalogue.electives).alias(
                "course_no"
            ),
            (evening + _bits(pl.col("_h"), 20, 3 * 3600)).alias("t"),
            _grade(pl.col("_h")).alias("grade"),
        )
    )


def _access(
    users: pl.DataFrame, completions: pl.DataFrame, seed: int, as_of_day: int
) -> pl.DataFrame:
    """First and last access around each person's completions: first soon after joining
    (never after their first completion), last recent for active people, long ago for
    suspended ones (never before their last completion). Of those who never logged in,
    most have no row and some a row with empty dates."""
    cut = as_of_day * _SECONDS_PER_DAY
    span = completions.group_by("user_no").agg(
        pl.col("t").min().alias("c_first"), pl.col("t").max().alias("c_last")
    )
    h = _hash(seed, "access", pl.col("user_no"))
    first = pl.min_horizontal(
        (_first_lms_day(pl.col("hire_day")) + _bits(h, 0, 10)) * _SECONDS_PER_DAY
        + 8 * 3600
        + _bits(h, 4, 3600 * 8),
        pl.col("c_first"),
    )
    recency_days = (
        pl.when(pl.col("suspended") == 1)
        .then(90 + _bits(h, 24, 800))
        .otherwise(
            (-(1.0 - _unit(_hash(seed, "recency", pl.col("user_no")))).log() * 12).cast(pl.Int64)
        )
    )
    last = pl.max_horizontal(
        pl.col("first"),
        pl.col("c_last"),
        cut - 1 - recency_days * _SECONDS_PER_DAY - _bits(h, 40, _SECONDS_PER_DAY),
    )
    learners = _learners(users, seed).join(span, on="user_no", how="left", maintain_order="left")
    active = (
        learners.filter(~pl.col("never_logged_in"))
        .with_columns(first.alias("first"))
        .filter(pl.col("first") < cut)
        .with_columns(last.alias("last"))
        .select("user_no", "first", "last")
    )
    blank = learners.filter(
        pl.col("never_logged_in") & (_bits(_hash(seed, "blank", pl.col("user_no")), 0, 5) == 0)
    ).select(
        "user_no",
        pl.lit(None, dtype=pl.Int64).alias("first"),
        pl.lit(None, dtype=pl.Int64).alias("last"),
    )
    return pl.concat([active, blank]).sort("user_no")


# --- feed tables ---------------------------------------------------------------------------


def _org_rows(orgs: pl.DataFrame) -> pl.DataFrame:
    return orgs.sort("org_no").select(
        _org_id(pl.col("org_no")).alias("idnumber"),
        "fullname",
        "shortname",
        "description",
        pl.lit(ORG_FRAMEWORK).alias("frameworkidnumber"),
        _org_id(pl.col("parent_no")).alias("parentidnumber"),
        pl.col("type").alias("typeidnumber"),
        pl.lit(0, dtype=pl.Int8).alias("deleted"),
        "timemodified",
        pl.col("costcentre").alias("customfield_costcentre"),
    )


def _user_rows(users: pl.DataFrame) -> pl.DataFrame:
    return users.sort("user_no").select(
        _user_id(pl.col("user_no")).alias("idnumber"),
        "username",
        "firstname",
        "lastname",
        "email",
        "suspended",
        pl.lit(0, dtype=pl.Int8).alias("deleted"),
        "emailstop",
        "city",
        "country",
        "lang",
        "timezone",
        "institution",
        "department",
        "timemodified",
        pl.col("hire_day").cast(pl.Date).alias("customfield_hiredate"),
        pl.col("employeetype").alias("customfield_employeetype"),
        pl.col("region").alias("customfield_region"),
    )


def _job_rows(jobs: pl.DataFrame) -> pl.DataFrame:
    titles = _positions().titles
    return jobs.sort("user_no", "job_no").select(
        pl.concat_str(pl.lit("J"), pl.col("job_no").cast(pl.String)).alias("idnumber"),
        _user_id(pl.col("user_no")).alias("useridnumber"),
        pl.lit(titles).gather(pl.col("pos_no") - 1).alias("fullname"),
        pl.col("start_day").cast(pl.Date).alias("startdate"),
        pl.col("end_day").cast(pl.Date).alias("enddate"),
        _org_id(pl.col("org_no")).alias("orgidnumber"),
        _pos_id(pl.col("pos_no")).alias("posidnumber"),
        _user_id(pl.col("manager_no")).alias("manageridnumber"),
        pl.col("manager_job").alias("managerjobassignmentidnumber"),
        _user_id(pl.col("appraiser_no")).alias("appraiseridnumber"),
        pl.lit(0, dtype=pl.Int8).alias("deleted"),
        "timemodified",
    )


def _completion_rows(completions: pl.DataFrame) -> pl.DataFrame:
    return completions.select(
        _user_id(pl.col("user_no")).alias("useridnumber"),
        _course_id(pl.col("course_no")).alias("courseidnumber"),
        pl.from_epoch(pl.col("t"), time_unit="s").alias("timecompleted"),
        "grade",
    )


def _access_rows(access: pl.DataFrame) -> pl.DataFrame:
    return access.select(
        _user_id(pl.col("user_no")).alias("useridnumber"),
        pl.from_epoch(pl.col("first"), time_unit="s").alias("firstaccess"),
        pl.from_epoch(pl.col("last"), time_unit="s").alias("lastaccess"),
    )


def _write_feed(path: Path, frame: pl.DataFrame, extra: list[tuple[float, dict[str, str]]]) -> None:
    """Write ``frame`` as CSV with the ``extra`` rows spliced in at their relative positions
    (0.5 = the middle of the file), so rejected rows do not all sit at the end."""
    columns = frame.columns
    options = {"datetime_format": TIMESTAMP_FORMAT, "date_format": DATE_FORMAT}
    with path.open("wb") as out:
        written, header = 0, True
        for at, row in sorted(extra, key=lambda item: item[0]):
            upto = round(at * frame.height)
            frame.slice(written, upto - written).write_csv(out, include_header=header, **options)
            header, written = False, upto
            out.write(_csv_line([row.get(c, "") for c in columns]))
        frame.slice(written).write_csv(out, include_header=header, **options)


def _csv_line(values: list[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue().encode("utf-8")


# --- deliberately bad rows -----------------------------------------------------------------

BAD_USER_IDS = ("U9999901", "U9999902", "U9999903", "U9999904")
BAD_ORG_IDS = ("ORG99901", "ORG99902", "ORG99903")
MISSING_ORG_ID = "ORG99998"
MISSING_USER_ID = "U9999999"
MISSING_COURSE_ID = "C9999"


def _bad_user(idnumber: str, first: str, last: str, **overrides: str) -> dict[str, str]:
    local = f"{_fold(first)}.{_fold(last)}.{idnumber[1:]}"
    row = {
        "idnumber": idnumber,
        "username": f"{_fold(first)[0]}{_fold(last)}{idnumber[1:]}",
        "firstname": first,
        "lastname": last,
        "email": f"{local}@{EMAIL_DOMAIN}",
        "suspended": "0",
        "deleted": "0",
        "emailstop": "0",
        "city": "Wellington",
        "country": "NZ",
        "lang": "en",
        "timezone": "Pacific/Auckland",
        "institution": INSTITUTIONS["NZ"],
        "department": "Finance",
        "timemodified": str((_REF_DAY - 20) * _SECONDS_PER_DAY),
        "customfield_hiredate": str(_date(_REF_DAY - 20)),
        "customfield_employeetype": "Permanent",
        "customfield_region": "APAC",
    }
    row.update(overrides)
    return row


def _bad_org(idnumber: str, name: str, parent: str) -> dict[str, str]:
    return {
        "idnumber": idnumber,
        "fullname": name,
        "shortname": "",
        "description": "",
        "frameworkidnumber": ORG_FRAMEWORK,
        "parentidnumber": parent,
        "typeidnumber": "team",
        "deleted": "0",
        "timemodified": str((_REF_DAY - 20) * _SECONDS_PER_DAY),
        "customfield_costcentre": "CC99999",
    }


_Placed = list[tuple[float, dict[str, str]]]  # (relative position in the file, row)


def _bad_rows(
    state: _State, as_of_day: int
) -> tuple[dict[str, _Placed], tuple[InjectedBadRow, ...]]:
    """The fixed set of invalid rows, and their listing. Bad jobs and completions hang on
    good people as *extra* records (J6-J9, an unknown course), so nothing good depends on
    them; bad users and organisations have idnumbers of their own."""
    rows: dict[str, _Placed] = {element: [] for element in FEED_COLUMNS}
    listed: list[InjectedBadRow] = []

    def add(element: str, row: dict[str, str], record_id: str, code: str, why: str) -> None:
        rows[element].append((0.5, row))  # the middle of the file
        listed.append(InjectedBadRow(element, record_id, code, why))

    for record_id, code, why, row in _bad_users():
        add("user", row, record_id, code, why)
    # The second copy of the duplicate goes last, far from the first (listed once).
    dup = BAD_USER_IDS[0]
    second = _bad_user(dup, "Hēmi", "Walker", username="hwalker.dup")
    second["email"] = "hemi.walker.dup@example.com"
    rows["user"].append((1.0, second))

    orphan, cycle_a, cycle_b = BAD_ORG_IDS
    add(
        "org",
        _bad_org(orphan, "Nelson Branch 1", "ORG99999"),
        orphan,
        "parent_not_found",
        "parentidnumber ORG99999 does not exist",
    )
    for org, other, name in (
        (cycle_a, cycle_b, "Legacy Team A"),
        (cycle_b, cycle_a, "Legacy Team B"),
    ):
        add(
            "org",
            _bad_org(org, name, other),
            org,
            "parent_cycle",
            f"{org} and {other} are each other's parent",
        )

    hosts = _bad_row_hosts(state.jobs)
    for index, (job, code, why, fields) in enumerate(_BAD_JOBS):
        host = hosts[index % len(hosts)]
        row = {
            "idnumber": job,
            "useridnumber": host["user"],
            "fullname": "Acting Team Leader",
            "startdate": "2025-03-01",
            "orgidnumber": host["org"],
            "posidnumber": host["pos"],
            "deleted": "0",
            "timemodified": str((_REF_DAY - 10) * _SECONDS_PER_DAY),
            **fields,
        }
        if code == "self_manager":
            row["manageridnumber"] = host["user"]
        add("jobassignment", row, f"{host['user']}/{job}", code, why)

    when = _date(as_of_day - 3).isoformat() + "T10:00:00Z"
    for user, course, grade, code, why in (
        (hosts[0]["user"], MISSING_COURSE_ID, "80", "course_not_found",
         f"course {MISSING_COURSE_ID} does not exist"),
        (MISSING_USER_ID, "C0001", "75", "user_not_found",
         f"user {MISSING_USER_ID} does not exist"),
    ):  # fmt: skip
        row = {
            "useridnumber": user,
            "courseidnumber": course,
            "timecompleted": when,
            "grade": grade,
        }
        add("course_completion", row, f"{user}/{course}/{when}", code, why)
    return rows, tuple(listed)


_BAD_JOBS: tuple[tuple[str, str, str, dict[str, str]], ...] = (
    ("J9", "organisation_not_found", f"orgidnumber {MISSING_ORG_ID} does not exist",
     {"orgidnumber": MISSING_ORG_ID}),
    ("J8", "self_manager", "manageridnumber is the job's own user", {}),
    ("J7", "start_after_end", "startdate 2025-09-01 is after enddate 2025-03-01",
     {"startdate": "2025-09-01", "enddate": "2025-03-01"}),
    ("J6", "date_invalid", "startdate '31/02/2024' is not a date", {"startdate": "31/02/2024"}),
)  # fmt: skip
"""Extra jobs of good people: (job idnumber, reason code, description, fields)."""


def _bad_users() -> list[tuple[str, str, str, dict[str, str]]]:
    """(record_id, reason code, description, row) for the users with one defect each."""
    dup, bad_email, bad_country, bad_username = BAD_USER_IDS
    return [
        (dup, "duplicate_key",
         f"{dup} appears twice (far apart, different usernames and emails); both copies are bad",
         _bad_user(dup, "Hēmi", "Walker")),
        (bad_email, "email_invalid", "email 'ana.silva.at.example.com' has no @",
         _bad_user(bad_email, "Ana", "Silva", email="ana.silva.at.example.com")),
        (bad_country, "country_invalid", "country 'UK' is not ISO 3166-1 alpha-2 (GB is)",
         _bad_user(bad_country, "Liam", "Byrne", city="London", country="UK",
                   timezone="Europe/London", institution=INSTITUTIONS["GB"],
                   customfield_region="UK & Ireland")),
        (bad_username, "username_invalid", "username 'mary jones!' has a space and a '!'",
         _bad_user(bad_username, "Mary", "Jones", username="mary jones!")),
    ]  # fmt: skip


def _bad_row_hosts(jobs: pl.DataFrame) -> list[dict[str, str]]:
    """Good people to hang the extra bad jobs on: the lowest user numbers that have a
    manager (the CEO only when there is nobody else)."""
    return (
        jobs.filter(pl.col("job_no") == 1)
        .sort(pl.col("manager_no").is_null(), "user_no")
        .head(len(_BAD_JOBS))
        .select(
            _user_id(pl.col("user_no")).alias("user"),
            _org_id(pl.col("org_no")).alias("org"),
            _pos_id(pl.col("pos_no")).alias("pos"),
        )
        .to_dicts()
    )


# --- notes for the docs ----------------------------------------------------------------------


def _shares(series: pl.Series, top: int = 12) -> str:
    counts = series.fill_null("(empty)").value_counts(sort=True, name="n")
    total = max(1, series.len())
    parts = [
        f"{value} {100 * n / total:.1f}%"
        for value, n in counts.sort(["n", series.name], descending=[True, False])
        .head(top)
        .iter_rows()
    ]
    return ", ".join(parts)


def _percent(part: int, whole: int) -> str:
    return f"{part:,} ({100 * part / max(1, whole):.1f}%)"


def _management_depth(jobs: pl.DataFrame) -> int:
    """Levels in the first-job management tree (CEO = 1), by pointer doubling."""
    walk = jobs.filter(pl.col("job_no") == 1).select(
        "user_no",
        pl.col("manager_no").alias("up"),
        pl.col("manager_no").is_not_null().cast(pl.Int64).alias("dist"),
    )
    for _ in range(64):
        if walk["up"].null_count() == walk.height:
            return int(walk["dist"].max() or 0) + 1
        walk = walk.join(
            walk.select(
                pl.col("user_no").alias("up"), pl.col("up").alias("up2"), pl.col("dist").alias("d2")
            ),
            on="up",
            how="left",
        ).select("user_no", pl.col("up2").alias("up"), pl.col("dist") + pl.col("d2").fill_null(0))
    raise RuntimeError("management graph has a cycle")  # pragma: no cover - generator bug


def _rule_mix(
    state: _State,
    completions: pl.DataFrame,
    access: pl.DataFrame,
    catalogue: _Catalogue,
    churn_notes: list[str],
) -> dict[str, str]:
    """How the good rows split, for the docs' rule-mix table (what a rule would match)."""
    users, jobs, orgs = state.users, state.jobs, state.orgs
    n = users.height
    spans = jobs.filter(pl.col("manager_no").is_not_null()).group_by("manager_no").len()
    second = jobs.filter(pl.col("job_no") == 2).height
    learners = completions["user_no"].n_unique()
    recurring = completions.filter(pl.col("course_no") <= len(RECURRING_COURSES)).height
    never = n - access.filter(pl.col("first").is_not_null()).height
    hires = users["hire_day"]
    return {
        "users": f"{n:,} users in user.csv (good rows)",
        "country": _shares(users["country"]),
        "region": _shares(users["region"]),
        "lang": _shares(users["lang"]),
        "employeetype": _shares(users["employeetype"]),
        "department": _shares(users["department"], top=6),
        "suspended": _percent(int(users["suspended"].sum()), n),
        "emailstop": _percent(int(users["emailstop"].sum()), n),
        "no_email": _percent(users["email"].null_count(), n),
        "hiredate": f"{_date(int(hires.min() or 0))} to {_date(int(hires.max() or 0))}",
        "jobs": f"{jobs.height:,} jobs; {_percent(second, n)} people hold a second job (J2)",
        "fixed_term": _percent(jobs["end_day"].is_not_null().sum(), jobs.height)
        + " of jobs have an enddate",
        "manager_job_given": _percent(jobs["manager_job"].is_not_null().sum(), jobs.height),
        "appraiser": _percent(jobs["appraiser_no"].is_not_null().sum(), jobs.height),
        "managers": f"{spans.height:,} managers, span mean {spans['len'].mean() or 0:.1f}, "
        f"max {spans['len'].max() or 0}; {_management_depth(jobs)} management levels",
        "organisations": f"{orgs.height:,} items, depth {orgs['depth'].max()}; "
        + _shares(orgs["type"]),
        "positions": f"{_positions().rows.height} items in {len(FAMILIES) + 1} job families",
        "courses": f"{catalogue.courses.height} courses: {len(RECURRING_COURSES)} annual "
        f"recertification, {len(VERSIONED_YEARS)} '{VERSIONED_COURSE} <year>', "
        f"{catalogue.electives} electives",
        "completions": f"{completions.height:,} rows, {completions.height / max(1, learners):.1f} "
        f"per learner; {_percent(recurring, completions.height)} are recertification cycles",
        "access": f"never logged in: {_percent(never, n)}",
        "churn": "; ".join(churn_notes) or "none (epoch 0)",
    }
