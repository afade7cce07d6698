"""HR Import: read every feed, validate, apply, guard removals, write the live state.

:func:`import_feeds` is the whole import stage of one run. It works on an open DuckDB
connection to the *building* copy of the warehouse, so a failure anywhere leaves the
published state untouched. Elements are processed in dependency order (hierarchies, users,
job assignments, then learning records) so that each element's references are checked
against the new state of the elements it points at.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

from flows.hr_import import apply
from flows.hr_import.apply import Change, JobContext
from flows.hr_import.archive import ArchivedFile, archive_file, file_sha256
from flows.hr_import.config import ElementSettings, HrImportRules
from flows.hr_import.elements import ELEMENTS
from flows.hr_import.reader import LINE_COLUMN, FeedFileError, read_feed
from flows.hr_import.validate import (
    KEY_COLUMN,
    Batch,
    prepare_batch,
    reject_duplicate_keys,
    run_row_checks,
)

_HIERARCHIES = {
    "org": ("organisation", "organisation_id"),
    "pos": ("position", "position_id"),
    "comp": ("competency", "competency_id"),
}
_PENDING_COMPLETIONS = "_pending_completions"
_ALTERNATE_SUFFIXES = (".csv", ".parquet", ".jsonl", ".ndjson")


class RemovalGuardError(Exception):
    """An element would remove more of its live records than `max_removed_fraction`."""

    def __init__(self, message: str, elements: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.elements = elements  # the elements whose guard tripped


@dataclass
class ElementResult:
    """One element's outcome, for the run summary and `learnops.import_file_log`."""

    element: str
    file: str | None
    status: str  # imported | missing
    mode: str
    rows_read: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    cascaded: int = 0
    live_before: int = 0
    sha256: str | None = None
    input_hash: str | None = None
    notes: list[str] = field(default_factory=list)
    top_reasons: dict[str, int] = field(default_factory=dict)


@dataclass
class ImportSummary:
    elements: list[ElementResult]
    warnings: list[str]

    @property
    def rows_rejected(self) -> int:
        return sum(e.rows_rejected for e in self.elements)

    def to_json(self) -> str:
        return json.dumps(
            {"elements": [asdict(e) for e in self.elements], "warnings": self.warnings}
        )


@dataclass
class ImportContext:
    run_id: str
    run_ordinal: int
    as_of: datetime
    site_tz: str
    archive_dir: Path
    allow_mass_removal: frozenset[str] = frozenset()


def find_feed_file(feeds_dir: Path, settings: ElementSettings) -> Path | None:
    """The element's file: as configured, or `<element>` with any supported extension."""
    configured = feeds_dir / settings.file
    if configured.exists():
        return configured
    stem = Path(settings.file).stem
    for suffix in _ALTERNATE_SUFFIXES:
        candidate = feeds_dir / f"{stem}{suffix}"
        if candidate.exists():
            return candidate
    return None


def read_and_check(path: Path, settings: ElementSettings, site_tz: str) -> Batch:
    """Read one file and run every check that needs only the file itself."""
    spec = ELEMENTS[settings.name]
    batch = prepare_batch(read_feed(path, settings.csv.as_options()), spec, settings)
    run_row_checks(batch, site_tz)
    reject_duplicate_keys(batch)
    return batch


def load_live_state(con: duckdb.DuckDBPyConnection) -> dict[str, pl.DataFrame]:
    """Every hr.* table as a polars frame, except the completion history (merged in SQL)."""
    tables = [
        name
        for (name,) in con.execute(
            "select table_name from information_schema.tables "
            "where table_schema = 'hr' and table_name <> 'course_completion'"
        ).fetchall()
    ]
    return {name: con.sql(f'select * from hr."{name}"').pl() for name in tables}  # noqa: S608 - names from the catalog


def import_feeds(
    con: duckdb.DuckDBPyConnection, feeds_dir: Path, rules: HrImportRules, context: ImportContext
) -> ImportSummary:
    """Run the import stage into `con` (the building warehouse). Raises FeedFileError or
    RemovalGuardError without writing anything."""
    live = load_live_state(con)
    new = dict(live)
    results: list[ElementResult] = []
    batches: dict[str, Batch] = {}
    warnings: list[str] = []
    paths = {name: find_feed_file(feeds_dir, rules.element(name)) for name in ELEMENTS}
    previous = _last_imported_inputs(con)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="archive") as pool:
        # Hash every file first (to know what changed), then compress them into the archive
        # in the background while the elements are validated.
        present = {name: path for name, path in paths.items() if path is not None}
        hashes = {name: pool.submit(file_sha256, path) for name, path in present.items()}
        archived = {
            name: pool.submit(
                lambda p=path, h=hashes[name]: archive_file(p, context.archive_dir, h.result())
            )
            for name, path in present.items()
        }
        for name in ELEMENTS:
            settings = rules.element(name)
            path = paths[name]
            result = ElementResult(
                element=name,
                file=path.name if path else None,
                status="imported" if path else "missing",
                mode=settings.mode,
            )
            if path is not None:
                result.input_hash = input_hash(
                    archived[name].result().sha256, settings, context.site_tz
                )
                if _can_skip(name, result.input_hash, previous, results):
                    result.status = "unchanged"  # same input, nothing it refers to moved
                    results.append(result)
                    continue
            results.append(result)
            batch = read_and_check(path, settings, context.site_tz) if path else None
            change = _apply_element(name, batch, live, new, context)
            if batch is not None:
                batches[name] = batch
                warnings.extend(batch.warnings)
                _fill_counts(result, batch)
            if change is not None:
                result.added, result.updated, result.removed = (
                    change.added,
                    change.updated,
                    change.removed,
                )
                result.cascaded, result.live_before = change.cascaded, change.live_before
                result.notes.extend(change.notes)

        _guard_removals(results, rules, context.allow_mass_removal)
        pending = new.pop(_PENDING_COMPLETIONS, None)
        changed = {t: f for t, f in new.items() if not apply.same_rows(live[t], f)}
        _write_live_state(con, changed)
        if pending is not None:
            merged = apply.merge_completions(con, pending, context.run_id)
            completions = next(r for r in results if r.element == "course_completion")
            completions.added, completions.updated = merged.added, merged.updated
            completions.live_before = merged.live_before
        _write_rejects(con, batches, context.run_id)
        _archive_and_log(
            con, {name: future.result() for name, future in archived.items()}, results, context
        )
    return ImportSummary(elements=results, warnings=warnings)


def _apply_element(
    name: str,
    batch: Batch | None,
    live: dict[str, pl.DataFrame],
    new: dict[str, pl.DataFrame],
    context: ImportContext,
) -> Change | None:
    run_id = context.run_id
    if name in _HIERARCHIES:
        table, id_column = _HIERARCHIES[name]
        if batch is None:
            return None
        new[table], change = apply.apply_hierarchy(
            live[table], batch, id_column=id_column, run_id=run_id
        )
        live_ids = new[table][id_column]
        if name != "comp":
            new[f"{table}_custom_field"] = apply.apply_custom_fields(
                live[f"{table}_custom_field"],
                batch.accepted().filter(~batch.is_deleted()),
                batch,
                id_column,
                live_ids,
            )
        return change
    if name == "user":
        if batch is None:
            return None
        new["user"], change = apply.apply_users(live["user"], batch, run_id=run_id)
        live_ids = new["user"]["user_id"]
        new["user_custom_field"] = apply.apply_custom_fields(
            live["user_custom_field"],
            batch.accepted().filter(~batch.is_deleted()),
            batch,
            "user_id",
            live_ids,
        )
        return change
    if name == "jobassignment":
        job_context = JobContext(
            live_user_ids=new["user"].filter(pl.col("status") != "deleted")["user_id"],
            organisation_ids=new["organisation"]["organisation_id"],
            position_ids=new["position"]["position_id"],
            run_id=run_id,
            run_ordinal=context.run_ordinal,
        )
        new["job_assignment"], change = apply.apply_jobs(live["job_assignment"], batch, job_context)
        return change if batch is not None else None
    if batch is None:
        return None
    known_users = new["user"]["user_id"]
    if name == "course":
        new["course"], change = apply.apply_courses(live["course"], batch)
    elif name == "course_completion":
        # Merged into hr.course_completion by DuckDB after the removal guard passed.
        new[_PENDING_COMPLETIONS] = apply.completion_rows(
            batch, known_users=known_users, course_ids=new["course"]["course_id"]
        )
        return None
    else:
        new["user_access"], change = apply.apply_access(
            live["user_access"], batch, known_users=known_users
        )
    return change


def _fill_counts(result: ElementResult, batch: Batch) -> None:
    rejected = batch.rejects.height
    result.rows_read = batch.rows.height + len(batch.malformed_raw)
    result.rows_rejected = rejected
    result.rows_accepted = result.rows_read - rejected
    counts = batch.rejects.group_by("reason_code").len().sort("len", descending=True)
    result.top_reasons = dict(counts.head(5).iter_rows())


def _guard_removals(
    results: list[ElementResult], rules: HrImportRules, allowed: frozenset[str]
) -> None:
    """Stop before anything is written if an element would remove too much (SPEC §3.2)."""
    problems = []
    for result in results:
        limit = rules.element(result.element).max_removed_fraction
        # A removed subtree is the element's own records going too (one deleted=1 row on a
        # root must not empty the tree); jobs of removed users are guarded at the user.
        removed = result.removed + (result.cascaded if result.element in _HIERARCHIES else 0)
        if removed == 0 or result.element in allowed:
            continue
        fraction = removed / max(result.live_before, 1)
        if fraction > limit:
            problems.append(
                f"{result.element} would remove {removed} of {result.live_before} live "
                f"records ({fraction:.1%}), above max_removed_fraction {limit:.1%}"
            )
    if problems:
        tripped = tuple(
            r.element for r in results if any(p.startswith(r.element + " ") for p in problems)
        )
        raise RemovalGuardError(
            "removal guard: " + "; ".join(problems) + ". Nothing was changed. Check the feed; if "
            f"the removals are intended, run once with --allow-mass-removal {' '.join(tripped)}",
            tripped,
        )


def _write_live_state(con: duckdb.DuckDBPyConnection, new: dict[str, pl.DataFrame]) -> None:
    """Replace the given hr.* tables (those no element touched are left as they are)."""
    for table, frame in new.items():
        columns = ", ".join(f'"{c}"' for c in frame.columns)
        con.register("_incoming", frame)
        con.execute(f'delete from hr."{table}"')  # noqa: S608 - catalog names
        con.execute(f'insert into hr."{table}" ({columns}) select {columns} from _incoming')  # noqa: S608
        con.unregister("_incoming")


def _write_rejects(con: duckdb.DuckDBPyConnection, batches: dict[str, Batch], run_id: str) -> None:
    frames = []
    for name, batch in batches.items():
        if not batch.rejects.height:
            continue
        data_columns = batch.data_columns()
        rows = batch.rows.join(batch.rejects, on=LINE_COLUMN).select(
            pl.col(LINE_COLUMN),
            pl.col(KEY_COLUMN),
            "reason_code",
            "reason",
            pl.struct(data_columns).struct.json_encode().alias("raw"),
        )
        malformed = batch.rejects.join(batch.rows.select(LINE_COLUMN), on=LINE_COLUMN, how="anti")
        if malformed.height:
            rows = pl.concat(
                [
                    rows,
                    malformed.select(
                        pl.col(LINE_COLUMN),
                        pl.col(LINE_COLUMN)
                        .map_elements(
                            lambda n, b=batch: _malformed_key(b, n), return_dtype=pl.String
                        )
                        .alias(KEY_COLUMN),
                        "reason_code",
                        "reason",
                        pl.col(LINE_COLUMN)
                        .map_elements(
                            lambda n, b=batch: json.dumps(b.malformed_raw[n]),
                            return_dtype=pl.String,
                        )
                        .alias("raw"),
                    ),
                ]
            )
        frames.append(
            rows.select(
                pl.lit(run_id).alias("run_id"),
                pl.lit(name).alias("element"),
                pl.lit(batch.path.name).alias("file"),
                pl.col(LINE_COLUMN).alias("row_number"),
                pl.col(KEY_COLUMN).alias("record_id"),
                "reason_code",
                "reason",
                "raw",
            )
        )
    if frames:
        con.register("_rejects", pl.concat(frames).sort("element", "row_number"))
        con.execute("insert into learnops.import_reject_log select * from _rejects")
        con.unregister("_rejects")


def _malformed_key(batch: Batch, line: int) -> str:
    raw = batch.malformed_raw[line]
    return "/".join(raw.get(c, "") for c in batch.spec.key)


def _last_imported_inputs(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Element -> input hash of what the last succeeded run imported for it."""
    rows = con.execute(
        """
        select f.element, f.input_hash
        from learnops.import_file_log as f
        join learnops.run_log as r using (run_id)
        where r.status = 'succeeded' and f.input_hash is not null
        qualify row_number() over (
            partition by f.element order by r.as_of desc, r.started_at desc
        ) = 1
        """
    ).fetchall()
    return dict(rows)


def input_hash(file_sha256: str, settings: ElementSettings, site_tz: str) -> str:
    """What determines an element's outcome besides the state: file, settings, timezone."""
    parts = f"{file_sha256}|{settings.model_dump_json()}|{site_tz}"
    return hashlib.sha256(parts.encode()).hexdigest()


# Re-applying the same input to the state it produced changes nothing (full and delta
# modes are idempotent), so an element may be skipped when its input is the one the last
# succeeded run imported and what it refers to did not move. HR elements need their
# references untouched (a removed user or organisation cascades into job assignments);
# learning records only accumulate, so for them it is enough that nothing was added that
# could resolve a row rejected last time (a completion of a user who has just arrived).
_REFERENCES: dict[str, tuple[str, ...]] = {
    "org": (),
    "pos": (),
    "comp": (),
    "user": (),
    "jobassignment": ("user", "org", "pos"),
    "course": (),
    "course_completion": ("user", "course"),
    "user_access": ("user",),
}


def _can_skip(
    name: str, current: str, previous: dict[str, str], results: list[ElementResult]
) -> bool:
    if previous.get(name) != current:
        return False
    done = {r.element: r for r in results}
    if ELEMENTS[name].is_hr:
        return all(done[ref].status in ("unchanged", "missing") for ref in _REFERENCES[name])
    return all(done[ref].added == 0 for ref in _REFERENCES[name])


def _archive_and_log(
    con: duckdb.DuckDBPyConnection,
    archived: dict[str, ArchivedFile],
    results: list[ElementResult],
    context: ImportContext,
) -> None:
    for result in results:
        stored = archived.get(result.element)
        if stored is not None:
            result.sha256 = stored.sha256
            con.execute(
                "insert into learnops.archive_file values (?, ?, ?, ?, ?, ?)",
                [
                    context.run_id,
                    result.element,
                    result.file,
                    stored.sha256,
                    stored.size_bytes,
                    stored.stored_path,
                ],
            )
        con.execute(
            "insert into learnops.import_file_log values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                context.run_id,
                result.element,
                result.file,
                result.status,
                result.mode,
                result.rows_read,
                result.rows_accepted,
                result.rows_rejected,
                result.added,
                result.updated,
                result.removed,
                result.sha256,
                result.input_hash,
            ],
        )


__all__ = ["FeedFileError", "ImportContext", "ImportSummary", "RemovalGuardError", "import_feeds"]
