"""Certification cycles and states (docs/programs.md, "Certifications"; SPEC §4.3).

Source rows are written straight into ``hr.*`` and ``rules.*`` of a temporary warehouse,
with the whole completion history up front (completions after a run's as-of are not counted,
so one history serves every run), and the warehouse is built at five as-of instants:

    R1 2013-01-01   R2 2013-04-20   R3 2013-06-01   R4 2013-10-01   R5 2014-12-01

Between R2 and R3 one learner loses their route; at R4 it is back. The assertions read the
captured ``fct_certification_user`` and ``int_certification_cycles`` of each run.

Certifications (all: active period 1 year unless said otherwise):

    cert_exp    expiry_date, window 1 month, due 2012-05-03; primary {all CE1}, recert {any CE2}
    cert_cd     completion_date, window 3 weeks; both paths {all CD1}
    cert_fx     fixed, window 1 month, min active 6 months, due 2013-05-03; both paths {all CF1}
    cert_month  completion_date, active 1 month, window 7 days; both paths {any CM1}
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pytest

from flows.build import build_warehouse
from flows.state_schema import ensure_state_schema

D = dt.datetime

RUNS = {
    "r1": D(2013, 1, 1),
    "r2": D(2013, 4, 20),
    "r3": D(2013, 6, 1),
    "r4": D(2013, 10, 1),
    "r5": D(2014, 12, 1),
}

WEEK = 7 * 24 * 3600

# id: (expiry_method, active (months, seconds), window, min active, due, {path: (kind, courses)})
CERTIFICATIONS: dict[str, dict[str, Any]] = {
    "cert_exp": {
        "method": "expiry_date",
        "active": (12, 0),
        "window": (1, 0),
        "min_active": (None, None),
        "due": D(2012, 5, 3),
        "paths": {"primary": ("all", ["CE1"]), "recertification": ("any", ["CE2"])},
    },
    "cert_cd": {
        "method": "completion_date",
        "active": (12, 0),
        "window": (0, 3 * WEEK),
        "min_active": (None, None),
        "due": None,
        "paths": {"primary": ("all", ["CD1"]), "recertification": ("all", ["CD1"])},
    },
    "cert_fx": {
        "method": "fixed",
        "active": (12, 0),
        "window": (1, 0),
        "min_active": (6, 0),
        "due": D(2013, 5, 3),
        "paths": {"primary": ("all", ["CF1"]), "recertification": ("all", ["CF1"])},
    },
    "cert_month": {
        "method": "completion_date",
        "active": (1, 0),
        "window": (0, WEEK),
        "min_active": (None, None),
        "due": None,
        "paths": {"primary": ("any", ["CM1"]), "recertification": ("any", ["CM1"])},
    },
}

# certification -> learner -> completions (course, instant)
HISTORY: dict[str, dict[str, list[tuple[str, dt.datetime]]]] = {
    "cert_exp": {
        # on time for the due date 2012-05-03: expires 2013-05-03; recertified in the window
        "u_window": [("CE1", D(2012, 4, 1)), ("CE2", D(2013, 4, 15))],
        # the same history; loses the route for R3 and gets it back at R4
        "u_reassign": [("CE1", D(2012, 4, 1)), ("CE2", D(2013, 4, 15))],
        # recertification path done after expiry (does not count), primary redone: restart
        "u_late": [("CE1", D(2012, 4, 1)), ("CE2", D(2013, 6, 5)), ("CE1", D(2013, 6, 10))],
        # no recertification: expired, then the primary path again
        "u_expire": [("CE1", D(2012, 4, 1)), ("CE1", D(2013, 9, 1))],
        # a recertification course done before the window opened (2013-04-03)
        "u_early": [("CE1", D(2012, 4, 1)), ("CE2", D(2013, 3, 20))],
        # recertified in the window, first seen by a run after the expiry
        "u_late_run": [("CE1", D(2012, 4, 1)), ("CE2", D(2013, 5, 1))],
        # first certification after the due date: the completion is the base
        "u_late_first": [("CE1", D(2012, 6, 1))],
        "u_never": [],
    },
    "cert_cd": {
        "u_cd": [("CD1", D(2013, 4, 15))],
        "u_cd_early": [("CD1", D(2013, 4, 15)), ("CD1", D(2014, 3, 1))],
        "u_cd_recert": [("CD1", D(2013, 4, 15)), ("CD1", D(2014, 4, 1))],
    },
    "cert_fx": {
        "u_fx_ontime": [("CF1", D(2013, 4, 15))],
        "u_fx_late": [("CF1", D(2013, 12, 1))],
        "u_fx_early": [("CF1", D(2012, 1, 10))],
        "u_fx_recert": [("CF1", D(2013, 4, 15)), ("CF1", D(2014, 4, 10))],
        "u_fx_after": [("CF1", D(2013, 4, 15)), ("CF1", D(2014, 7, 1))],
    },
    "cert_month": {
        # 31 Jan + 1 month = 28 Feb (DuckDB clamps to the month's end)
        "u_clamp": [("CM1", D(2013, 1, 31))],
        # recertified on every expiry: nine cycles by R4
        "u_monthly": [("CM1", D(2013, month, 25)) for month in range(1, 10)],
    },
}

USERS = sorted({user for learners in HISTORY.values() for user in learners})


@dataclass
class Capture:
    """fct_certification_user and int_certification_cycles right after one build."""

    states: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    cycles: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: Sequence[dict[str, Any]]) -> None:
    """Insert dict rows (column -> value) into a source table."""
    columns = list(rows[0])
    placeholders = ", ".join("?" for _ in columns)
    sql = f"insert into {table} ({', '.join(columns)}) values ({placeholders})"  # noqa: S608 (test constants)
    con.executemany(sql, [[row[column] for column in columns] for row in rows])


def _seed(con: duckdb.DuckDBPyConnection) -> None:
    """Users, courses, completions and the certification rule tables."""
    _insert(
        con,
        "hr.user",
        [
            {
                "user_id": user,
                "username": user,
                "email": f"{user}@example.com",
                "first_name": user,
                "last_name": "Learner",
                "status": "active",
                "first_seen_run_id": "r1",
            }
            for user in USERS
        ],
    )
    courses = sorted(
        {
            course
            for spec in CERTIFICATIONS.values()
            for _, ids in spec["paths"].values()
            for course in ids
        }
    )
    _insert(con, "hr.course", [{"course_id": c, "name": c, "score": None} for c in courses])
    _insert(
        con,
        "hr.course_completion",
        [
            {"user_id": user, "course_id": course, "completed_at": at, "first_seen_run_id": "r1"}
            for learners in HISTORY.values()
            for user, completions in learners.items()
            for course, at in completions
        ],
    )
    programs, course_sets, set_courses, routes, targets = [], [], [], [], []
    for cert_id, spec in CERTIFICATIONS.items():
        programs.append(
            {
                "program_id": cert_id,
                "name": cert_id,
                "kind": "certification",
                "active_period_months": spec["active"][0],
                "active_period_seconds": spec["active"][1],
                "window_period_months": spec["window"][0],
                "window_period_seconds": spec["window"][1],
                "min_active_period_months": spec["min_active"][0],
                "min_active_period_seconds": spec["min_active"][1],
                "expiry_method": spec["method"],
                "minimum_time_seconds": 0,
                "minimum_time_months": 0,
                "exception_default": "open",
                "is_broken": False,
                "definition": json.dumps({"id": cert_id}),
                "source_file": "certifications.yaml",
            }
        )
        for path, (kind, ids) in spec["paths"].items():
            course_sets.append(
                {
                    "program_id": cert_id,
                    "path": path,
                    "set_id": "set_1",
                    "set_position": 1,
                    "group_number": 1,
                    "run_number": 1,
                    "kind": kind,
                    "min_courses": 0,
                    "min_score": 0,
                    "min_time_months": 0,
                    "min_time_seconds": 0,
                    "course_count": len(ids),
                }
            )
            set_courses += [
                {"program_id": cert_id, "path": path, "set_id": "set_1", "course_id": course}
                for course in ids
            ]
        routes.append(
            {
                "program_id": cert_id,
                "route_key": "users",
                "route_kind": "users",
                "include_children": False,
                "due_kind": "fixed" if spec["due"] else "none",
                "due_fixed_at": spec["due"],
            }
        )
        targets += [
            {"program_id": cert_id, "route_key": "users", "target_id": user}
            for user in HISTORY[cert_id]
        ]
    _insert(con, "rules.program", programs)
    _insert(con, "rules.program_course_set", course_sets)
    _insert(con, "rules.program_course_set_course", set_courses)
    _insert(con, "rules.program_route", routes)
    _insert(con, "rules.program_route_target", targets)


def _build(database: Path, state_dir: Path, run_id: str) -> Capture:
    """One run: its run_context row, a build of fct_certification_user and all it reads
    with every test among them (cautious: none that reaches outside the selection, such as
    a relationships test to a dimension nothing here needs), the captures."""
    with duckdb.connect(str(database)) as con:
        con.execute("delete from learnops.run_context")
        con.execute(
            "insert into learnops.run_context (run_id, as_of) values (?, ?)", [run_id, RUNS[run_id]]
        )
        con.execute(
            "insert into learnops.run_log (run_id, as_of, started_at, status) "
            "values (?, ?, ?, 'running')",
            [run_id, RUNS[run_id], RUNS[run_id]],
        )
    build_warehouse(
        database,
        state_dir=state_dir,
        select="+fct_certification_user",
        exclude=None,
        indirect_selection="cautious",
    )
    capture = Capture()
    with duckdb.connect(str(database), read_only=True) as con:
        for table, into in (
            ("main.fct_certification_user", None),
            ("intermediate.int_certification_cycles", capture.cycles),
        ):
            result = con.sql(f"select * from {table} order by all")  # noqa: S608 (constants)
            names = result.columns
            for values in result.fetchall():
                row = dict(zip(names, values, strict=True))
                key = (row["certification_id"], row["user_id"])
                if into is None:
                    capture.states[key] = row
                else:
                    into.setdefault(key, []).append(row)
    for cycles in capture.cycles.values():
        cycles.sort(key=lambda row: row["cycle_number"])
    return capture


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Capture]]:
    """The warehouse built at R1..R5; u_reassign is unassigned for R3 only."""
    directory = tmp_path_factory.mktemp("certifications")
    database, state_dir = directory / "warehouse.duckdb", directory / "state"
    with duckdb.connect(str(database)) as con:
        ensure_state_schema(con)
        _seed(con)
    captures = {}
    for run_id in RUNS:
        with duckdb.connect(str(database)) as con:
            con.execute("delete from rules.program_route_target where target_id = 'u_reassign'")
            if run_id != "r3":
                con.execute(
                    "insert into rules.program_route_target "
                    "values ('cert_exp', 'users', 'u_reassign')"
                )
        captures[run_id] = _build(database, state_dir, run_id)
    yield captures


def _state(capture: Capture, cert: str, user: str) -> tuple[Any, ...]:
    row = capture.states[(cert, user)]
    return (row["state"], row["certified_at"], row["window_opens_at"], row["expires_at"])


def _cycles(capture: Capture, cert: str, user: str, *columns: str) -> list[tuple[Any, ...]]:
    return [tuple(row[column] for column in columns) for row in capture.cycles[(cert, user)]]


# --------------------------------------------------------------------------- expiry dates


def test_expiry_date_recertified_in_window_keeps_the_rhythm(runs: dict[str, Capture]) -> None:
    # statements 27 and the on-time primary: due 2012-05-03 -> expiry 2013-05-03;
    # recertified 15 Apr 2013 -> expiry 3 May 2014, window opens 3 Apr 2014
    assert _cycles(
        runs["r4"], "cert_exp", "u_window",
        "cycle_number", "path", "certified_at", "base_rule", "base_at", "expires_at",
        "window_opens_at",
    ) == [
        (1, "primary", D(2012, 4, 1), "due_date", D(2012, 5, 3), D(2013, 5, 3), D(2013, 4, 3)),
        (2, "recertification", D(2013, 4, 15), "previous_expiry", D(2013, 5, 3), D(2014, 5, 3),
         D(2014, 4, 3)),
    ]  # fmt: skip
    assert _state(runs["r4"], "cert_exp", "u_window") == (
        "certified",
        D(2013, 4, 15),
        D(2014, 4, 3),
        D(2014, 5, 3),
    )


def test_primary_completed_after_the_due_date_expires_from_the_completion(
    runs: dict[str, Capture],
) -> None:
    assert _cycles(runs["r1"], "cert_exp", "u_late_first", "base_rule", "expires_at") == [
        ("completion", D(2013, 6, 1))
    ]


def test_recertifying_after_expiry_restarts_from_the_completion(
    runs: dict[str, Capture],
) -> None:
    assert _cycles(
        runs["r4"], "cert_exp", "u_late",
        "cycle_number", "path", "counted_from", "opened_at", "completed_at", "certified_at",
        "cycle_outcome", "base_rule", "expires_at",
    ) == [
        # cycle 1 opens at the assignment (this run's as-of: no previous state in this test)
        (1, "primary", None, RUNS["r4"], D(2012, 4, 1), D(2012, 4, 1), "certified",
         "due_date", D(2013, 5, 3)),
        # the recertification path completed after the expiry (5 Jun): too late, not counted
        (2, "recertification", D(2013, 4, 3), D(2013, 4, 3), None, None, "expired", None, None),
        (3, "primary", D(2013, 4, 3), D(2013, 5, 3), D(2013, 6, 10), D(2013, 6, 10),
         "certified", "completion", D(2014, 6, 10)),
    ]  # fmt: skip
    assert _state(runs["r4"], "cert_exp", "u_late") == (
        "certified",
        D(2013, 6, 10),
        D(2014, 5, 10),
        D(2014, 6, 10),
    )


def test_completion_date_method_and_a_three_week_window(runs: dict[str, Capture]) -> None:
    # statement 29 and the 3-week window: 15 Apr 2013 -> 15 Apr 2014, window 25 Mar 2014
    assert _state(runs["r4"], "cert_cd", "u_cd") == (
        "certified",
        D(2013, 4, 15),
        D(2014, 3, 25),
        D(2014, 4, 15),
    )
    assert _state(runs["r5"], "cert_cd", "u_cd") == (
        "expired",
        D(2013, 4, 15),
        D(2014, 3, 25),
        D(2014, 4, 15),
    )
    # recertified in the window: the new completion is the base
    assert _state(runs["r5"], "cert_cd", "u_cd_recert") == (
        "certified",
        D(2014, 4, 1),
        D(2015, 3, 11),
        D(2015, 4, 1),
    )


def test_fixed_method_keeps_the_dates_and_the_minimum_active_period(
    runs: dict[str, Capture],
) -> None:
    def expiry(user: str) -> list[tuple[Any, ...]]:
        return _cycles(runs["r5"], "cert_fx", user, "certified_at", "base_at", "expires_at")

    # due 2013-05-03, completed 15 Apr 2013 with more than 6 months left: 3 May 2014
    assert expiry("u_fx_ontime")[0] == (D(2013, 4, 15), D(2013, 5, 3), D(2014, 5, 3))
    # completed late, less than 6 months before 3 May 2014: pushed a whole period forward
    assert expiry("u_fx_late") == [(D(2013, 12, 1), D(2014, 5, 3), D(2015, 5, 3))]
    # completed long before the due date: moved back a whole period
    assert expiry("u_fx_early")[0] == (D(2012, 1, 10), D(2012, 5, 3), D(2013, 5, 3))
    # recertified in the window: from the previous expiry
    assert expiry("u_fx_recert") == [
        (D(2013, 4, 15), D(2013, 5, 3), D(2014, 5, 3)),
        (D(2014, 4, 10), D(2014, 5, 3), D(2015, 5, 3)),
    ]
    # after expiry the fixed dates stay: 1 Jul 2014 + 6 months <= 3 May 2015
    assert [row[2] for row in expiry("u_fx_after")] == [D(2014, 5, 3), None, D(2015, 5, 3)]


def test_month_arithmetic_clamps_to_the_month_end(runs: dict[str, Capture]) -> None:
    assert _cycles(runs["r2"], "cert_month", "u_clamp", "expires_at", "window_opens_at")[0] == (
        D(2013, 2, 28),
        D(2013, 2, 21),
    )


def test_a_long_chain_is_derived_in_full(runs: dict[str, Capture]) -> None:
    row = runs["r4"].states[("cert_month", "u_monthly")]
    assert (row["state"], row["certification_count"], row["certified_at"], row["expires_at"]) == (
        "certified", 9, D(2013, 9, 25), D(2013, 10, 25)
    )  # fmt: skip
    assert not row["is_chain_truncated"]


# --------------------------------------------------------------------------- the window


def test_completions_before_the_window_opens_do_not_count(runs: dict[str, Capture]) -> None:
    assert _state(runs["r2"], "cert_exp", "u_early")[0] == "window_open"
    assert _state(runs["r3"], "cert_exp", "u_early")[0] == "expired"
    assert _state(runs["r5"], "cert_cd", "u_cd_early")[0] == "expired"


def test_a_recertification_in_the_window_counts_when_a_later_run_first_sees_it(
    runs: dict[str, Capture],
) -> None:
    # R2 (20 Apr) is before the completion of 1 May; R3 (1 Jun) is after the expiry of 3 May
    assert _state(runs["r2"], "cert_exp", "u_late_run")[0] == "window_open"
    assert _state(runs["r3"], "cert_exp", "u_late_run") == (
        "certified",
        D(2013, 5, 1),
        D(2014, 4, 3),
        D(2014, 5, 3),
    )


# --------------------------------------------------------------------------- states


def test_states_follow_the_as_of(runs: dict[str, Capture]) -> None:
    states = [_state(runs[run_id], "cert_exp", "u_expire") for run_id in ("r1", "r2", "r3", "r4")]
    assert states == [
        ("certified", D(2012, 4, 1), D(2013, 4, 3), D(2013, 5, 3)),
        ("window_open", D(2012, 4, 1), D(2013, 4, 3), D(2013, 5, 3)),
        # expired: the last certification's dates stay, the learner is on the primary path
        ("expired", D(2012, 4, 1), D(2013, 4, 3), D(2013, 5, 3)),
        # a later primary completion certifies anew, from the completion
        ("certified", D(2013, 9, 1), D(2014, 8, 1), D(2014, 9, 1)),
    ]


def test_the_current_path_follows_the_state(runs: dict[str, Capture]) -> None:
    def current(run_id: str) -> tuple[Any, ...]:
        row = runs[run_id].states[("cert_exp", "u_expire")]
        return (
            row["current_path"],
            row["current_path_counted_from"],
            row["current_path_opened_at"],
            row["cycle_number"],
        )

    assert current("r1") == ("primary", None, RUNS["r1"], 1)
    assert current("r2") == ("recertification", D(2013, 4, 3), D(2013, 4, 3), 2)
    assert current("r3") == ("primary", D(2013, 4, 3), D(2013, 5, 3), 3)


def test_never_certified_is_assigned(runs: dict[str, Capture]) -> None:
    for run_id in RUNS:
        assert _state(runs[run_id], "cert_exp", "u_never") == ("assigned", None, None, None)


def test_unassigning_and_reassigning_restores_the_state(runs: dict[str, Capture]) -> None:
    assert ("cert_exp", "u_reassign") not in runs["r3"].states
    restored = _state(runs["r4"], "cert_exp", "u_reassign")
    assert restored == _state(runs["r4"], "cert_exp", "u_window")
    assert restored == ("certified", D(2013, 4, 15), D(2014, 4, 3), D(2014, 5, 3))
