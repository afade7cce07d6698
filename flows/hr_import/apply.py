"""Apply validated feed rows to the live state: full/delta, on_remove, empty_fields (§3.2).

Each ``apply_*`` function takes the live state before the run (polars frames shaped like
the ``hr.*`` tables) and one element's :class:`Batch`, rejects the rows whose references do
not resolve, and returns the element's new live frame plus what changed. Nothing is written
here: the importer writes every element at once after the removal guard has passed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import polars as pl

from flows.hr_import.elements import CUSTOM_FIELD_PREFIX
from flows.hr_import.graphs import ancestors, descendants, nodes_on_cycles
from flows.hr_import.parsing import parse_flag, parse_integer, parse_number
from flows.hr_import.reader import LINE_COLUMN
from flows.hr_import.validate import KEY_COLUMN, Batch, typed_name

_MAX_PASSES = 50  # rejecting a row can orphan others; passes until nothing changes


@dataclass
class Change:
    """What applying one element did."""

    added: int = 0
    updated: int = 0
    removed: int = 0  # counted against max_removed_fraction
    live_before: int = 0
    cascaded: int = 0  # removed as a consequence of another removal (a subtree: guarded
    # with `removed`; jobs of removed users: guarded at the user element)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Column:
    """How one feed column becomes one live column."""

    feed: str
    live: str
    kind: str = "text"  # text | flag | integer | number | date | timestamp
    never_blank: bool = False


def typed(column: Column) -> pl.Expr:
    text = pl.col(column.feed)
    match column.kind:
        case "flag":
            return parse_flag(text)
        case "integer":
            return parse_integer(text)
        case "number":
            return parse_number(text)
        case "date" | "timestamp":
            return pl.col(typed_name(column.feed))  # parsed once, by the row checks
    stripped = text.str.strip_chars()
    return pl.when(stripped == "").then(None).otherwise(stripped)


def merge_rows(
    old: pl.DataFrame,
    incoming: pl.DataFrame,
    *,
    key: list[str],
    columns: list[Column],
    batch: Batch,
) -> pl.DataFrame:
    """New live values for the incoming rows, honouring `empty_fields` (SPEC §3.2).

    An empty cell keeps the stored value (`keep`) or clears it (`erase`); a column the file
    lacks always keeps it; never-blank columns are never cleared. Columns of `old` that no
    feed column maps to are carried over; new rows get null there.
    """
    erase = batch.settings.empty_fields == "erase"
    key_feeds = [c.feed for c in columns if c.live in key]
    incoming = incoming.with_columns(pl.col(c).str.strip_chars() for c in key_feeds)
    joined = incoming.join(old, left_on=key_feeds, right_on=key, how="left", suffix="_old")
    exprs = []
    for column in columns:
        old_name = column.live if column.live not in incoming.columns else f"{column.live}_old"
        if column.live in key:
            exprs.append(pl.col(column.feed).str.strip_chars().alias(column.live))
            continue
        old_value = pl.col(old_name) if old_name in joined.columns else pl.lit(None)
        if column.feed not in batch.columns:
            exprs.append(old_value.alias(column.live))
            continue
        empty = pl.col(column.feed).str.strip_chars() == ""
        on_empty = old_value if (not erase or column.never_blank) else pl.lit(None)
        exprs.append(pl.when(empty).then(on_empty).otherwise(typed(column)).alias(column.live))
    mapped = {c.live for c in columns}
    carried = [
        pl.col(c if c not in incoming.columns else f"{c}_old").alias(c)
        for c in old.columns
        if c not in mapped
    ]
    return (
        joined.select([*exprs, *carried, pl.col(LINE_COLUMN)])
        .select([*old.columns, LINE_COLUMN])
        .cast({c: t for c, t in old.schema.items()})
    )


Ids = pl.Series | set[str] | list[str]
"""A set of ids; pass a polars Series for big sets (no conversion per use)."""


def as_series(values: Ids) -> pl.Series:
    return values if isinstance(values, pl.Series) else pl.Series(list(values), dtype=pl.String)


def key_in(column: str | pl.Expr, values: Ids) -> pl.Expr:
    expr = pl.col(column) if isinstance(column, str) else column
    return expr.is_in(as_series(values).implode())


def reference_after_merge(
    batch: Batch, column: str, stored_keys: pl.Series, stored_values: pl.Series
) -> pl.Expr:
    """The reference (parent, manager) a row leaves in place once merged: its cell, or the
    stored value when the cell is empty under `empty_fields: keep` or the file lacks the
    column (as :func:`merge_rows` does). Checks of parents and cycles must see this value,
    not the bare cell, or a kept reference slips past them. Text, '' = none."""
    given = pl.col(column).str.strip_chars() if column in batch.columns else pl.lit("")
    if column in batch.columns and batch.settings.empty_fields == "erase":
        return given
    stored = pl.col(KEY_COLUMN).replace_strict(
        stored_keys.cast(pl.String),
        stored_values.cast(pl.String).fill_null(""),
        default="",
        return_dtype=pl.String,
    )
    return pl.when(given != "").then(given).otherwise(stored)


# --- custom fields -------------------------------------------------------------------------


def apply_custom_fields(
    old: pl.DataFrame,
    rows: pl.DataFrame,
    batch: Batch,
    id_column: str,
    live_ids: Ids,
) -> pl.DataFrame:
    """Long (id, field_name, value) table after the rows' `customfield_*` cells."""
    custom = [c for c in batch.columns if c.startswith(CUSTOM_FIELD_PREFIX)]
    erase = batch.settings.empty_fields == "erase"
    updates = []
    for column in custom:
        name = column.removeprefix(CUSTOM_FIELD_PREFIX)
        declared = batch.settings.custom_fields.get(name)
        value = pl.col(column).str.strip_chars()
        if declared is not None and declared.type == "date":
            value = (
                pl.when(value == "")
                .then(pl.lit(""))
                .otherwise(pl.col(typed_name(column)).cast(pl.String))
            )
        updates.append(
            rows.select(
                pl.col(KEY_COLUMN).alias(id_column),
                pl.lit(name).alias("field_name"),
                value.alias("value"),
            )
        )
    result = old.filter(key_in(id_column, live_ids))
    if not updates:
        return result
    new = pl.concat(updates)
    new = new.filter(key_in(id_column, live_ids))  # a removed record keeps no fields
    touched = new if erase else new.filter(pl.col("value") != "")
    result = result.join(
        touched.select(id_column, "field_name"), on=[id_column, "field_name"], how="anti"
    )
    return pl.concat([result, touched.filter(pl.col("value") != "").cast(result.schema)])


# --- hierarchies (org, pos, comp) ---------------------------------------------------------


def hierarchy_columns(id_column: str, with_aggregation: bool) -> list[Column]:
    columns = [
        Column("idnumber", id_column),
        Column("fullname", "name", never_blank=True),
        Column("shortname", "short_name"),
        Column("description", "description"),
        Column("frameworkidnumber", "framework_id"),
        Column("parentidnumber", "parent_id"),
        Column("typeidnumber", "type_id"),
        Column("timemodified", "time_modified", "integer"),
    ]
    if with_aggregation:
        columns.append(Column("aggregationmethod", "aggregation_method"))
    return columns


def apply_hierarchy(
    old: pl.DataFrame, batch: Batch, *, id_column: str, run_id: str
) -> tuple[pl.DataFrame, Change]:
    """Organisations, positions or competencies: parents resolve, no cycles, subtree removal."""
    delta = batch.settings.mode == "delta"
    old_ids = set(old[id_column].to_list())
    old_edges = old.select(pl.col(id_column).alias("child"), pl.col("parent_id").alias("parent"))
    parent_text = reference_after_merge(batch, "parentidnumber", old[id_column], old["parent_id"])
    file_keys = set(batch.rows[KEY_COLUMN].to_list())

    def plan_removal() -> tuple[set[str], set[str]]:
        accepted = batch.accepted()
        if delta:
            direct = set(accepted.filter(batch.is_deleted())[KEY_COLUMN].to_list()) & old_ids
            staying = set(accepted.filter(~batch.is_deleted())[KEY_COLUMN].to_list())
            cascade = descendants(old_edges, direct, stop_at=staying)
        else:
            direct = old_ids - file_keys
            cascade = set()
        return direct, cascade

    for _ in range(_MAX_PASSES):
        before = batch.rejects.height
        direct, cascade = plan_removal()
        live_rows = batch.accepted().filter(~batch.is_deleted() if delta else pl.lit(True))
        if delta:
            exist = (old_ids - direct - cascade) | set(live_rows[KEY_COLUMN].to_list())
        else:
            exist = set(live_rows[KEY_COLUMN].to_list()) | (
                set(batch.rejected_keys().to_list()) & old_ids
            )
        where = "in the live state or this file" if delta else "in this file"
        batch.reject_where(
            (parent_text != "")
            & ~parent_text.is_in(pl.Series(list(exist), dtype=pl.String).implode()),
            "parent_not_found",
            pl.format(
                "parent '{}' is not " + where + ": add it or correct parentidnumber", parent_text
            ),
        )
        live_rows = batch.accepted().filter(~batch.is_deleted() if delta else pl.lit(True))
        file_edges = live_rows.select(
            pl.col(KEY_COLUMN).alias("child"), parent_text.alias("parent")
        )
        final_edges = pl.concat(
            [old_edges.filter(~key_in("child", file_edges["child"])), file_edges]
        ).filter(pl.col("parent").is_not_null() & (pl.col("parent") != ""))
        on_cycle = nodes_on_cycles(final_edges)
        if on_cycle:
            batch.reject_where(
                key_in(KEY_COLUMN, on_cycle),
                "parent_cycle",
                pl.format(
                    "'{}' would become its own ancestor through parent '{}': break the loop",
                    pl.col(KEY_COLUMN),
                    parent_text,
                ),
            )
        if batch.rejects.height == before:
            break

    direct, cascade = plan_removal()
    held = set(batch.rejected_keys().to_list()) & old_ids
    protected = held | ancestors(old_edges, held)
    kept_for_rejects = (direct | cascade) & protected
    direct -= protected
    cascade -= protected
    change = Change(live_before=len(old_ids), removed=len(direct), cascaded=len(cascade))
    if kept_for_rejects:
        change.notes.append(
            f"{len(kept_for_rejects)} item(s) kept although removed from the feed, because a "
            f"rejected row of this run still holds them or their descendants: "
            f"{', '.join(sorted(kept_for_rejects)[:10])}"
        )
    live_rows = batch.accepted().filter(~batch.is_deleted() if delta else pl.lit(True))
    live_rows = live_rows.with_columns(pl.lit(run_id).alias("_run"))
    columns = hierarchy_columns(id_column, "aggregation_method" in old.columns)
    merged = merge_rows(old, live_rows, key=[id_column], columns=columns, batch=batch)
    merged = merged.with_columns(pl.col("first_seen_run_id").fill_null(run_id)).drop(LINE_COLUMN)
    untouched = old.filter(
        ~key_in(id_column, merged[id_column]) & ~key_in(id_column, direct | cascade)
    )
    new = pl.concat([untouched, merged])
    change.added = len(set(merged[id_column].to_list()) - old_ids)
    change.updated = _count_updated(old, merged, id_column)
    return new, change


def _count_updated(old: pl.DataFrame, merged: pl.DataFrame, key: str | list[str]) -> int:
    """How many merged rows existed before with different content (compared by row hash)."""
    keys = [key] if isinstance(key, str) else key
    merged = merged.select(old.columns).cast(old.schema)
    before = old.select(keys).with_columns(old.hash_rows().alias("_hash"))
    after = merged.select(keys).with_columns(merged.hash_rows().alias("_hash"))
    existing = after.join(before.select(keys), on=keys, how="semi")
    return existing.join(before, on=[*keys, "_hash"], how="anti").height


def same_rows(old: pl.DataFrame, new: pl.DataFrame) -> bool:
    """True when two frames hold the same rows in any order (so the table need not be
    rewritten)."""
    if old.height != new.height or old.columns != new.columns:
        return False
    new = new.cast(old.schema)
    return old.hash_rows().sort().equals(new.hash_rows().sort())


# --- users -----------------------------------------------------------------------------------

USER_COLUMNS = [
    Column("idnumber", "user_id"),
    Column("username", "username", never_blank=True),
    Column("email", "email", never_blank=True),
    Column("firstname", "first_name", never_blank=True),
    Column("lastname", "last_name", never_blank=True),
    Column("city", "city"),
    Column("country", "country"),
    Column("lang", "lang"),
    Column("timezone", "timezone"),
    Column("institution", "institution"),
    Column("department", "department"),
    Column("suspended", "is_suspended", "flag"),
    Column("emailstop", "email_stop", "flag"),
    Column("timemodified", "time_modified", "integer"),
]


def apply_users(old: pl.DataFrame, batch: Batch, *, run_id: str) -> tuple[pl.DataFrame, Change]:
    """Users: unique username and e-mail against live users, removal per `on_remove`."""
    settings = batch.settings
    uppercase = batch.accepted().filter(pl.col("username") != pl.col("username").str.to_lowercase())
    if uppercase.height:
        batch.warnings.append(
            f"{batch.path.name}: {uppercase.height} username(s) had upper-case letters and were "
            f"lower-cased (first at line {uppercase[LINE_COLUMN][0]})"
        )
    batch.rows = batch.rows.with_columns(pl.col("username").str.strip_chars().str.to_lowercase())
    _reject_taken(batch, old, "username", "username_taken")
    if "email" in batch.columns:
        _reject_taken(batch, old, "email", "email_taken")

    accepted = batch.accepted()
    deleted_rows = accepted.filter(batch.is_deleted())
    present = accepted.filter(~batch.is_deleted())
    unknown_deletes = deleted_rows.filter(~key_in(KEY_COLUMN, old["user_id"])).height
    if unknown_deletes:
        batch.warnings.append(
            f"{batch.path.name}: {unknown_deletes} deleted=1 row(s) name users learnops "
            f"never imported; nothing to remove"
        )

    merged = merge_rows(old, present, key=["user_id"], columns=USER_COLUMNS, batch=batch)
    merged = (
        merged.with_columns(
            pl.col("is_suspended").fill_null(False),
            pl.col("email_stop").fill_null(False),
            pl.col("first_seen_run_id").fill_null(run_id),
        )
        .with_columns(
            pl.when(pl.col("is_suspended"))
            .then(pl.lit("suspended"))
            .otherwise(pl.lit("active"))
            .alias("status"),
            pl.when(pl.col("is_suspended"))
            .then(pl.lit("suspended in the HR feed"))
            .alias("removed_reason"),
        )
        .drop(LINE_COLUMN)
    )

    live_before = old.filter(pl.col("status") != "deleted")
    removable = live_before.filter(
        pl.col("removed_reason").is_null()
        | (pl.col("removed_reason") == "suspended in the HR feed")
    )
    removable_ids = removable["user_id"]
    by_flag = removable_ids.filter(removable_ids.is_in(deleted_rows[KEY_COLUMN].implode()))
    by_absence = (
        removable_ids.clear()
        if settings.mode == "delta"
        else removable_ids.filter(~removable_ids.is_in(batch.rows[KEY_COLUMN].implode()))
    )
    change = Change(live_before=live_before.height)
    untouched = old.filter(~key_in("user_id", merged["user_id"]))
    if settings.on_remove != "keep":
        status = "deleted" if settings.on_remove == "delete" else "suspended"
        reason = (
            pl.when(key_in("user_id", by_flag))
            .then(pl.lit("deleted=1 in the HR feed"))
            .otherwise(pl.lit("absent from the full HR feed"))
        )
        targets = pl.concat([by_flag, by_absence]).unique()
        untouched = untouched.with_columns(
            pl.when(key_in("user_id", targets))
            .then(pl.lit(status))
            .otherwise(pl.col("status"))
            .alias("status"),
            pl.when(key_in("user_id", targets))
            .then(reason)
            .otherwise(pl.col("removed_reason"))
            .alias("removed_reason"),
        )
        change.removed = len(targets)
    new = pl.concat([untouched, merged.cast(untouched.schema)])
    change.added = merged.join(old, on="user_id", how="anti").height
    change.updated = _count_updated(old, merged, "user_id")
    return new, change


def _reject_taken(batch: Batch, old: pl.DataFrame, column: str, code: str) -> None:
    """A value another live user keeps after this run cannot be reused.

    A live user keeps their stored value unless an accepted row of this file gives them a new
    one (or removes them for good), so a rejected row, an empty cell or a suspension leaves
    the value taken. Rejecting a row can keep a value taken, hence the passes.
    """
    from flows.hr_import.validate import reject_duplicates_in_column

    reject_duplicates_in_column(batch, column, code.replace("_taken", "_duplicate"), column)
    normal = pl.col(column).str.strip_chars().str.to_lowercase()
    holders = old.filter((pl.col("status") != "deleted") & pl.col(column).is_not_null()).select(
        pl.col(column).str.to_lowercase().alias("_taken"), pl.col("user_id").alias("_holder")
    )
    for _ in range(_MAX_PASSES):
        accepted = batch.accepted().with_columns(normal.alias("_taken"))
        sending = accepted.filter(~batch.is_deleted())
        releasing = sending.filter(pl.col("_taken") != "")[KEY_COLUMN]
        if batch.settings.on_remove == "delete":
            releasing = pl.concat([releasing, accepted.filter(batch.is_deleted())[KEY_COLUMN]])
        others = holders.filter(~key_in("_holder", releasing))
        hits = sending.join(others, on="_taken").filter(pl.col(KEY_COLUMN) != pl.col("_holder"))
        if not hits.height:
            break
        batch.reject(
            hits.select(
                pl.col(LINE_COLUMN),
                pl.lit(code).alias("reason_code"),
                pl.format(
                    "{} '{}' already belongs to live user '{}': each user needs their own",
                    pl.lit(column),
                    pl.col(column),
                    pl.col("_holder"),
                ).alias("reason"),
            )
        )


# --- job assignments ----------------------------------------------------------------------

JOB_COLUMNS = [
    Column("useridnumber", "user_id"),
    Column("idnumber", "job_id"),
    Column("fullname", "full_name"),
    Column("startdate", "start_date", "date"),
    Column("enddate", "end_date", "date"),
    Column("orgidnumber", "organisation_id"),
    Column("posidnumber", "position_id"),
    Column("manageridnumber", "manager_user_id"),
    Column("managerjobassignmentidnumber", "manager_job_id"),
    Column("appraiseridnumber", "appraiser_user_id"),
    Column("timemodified", "time_modified", "integer"),
]


@dataclass(frozen=True)
class JobContext:
    """The new live state of the elements job assignments reference."""

    live_user_ids: pl.Series  # not deleted
    organisation_ids: pl.Series
    position_ids: pl.Series
    run_id: str
    run_ordinal: int


def apply_jobs(
    old: pl.DataFrame, batch: Batch | None, context: JobContext
) -> tuple[pl.DataFrame, Change]:
    """Job assignments: every reference resolves, no self-management, no management loop."""
    change = Change(live_before=old.height)
    survivors = old
    if batch is not None:
        survivors, change = _apply_job_file(old, batch, context)
    # Consequences of other elements' removals, applied whether or not a job file came.
    users_gone = ~key_in("user_id", context.live_user_ids)
    cascaded = survivors.filter(users_gone).height
    survivors = survivors.filter(~users_gone).with_columns(
        pl.when(key_in("organisation_id", context.organisation_ids))
        .then(pl.col("organisation_id"))
        .alias("organisation_id"),
        pl.when(key_in("position_id", context.position_ids))
        .then(pl.col("position_id"))
        .alias("position_id"),
        pl.when(key_in("appraiser_user_id", context.live_user_ids))
        .then(pl.col("appraiser_user_id"))
        .alias("appraiser_user_id"),
    )
    manager_ok = key_in("manager_user_id", context.live_user_ids)
    survivors = survivors.with_columns(
        pl.when(manager_ok).then(pl.col("manager_user_id")).alias("manager_user_id"),
        pl.when(manager_ok).then(pl.col("manager_job_id")).alias("manager_job_id"),
    )
    jobs = survivors.select(
        pl.col("user_id").alias("manager_user_id"),
        pl.col("job_id").alias("manager_job_id"),
        pl.lit(True).alias("_ok"),
    )
    survivors = (
        survivors.join(jobs, on=["manager_user_id", "manager_job_id"], how="left")
        .with_columns(pl.when(pl.col("_ok")).then(pl.col("manager_job_id")).alias("manager_job_id"))
        .drop("_ok")
    )
    change.cascaded += cascaded
    return survivors.select(old.columns), change


def _apply_job_file(
    old: pl.DataFrame, batch: Batch, context: JobContext
) -> tuple[pl.DataFrame, Change]:
    delta = batch.settings.mode == "delta"
    text = {
        c: (pl.col(c).str.strip_chars() if c in batch.columns else pl.lit(""))
        for c in (
            "orgidnumber",
            "posidnumber",
            "manageridnumber",
            "managerjobassignmentidnumber",
            "appraiseridnumber",
        )
    }
    users = context.live_user_ids.implode()

    def missing(expr: pl.Expr, known: pl.Expr) -> pl.Expr:
        return (expr != "") & ~expr.is_in(known)

    batch.reject_where(
        ~pl.col("useridnumber").str.strip_chars().is_in(users),
        "user_not_found",
        pl.format(
            "user '{}' is not a live user: import the user first or correct useridnumber",
            pl.col("useridnumber"),
        ),
    )
    checks = [
        ("orgidnumber", "organisation_not_found", context.organisation_ids, "organisation"),
        ("posidnumber", "position_not_found", context.position_ids, "position"),
        ("manageridnumber", "manager_not_found", context.live_user_ids, "manager"),
        ("appraiseridnumber", "appraiser_not_found", context.live_user_ids, "appraiser"),
    ]
    for column, code, known, label in checks:
        batch.reject_where(
            missing(text[column], known.implode()),
            code,
            pl.format(
                f"{label} '{{}}' does not exist (or is removed): correct {column}", text[column]
            ),
        )
    batch.reject_where(
        (text["manageridnumber"] != "")
        & (text["manageridnumber"] == pl.col("useridnumber").str.strip_chars()),
        "self_manager",
        pl.format(
            "user '{}' cannot manage themselves: correct manageridnumber", pl.col("useridnumber")
        ),
    )
    batch.reject_where(
        (text["managerjobassignmentidnumber"] != "") & (text["manageridnumber"] == ""),
        "manager_job_not_found",
        pl.lit("managerjobassignmentidnumber is set without manageridnumber: give the manager too"),
    )
    start = pl.col(typed_name("startdate")) if "startdate" in batch.columns else pl.lit(None)
    end = pl.col(typed_name("enddate")) if "enddate" in batch.columns else pl.lit(None)
    batch.reject_where(
        start.is_not_null() & end.is_not_null() & (start > end),
        "start_after_end",
        pl.format(
            "startdate {} is after enddate {}: correct one of them",
            pl.col("startdate"),
            pl.col("enddate"),
        )
        if "enddate" in batch.columns
        else pl.lit(""),
    )

    file_keys = batch.rows[KEY_COLUMN]
    old_keys = old.select(pl.concat_str(["user_id", "job_id"], separator="/"))[:, 0]
    manager = reference_after_merge(batch, "manageridnumber", old_keys, old["manager_user_id"])
    for _ in range(_MAX_PASSES):
        before = batch.rejects.height
        live_rows = batch.accepted().filter(~batch.is_deleted() if delta else pl.lit(True))
        if delta:
            removed_keys = batch.accepted().filter(batch.is_deleted())[KEY_COLUMN]
            kept_old = (
                old.with_columns(pl.concat_str(["user_id", "job_id"], separator="/").alias("_k"))
                .filter(~key_in("_k", removed_keys) & ~key_in("_k", live_rows[KEY_COLUMN]))
                .drop("_k")
            )
        else:
            held = batch.rejected_keys()
            kept_old = (
                old.with_columns(pl.concat_str(["user_id", "job_id"], separator="/").alias("_k"))
                .filter(key_in("_k", held))
                .drop("_k")
            )
        known_jobs = pl.concat(
            [
                kept_old.select("user_id", "job_id"),
                live_rows.select(
                    pl.col("useridnumber").str.strip_chars().alias("user_id"),
                    pl.col("idnumber").str.strip_chars().alias("job_id"),
                ),
            ]
        ).select(pl.concat_str(["user_id", "job_id"], separator="/").alias("k"))["k"]
        manager_job = pl.concat_str(
            [text["manageridnumber"], text["managerjobassignmentidnumber"]], separator="/"
        )
        batch.reject_where(
            (text["managerjobassignmentidnumber"] != "") & ~manager_job.is_in(known_jobs.implode()),
            "manager_job_not_found",
            pl.format(
                "manager '{}' has no job '{}': correct managerjobassignmentidnumber",
                text["manageridnumber"],
                text["managerjobassignmentidnumber"],
            ),
        )
        live_rows = batch.accepted().filter(~batch.is_deleted() if delta else pl.lit(True))
        edges = pl.concat(
            [
                kept_old.select(
                    pl.col("user_id").alias("child"), pl.col("manager_user_id").alias("parent")
                ),
                live_rows.select(
                    pl.col("useridnumber").str.strip_chars().alias("child"), manager.alias("parent")
                ),
            ]
        ).filter(pl.col("parent").is_not_null() & (pl.col("parent") != ""))
        on_cycle = nodes_on_cycles(edges)
        if on_cycle:
            batch.reject_where(
                pl.col("useridnumber")
                .str.strip_chars()
                .is_in(pl.Series(list(on_cycle), dtype=pl.String).implode())
                & manager.is_in(pl.Series(list(on_cycle), dtype=pl.String).implode()),
                "management_cycle",
                pl.format(
                    "user '{}' would manage themselves through manager '{}': break the loop",
                    pl.col("useridnumber"),
                    manager,
                ),
            )
        if batch.rejects.height == before:
            break

    accepted = batch.accepted()
    live_rows = accepted.filter(~batch.is_deleted() if delta else pl.lit(True))
    old_keyed = old.with_columns(old_keys.alias("_k"))
    if delta:
        direct = accepted.filter(batch.is_deleted())[KEY_COLUMN]
    else:
        direct = old_keys.filter(~old_keys.is_in(file_keys.implode()))
    direct = direct.filter(direct.is_in(old_keys.implode()))
    ordinal_base = context.run_ordinal * 10_000_000_000
    live_rows = live_rows.with_columns(
        pl.col("useridnumber").str.strip_chars(), pl.col("idnumber").str.strip_chars()
    )
    merged = merge_rows(old, live_rows, key=["user_id", "job_id"], columns=JOB_COLUMNS, batch=batch)
    # A stored manager job belongs to the stored manager: a new manager without a job means
    # "their first job", not the old manager's job id carried over by empty_fields: keep.
    stored_manager = pl.col(KEY_COLUMN).replace_strict(
        old_keys, old["manager_user_id"].fill_null(""), default="", return_dtype=pl.String
    )
    new_manager_without_job = live_rows.filter(
        (text["manageridnumber"] != "")
        & (text["manageridnumber"] != stored_manager)
        & (text["managerjobassignmentidnumber"] == "")
    )[LINE_COLUMN]
    merged = merged.with_columns(
        pl.col("first_seen_order").fill_null(pl.col(LINE_COLUMN) + ordinal_base),
        pl.col("first_seen_run_id").fill_null(pl.lit(context.run_id)),
        pl.when(pl.col(LINE_COLUMN).is_in(new_manager_without_job.implode()))
        .then(None)
        .otherwise(pl.col("manager_job_id"))
        .alias("manager_job_id"),
    ).drop(LINE_COLUMN)
    merged_keys = merged.select(pl.concat_str(["user_id", "job_id"], separator="/"))[:, 0]
    untouched = old_keyed.filter(~key_in("_k", merged_keys) & ~key_in("_k", direct)).drop("_k")
    new = pl.concat([untouched, merged.cast(untouched.schema)])
    change = Change(live_before=old.height, removed=len(direct))
    change.added = merged.join(old, on=["user_id", "job_id"], how="anti").height
    change.updated = _count_updated(old, merged, ["user_id", "job_id"])
    return new, change


# --- learning records ---------------------------------------------------------------------


def apply_courses(old: pl.DataFrame, batch: Batch) -> tuple[pl.DataFrame, Change]:
    """Courses are upserted; the LMS catalogue never shrinks by absence."""
    columns = [
        Column("idnumber", "course_id"),
        Column("fullname", "name", never_blank=True),
        Column("score", "score", "integer"),
    ]
    merged = merge_rows(
        old, batch.accepted(), key=["course_id"], columns=columns, batch=batch
    ).drop(LINE_COLUMN)
    new = pl.concat([old.filter(~key_in("course_id", merged["course_id"])), merged])
    return new, Change(
        live_before=old.height,
        added=merged.join(old, on="course_id", how="anti").height,
        updated=_count_updated(old, merged, "course_id"),
    )


def completion_rows(batch: Batch, *, known_users: Ids, course_ids: Ids) -> pl.DataFrame:
    """The accepted completions, typed; unknown users and courses are rejected first.

    Completions are a history that only grows, often to tens of millions of rows, so they
    are merged into the live table by :func:`merge_completions` in DuckDB instead of being
    rebuilt in memory like the other elements.
    """
    _reject_unknown(batch, "useridnumber", known_users, "user_not_found", "user")
    _reject_unknown(batch, "courseidnumber", course_ids, "course_not_found", "course")
    grade = parse_number(pl.col("grade")) if "grade" in batch.columns else pl.lit(None, pl.Float64)
    return batch.accepted().select(
        pl.col("useridnumber").str.strip_chars().alias("user_id"),
        pl.col("courseidnumber").str.strip_chars().alias("course_id"),
        pl.col(typed_name("timecompleted")).alias("completed_at"),
        grade.alias("grade"),
    )


def merge_completions(con: duckdb.DuckDBPyConnection, rows: pl.DataFrame, run_id: str) -> Change:
    """Add new completions and take a changed grade; nothing is removed by absence."""
    before = con.execute("select count(*) from hr.course_completion").fetchall()[0][0]
    con.register("_completions", rows)
    try:
        # Two spellings of one instant (ISO and Unix seconds) are one completion.
        con.execute(
            """
            create or replace temp table _incoming_completions as
            select user_id, course_id, completed_at, any_value(grade) as grade
            from _completions
            group by all
            """
        )
        updated = con.execute(
            """
            update hr.course_completion as live
            set grade = incoming.grade
            from _incoming_completions as incoming
            where live.user_id = incoming.user_id and live.course_id = incoming.course_id
              and live.completed_at = incoming.completed_at
              and live.grade is distinct from incoming.grade
            """
        ).fetchall()[0][0]
        added = con.execute(
            """
            insert into hr.course_completion
            select incoming.*, ? as first_seen_run_id
            from _incoming_completions as incoming
            anti join hr.course_completion as live
              using (user_id, course_id, completed_at)
            """,
            [run_id],
        ).fetchall()[0][0]
        con.execute("drop table _incoming_completions")
    finally:
        con.unregister("_completions")
    return Change(live_before=before, added=added, updated=updated)


def apply_access(
    old: pl.DataFrame, batch: Batch, *, known_users: Ids
) -> tuple[pl.DataFrame, Change]:
    """First and last access per user, upserted."""
    _reject_unknown(batch, "useridnumber", known_users, "user_not_found", "user")
    columns = [
        Column("useridnumber", "user_id"),
        Column("firstaccess", "first_access_at", "timestamp"),
        Column("lastaccess", "last_access_at", "timestamp"),
    ]
    merged = merge_rows(old, batch.accepted(), key=["user_id"], columns=columns, batch=batch).drop(
        LINE_COLUMN
    )
    new = pl.concat([old.filter(~key_in("user_id", merged["user_id"])), merged])
    return new, Change(
        live_before=old.height,
        added=merged.join(old, on="user_id", how="anti").height,
        updated=_count_updated(old, merged, "user_id"),
    )


def _reject_unknown(batch: Batch, column: str, known: set[str], code: str, label: str) -> None:
    batch.reject_where(
        ~key_in(pl.col(column).str.strip_chars(), known),
        code,
        pl.format(
            f"{label} '{{}}' is unknown to learnops: import it first or correct {column}",
            pl.col(column),
        ),
    )
