"""`learnops report ...`: send scheduled reports (SPEC §7). Thin: parse, call, print.

Registered on the main command group by flows/cli.py.
"""

from __future__ import annotations

from pathlib import Path

import click


def _options(command):  # type: ignore[no-untyped-def]
    for option in reversed([
        click.option("--rules", type=click.Path(path_type=Path),
                     help="Rules directory [LEARNOPS_RULES]."),
        click.option("--warehouse", type=click.Path(path_type=Path),
                     help="Published DuckDB file [LEARNOPS_WAREHOUSE]."),
        click.option("--as-of", "as_of", metavar="ISO8601",
                     help="Which periods are due (default: now). No zone = site timezone."),
        click.option("--wait", "wait_seconds", type=float, default=None,
                     help="Seconds to wait for the warehouse lock [LEARNOPS_LOCK_WAIT_SECONDS]."),
    ]):  # fmt: skip
        command = option(command)
    return command


@click.group()
def report() -> None:
    """Scheduled reports: send what is due, or one report now."""


@report.command("run")
@_options
@click.option("--engine", type=click.Choice(["prefect", "local"]), default="local",
              show_default=True)  # fmt: skip
def run_due(
    rules: Path | None, warehouse: Path | None, as_of: str | None, wait_seconds: float | None,
    engine: str,
) -> None:  # fmt: skip
    """Send every report whose current period is due as of --as-of (each period once)."""
    from flows.cli import _one_line_errors

    _one_line_errors(_run)(rules, warehouse, as_of, wait_seconds, engine, None, None, False)


@report.command("send")
@click.argument("report_id", metavar="ID")
@_options
@click.option("--to", "to", metavar="ADDRESS", help="Only this recipient of the report.")
@click.option(
    "--dry-run",
    "dry_run",
    is_flag=True,
    help="Render the mails as .eml files (printed), send and record nothing.",
)
def send(
    report_id: str, rules: Path | None, warehouse: Path | None, as_of: str | None,
    wait_seconds: float | None, to: str | None, dry_run: bool,
) -> None:  # fmt: skip
    """Send report ID's current period now, to every recipient not yet sent it (or --to)."""
    from flows.cli import _one_line_errors

    _one_line_errors(_run)(rules, warehouse, as_of, wait_seconds, "local", report_id, to, dry_run)


def _run(
    rules: Path | None, warehouse: Path | None, as_of: str | None, wait_seconds: float | None,
    engine: str, report_id: str | None, to: str | None, dry_run: bool,
) -> None:  # fmt: skip
    from flows.pipeline import parse_as_of
    from flows.reports.send import send_due_reports
    from flows.settings import load_settings
    from flows.warehouse import warehouse_paths

    settings = load_settings(rules=rules, warehouse=warehouse, lock_wait_seconds=wait_seconds)
    if engine == "prefect":
        from flows.reports.prefect_flow import report_flow

        outcome = report_flow(
            rules=str(settings.rules),
            warehouse=str(settings.warehouse),
            as_of=as_of,
            lock_wait_seconds=settings.lock_wait_seconds,
        )
    else:
        paths = warehouse_paths(settings.warehouse)
        dry_dir = paths.state_dir / "report-preview" if dry_run else None
        outcome = send_due_reports(
            paths, settings.rules, as_of=parse_as_of(as_of, settings.site_timezone),
            site_timezone=settings.site_timezone, lock_wait_seconds=settings.lock_wait_seconds,
            report_id=report_id, to=to, dry_run_dir=dry_dir,
        )  # fmt: skip
    for line in outcome.lines():
        click.echo(line)
    for item in outcome.reports:
        for path in item.written if dry_run else ():
            click.echo(f"  {path}")
    broken = [item.note for item in outcome.reports if item.note]
    if report_id is not None and broken:
        from flows.cli import CommandFailed

        raise CommandFailed(broken[0])
