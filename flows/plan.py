"""`learnops plan`: what the next run would do, computed for real in a scratch copy (SPEC §1).

Totara's warning says "this will enrol X learners" and admits it ignores other assignment
routes. A plan here *is* a run: the published warehouse (and the delivery ledger, so the
outbox knows what was sent) is copied into a temporary directory and every stage runs
there, with sending and run alerts off. The plan then compares the scratch result with the
published state, so its counts are exactly what a real run with the same inputs would
record: a learner still assigned by another route is not unassigned, a message the outbox
already holds is not made twice.

The published file is only read (copied through the inode a reader opened: a concurrent run
replaces it by an atomic rename, so the copy is either state, never a mix), the writer lock
is never taken and no Prefect server is started.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb

from flows.hr_import.importer import RemovalGuardError
from flows.notify.ledger import ledger_path
from flows.notify.settings import SmtpSettings
from flows.pipeline import RunRequest, RunResult, run_pipeline
from flows.reports.ledger import report_ledger_path
from flows.reports.send import send_reports
from flows.warehouse import WarehousePaths, last_published_run, table_exists, warehouse_paths


@dataclass
class Line:
    """One counted change, with up to `details` example ids."""

    what: str
    count: int
    examples: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """Everything the next run would change, against the last published run."""

    as_of: str
    published_run_id: str | None
    status: str  # would_succeed | would_fail
    message: str = ""
    removal_guard: list[str] = field(default_factory=list)  # elements whose guard would trip
    imports: list[Line] = field(default_factory=list)
    audiences: list[Line] = field(default_factory=list)
    programs: list[Line] = field(default_factory=list)
    notifications: list[Line] = field(default_factory=list)
    reports: list[Line] = field(default_factory=list)

    def to_json(self) -> str:
        """The plan as JSON (for scripts and CI checks of rule changes)."""
        return json.dumps(asdict(self), indent=2, default=str)


def plan_run(request: RunRequest, *, details: int = 0) -> Plan:
    """Run `request` in a scratch copy of its warehouse and describe what it changed."""
    published = warehouse_paths(request.warehouse)
    last = last_published_run(published)
    with _scratch_copy(published) as scratch:
        scratch_request = replace(
            request, warehouse=scratch.published, send=False, alerts=False, lock_wait_seconds=0
        )
        result, tripped = _run_through_guard(scratch_request)
        plan = Plan(
            as_of=f"{request.as_of:%Y-%m-%dT%H:%M:%SZ}",
            published_run_id=last[0] if last else None,
            status="would_succeed" if not tripped else "would_fail",
            message=result.message,
            removal_guard=tripped,
        )
        plan.imports = _import_lines(result)
        _compare(plan, published, scratch, result.run_id, details)
        plan.reports = _report_lines(request, scratch)
    return plan


@contextmanager
def _scratch_copy(published: WarehousePaths) -> Iterator[WarehousePaths]:
    with tempfile.TemporaryDirectory(prefix="learnops-plan-") as directory:
        scratch = warehouse_paths(Path(directory) / "warehouse.duckdb")
        scratch.state_dir.mkdir(parents=True)
        if published.published.exists():
            # one open inode: one state, even if a run renames a new file in meanwhile
            with published.published.open("rb") as source, scratch.published.open("wb") as target:
                shutil.copyfileobj(source, target, length=16 << 20)
        for ledger in (ledger_path, report_ledger_path):  # what was sent: not sent again
            if ledger(published).exists():
                shutil.copy2(ledger(published), ledger(scratch))
        dbt_state = published.state_dir / "dbt"
        if dbt_state.is_dir():  # dbt's partial-parse cache: a plan parses no slower than a run
            shutil.copytree(dbt_state, scratch.state_dir / "dbt", dirs_exist_ok=True)
        yield scratch


def _run_through_guard(request: RunRequest) -> tuple[RunResult, list[str]]:
    """The run; if the removal guard would trip, say so and show what allowing it would do."""
    tripped: list[str] = []
    while True:
        try:
            return run_pipeline(request), tripped
        except RemovalGuardError as error:
            new = [element for element in error.elements if element not in tripped]
            if not new:
                raise
            tripped += new
            allowed = request.allow_mass_removal | set(new)
            request = replace(request, allow_mass_removal=frozenset(allowed))


def _import_lines(result: RunResult) -> list[Line]:
    lines = []
    for element in result.summary.elements if result.summary else []:
        if element.status != "imported":
            continue
        for what, count in (
            ("created", element.added),
            ("updated", element.updated),
            ("removed", element.removed),
            ("rejected", element.rows_rejected),
        ):
            if count:
                lines.append(Line(f"{element.element} {what}", count))
    return lines


# --- comparison of the published state (old) with the scratch run (new) ---------------------


def _compare(
    plan: Plan, published: WarehousePaths, scratch: WarehousePaths, run_id: str, details: int
) -> None:
    with duckdb.connect() as con:
        con.execute("attach ? as new (read_only)", [str(scratch.published)])
        con.execute("use new")
        con.execute(
            "create temp table previous_program_user (program_id varchar, user_id varchar, "
            "due_at timestamp, exception_type varchar)"
        )
        if published.published.exists():
            con.execute("attach ? as old (read_only)", [str(published.published)])
            if table_exists(con, "main", "fct_program_user", catalog="old"):
                con.execute(
                    "insert into temp.previous_program_user select program_id, user_id, "
                    "due_at, exception_type from old.main.fct_program_user"
                )
        plan.audiences = _audience_lines(con, run_id, details)
        plan.programs = _program_lines(con, details)
        plan.notifications = _notification_lines(con, run_id, details)


def _grouped(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any], details: int
) -> list[Line]:
    """Rows of (label, count, examples list) -> Lines, examples cut to `details`."""
    return [
        Line(label, count, sorted(examples or [])[:details])
        for label, count, examples in con.execute(sql, params).fetchall()
    ]


def _audience_lines(con: duckdb.DuckDBPyConnection, run_id: str, details: int) -> list[Line]:
    return _grouped(
        con,
        "select audience_id || ' ' || event, count(*), list(user_id) "
        "from main.fct_audience_membership_event where run_id = ? "
        "group by audience_id, event order by audience_id, event",
        [run_id],
        details,
    )


def _program_lines(con: duckdb.DuckDBPyConnection, details: int) -> list[Line]:
    """Assignments made and removed, due dates moved, new exceptions, per program."""
    sql = """
        with previous as (select * from temp.previous_program_user),
        current as (select program_id, user_id, due_at, exception_type from main.fct_program_user),
        changes as (
            select program_id, user_id, 'assigned' as change from current
            anti join previous using (program_id, user_id)
            union all
            select program_id, user_id, 'unassigned' from previous
            anti join current using (program_id, user_id)
            union all
            select program_id, user_id, 'due date moved' from current
            inner join previous using (program_id, user_id)
            where current.due_at is distinct from previous.due_at
            union all
            select program_id, user_id, 'new exception ' || current.exception_type from current
            left join previous using (program_id, user_id)
            where current.exception_type is not null
                and current.exception_type is distinct from previous.exception_type
        )
        select program_id || ' ' || change, count(*), list(user_id)
        from changes group by program_id, change order by program_id, change
    """
    return _grouped(con, sql, [], details)


def _notification_lines(con: duckdb.DuckDBPyConnection, run_id: str, details: int) -> list[Line]:
    """Messages the run would create, per notification and status (pending = would be sent)."""
    return _grouped(
        con,
        "select notification_id || ' ' || case status when 'pending' then 'would be sent' "
        "else status end, count(*), list(coalesce(recipient_email, user_id)) "
        "from main.notification_outbox where created_run_id = ? "
        "group by notification_id, status order by notification_id, status",
        [run_id],
        details,
    )


def _report_lines(request: RunRequest, scratch: WarehousePaths) -> list[Line]:
    """The scheduled reports the run would send: sent for real into the scratch copy, as
    `.eml` files nobody reads (never over SMTP), against a copy of the report ledger."""
    eml_only = SmtpSettings(host=None, outbox_dir=scratch.state_dir / "plan_reports")
    run = send_reports(
        scratch,
        request.rules,
        as_of=request.as_of,
        site_timezone=request.site_timezone,
        smtp=eml_only,
    )
    lines = []
    for outcome in run.reports:
        for what, count in (
            ("would be sent", outcome.sent),
            ("skipped empty", outcome.skipped_empty),
            ("sent already for this period", outcome.already_done),
        ):
            if count:
                lines.append(Line(f"{outcome.report_id} {what}", count))
        if outcome.note:
            lines.append(Line(f"{outcome.report_id}: {outcome.note}", 0))
    return lines


def render_text(plan: Plan) -> list[str]:
    """Counts first, then the examples (`--details`), section by section."""
    against = plan.published_run_id or "an empty warehouse"
    lines = [f"plan as of {plan.as_of} against {against}: {plan.status.replace('_', ' ')}"]
    for element in plan.removal_guard:
        lines.append(
            f"  removal guard would trip: {element} (the run would fail; below is what "
            f"`--allow-mass-removal {element}` would do)"
        )
    for title, section in (
        ("import", plan.imports),
        ("audiences", plan.audiences),
        ("programs and certifications", plan.programs),
        ("notifications", plan.notifications),
        ("reports", plan.reports),
    ):
        lines.append(f"  {title}:" + ("" if section else " no change"))
        for line in section:
            lines.append(f"    {line.what}: {line.count}" if line.count else f"    {line.what}")
            if line.examples:
                more = line.count - len(line.examples)
                tail = f" and {more} more" if more > 0 else ""
                lines.append(f"      {', '.join(line.examples)}{tail}")
    return lines
