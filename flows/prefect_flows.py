"""Prefect flows: the pipeline run as a flow of a few coarse tasks (SPEC §8).

Kept apart from :mod:`flows.pipeline` so that commands which need no orchestration
(`validate`, `explain`) never pay Prefect's import and start-up cost. No user, row or
message is ever a task: each task is a whole stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from flows.notify.stage import NotifyOutcome, describe_delivery, notify
from flows.pipeline import RunRequest, RunResult, parse_as_of, run_pipeline
from flows.settings import load_settings
from flows.summary import render_markdown
from flows.warehouse import warehouse_paths


def _as_task(stage: Any, *args: Any, name: str) -> Any:
    """Run one stage as a Prefect task named after it."""
    return task(stage, name=name, retries=0)(*args)


@flow(name="learnops-pipeline", log_prints=False)
def pipeline_flow(
    feeds: str | None = None,
    rules: str | None = None,
    warehouse: str | None = None,
    as_of: str | None = None,
    allow_mass_removal: list[str] | None = None,
    lock_wait_seconds: float | None = None,
    baseline: bool = False,
    send: bool = True,
) -> RunResult:
    """Import the feeds, build the warehouse with dbt and publish it atomically.

    Parameters default to the `LEARNOPS_*` settings; a scheduled deployment usually passes
    none, so each run is "as of now".
    """
    settings = load_settings(
        feeds=feeds, rules=rules, warehouse=warehouse, lock_wait_seconds=lock_wait_seconds
    )
    request = RunRequest(
        feeds=Path(settings.feeds),
        rules=Path(settings.rules),
        warehouse=Path(settings.warehouse),
        as_of=parse_as_of(as_of, settings.site_timezone),
        site_timezone=settings.site_timezone,
        allow_mass_removal=frozenset(allow_mass_removal or ()),
        lock_wait_seconds=settings.lock_wait_seconds,
        baseline=baseline,
        send=send,
        templates_dir=settings.templates_dir,
    )
    result = run_pipeline(request, task=_as_task)
    get_run_logger().info("run %s %s: %s", result.run_id, result.status, result.message)
    create_markdown_artifact(
        key="learnops-run-summary",
        markdown=render_markdown(result),
        description="learnops run summary",
    )
    return result


@flow(name="learnops-notify", log_prints=False)
def notify_flow(
    warehouse: str | None = None,
    release: bool = False,
    release_run_id: str | None = None,
    lock_wait_seconds: float | None = None,
) -> NotifyOutcome:
    """Send the published outbox's due mail (pending, deferred whose day has come, released).

    Deployed to run every few minutes with a concurrency limit of 1; the warehouse lock
    keeps it from overlapping a pipeline run. `release` also sends what the mass-send guard
    held (all of it, or one run's with `release_run_id`).
    """
    settings = load_settings(warehouse=warehouse, lock_wait_seconds=lock_wait_seconds)
    outcome = notify(
        warehouse_paths(Path(settings.warehouse)),
        release=release,
        release_run_id=release_run_id,
        lock_wait_seconds=settings.lock_wait_seconds,
        templates_dir=settings.templates_dir,
    )
    logger = get_run_logger()
    for line in describe_delivery(outcome):
        logger.info(line)
    return outcome
