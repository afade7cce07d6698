"""The bitset primitives of flows/audience_sets.py, against plain Python sets, and the one-time
upgrade from a warehouse that has memberships but no member sets yet."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
from hypothesis import example, given, settings
from hypothesis import strategies as st

from flows import audience_sets
from flows.pipeline import RunRequest, parse_as_of, run_pipeline

from . import org
from .conftest import Runs, query, write_dir, write_rules

KEY_SPACE = 3000
keys_strategy = st.sets(st.integers(min_value=0, max_value=KEY_SPACE - 1), max_size=400)


def bits_of(keys: set[int], key_count: int = KEY_SPACE) -> np.ndarray:
    return audience_sets.from_keys(
        np.array(sorted(keys), dtype=np.int64), audience_sets.words_for(key_count)
    )


@settings(max_examples=60, deadline=None)
@given(keys_strategy)
def test_a_set_survives_to_keys_encode_and_decode(keys: set[int]) -> None:
    bits = bits_of(keys)
    assert audience_sets.to_keys(bits).tolist() == sorted(keys)
    assert audience_sets.size(bits) == len(keys)
    words = audience_sets.words_for(KEY_SPACE)
    blob = audience_sets.encode(bits)
    assert np.array_equal(audience_sets.decode(blob, words), bits)
    for key in [*list(keys)[:20], 0, 1, KEY_SPACE - 1, KEY_SPACE + 500]:
        assert audience_sets.blob_contains(blob, key) == (key in keys)


def test_dense_sets_are_stored_as_words_and_sparse_ones_as_keys() -> None:
    sparse, dense = bits_of({5, 77}), bits_of(set(range(0, KEY_SPACE, 2)))
    assert audience_sets.encode(sparse)[:1] == b"S"
    assert len(audience_sets.encode(sparse)) == 1 + 2 * 4
    assert audience_sets.encode(dense)[:1] == b"D"


def test_a_set_stored_before_new_users_arrived_reads_over_the_longer_key_range() -> None:
    """Keys are stable and new users get higher ones: an old set is padded, not renumbered."""
    old = audience_sets.encode(bits_of({3, 70, 129}, key_count=130))
    now = audience_sets.decode(old, audience_sets.words_for(10_000))
    assert audience_sets.to_keys(now).tolist() == [3, 70, 129]
    assert audience_sets.decode(None, 4).tolist() == [0, 0, 0, 0]


JOB_SPACE = 4000  # more jobs than users, as at 1M users


@settings(max_examples=40, deadline=None)
@given(
    pairs=st.lists(st.tuples(st.integers(0, 5), st.integers(0, JOB_SPACE - 1)), max_size=300),
    in_job_space=st.lists(st.booleans(), min_size=6, max_size=6),
)
def test_atom_sets_match_grouping_by_hand(
    pairs: list[tuple[int, int]], in_job_space: list[bool]
) -> None:
    """Rows in any order, repeats allowed: an atom in job space gets the set of its job keys
    (which may pass the user key range) and a zero row in the users' matrix; every other atom
    the set of its user keys."""
    pairs = [(a, k if in_job_space[a] else k % KEY_SPACE) for a, k in pairs]
    words, job_words = audience_sets.words_for(KEY_SPACE), audience_sets.words_for(JOB_SPACE)
    users, jobs = audience_sets.atom_sets(
        np.array([a for a, _ in pairs], dtype=np.int32),
        np.array([k for _, k in pairs], dtype=np.int32),
        np.array(in_job_space),
        words,
        job_words,
    )
    assert users.shape == (6, words)
    assert sorted(jobs) == sorted({a for a, _ in pairs if in_job_space[a]})
    for atom in range(6):
        expected = sorted({k for a, k in pairs if a == atom})
        if in_job_space[atom]:
            assert not users[atom].any()
            if expected:
                assert audience_sets.to_keys(jobs[atom]).tolist() == expected
        else:
            assert audience_sets.to_keys(users[atom]).tolist() == expected


def test_pattern_matching_finds_every_overlapping_pattern_like_sql_would() -> None:
    values = ["a.turner.b@x", "turnerturner", "abc", "urn", "xturn", "", "ab"]
    subjects = pl.DataFrame({"user_key": list(range(len(values))), "value_lower": values})
    wanted = (
        [("contains", p) for p in ("turner", "urn", ".turner.", "ab", "zzz", "", "a.")]
        + [("starts_with", p) for p in ("a", "turn", "")]
        + [("ends_with", p) for p in ("n", "c")]
    )
    found = audience_sets._keys_by_pattern(
        subjects, [{"match_operator": op, "value_lower": p} for op, p in wanted]
    )
    test = {"contains": str.__contains__, "starts_with": str.startswith, "ends_with": str.endswith}
    for operator, pattern in wanted:
        expected = [i for i, v in enumerate(values) if test[operator](v, pattern)]
        # repeats are allowed (a value holding a pattern twice): the bitsets absorb them
        assert sorted(set(found[(operator, pattern)].tolist())) == expected, (operator, pattern)


def test_a_warehouse_without_member_sets_takes_its_previous_members_from_the_facts(
    runs: Runs, tmp_path: Path
) -> None:
    """Upgrading: a published warehouse from before the member sets existed has only
    fct_audience_membership. The next run reads the members from it once: with unchanged
    inputs nobody joins or leaves and every joined_at is kept."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(runs.warehouse, warehouse)
    shutil.copytree(Path(f"{runs.warehouse}.learnops"), Path(f"{warehouse}.learnops"))
    with duckdb.connect(str(warehouse)) as con:
        con.execute("drop table intermediate.int_audience_member_sets")
    members_before = query(warehouse, "select * from fct_audience_membership order by all")
    events_before = query(warehouse, "select count(*) from fct_audience_membership_event")

    result = run_pipeline(
        RunRequest(
            feeds=write_dir(tmp_path / "feeds", org.feeds_run_2()),
            rules=write_rules(tmp_path / "rules", org.audiences_yaml(2)),
            warehouse=warehouse,
            as_of=parse_as_of(org.AS_OF_2, "UTC"),
        )
    )

    assert result.status == "succeeded", result.message
    assert query(warehouse, "select * from fct_audience_membership order by all") == members_before
    assert query(warehouse, "select count(*) from fct_audience_membership_event") == events_before
    assert query(warehouse, "select count(*) from intermediate.int_audience_member_sets") != [(0,)]


COURSE_KEYS = 20
pair_strategy = st.tuples(
    st.integers(0, 4),  # course 4 has no completions
    st.none() | st.integers(0, 6),  # lower bound (inclusive)
    st.none() | st.integers(0, 6),  # upper bound (inclusive)
)


@settings(max_examples=60, deadline=None)
@given(
    completions=st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, COURSE_KEYS - 1), st.integers(0, 6)),
        max_size=120,
    ),
    leaves=st.lists(
        st.tuples(st.sampled_from(["all", "any"]), st.lists(pair_strategy, min_size=1, max_size=3)),
        min_size=1,
        max_size=8,
    ),
)
@example(  # both bounds are inclusive: a completion on either one counts
    completions=[(0, 1, 3), (0, 2, 5), (1, 1, 4)],
    leaves=[("any", [(0, 3, 3)]), ("all", [(0, None, 5), (1, 4, None)]), ("any", [(0, 5, 5)])],
)
def test_course_leaves_count_a_course_with_a_completion_within_the_bounds(
    completions: list[tuple[int, int, int]], leaves: list[tuple[str, list[tuple]]]
) -> None:
    """`all`: every listed course has a completion in [lower, upper] (None: unbounded), `any`:
    one does; repeats and a (course, bounds) pair listed by several leaves (the evaluation
    shares it) change nothing. not_all / none are the complements (tests/audiences/org.py)."""
    con = duckdb.connect()
    con.execute("create table completions (course_no bigint, user_key bigint, completed_us bigint)")
    con.execute(
        "create table course_leaves (node_id bigint, course_no bigint, lower_us bigint, "
        "upper_us bigint)"
    )
    con.execute("create table nodes (node_id bigint, match_operator varchar)")
    if completions:
        con.executemany("insert into completions values (?, ?, ?)", completions)
    for node_id, (match, pairs) in enumerate(leaves):
        con.execute("insert into nodes values (?, ?)", [node_id, match])
        con.executemany(
            "insert into course_leaves values (?, ?, ?, ?)", [[node_id, *p] for p in pairs]
        )
    names = {name: "unused" for name in audience_sets.LeafInputs.__dataclass_fields__}
    names.update(course_leaves="course_leaves", nodes="nodes", course_completions="completions")
    words = audience_sets.words_for(COURSE_KEYS)

    sets = audience_sets._course_leaf_sets(con, audience_sets.LeafInputs(**names), words)

    def counts(key: int, course: int, lower: int | None, upper: int | None) -> bool:
        inside = [t for c, k, t in completions if c == course and k == key]
        return any((lower is None or t >= lower) and (upper is None or t <= upper) for t in inside)

    assert sorted(sets) == list(range(len(leaves)))
    for node_id, (match, pairs) in enumerate(leaves):
        test = all if match == "all" else any
        expected = [k for k in range(COURSE_KEYS) if test(counts(k, *p) for p in pairs)]
        assert audience_sets.to_keys(sets[node_id]).tolist() == expected, (match, pairs)
    # a set shared by two leaves must not be one object that a later step could change
    assert len({id(bits) for bits in sets.values()}) == len(sets)


DATE_KEYS = 20
bounds_strategy = st.tuples(
    st.integers(0, 3),  # field 3 has no values
    st.none() | st.integers(-2, 8),  # lower bound (inclusive)
    st.none() | st.integers(-2, 8),  # upper bound (inclusive)
)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, DATE_KEYS - 1), st.integers(-2, 8)),
        max_size=120,
    ),
    leaves=st.lists(bounds_strategy, min_size=1, max_size=8),
)
@example(  # both bounds are inclusive; a user with two values (two jobs) needs one inside
    values=[(0, 1, 3), (0, 2, 5), (0, 2, -1), (1, 1, 4)],
    leaves=[(0, 3, 3), (0, None, 0), (1, 4, None), (0, 5, 5), (0, 3, 3)],
)
def test_date_leaves_hold_the_users_with_a_value_within_the_bounds(
    values: list[tuple[int, int, int]], leaves: list[tuple[int, int | None, int | None]]
) -> None:
    """A date leaf holds a user with some value of its field in [lower, upper] (None:
    unbounded), whatever order the values arrive in; leaves with the same field and bounds
    (the evaluation shares their set) get equal sets, each its own object."""
    con = duckdb.connect()
    con.execute("create table subjects (field_no bigint, user_key bigint, value bigint)")
    con.execute(
        "create table date_leaves (node_id bigint, field_no bigint, lower_value bigint, "
        "upper_value bigint)"
    )
    if values:
        con.executemany("insert into subjects values (?, ?, ?)", values)
    con.executemany(
        "insert into date_leaves values (?, ?, ?, ?)",
        [[node_id, *leaf] for node_id, leaf in enumerate(leaves)],
    )
    names = {name: "unused" for name in audience_sets.LeafInputs.__dataclass_fields__}
    names.update(date_leaves="date_leaves", date_subjects="subjects")
    words = audience_sets.words_for(DATE_KEYS)

    sets = audience_sets._date_leaf_sets(con, audience_sets.LeafInputs(**names), words)

    assert sorted(sets) == list(range(len(leaves)))
    for node_id, (field, lower, upper) in enumerate(leaves):
        expected = sorted(
            {
                k
                for f, k, v in values
                if f == field and (lower is None or v >= lower) and (upper is None or v <= upper)
            }
        )
        assert audience_sets.to_keys(sets[node_id]).tolist() == expected, (field, lower, upper)
    assert len({id(bits) for bits in sets.values()}) == len(sets)
