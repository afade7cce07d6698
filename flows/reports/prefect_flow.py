"""The report flow (SPEC §7, §8): send every report whose period is due, as a Prefect flow.

Deployed in prefect.yaml to run every 15 minutes; a missed period sends once, never a
burst, and `report_delivery` keeps any period from going out twice, so the interval only
decides how late after its schedule instant a report may arrive. One coarse task: no
report, recipient or row is a Prefect task.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from flows.pipeline import parse_as_of
from flows.reports.send import ReportRun, send_due_reports
from flows.settings import load_settings
from flows.warehouse import warehouse_paths


@flow(name="learnops-reports", log_prints=False)
def report_flow(
    rules: str | None = None,
    warehouse: str | None = None,
    as_of: str | None = None,
    lock_wait_seconds: float | None = None,
) -> ReportRun:
    """Send the due period of every enabled report of `rules/reports.yaml` as of `as_of`
    (default now), under the warehouse writer lock, then republish report_delivery."""
    settings = load_settings(rules=rules, warehouse=warehouse, lock_wait_seconds=lock_wait_seconds)
    run = task(send_due_reports, name="send-reports", retries=0)(
        warehouse_paths(Path(settings.warehouse)),
        Path(settings.rules),
        as_of=parse_as_of(as_of, settings.site_timezone),
        site_timezone=settings.site_timezone,
        lock_wait_seconds=settings.lock_wait_seconds,
    )
    logger = get_run_logger()
    for line in run.lines():
        logger.info(line)
    create_markdown_artifact(
        key="learnops-report-run",
        markdown="\n".join(f"- {line}" for line in run.lines()),
        description="learnops scheduled reports",
    )
    return run
