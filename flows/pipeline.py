"""One pipeline run (SPEC §2): lock, import, rules, build, publish — as a Prefect flow.

The stages are plain functions (:func:`import_stage`, :func:`rules_stage`,
:func:`build_stage`, :func:`publish_stage`) that tests call directly;
:func:`pipeline_flow` sequences them as a handful of coarse Prefect tasks.
:func:`run_pipeline` runs the same sequence with or without Prefect. Nothing reaches the
published warehouse unless every stage passed; a failed run is then recorded in the run log
by the same atomic copy-and-replace.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb

from flows.hr_import.archive import prune_archive
from flows.hr_import.importer import ImportContext, ImportSummary, import_feeds
from flows.notify.deliver import DeliveryReport
from flows.notify.ledger import apply_ledger
from flows.notify.stage import alert, published_notification_settings, send_pending
from flows.reports.ledger import apply_report_ledger
from flows.rules.notification_tables import load_notification_tables
from flows.rules.notifications import TEMPLATES_DIR
from flows.rules.program_tables import (
    ProgramsLoadSummary,
    load_program_tables,
    snapshot_previous_program_state,
)
from flows.rules.tables import (
    RulesLoadSummary,
    RunClock,
    load_rule_tables,
)
from flows.rules.validation import LoadedRules, validate_rules
from flows.warehouse import (
    WarehousePaths,
    count_runs,
    last_published_run,
    prepare_building_copy,
    publish,
    warehouse_paths,
    writer_lock,
)


class RunRefusedError(RuntimeError):
    """The run cannot start (as-of before the last published run...); invalid rules raise
    RulesError, which the CLI refuses the same way (exit 2)."""


@dataclass(frozen=True)
class RunRequest:
    """Everything that determines a run, besides the published state."""

    feeds: Path
    rules: Path
    warehouse: Path
    as_of: datetime  # naive UTC
    site_timezone: str = "UTC"
    allow_mass_removal: frozenset[str] = frozenset()
    lock_wait_seconds: float = 0.0
    #: record every notification event `suppressed` and mail nobody (SPEC §6 go-live)
    baseline: bool = False
    #: leave this run's messages pending instead of sending them at the end
    send: bool = True
    #: where notification templates live (validated with the rules, rendered when sending)
    templates_dir: Path = TEMPLATES_DIR
    #: mail the data team's run alerts (off for `learnops plan`, which must send nothing)
    alerts: bool = True


@dataclass(frozen=True)
class AudienceCounts:
    """Memberships after the run, and the joins and leaves it recorded."""

    members: int
    joined: int
    left: int


@dataclass
class RunResult:
    run_id: str
    as_of: datetime
    warehouse: Path
    status: str = "running"
    message: str = ""
    summary: ImportSummary | None = None
    rules: RulesLoadSummary | None = None
    programs: ProgramsLoadSummary | None = None
    audience_counts: AudienceCounts | None = None
    #: this run's new outbox rows by status (pending, held, suppressed, ...)
    notifications: dict[str, int] = field(default_factory=dict)
    #: what the notify step sent (None: not sent, --no-send or nothing configured)
    delivery: DeliveryReport | None = None
    #: run alerts mailed to the data team (alert key -> outcome)
    alerts: dict[str, str] = field(default_factory=dict)
    #: what the report step sent (flows.reports.send.ReportRun; None: not sent)
    reports: Any = None
    models_built: int = 0
    tests_passed: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)


def parse_as_of(text: str | None, site_timezone: str) -> datetime:
    """ISO 8601 text -> naive UTC. No zone means the site timezone; a date means its start."""
    if not text:
        return datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            value = datetime.combine(date.fromisoformat(text), datetime.min.time())
        except ValueError:
            raise RunRefusedError(
                f"--as-of '{text}' is not ISO 8601 (e.g. 2026-11-22T06:00:00Z)"
            ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(site_timezone))
    return value.astimezone(UTC).replace(tzinfo=None)


# --- stages ---------------------------------------------------------------------------------


def start_run(request: RunRequest, paths: WarehousePaths) -> tuple[RunResult, LoadedRules]:
    """Check the rules and the as-of, and prepare the building copy with this run's context."""
    # a broken rules file stops here, before anything is read
    rules = validate_rules(request.rules, templates_dir=request.templates_dir)
    last = last_published_run(paths)
    if last is not None and request.as_of < last[1]:
        raise RunRefusedError(
            f"--as-of {request.as_of:%Y-%m-%dT%H:%M:%SZ} is earlier than the last published run "
            f"{last[0]} (as of {last[1]:%Y-%m-%dT%H:%M:%SZ}); runs must move forward in time"
        )
    run_id = f"{request.as_of:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    result = RunResult(run_id=run_id, as_of=request.as_of, warehouse=paths.published)
    building = prepare_building_copy(paths)
    with duckdb.connect(str(building)) as con:
        con.execute("delete from learnops.run_context")
        con.execute(
            "insert into learnops.run_context "
            "(run_id, as_of, is_baseline, site_timezone, previous_run_id, previous_as_of) "
            "values (?, ?, ?, ?, ?, ?)",
            # the first run on a warehouse is the go-live: it mails nobody about the past;
            # the last published run bounds what the notification models derive
            [
                run_id,
                request.as_of,
                request.baseline or last is None,
                request.site_timezone,
                last[0] if last else None,
                last[1] if last else None,
            ],
        )
        con.execute(
            "insert into learnops.run_log (run_id, as_of, started_at, status) "
            "values (?, ?, ?, 'running')",
            [run_id, request.as_of, _now()],
        )
    return result, rules


def import_stage(
    request: RunRequest, paths: WarehousePaths, result: RunResult, rules: LoadedRules
) -> ImportSummary:
    """Read, validate and apply every feed into the building copy."""
    with duckdb.connect(str(paths.building)) as con:
        context = ImportContext(
            run_id=result.run_id,
            run_ordinal=count_runs(con),
            as_of=request.as_of,
            site_tz=request.site_timezone,
            archive_dir=paths.archive_dir,
            allow_mass_removal=request.allow_mass_removal,
        )
        summary = import_feeds(con, request.feeds, rules.hr_import, context)
        con.execute(
            "update learnops.run_log set summary = ? where run_id = ?",
            [summary.to_json(), result.run_id],
        )
    result.summary = summary
    return summary


def rules_stage(
    request: RunRequest, paths: WarehousePaths, result: RunResult, rules: LoadedRules
) -> RulesLoadSummary:
    """Check rule references against the imported state; load the rules as data.

    An audience whose reference no longer resolves is marked broken (it keeps its members)
    and the run goes on; so is a program or certification (it keeps its state). The last
    published program state is kept aside for dbt to compare, and the
    delivery ledger is folded into the outbox the build appends to.
    """
    clock = RunClock(as_of=request.as_of, site_timezone=request.site_timezone)
    with duckdb.connect(str(paths.building)) as con:
        # the audience tables' broken list names audiences only; programs come next
        loaded = load_rule_tables(con, rules.without_program_references(), clock, result.run_id)
        result.programs = load_program_tables(con, rules, clock, result.run_id)
        snapshot_previous_program_state(con)
        load_notification_tables(con, rules)
        # the outbox the build moves on must carry every delivery outcome so far
        apply_ledger(con, paths)
        apply_report_ledger(con, paths)  # report_delivery likewise (docs/reports.md)
    result.rules = loaded
    return loaded


def build_stage(paths: WarehousePaths, result: RunResult) -> None:
    """dbt build of every model and test into the building copy."""
    from flows.build import build_warehouse  # dbt's import is slow: only when building

    built = build_warehouse(paths.building, state_dir=paths.state_dir)
    result.models_built, result.tests_passed = built.models_built, built.tests_passed


def publish_stage(paths: WarehousePaths, result: RunResult, rules: LoadedRules) -> None:
    """Mark the run succeeded and swap the building copy in."""
    with duckdb.connect(str(paths.building)) as con:
        result.audience_counts = _audience_counts(con, result.run_id)
        result.notifications = _notification_counts(con, result.run_id)
        con.execute(
            "update learnops.run_log set status = 'succeeded', finished_at = ?, message = ? "
            "where run_id = ?",
            [_now(), _success_message(result), result.run_id],
        )
    publish(paths)
    result.status = "succeeded"
    result.message = _success_message(result)
    prune_archive(paths.archive_dir, rules.hr_import.archive.retention_days)


def notify_stage(request: RunRequest, paths: WarehousePaths, result: RunResult) -> None:
    """Send the published outbox's due messages (SPEC §2 step 5) and mail run alerts.

    The run is published already: a delivery problem is recorded per message in the ledger
    and named in the run's message, never turned into a failed run.
    """
    if request.alerts:
        _alert_on_published_run(paths, result)
    if not request.send:
        return
    try:
        result.delivery = send_pending(paths, templates_dir=request.templates_dir)
    except Exception as error:  # the published state stands; the next send retries
        result.message += f"; mail not sent: {describe_error(error)}"


def report_stage(request: RunRequest, paths: WarehousePaths, result: RunResult) -> None:
    """Send the scheduled reports due as of the run (SPEC §2 step 6), then republish
    report_delivery. Like mail, a report problem is named in the run's message and never
    fails the published run."""
    if not request.send:
        return
    from flows.reports.ledger import republish_deliveries
    from flows.reports.send import send_reports

    try:
        result.reports = send_reports(
            paths, request.rules, as_of=request.as_of, site_timezone=request.site_timezone
        )
        republish_deliveries(paths)
    except Exception as error:  # the published state stands; the report flow retries
        result.message += f"; reports not sent: {describe_error(error)}"


def _alert_on_published_run(paths: WarehousePaths, result: RunResult) -> None:
    """Broken rules and a jump in rejects alert the data team (SPEC §6 run alerts)."""
    settings = published_notification_settings(paths)
    broken = sorted(
        (result.rules.newly_broken if result.rules else set())
        | (result.programs.newly_broken if result.programs else set())
    )
    if broken:
        result.alerts["broken"] = alert(
            paths,
            alert_key=f"broken:{result.run_id}",
            subject=f"learnops: rules broken by run {result.run_id}",
            lines=[f"These rules no longer resolve and were skipped: {', '.join(broken)}."],
        )
    share = settings.alert_reject_share if settings else None
    jumps = [
        f"{e.element}: {e.rows_rejected} of {e.rows_read} rows rejected ({e.file})"
        for e in (result.summary.elements if result.summary else [])
        if share is not None and e.rows_read and e.rows_rejected / e.rows_read > share
    ]
    if jumps:
        result.alerts["rejects"] = alert(
            paths,
            alert_key=f"rejects:{result.run_id}",
            subject=f"learnops: rejected rows above {share:.0%} in run {result.run_id}",
            lines=[*jumps, "Rejected rows and reasons: the import_reject table."],
        )


def record_failure(paths: WarehousePaths, result: RunResult, error: BaseException) -> None:
    """Publish the previous state again with only this failed run added to the run log."""
    result.status, result.message = "failed", describe_error(error)
    prepare_building_copy(paths)
    with duckdb.connect(str(paths.building)) as con:
        con.execute("delete from learnops.run_log where run_id = ?", [result.run_id])
        con.execute(
            "insert into learnops.run_log "
            "(run_id, as_of, started_at, finished_at, status, message) "
            "values (?, ?, ?, ?, 'failed', ?)",
            [result.run_id, result.as_of, _now(), _now(), result.message],
        )
    publish(paths)


def _notification_counts(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, int]:
    rows = con.execute(
        "select status, count(*) from main.notification_outbox where created_run_id = ? "
        "group by status order by status",
        [run_id],
    ).fetchall()
    return dict(rows)


def _audience_counts(con: duckdb.DuckDBPyConnection, run_id: str) -> AudienceCounts:
    (members,) = con.execute("select count(*) from main.fct_audience_membership").fetchone()
    joined, left = con.execute(
        "select count(*) filter (where event = 'joined'), count(*) filter (where event = 'left') "
        "from main.fct_audience_membership_event where run_id = ?",
        [run_id],
    ).fetchone()
    return AudienceCounts(members=members, joined=joined, left=left)


def describe_error(error: BaseException) -> str:
    """One line a person can act on (no stack trace)."""
    text = str(error).strip() or type(error).__name__
    return " ".join(text.split())


def _success_message(result: RunResult) -> str:
    rejected = result.summary.rows_rejected if result.summary else 0
    message = (
        f"{result.models_built} models built, {result.tests_passed} tests passed, "
        f"{rejected} rows rejected"
    )
    if result.rules and result.rules.newly_broken:
        message += "; newly broken audiences: " + ", ".join(sorted(result.rules.newly_broken))
    if result.programs and result.programs.newly_broken:
        broken = ", ".join(sorted(result.programs.newly_broken))
        message += f"; newly broken programs/certifications: {broken}"
    return message


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# --- sequencing ----------------------------------------------------------------------------


def run_pipeline(request: RunRequest, *, task: Callable[..., Any] | None = None) -> RunResult:
    """Run every stage under the writer lock. `task` wraps each stage (Prefect or plain)."""
    call = task or (lambda fn, *args, **_: fn(*args))
    paths = warehouse_paths(request.warehouse)
    with writer_lock(paths, wait_seconds=request.lock_wait_seconds):
        started = time.perf_counter()
        result, rules = start_run(request, paths)  # includes copying the published file
        result.stage_seconds["prepare"] = round(time.perf_counter() - started, 3)
        try:
            for name, stage, args in (
                ("import", import_stage, (request, paths, result, rules)),
                ("rules", rules_stage, (request, paths, result, rules)),
                ("build", build_stage, (paths, result)),
                ("publish", publish_stage, (paths, result, rules)),
            ):
                started = time.perf_counter()
                call(stage, *args, name=name)
                result.stage_seconds[name] = round(time.perf_counter() - started, 3)
        except BaseException as error:
            record_failure(paths, result, error)
            if not request.alerts:
                raise
            result.alerts["failed"] = alert(
                paths,
                alert_key=f"failed:{result.run_id}",
                subject=f"learnops: run {result.run_id} failed",
                lines=[result.message, "The last published state is unchanged."],
            )
            raise
        started = time.perf_counter()
        call(notify_stage, request, paths, result, name="notify")
        result.stage_seconds["notify"] = round(time.perf_counter() - started, 3)
        started = time.perf_counter()
        call(report_stage, request, paths, result, name="report")
        result.stage_seconds["report"] = round(time.perf_counter() - started, 3)
    return result
