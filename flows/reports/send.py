"""The report step (SPEC §2 step 6, §7): send every report whose current period is due.

For each enabled report: its current period (flows/reports/schedule.py) as of `as_of`;
the recipients whose delivery of that period is not final in the ledger; their rows from
one scoped query (flows/reports/scope.py); one mail each (flows/reports/render.py), or
`skipped_empty` when the report is empty and says `when_empty: skip`. Mail goes through
the notification sender's SMTP machinery (connection reuse, retries, 4xx/5xx handling) or,
with no LEARNOPS_SMTP_HOST, as `.eml` files in the outbox. Each outcome is recorded in the
report ledger as soon as it is known; the caller then republishes `report_delivery`.

The published warehouse is read through an in-memory connection that attaches it
read-only, so BI tools keep reading while reports go out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from flows.notify import deliver
from flows.notify.ledger import Outcome
from flows.notify.render import Sender
from flows.notify.settings import SmtpSettings
from flows.reports.ledger import Delivery, ReportLedger, republish_deliveries
from flows.reports.render import (
    TEMPLATES_DIR,
    Freshness,
    Recipient,
    RenderedReport,
    render_report,
)
from flows.reports.schedule import period_start
from flows.reports.scope import WAREHOUSE, ScopeError, scoped_report
from flows.reports.sources import report_sources
from flows.rules.reports import REPORTS_FILE, Report
from flows.rules.validation import LoadedRules, validate_rules
from flows.warehouse import WarehousePaths, writer_lock

log = logging.getLogger(__name__)
BATCH = 1000  # mails rendered, then sent, at a time: bounded memory at 50k recipients


@dataclass
class ReportOutcome:
    """What one report did in one send."""

    report_id: str
    period_start: datetime | None = None
    recipients: int = 0
    sent: int = 0
    skipped_empty: int = 0
    already_done: int = 0
    failed: int = 0
    pending: int = 0
    written: list[Path] = field(default_factory=list)  # dry run / .eml files
    note: str = ""


@dataclass
class ReportRun:
    """What one report send did, per report."""

    as_of: datetime
    reports: list[ReportOutcome] = field(default_factory=list)
    republished: bool = False
    seconds: float = 0.0

    def lines(self) -> list[str]:
        """Summary lines for the CLI, the flow's log and the run summary."""
        if not self.reports:
            return ["reports: none due"]
        out = []
        for r in self.reports:
            when = f"period {r.period_start:%Y-%m-%d %H:%M}Z" if r.period_start else "not due"
            text = (f"report {r.report_id} ({when}): {r.sent} sent, {r.skipped_empty} skipped "
                    f"empty, {r.already_done} already done, {r.failed} failed")  # fmt: skip
            if r.pending:
                text += f", {r.pending} left pending"
            out.append(text + (f"; {r.note}" if r.note else ""))
        return out


def _freshness(con: duckdb.DuckDBPyConnection) -> Freshness | None:
    rows = con.execute(
        f"select as_of, status, started_at from {WAREHOUSE}.main.pipeline_run "  # noqa: S608
        "where status in ('succeeded', 'failed') order by started_at desc"
    ).fetchall()
    succeeded = [r for r in rows if r[1] == "succeeded"]
    if not succeeded:
        return None
    newest = rows[0]
    failed_at = newest[0] if newest[1] == "failed" else None
    return Freshness(data_as_of=succeeded[0][0], failed_run_at=failed_at)


def _sender(rules: LoadedRules) -> Sender | None:
    own = rules.reports.settings
    fallback = rules.notifications.settings
    chosen = own.sender or fallback.sender
    if chosen is None:
        return None
    reply_to = own.reply_to or (fallback.reply_to if own.sender is None else None)
    return Sender(address=chosen.address, name=chosen.name or "", reply_to=reply_to)


def send_reports(
    paths: WarehousePaths,
    rules_dir: Path,
    *,
    as_of: datetime,
    site_timezone: str = "UTC",
    report_id: str | None = None,
    to: str | None = None,
    dry_run_dir: Path | None = None,
    smtp: SmtpSettings | None = None,
    templates_dir: Path = TEMPLATES_DIR,
    rules: LoadedRules | None = None,
    now: Callable[[], datetime] = deliver.utc_now,
) -> ReportRun:
    """Send the due period of every enabled report (or of `report_id`, to `to` only); the
    caller holds the writer lock unless this is a dry run. `dry_run_dir`: write each mail
    there as `.eml` and record nothing."""
    started = time.perf_counter()
    run = ReportRun(as_of=as_of)
    if rules is None and not (rules_dir / REPORTS_FILE).exists():
        return run  # no reports.yaml: nothing to validate or send
    rules = rules or validate_rules(rules_dir)
    reports = [r for r in rules.reports.reports if report_id in (None, r.id)]
    if report_id is not None and not reports:
        known = ", ".join(r.id for r in rules.reports.reports) or "none"
        raise ValueError(f"no report '{report_id}' in {rules_dir}/reports.yaml (reports: {known})")
    reports = [r for r in reports if r.enabled or report_id is not None]
    sender = _sender(rules)
    if not reports or sender is None or not paths.published.exists():
        return run
    smtp = smtp or SmtpSettings()
    con = duckdb.connect()
    con.execute(f"attach ? as {WAREHOUSE} (read_only)", [str(paths.published)])
    try:
        freshness = _freshness(con)
        if freshness is None:
            return run
        for report in reports:
            outcome = ReportOutcome(report.id)
            run.reports.append(outcome)
            try:
                _send_one(con, report, outcome, freshness, sender, smtp, paths,
                          as_of=as_of, site_timezone=site_timezone, to=to,
                          dry_run_dir=dry_run_dir, templates_dir=templates_dir,
                          now=now)  # fmt: skip
            except ScopeError as error:  # broken: skipped, said, the others go on
                outcome.note = str(error)
                log.error("%s", error)
    finally:
        con.close()
    run.seconds = time.perf_counter() - started
    return run


def _send_one(
    con: duckdb.DuckDBPyConnection,
    report: Report,
    outcome: ReportOutcome,
    freshness: Freshness,
    sender: Sender,
    smtp: SmtpSettings,
    paths: WarehousePaths,
    *,
    as_of: datetime,
    site_timezone: str,
    to: str | None,
    dry_run_dir: Path | None,
    templates_dir: Path,
    now: Callable[[], datetime],
) -> None:
    start = period_start(report.schedule, as_of, site_timezone)
    outcome.period_start = start
    source = report_sources()[report.source]
    missing_orgs = _unknown_organisations(con, report)
    if missing_orgs:
        raise ScopeError(f"report {report.id} is broken: unknown organisation(s) "
                         f"{', '.join(missing_orgs)}; skipped")  # fmt: skip
    scoped = scoped_report(con, report, source, freshness.data_as_of)
    by_recipient = scoped.split()
    people = {r["recipient"]: r for r in scoped.recipients.iter_rows(named=True)}
    if to is not None:
        wanted = to.strip().lower()
        if wanted not in people:
            raise ScopeError(f"report {report.id} does not reach {to}")
        people = {wanted: people[wanted]}
    outcome.recipients = len(people)
    tz_default = report.schedule.timezone or site_timezone
    with _ledger(paths, dry_run_dir) as ledger:
        done = ledger.final_recipients(report.id, start) if ledger else set()
        attempts = ledger.attempts(report.id, start) if ledger else {}
        todo = [key for key in people if key not in done]
        outcome.already_done = len(people) - len(todo)
        for offset in range(0, len(todo), BATCH):
            jobs, skipped = [], []
            for key in todo[offset : offset + BATCH]:
                person = people[key]
                rows = by_recipient[key]
                if rows.height == 0 and report.when_empty == "skip":
                    skipped.append(_delivery(report.id, key, start, "skipped_empty", 0, now()))
                    continue
                recipient = Recipient(key, person["email"], person["name"] or "",
                                      person["timezone"] or tz_default)  # fmt: skip
                rendered = render_report(report, recipient, rows, period_start=start,
                                         freshness=freshness, sender=sender,
                                         templates_dir=templates_dir, now=now())  # fmt: skip
                jobs.append((key, rendered, attempts.get(key, 0)))
            if dry_run_dir is not None:
                dry_run_dir.mkdir(parents=True, exist_ok=True)
                for _, rendered, _ in jobs:
                    target = dry_run_dir / f"{rendered.message_id}.eml"
                    deliver.atomic_write(target, rendered.payload)
                    outcome.written.append(target)
                outcome.sent += len(jobs)
                outcome.skipped_empty += len(skipped)
                continue
            assert ledger is not None
            ledger.record(skipped)
            outcome.skipped_empty += len(skipped)
            _deliver(jobs, report, start, smtp, sender, paths, ledger, outcome, now)


class _NoLedger:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _ledger(paths: WarehousePaths, dry_run_dir: Path | None) -> ReportLedger | _NoLedger:
    return _NoLedger() if dry_run_dir is not None else ReportLedger(paths)


def _delivery(
    report_id: str, key: str, start: datetime, status: str, rows: int, stamp: datetime,
    *, message_id: str | None = None, attempts: int = 0, error: str | None = None,
    sent_at: datetime | None = None,
) -> Delivery:  # fmt: skip
    naive = stamp.astimezone(UTC).replace(tzinfo=None) if stamp.tzinfo else stamp
    sent = sent_at.astimezone(UTC).replace(tzinfo=None) if sent_at and sent_at.tzinfo else sent_at
    return Delivery(report_id, key, start, status, rows, sent, message_id, attempts, error, naive)


def _unknown_organisations(con: duckdb.DuckDBPyConnection, report: Report) -> list[str]:
    """Fixed-scope organisations the published warehouse does not have (HR removed them)."""
    from flows.rules.reports import OrganisationScope

    listed = sorted({org for scope in report.all_scopes() if isinstance(scope, OrganisationScope)
                     for org in scope.organisations})  # fmt: skip
    if not listed:
        return []
    rows = con.execute(
        f"select organisation_id from {WAREHOUSE}.main.dim_organisation "  # noqa: S608
        "where list_contains(?, organisation_id)",
        [listed],
    ).fetchall()
    return sorted(set(listed) - {org for (org,) in rows})


class _Recorder:
    """The notification sender's recorder interface, writing to the report ledger."""

    def __init__(self, ledger: ReportLedger, jobs: dict[str, tuple[str, int]], report_id: str,
                 start: datetime, outcome: ReportOutcome) -> None:  # fmt: skip
        self.ledger, self.jobs, self.report_id, self.start = ledger, jobs, report_id, start
        self.outcome = outcome
        self.every, self.interval = 50, 0.5
        self.buffer: list[Delivery] = []

    def add(self, result: Outcome) -> None:
        key, rows = self.jobs[result.message_id]
        status = result.status  # sent | failed | pending (a transient failure)
        self.buffer.append(_delivery(
            self.report_id, key, self.start, status, rows, result.recorded_at,
            message_id=result.message_id, attempts=result.attempts, error=result.last_error,
            sent_at=result.sent_at,
        ))  # fmt: skip
        if len(self.buffer) >= self.every:
            self.flush()

    def flush(self) -> None:
        for d in self.buffer:
            if d.status == "sent":
                self.outcome.sent += 1
            elif d.status == "failed":
                self.outcome.failed += 1
        self.ledger.record(self.buffer)
        self.buffer = []


def _deliver(
    jobs: list[tuple[str, RenderedReport, int]],
    report: Report,
    start: datetime,
    smtp: SmtpSettings,
    sender: Sender,
    paths: WarehousePaths,
    ledger: ReportLedger,
    outcome: ReportOutcome,
    now: Callable[[], datetime],
) -> None:
    """Send pre-rendered mails with the notification sender (or write .eml files)."""
    if not jobs:
        return
    index = {r.message_id: (key, r.row_count) for key, r, _ in jobs}
    recorder = _Recorder(ledger, index, report.id, start, outcome)
    # the notification sender's job type: a row with the two keys it reads, and the payload
    # already rendered, so its renderer is never called
    queue = [
        deliver._Job(row={"message_id": r.message_id, "recipient_email": r.to},
                     attempts=tries, payload=r.payload)
        for _, r, tries in jobs
    ]  # fmt: skip
    before = outcome.sent + outcome.failed
    report_counts = deliver.DeliveryReport(mode="smtp" if smtp.uses_smtp else "eml")
    try:
        if smtp.uses_smtp:
            report_counts.connections = min(smtp.connections, len(queue))
            delivery = deliver._SmtpDelivery(
                queue, smtp, sender, None, recorder, report_counts,  # type: ignore[arg-type]
                limiter=None, now=now, sleep=deliver.asyncio.sleep, after_send=None,
                deadline=float("inf"),
            )  # fmt: skip
            deliver._run(delivery.run())
        else:
            outbox = smtp.outbox_path(paths)
            outbox.mkdir(parents=True, exist_ok=True)
            for job in queue:
                deliver.atomic_write(outbox / f"{job.message_id}.eml", job.payload or b"")
                job.attempts += 1
                recorder.add(deliver._outcome(job, "sent", now))
                outcome.written.append(outbox / f"{job.message_id}.eml")
    finally:
        recorder.flush()
    # a transient failure that ran out of attempts, or a relay that could not be reached,
    # leaves the mail pending: the next send of the same period retries it
    outcome.pending += len(queue) - (outcome.sent + outcome.failed - before)


def send_due_reports(
    paths: WarehousePaths,
    rules_dir: Path,
    *,
    as_of: datetime,
    site_timezone: str = "UTC",
    lock_wait_seconds: float = 0.0,
    report_id: str | None = None,
    to: str | None = None,
    dry_run_dir: Path | None = None,
    templates_dir: Path = TEMPLATES_DIR,
) -> ReportRun:
    """The report flow's work: under the writer lock, send what is due, then republish
    `report_delivery`. A dry run takes no lock and records nothing."""
    if dry_run_dir is not None:
        return send_reports(paths, rules_dir, as_of=as_of, site_timezone=site_timezone,
                            report_id=report_id, to=to, dry_run_dir=dry_run_dir,
                            templates_dir=templates_dir)  # fmt: skip
    with writer_lock(paths, wait_seconds=lock_wait_seconds):
        run = send_reports(paths, rules_dir, as_of=as_of, site_timezone=site_timezone,
                           report_id=report_id, to=to, templates_dir=templates_dir)  # fmt: skip
        run.republished = republish_deliveries(paths)
    return run
