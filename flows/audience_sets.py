"""Audience evaluation on bitsets: every set of users is one bit per user (docs/audiences.md).

The dbt Python models `int_audience_leaf_sets`, `int_audience_member_sets` and
`int_audience_membership_changes` call the functions here. Users are numbered by the stable
`user_key` of `int_audience_user_keys` (a key is never reused or renumbered), so a set is a
`uint64` array of ``words_for(key_count)`` words where bit ``k`` says whether user ``k`` is in
it. At 1M users a set is 125 KB and an `and` / `or` / `not` of two sets takes microseconds,
whatever their sizes: a rule tree of any shape folds in time proportional to its nodes, and
broad leaves (a country, "completed in the last five years") cost no more than narrow ones.

SQL (`int_audience_leaf_atoms`, `int_audience_atom_members`) finds the users of each *atom*,
a set several leaves can share (users whose country is "uk", users with a job in an
organisation's subtree); dates are range look-ups on sorted arrays here, and course
completions one comparison over a course's completions per (course, bounds) pair. Stored
sets use the compact encoding of `encode`.
"""

# The f-strings below only splice relation names this module registered (see `register`),
# never rule or feed text: values travel as rows.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

from flows.warehouse import fetch_dicts, table_exists

WORD_BITS = 64
_DENSE, _SPARSE = b"D", b"S"  # encoding tags: raw words, or sorted uint32 keys

MEMBERSHIP_KINDS = frozenset({"member_of", "not_member_of"})


# ---------------------------------------------------------------------------------- bitsets


def words_for(key_count: int) -> int:
    """Words of a bitset over ``key_count`` users (at least one)."""
    return max(1, -(-key_count // WORD_BITS))


def empty(words: int) -> np.ndarray:
    """The empty set."""
    return np.zeros(words, dtype=np.uint64)


def from_keys(keys: np.ndarray, words: int) -> np.ndarray:
    """The set of these user keys (any order, repeats allowed)."""
    flags = np.zeros(words * WORD_BITS, dtype=bool)
    flags[keys] = True
    return np.packbits(flags, bitorder="little").view(np.uint64)


# for each byte value: the positions of its set bits, flattened, and where each one starts
_BYTE_BITS = [np.flatnonzero(np.unpackbits(np.uint8(v), bitorder="little")) for v in range(256)]
_BYTE_BIT_COUNT = np.array([len(bits) for bits in _BYTE_BITS], dtype=np.int64)
_BYTE_BIT_START = np.concatenate(([0], np.cumsum(_BYTE_BIT_COUNT)[:-1]))
_BYTE_BIT_FLAT = np.concatenate(_BYTE_BITS).astype(np.int64)


def to_keys(bits: np.ndarray) -> np.ndarray:
    """The user keys of a set, ascending."""
    octets = bits.view(np.uint8)
    if size(bits) * 16 > len(octets) * 8:  # dense: expanding every bit is cheapest
        return np.flatnonzero(np.unpackbits(octets, bitorder="little"))
    # sparse: expand only the non-zero bytes, through the per-byte table above
    at = np.flatnonzero(octets)
    values = octets[at]
    counts = _BYTE_BIT_COUNT[values]
    owner = np.repeat(np.arange(len(at)), counts)
    rank = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return at[owner] * 8 + _BYTE_BIT_FLAT[_BYTE_BIT_START[values][owner] + rank]


def size(bits: np.ndarray) -> int:
    """How many users the set holds."""
    return int(np.bitwise_count(bits).sum())


def resized(bits: np.ndarray, words: int) -> np.ndarray:
    """The same set over ``words`` words: sets stored by an earlier run may be shorter."""
    if len(bits) == words:
        return bits
    out = empty(words)
    out[: min(words, len(bits))] = bits[:words]
    return out


def encode(bits: np.ndarray) -> bytes:
    """Stored form: sorted uint32 keys when that is smaller than the raw words."""
    count = size(bits)
    if count * 4 < len(bits) * 8:
        return _SPARSE + to_keys(bits).astype("<u4").tobytes()
    return _DENSE + bits.astype("<u8").tobytes()


def decode(blob: bytes | None, words: int) -> np.ndarray:
    """The set a stored blob holds, over ``words`` words (``None`` is the empty set)."""
    if not blob:
        return empty(words)
    payload = memoryview(blob)[1:]
    if blob[:1] == _SPARSE:
        keys = np.frombuffer(payload, dtype="<u4").astype(np.int64)
        return from_keys(keys[keys < words * WORD_BITS], words)
    return resized(np.frombuffer(payload, dtype="<u8").astype(np.uint64), words)


def blob_contains(blob: bytes | None, key: int) -> bool:
    """Whether a stored set holds user ``key``, without decoding the whole set."""
    if not blob or key < 0:
        return False
    payload = memoryview(blob)[1:]
    if blob[:1] == _SPARSE:
        keys = np.frombuffer(payload, dtype="<u4")
        at = int(np.searchsorted(keys, key))
        return at < len(keys) and int(keys[at]) == key
    word, bit = divmod(key, WORD_BITS)
    if word * 8 >= len(payload):
        return False
    value = int.from_bytes(payload[word * 8 : word * 8 + 8], "little")
    return bool(value >> bit & 1)


def atom_sets(
    atom_ids: np.ndarray,
    member_keys: np.ndarray,
    in_job_space: np.ndarray,
    words: int,
    job_words: int,
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """The sets of atoms from their (atom, member key) rows, in any order, repeats allowed.

    ``in_job_space[atom]`` says whether an atom's members are job keys. Returns a matrix with
    one row per atom, its users over ``words`` (zero for an atom in job space), and atom ->
    the set of its jobs over ``job_words`` for the atoms in job space. The rows are grouped by
    atom once (a radix sort) and each atom's keys become a set: masking the rows by space and
    setting bits with `bitwise_or.at` cost 3.5 CPU-s for 35M rows at 1M users, this 1.2.
    """
    users = np.zeros((len(in_job_space), words), dtype=np.uint64)
    jobs = {}
    for atom, (keys,) in _split_by(atom_ids, member_keys).items():
        if in_job_space[atom]:
            jobs[atom] = from_keys(keys, job_words)
        else:
            users[atom] = from_keys(keys, words)
    return users, jobs


# ---------------------------------------------------------------------------------- reading


def _columns(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> dict:
    """A query's result as numpy arrays by column name."""
    return con.execute(sql, list(params)).fetchnumpy()


def key_count(con: duckdb.DuckDBPyConnection, user_keys: str) -> int:
    """Users ever numbered: the size every set of this run is built over."""
    (count,) = con.execute(f"select coalesce(max(user_key) + 1, 0) from {user_keys}").fetchone()
    return int(count)


def user_set(
    con: duckdb.DuckDBPyConnection, users: str, user_keys: str, words: int, deleted: bool = True
) -> np.ndarray:
    """The users of `dim_user` (``users``) as a set, with or without the deleted ones."""
    condition = "" if deleted else "where u.status <> 'deleted'"
    keys = _columns(
        con,
        f"select k.user_key from {users} as u "
        f"inner join {user_keys} as k using (user_id) {condition}",
    )["user_key"]
    return from_keys(keys.astype(np.int64), words)


def register(relations: Mapping[str, duckdb.DuckDBPyRelation], prefix: str) -> dict[str, str]:
    """Give each dbt relation a temporary view name the queries here can use."""
    names = {}
    for key, relation in relations.items():
        names[key] = f"{prefix}__{key}"
        relation.create_view(names[key], replace=True)
    return names


def previous_member_sets(
    con: duckdb.DuckDBPyConnection, schema: str, table: str, user_keys: str
) -> str | None:
    """The relation holding the last published members as sets, if there is one.

    Normally the member-sets table itself, as the last published run left it. A warehouse
    built before the sets existed has only `main.fct_audience_membership`: its rows are
    turned into sets once, here.
    """
    if table_exists(con, schema, table):
        return f'"{schema}"."{table}"'
    if not table_exists(con, "main", "fct_audience_membership"):
        return None
    words = words_for(key_count(con, user_keys))
    rows = _columns(
        con,
        f"select m.audience_id, k.user_key from main.fct_audience_membership as m "
        f"inner join {user_keys} as k using (user_id) order by m.audience_id",
    )
    sets = _sets_by_group(rows["audience_id"], rows["user_key"], words)
    con.register(
        "previous_member_sets_from_facts",
        pa.table(
            {
                "audience_id": pa.array(list(sets), pa.string()),
                "user_set": pa.array([encode(bits) for bits in sets.values()], pa.binary()),
            }
        ),
    )
    return "previous_member_sets_from_facts"


# ---------------------------------------------------------------------------------- leaves


@dataclass(frozen=True)
class LeafInputs:
    """Names of the relations (views registered by the dbt model) the leaf sets read."""

    nodes: str
    node_values: str
    text_subjects: str
    leaf_atoms: str
    atom_members: str
    date_leaves: str
    date_subjects: str
    course_leaves: str
    course_completions: str
    user_keys: str
    job_keys: str
    users: str


# the item a job-item leaf tests: for the job title, the job itself (every job has one)
_JOB_ITEM_OF_KIND = {
    "job_title": "job",
    "organisation_type": "organisation",
    "organisation_custom_field": "organisation",
    "position_type": "position",
    "position_custom_field": "position",
}


def _range_keys(
    values: np.ndarray, keys: np.ndarray, lower: int | None, upper: int | None
) -> np.ndarray:
    """Keys whose value (``values`` ascending) lies in [lower, upper]; None is unbounded."""
    start = 0 if lower is None else int(np.searchsorted(values, lower, side="left"))
    stop = len(values) if upper is None else int(np.searchsorted(values, upper, side="right"))
    return keys[start:stop].astype(np.int64)


def _group_slices(groups: np.ndarray) -> dict[Any, tuple[int, int]]:
    """group -> (start, stop) of its run in an array sorted by group (numbers or texts)."""
    if not len(groups):
        return {}
    edges = np.flatnonzero(groups[1:] != groups[:-1]) + 1
    starts = np.concatenate(([0], edges))
    stops = np.concatenate((edges, [len(groups)]))
    return {_plain(groups[a]): (int(a), int(b)) for a, b in zip(starts, stops, strict=True)}


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (texts arrive as Python strings)."""
    return value.item() if isinstance(value, np.generic) else value


def _sets_by_group(groups: np.ndarray, keys: np.ndarray, words: int) -> dict[Any, np.ndarray]:
    """group -> the set of its keys, from (group, key) rows sorted by group."""
    keys = keys.astype(np.int64)
    return {
        group: from_keys(keys[start:stop], words)
        for group, (start, stop) in _group_slices(groups).items()
    }


def _nullable(value: Any) -> int | None:
    return None if value is None else int(value)


def evaluate_leaf_sets(con: duckdb.DuckDBPyConnection, inputs: LeafInputs) -> pa.Table:
    """The stored set of every leaf except member_of / not_member_of, one row per leaf.

    Atom leaves are the union of their atoms' sets; a date leaf holds the users with a value
    in its bounds; a course leaf the users for whom every (`all`) or some (`any`) listed
    course has a completion in its bounds. Columns: node_id, audience_id, user_count,
    user_set (see `encode`).
    """
    words = words_for(key_count(con, inputs.user_keys))
    leaves = fetch_dicts(
        con,
        f"select node_id, audience_id, leaf_kind from {inputs.nodes} "
        "where node_type = 'leaf' and leaf_kind not in ('member_of', 'not_member_of') "
        "order by node_id",
    )
    sets: dict[int, np.ndarray] = {}
    sets.update(_atom_leaf_sets(con, inputs, words))
    sets.update(_pattern_leaf_sets(con, inputs, words))
    sets.update(_date_leaf_sets(con, inputs, words))
    sets.update(_course_leaf_sets(con, inputs, words))
    blank = empty(words)
    stored = [sets.get(leaf["node_id"], blank) for leaf in leaves]
    return pa.table(
        {
            "node_id": pa.array([leaf["node_id"] for leaf in leaves], pa.int64()),
            "audience_id": pa.array([leaf["audience_id"] for leaf in leaves], pa.string()),
            "user_count": pa.array([size(bits) for bits in stored], pa.int64()),
            "user_set": pa.array([encode(bits) for bits in stored], pa.binary()),
        }
    )


def _atom_leaf_sets(
    con: duckdb.DuckDBPyConnection, inputs: LeafInputs, words: int
) -> dict[int, np.ndarray]:
    """Leaves whose set is the union of their atoms' sets (int_audience_leaf_atoms)."""
    refs = _columns(
        con,
        f"select node_id, atom_id, member_space = 'job' as in_job_space, leaf_kind "
        f"from {inputs.leaf_atoms} order by node_id",
    )
    if not len(refs["node_id"]):
        return {}
    # 32-bit numbers: half the copies of 35M rows at 1M users (keys stay far below 2^31)
    members = _columns(
        con,
        "select atom_id::integer as atom_id, member_key::integer as member_key "
        f"from {inputs.atom_members}",
    )
    in_job_space = np.zeros(int(refs["atom_id"].max()) + 1, dtype=bool)
    in_job_space[refs["atom_id"][refs["in_job_space"]]] = True
    job_words = words_for(_job_count(con, inputs)) if in_job_space.any() else 1
    atoms, matched_jobs = atom_sets(
        members["atom_id"], members["member_key"], in_job_space, words, job_words
    )
    sets = {}
    job_leaves = {}
    for node_id, (start, stop) in _group_slices(refs["node_id"]).items():
        if refs["in_job_space"][start]:
            job_leaves[node_id] = str(refs["leaf_kind"][start])
        else:
            sets[node_id] = np.bitwise_or.reduce(atoms[refs["atom_id"][start:stop]], axis=0)
    if job_leaves:
        atom_of_leaf = dict(zip(refs["node_id"], refs["atom_id"], strict=True))
        sets.update(
            _negative_job_leaf_sets(con, inputs, job_leaves, atom_of_leaf, matched_jobs, words)
        )
    return sets


def _job_count(con: duckdb.DuckDBPyConnection, inputs: LeafInputs) -> int:
    """Jobs numbered in this run: the size of every set of jobs."""
    (count,) = con.execute(f"select count(*) from {inputs.job_keys}").fetchone()
    return int(count)


def _negative_job_leaf_sets(
    con: duckdb.DuckDBPyConnection,
    inputs: LeafInputs,
    leaf_kinds: Mapping[int, str],
    atom_of_leaf: Mapping[int, int],
    matched_jobs: Mapping[int, np.ndarray],
    words: int,
) -> dict[int, np.ndarray]:
    """Stored sets of negative job-item leaves: users none of whose item-jobs fail to match.

    The leaf holds for a user with a job that has the item and does not match (a job whose
    title is not X); its stored set is the complement, users without such a job: everyone
    present minus the owners of the item-jobs outside the matched jobs.
    """
    jobs = _columns(
        con,
        f"select user_key, has_organisation, has_position from {inputs.job_keys} order by job_key",
    )
    owner = jobs["user_key"].astype(np.int64)
    job_words = words_for(len(owner))
    item_jobs = {
        "job": from_keys(np.arange(len(owner)), job_words),
        "organisation": from_keys(np.flatnonzero(jobs["has_organisation"]), job_words),
        "position": from_keys(np.flatnonzero(jobs["has_position"]), job_words),
    }
    present = user_set(con, inputs.users, inputs.user_keys, words)
    sets = {}
    for node_id, leaf_kind in leaf_kinds.items():
        matched = matched_jobs.get(atom_of_leaf[node_id], empty(job_words))
        failing = item_jobs[_JOB_ITEM_OF_KIND[leaf_kind]] & ~matched
        sets[node_id] = present & ~from_keys(owner[to_keys(failing)], words)
    return sets


def _pattern_leaf_sets(
    con: duckdb.DuckDBPyConnection, inputs: LeafInputs, words: int
) -> dict[int, np.ndarray]:
    """User-field `contains` / `starts_with` / `ends_with` leaves (and their negations).

    A user's value is searched for every pattern of its field in one pass (Aho-Corasick,
    overlapping matches: polars `extract_many`), so a field with hundreds of pattern leaves
    costs about what one costs; SQL would test every (leaf, user) pair.
    """
    patterns = fetch_dicts(
        con,
        f"select n.node_id, n.field_name, n.is_custom_field, n.match_operator, v.value_lower "
        f"from {inputs.nodes} as n inner join {inputs.node_values} as v using (node_id) "
        "where n.node_type = 'leaf' and n.leaf_kind = 'user_field' "
        "and n.match_operator in ('contains', 'starts_with', 'ends_with')",
    )
    by_field: dict[tuple[str, bool], list[dict]] = {}
    for row in patterns:
        by_field.setdefault((row["field_name"], bool(row["is_custom_field"])), []).append(row)
    if not by_field:
        return {}
    # one scan of the subjects for every pattern field (the view unpivots every user)
    subjects = con.sql(
        f"select s.field_name, s.is_custom_field, s.user_key, s.value_lower "
        f"from {inputs.text_subjects} as s "
        "where s.leaf_kind = 'user_field' and list_contains(?, s.field_name)",
        params=[sorted({name for name, _ in by_field})],
    ).pl()
    per_field = subjects.partition_by(["field_name", "is_custom_field"], as_dict=True)
    parts: dict[int, list[np.ndarray]] = {}
    for (field_name, is_custom), rows in by_field.items():
        field_subjects = per_field.get((field_name, is_custom))
        if field_subjects is None:
            continue
        matched = _keys_by_pattern(field_subjects, rows)
        for row in rows:
            found = matched[(row["match_operator"], row["value_lower"])]
            parts.setdefault(row["node_id"], []).append(found)
    return {node_id: from_keys(np.concatenate(found), words) for node_id, found in parts.items()}


def _keys_by_pattern(subjects: pl.DataFrame, rows: list[dict]) -> dict[tuple[str, str], np.ndarray]:
    """(operator, pattern) -> keys of the subjects whose value matches, for one field."""
    keys = subjects["user_key"].to_numpy().astype(np.int64)
    values = subjects["value_lower"]
    wanted = {(row["match_operator"], row["value_lower"]) for row in rows}
    found: dict[tuple[str, str], np.ndarray] = {}
    contained = sorted({p for op, p in wanted if op == "contains" and p})
    if contained:
        hits = (
            pl.DataFrame(
                {"user_key": keys, "pattern": values.str.extract_many(contained, overlapping=True)}
            )
            .explode("pattern")
            .drop_nulls("pattern")
            .group_by("pattern")
            .agg(pl.col("user_key"))
        )
        by_pattern = {p: np.asarray(k, dtype=np.int64) for p, k in hits.iter_rows()}
        for pattern in contained:
            found[("contains", pattern)] = by_pattern.get(pattern, np.empty(0, np.int64))
    for operator, pattern in wanted:
        if operator == "contains" and pattern:
            continue
        if not pattern:  # every string starts with, ends with and contains ''
            found[(operator, pattern)] = keys
        elif operator == "starts_with":
            found[(operator, pattern)] = keys[values.str.starts_with(pattern).to_numpy()]
        else:
            found[(operator, pattern)] = keys[values.str.ends_with(pattern).to_numpy()]
    return found


def _date_leaf_sets(
    con: duckdb.DuckDBPyConnection, inputs: LeafInputs, words: int
) -> dict[int, np.ndarray]:
    """Date leaves: the users with a value of the leaf's field within its bounds.

    A distinct (field, bounds) triple is turned into a set once, shared by every leaf that
    reads it (196 for 631 leaves in the benchmark's rules). The values arrive unsorted and are
    sorted per field here: `order by field_no, value` in SQL cost more than the leaves.
    """
    leaves = fetch_dicts(
        con, f"select node_id, field_no, lower_value, upper_value from {inputs.date_leaves}"
    )
    if not leaves:
        return {}
    by_field = _dates_by_field(con, inputs.date_subjects)
    no_values = (np.empty(0, np.int64), np.empty(0, np.int32))
    ranged: dict[tuple[int, int | None, int | None], np.ndarray] = {}
    sets = {}
    for leaf in leaves:
        triple = (
            leaf["field_no"],
            _nullable(leaf["lower_value"]),
            _nullable(leaf["upper_value"]),
        )
        if triple not in ranged:
            values, keys = by_field.get(triple[0], no_values)
            ranged[triple] = from_keys(_range_keys(values, keys, triple[1], triple[2]), words)
        # a copy: no leaf's set is another leaf's object (as for the course leaves)
        sets[leaf["node_id"]] = ranged[triple].copy()
    return sets


def _dates_by_field(
    con: duckdb.DuckDBPyConnection, date_subjects: str
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """field_no -> (its values ascending, their user keys)."""
    rows = _columns(
        con,
        "select field_no::integer as field_no, user_key::integer as user_key, value "
        f"from {date_subjects}",
    )
    by_field = {}
    for field_no, (values, keys) in _split_by(
        rows["field_no"], rows["value"], rows["user_key"]
    ).items():
        order = np.argsort(values)  # any order of equal values: keys end up in a set
        by_field[field_no] = (values[order], keys[order])
    return by_field


def _course_leaf_sets(
    con: duckdb.DuckDBPyConnection, inputs: LeafInputs, words: int
) -> dict[int, np.ndarray]:
    """Course-completion leaves: the users for whom every (`all`) or some (`any`) listed
    course counts, a course counting when it has a completion within the leaf's bounds.

    A (course, bounds) pair is turned into a set once and shared by every leaf that lists
    it. The completions arrive unsorted and are grouped by course here: sorting them by
    course and instant in SQL cost more than everything else together (0.5 of 0.7 CPU-s at
    100k), and a pair's users are a comparison over its course's completions.
    """
    listed = fetch_dicts(
        con,
        f"select c.node_id, c.course_no, c.lower_us, c.upper_us, n.match_operator "
        f"from {inputs.course_leaves} as c inner join {inputs.nodes} as n using (node_id) "
        "order by c.node_id, c.course_no",
    )
    if not listed:
        return {}
    by_course = _completions_by_course(con, inputs.course_completions)
    no_completions = (np.empty(0, np.int64), np.empty(0, np.int32))
    counting: dict[tuple[int, int | None, int | None], np.ndarray] = {}
    per_leaf: dict[int, list[np.ndarray]] = {}
    operator: dict[int, str] = {}
    for row in listed:
        pair = (row["course_no"], _nullable(row["lower_us"]), _nullable(row["upper_us"]))
        if pair not in counting:
            instants, keys = by_course.get(pair[0], no_completions)
            counting[pair] = from_keys(keys[_within(instants, pair[1], pair[2])], words)
        per_leaf.setdefault(row["node_id"], []).append(counting[pair])
        operator[row["node_id"]] = row["match_operator"]
    combine = {"all": np.bitwise_and, "any": np.bitwise_or}
    # reduce builds a new array, so no leaf's set is another's (or a shared pair's) object
    return {
        node_id: combine[operator[node_id]].reduce(course_sets)
        for node_id, course_sets in per_leaf.items()
    }


def _completions_by_course(
    con: duckdb.DuckDBPyConnection, completions: str
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """course_no -> (completion instants, user keys) of its completions, in no set order."""
    # 32-bit numbers where they fit: numpy's copy of the result is smaller, and cheaper
    rows = _columns(
        con,
        "select course_no::integer as course_no, user_key::integer as user_key, completed_us "
        f"from {completions}",
    )
    return _split_by(rows["course_no"], rows["completed_us"], rows["user_key"])


def _split_by(groups: np.ndarray, *columns: np.ndarray) -> dict[int, tuple[np.ndarray, ...]]:
    """group -> its rows of ``columns``, for non-negative integer groups in any order.

    Grouping in numpy rather than sorting in SQL: a stable sort of 16-bit integers is a
    radix sort, and the rows keep their order within a group.
    """
    if not len(groups):
        return {}
    if int(groups.max()) < 2**16:
        groups = groups.astype(np.uint16)
    order = np.argsort(groups, kind="stable")
    groups = groups[order]
    ordered = [column[order] for column in columns]
    return {
        group: tuple(column[start:stop] for column in ordered)
        for group, (start, stop) in _group_slices(groups).items()
    }


def _within(values: np.ndarray, lower: int | None, upper: int | None) -> np.ndarray | slice:
    """Which of ``values`` (any order) lie in [lower, upper]; None is unbounded."""
    if lower is None and upper is None:
        return slice(None)
    inside = np.ones(len(values), dtype=bool)
    if lower is not None:
        inside &= values >= lower
    if upper is not None:
        inside &= values <= upper
    return inside


# ---------------------------------------------------------------------------------- members


@dataclass(frozen=True)
class MemberInputs:
    """Names of the relations the member sets read; ``previous`` is None on a first run."""

    audiences: str
    nodes: str
    node_values: str
    leaf_sets: str
    static_members: str
    user_keys: str
    users: str
    previous: str | None


@dataclass
class _Node:
    node_id: int
    audience_id: str
    node_type: str
    leaf_kind: str | None
    is_complement: bool
    children: list[_Node] = field(default_factory=list)


def _trees(con: duckdb.DuckDBPyConnection, nodes: str) -> dict[int, _Node]:
    """Every rule node by id, children in order."""
    rows = fetch_dicts(
        con,
        "select node_id, audience_id, parent_node_id, node_type, leaf_kind, is_complement "
        f"from {nodes} "
        "order by parent_node_id nulls first, child_position",
    )
    by_id = {
        row["node_id"]: _Node(
            row["node_id"],
            row["audience_id"],
            row["node_type"],
            row["leaf_kind"],
            bool(row["is_complement"]),
        )
        for row in rows
    }
    for row in rows:
        if row["parent_node_id"] is not None:
            by_id[row["parent_node_id"]].children.append(by_id[row["node_id"]])
    return by_id


def _satisfying(node: _Node, leaf_set: Mapping[int, np.ndarray]) -> np.ndarray:
    """The users who satisfy a node: `and` / `or` / `not` straight on the sets.

    A leaf's stored set is the users of its positive twin; a negative leaf holds for everyone
    else. Bits of keys without a (non-deleted) user may be set here: the members are cut to
    the eligible users at the end, and every operation is per user, so they never leak.
    """
    if node.node_type == "leaf":
        stored = leaf_set[node.node_id]
        return ~stored if node.is_complement else stored
    children = [_satisfying(child, leaf_set) for child in node.children]
    if node.node_type == "not":
        return ~children[0]
    if node.node_type == "all":
        return np.bitwise_and.reduce(children)
    return np.bitwise_or.reduce(children)


def _stored_sets(con: duckdb.DuckDBPyConnection, relation: str, key: str, words: int) -> dict:
    cursor = con.execute(f"select {key}, user_set from {relation}")
    return {row[0]: decode(row[1], words) for row in cursor.fetchall()}


def evaluate_member_sets(con: duckdb.DuckDBPyConnection, inputs: MemberInputs) -> pa.Table:
    """Each audience's members now and at the last published run (docs/audiences.md).

    Audiences go in stage order, so a member_of leaf reads final members. One row per audience
    of the rules, plus one per audience that has gone from the rules but still had members
    (they leave). Columns: audience_id, user_count, user_set, previous_user_set.
    """
    words = words_for(key_count(con, inputs.user_keys))
    audiences = fetch_dicts(
        con,
        "select audience_id, kind, stage, root_node_id, "
        "not is_broken and is_in_window and (add_members or remove_members) as is_evaluated, "
        f"add_members, remove_members from {inputs.audiences} order by stage, audience_id",
    )
    eligible = user_set(con, inputs.users, inputs.user_keys, words, deleted=False)
    previous = _stored_sets(con, inputs.previous, "audience_id", words) if inputs.previous else {}
    nodes = _trees(con, inputs.nodes)
    leaf_set = _stored_sets(con, inputs.leaf_sets, "node_id", words)
    listed = _listed_audiences(con, inputs.node_values, nodes)
    static = _static_members(con, inputs, words)

    members: dict[str, np.ndarray] = {}
    for audience in audiences:
        audience_id = audience["audience_id"]
        before = previous.get(audience_id, empty(words))
        if not audience["is_evaluated"]:
            members[audience_id] = before & eligible
            continue
        # member_of leaves: members of any listed audience, all from earlier stages
        for node_id, references in listed.get(audience_id, {}).items():
            leaf_set[node_id] = np.bitwise_or.reduce(
                [members.get(ref, empty(words)) for ref in references] + [empty(words)]
            )
        if audience["kind"] == "static":
            matched = static.get(audience_id, empty(words))
        elif audience["root_node_id"] is None:
            matched = empty(words)
        else:
            matched = _satisfying(nodes[audience["root_node_id"]], leaf_set)
        kept = matched if audience["add_members"] else before & matched
        if not audience["remove_members"]:
            kept = kept | before
        members[audience_id] = kept & eligible

    gone = [a for a, bits in previous.items() if a not in members and bits.any()]
    ids = list(members) + gone
    now = [members.get(a, empty(words)) for a in ids]
    return pa.table(
        {
            "audience_id": pa.array(ids, pa.string()),
            "user_count": pa.array([size(bits) for bits in now], pa.int64()),
            "user_set": pa.array([encode(bits) for bits in now], pa.binary()),
            "previous_user_set": pa.array(
                [encode(previous[a]) if a in previous else None for a in ids], pa.binary()
            ),
        }
    )


def _listed_audiences(
    con: duckdb.DuckDBPyConnection, node_values: str, nodes: Mapping[int, _Node]
) -> dict[str, dict[int, list[str]]]:
    """audience -> member_of / not_member_of node -> the audience ids it lists."""
    result: dict[str, dict[int, list[str]]] = {}
    cursor = con.execute(f"select node_id, value from {node_values} order by node_id, value")
    for node_id, value in cursor.fetchall():
        node = nodes.get(node_id)
        if node is not None and node.leaf_kind in MEMBERSHIP_KINDS:
            result.setdefault(node.audience_id, {}).setdefault(node_id, []).append(value)
    return result


def _static_members(
    con: duckdb.DuckDBPyConnection, inputs: MemberInputs, words: int
) -> dict[str, np.ndarray]:
    """audience -> its listed members (static audiences)."""
    rows = _columns(
        con,
        f"select s.audience_id, k.user_key from {inputs.static_members} as s "
        f"inner join {inputs.user_keys} as k using (user_id) order by s.audience_id",
    )
    return _sets_by_group(rows["audience_id"], rows["user_key"], words)


# ---------------------------------------------------------------------------------- changes


def membership_changes(
    con: duckdb.DuckDBPyConnection, member_sets: str, user_keys: str
) -> pa.Table:
    """Who joined and who left each audience in this run: audience_id, user_id, event.

    Built as dictionary-encoded columns (an index per row into the audience ids, the user
    ids and the two events), so a first run with hundreds of millions of joins holds a few
    integers per row rather than three strings.
    """
    words = words_for(key_count(con, user_keys))
    keyed = _columns(con, f"select user_key from {user_keys} order by user_key")["user_key"]
    user_ids = (
        con.sql(f"select user_id from {user_keys} order by user_key")
        .to_arrow_table()
        .column("user_id")
        .combine_chunks()
    )
    audience_ids: list[str] = []
    audience_index, key_column, event_index = [], [], []
    cursor = con.execute(f"select audience_id, user_set, previous_user_set from {member_sets}")
    for audience_id, now_blob, before_blob in cursor.fetchall():
        now, before = decode(now_blob, words), decode(before_blob, words)
        if np.array_equal(now, before):
            continue
        audience_ids.append(audience_id)
        for event, bits in enumerate((now & ~before, before & ~now)):
            keys = to_keys(bits).astype(np.int32)
            audience_index.append(np.full(len(keys), len(audience_ids) - 1, dtype=np.int32))
            key_column.append(keys)
            event_index.append(np.full(len(keys), event, dtype=np.int8))
    changed_keys = np.concatenate(key_column) if key_column else np.empty(0, np.int32)
    # keys are dense (0 .. n-1) by construction, so a key is its own position; if that ever
    # stops holding, look the positions up
    dense = len(keyed) == 0 or (keyed[0] == 0 and keyed[-1] == len(keyed) - 1)
    positions = changed_keys if dense else np.searchsorted(keyed, changed_keys).astype(np.int32)

    def dictionary(indices: list[np.ndarray], values: pa.Array, dtype: type) -> pa.Array:
        flat = np.concatenate(indices) if indices else np.empty(0, dtype)
        return pa.DictionaryArray.from_arrays(pa.array(flat), values)

    return pa.table(
        {
            "audience_id": dictionary(
                audience_index, pa.array(audience_ids, pa.string()), np.int32
            ),
            "user_id": pa.DictionaryArray.from_arrays(pa.array(positions), user_ids),
            "event": dictionary(event_index, pa.array(["joined", "left"]), np.int8),
        }
    )
