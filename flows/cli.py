"""`learnops`: the command line (SPEC §8). Thin: parse options, call stages, print.

Exit status: 0 success; 1 the run or validation failed (the reason is printed on one line);
2 the command was refused before doing anything (bad options, as-of in the past, lock held).
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from pathlib import Path
from typing import Any

import click

from flows.runtime_env import REPO_ROOT, configure_runtime_env

configure_runtime_env()

EXIT_FAILED = 1
EXIT_REFUSED = 2
DEMO_AS_OF = ("2026-11-01T06:00:00Z", "2026-11-08T06:00:00Z")  # generator epochs are weeks


class CommandFailed(click.ClickException):
    exit_code = EXIT_FAILED

    def show(self, file: Any = None) -> None:
        click.echo(f"learnops: error: {self.format_message()}", err=True)


class CommandRefused(CommandFailed):
    exit_code = EXIT_REFUSED


def _one_line_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the errors people cause into one line and an exit code, never a stack trace."""
    from flows.hr_import.importer import RemovalGuardError
    from flows.hr_import.reader import FeedFileError
    from flows.pipeline import RunRefusedError, describe_error
    from flows.rules.loader import RulesError
    from flows.warehouse import WarehouseLockedError

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except click.ClickException:
            raise
        except RulesError as err:
            raise CommandRefused("invalid rules:\n" + str(err)) from None
        except (RunRefusedError, WarehouseLockedError) as err:
            raise CommandRefused(describe_error(err)) from None
        except (FeedFileError, RemovalGuardError) as err:
            raise CommandFailed(describe_error(err)) from None
        except Exception as err:  # a failed build or anything unexpected: one line
            from flows.build import BuildError

            if isinstance(err, BuildError):
                raise CommandFailed(str(err)) from None
            raise CommandFailed(f"{type(err).__name__}: {describe_error(err)}") from None

    return wrapper


def common_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--feeds, --rules, --warehouse, --as-of (SPEC §8); defaults from LEARNOPS_* settings."""
    options = [
        click.option(
            "--feeds", type=click.Path(path_type=Path), help="Feed directory [LEARNOPS_FEEDS]."
        ),
        click.option(
            "--rules", type=click.Path(path_type=Path), help="Rules directory [LEARNOPS_RULES]."
        ),
        click.option(
            "--warehouse",
            type=click.Path(path_type=Path),
            help="Published DuckDB file [LEARNOPS_WAREHOUSE].",
        ),
        click.option(
            "--as-of",
            "as_of",
            metavar="ISO8601",
            help="The run's instant (default: now). No zone = site timezone.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """learnops: corporate learning administration as a data pipeline."""


@main.command()
@common_options
@click.option(
    "--allow-mass-removal",
    "allow_mass_removal",
    multiple=True,
    metavar="ELEMENT",
    help="Let ELEMENT remove more than max_removed_fraction in this one run (repeatable).",
)
@click.option(
    "--engine",
    type=click.Choice(["prefect", "local"]),
    default="prefect",
    show_default=True,
    help="Run as a Prefect flow, or the same stages in-process without Prefect.",
)
@click.option(
    "--wait",
    "wait_seconds",
    type=float,
    default=None,
    help="Seconds to wait for the warehouse lock [LEARNOPS_LOCK_WAIT_SECONDS, default 0].",
)
@click.option(
    "--baseline",
    is_flag=True,
    help="Record every notification event as suppressed and mail nobody (go-live; the "
    "first run on a warehouse always does).",
)
@click.option(
    "--no-send",
    "no_send",
    is_flag=True,
    help="Build and publish, but leave this run's messages pending (`learnops notify` sends).",
)
@_one_line_errors
def run(
    feeds: Path | None,
    rules: Path | None,
    warehouse: Path | None,
    as_of: str | None,
    allow_mass_removal: tuple[str, ...],
    engine: str,
    wait_seconds: float | None,
    baseline: bool,
    no_send: bool,
) -> None:
    """Import the feeds, build the warehouse, publish it and send its mail (one run)."""
    result = _run(
        feeds,
        rules,
        warehouse,
        as_of,
        allow_mass_removal,
        engine,
        wait_seconds,
        baseline=baseline,
        send=not no_send,
    )
    _print_summary(result)


def _run(
    feeds: Path | None,
    rules: Path | None,
    warehouse: Path | None,
    as_of: str | None,
    allow_mass_removal: tuple[str, ...],
    engine: str,
    wait_seconds: float | None,
    *,
    baseline: bool = False,
    send: bool = True,
) -> Any:
    from flows.hr_import.elements import ELEMENTS
    from flows.pipeline import RunRequest, parse_as_of, run_pipeline
    from flows.settings import load_settings

    unknown = sorted(set(allow_mass_removal) - set(ELEMENTS))
    if unknown:
        raise CommandRefused(
            f"--allow-mass-removal: unknown element(s) {unknown}; use one of {sorted(ELEMENTS)}"
        )
    settings = load_settings(
        feeds=feeds, rules=rules, warehouse=warehouse, lock_wait_seconds=wait_seconds
    )
    if not settings.feeds.is_dir():
        raise CommandRefused(f"feed directory {settings.feeds} does not exist")
    if engine == "prefect":
        from flows.prefect_flows import pipeline_flow

        return pipeline_flow(
            feeds=str(settings.feeds),
            rules=str(settings.rules),
            warehouse=str(settings.warehouse),
            as_of=as_of,
            allow_mass_removal=list(allow_mass_removal),
            lock_wait_seconds=settings.lock_wait_seconds,
            baseline=baseline,
            send=send,
        )
    request = RunRequest(
        feeds=settings.feeds,
        rules=settings.rules,
        warehouse=settings.warehouse,
        as_of=parse_as_of(as_of, settings.site_timezone),
        site_timezone=settings.site_timezone,
        allow_mass_removal=frozenset(allow_mass_removal),
        lock_wait_seconds=settings.lock_wait_seconds,
        baseline=baseline,
        send=send,
        templates_dir=settings.templates_dir,
    )
    return run_pipeline(request)


def _print_summary(result: Any) -> None:
    from flows.summary import summary_lines

    for line in summary_lines(result):
        click.echo(line)


@main.command()
@common_options
@click.option(
    "--rules-only",
    is_flag=True,
    help="Check only the rules files (syntax, schema, references between them, templates): "
    "fast enough for a pre-commit hook.",
)
@_one_line_errors
def validate(
    feeds: Path | None,
    rules: Path | None,
    warehouse: Path | None,
    as_of: str | None,
    rules_only: bool,
) -> None:
    """Check rules and feeds without changing anything; print every problem found.

    Feeds are validated against the published warehouse's live state (if there is one),
    exactly as a run would, including references and the removal guard.
    """
    import duckdb

    from flows.hr_import.importer import ImportContext, RemovalGuardError, import_feeds
    from flows.pipeline import parse_as_of
    from flows.rules.loader import RulesError
    from flows.rules.tables import known_ids
    from flows.rules.validation import RULES_FILES, check_references, validate_rules
    from flows.settings import load_settings
    from flows.state_schema import ensure_state_schema
    from flows.warehouse import warehouse_paths

    settings = load_settings(feeds=feeds, rules=rules, warehouse=warehouse)
    try:
        loaded = validate_rules(settings.rules, templates_dir=settings.templates_dir)
    except RulesError as err:
        for issue in err.issues:
            click.echo(str(issue))
        raise CommandFailed(f"{len(err.issues)} rule problem(s)") from None
    for name in RULES_FILES:
        click.echo(f"rules: {settings.rules}/{name} ok")
    if rules_only:
        return
    paths = warehouse_paths(settings.warehouse)
    con = duckdb.connect()
    ensure_state_schema(con)
    if paths.published.exists():
        con.execute("attach ? as published (read_only)", [str(paths.published)])
        tables = con.execute(
            "select table_name from information_schema.tables "
            "where table_catalog = 'published' and table_schema = 'hr'"
        ).fetchall()
        for (table,) in tables:  # names from the catalog, not from users
            con.execute(f'insert into hr."{table}" select * from published.hr."{table}"')  # noqa: S608
    scratch = tempfile.TemporaryDirectory(prefix="learnops-validate-")  # the archive nobody keeps
    context = ImportContext(
        run_id="validate",
        run_ordinal=1,
        as_of=parse_as_of(as_of, settings.site_timezone),
        site_tz=settings.site_timezone,
        archive_dir=Path(scratch.name),
    )
    problems = 0
    try:
        summary = import_feeds(con, settings.feeds, loaded.hr_import, context)
    except RemovalGuardError as err:
        raise CommandFailed(str(err)) from None
    finally:
        scratch.cleanup()
    for element in summary.elements:
        state = (
            "no file"
            if element.status == "missing"
            else f"{element.rows_read} rows, {element.rows_rejected} rejected"
        )
        click.echo(f"feed {element.element}: {state}")
    for warning in summary.warnings:
        click.echo(f"warning: {warning}")
    for file, line, record, code, reason in con.execute(
        "select file, row_number, record_id, reason_code, reason "
        "from learnops.import_reject_log order by element, row_number"
    ).fetchall():
        problems += 1
        click.echo(f"{settings.feeds / file}:{line}: [{record}] {code}: {reason}")
    broken = check_references(loaded, known_ids(con))  # against the state a run would have
    for issue in broken:
        click.echo(str(issue))
    if problems or broken:
        raise CommandFailed(
            f"{problems} row(s) would be rejected, {len(broken)} rule reference(s) unknown"
        )
    click.echo("all feeds valid, every rule reference resolves")


@main.command()
@common_options
@click.option(
    "--details",
    type=click.IntRange(min=0),
    default=0,
    metavar="N",
    help="Also name up to N users (or addresses) per line.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option(
    "--allow-mass-removal",
    "allow_mass_removal",
    multiple=True,
    metavar="ELEMENT",
    help="Plan the run as if ELEMENT may remove more than max_removed_fraction.",
)
@_one_line_errors
def plan(
    feeds: Path | None,
    rules: Path | None,
    warehouse: Path | None,
    as_of: str | None,
    details: int,
    as_json: bool,
    allow_mass_removal: tuple[str, ...],
) -> None:
    """Show what the next run would do, exactly, without doing it.

    Runs every step in a scratch copy of the published warehouse (never touching it, never
    sending) and compares the result with the last published run: audiences joined and
    left, assignments made and removed, due dates moved, new exceptions, messages that
    would be sent, held or skipped, import changes and whether the removal guard would
    trip. Works while a run is going; starts no Prefect server.
    """
    from flows.pipeline import RunRequest, parse_as_of
    from flows.plan import plan_run, render_text
    from flows.settings import load_settings

    settings = load_settings(feeds=feeds, rules=rules, warehouse=warehouse)
    if not settings.feeds.is_dir():
        raise CommandRefused(f"feed directory {settings.feeds} does not exist")
    request = RunRequest(
        feeds=settings.feeds,
        rules=settings.rules,
        warehouse=settings.warehouse,
        as_of=parse_as_of(as_of, settings.site_timezone),
        site_timezone=settings.site_timezone,
        allow_mass_removal=frozenset(allow_mass_removal),
        templates_dir=settings.templates_dir,
    )
    result = plan_run(request, details=details)
    if as_json:
        click.echo(result.to_json())
        return
    for line in render_text(result):
        click.echo(line)


@main.command()
@click.argument("user")
@click.option(
    "--audience",
    "audience_id",
    metavar="ID",
    help="Explain this audience rule by rule.",
)
@click.option(
    "--program",
    "program_id",
    metavar="ID",
    help="Explain this program: routes, due date, exception, course sets, status.",
)
@click.option(
    "--certification",
    "certification_id",
    metavar="ID",
    help="Explain this certification: as --program, plus state, expiry and cycles.",
)
@click.option(
    "--warehouse",
    type=click.Path(path_type=Path),
    help="Published DuckDB file [LEARNOPS_WAREHOUSE].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
@_one_line_errors
def explain(
    user: str,
    audience_id: str | None,
    program_id: str | None,
    certification_id: str | None,
    warehouse: Path | None,
    as_json: bool,
) -> None:
    """Say why USER (a user id or username) is or is not in an audience, program or certification.

    --audience: the audience's rule tree with, for each rule, whether USER satisfies it and
    the value that decided it, then the membership as published and why it differs from the
    rules, if it does. --program / --certification: which routes assign USER (their dates),
    the due date and where it came from, the exception, each course set's status and the
    status; a certification adds its state, expiry and cycles. Without any of them: USER's
    audiences, programs and certifications, one line each. Reads only the published
    warehouse (read-only), as of its last run.
    """
    from flows.explain import (
        ExplainError,
        explain_audience,
        explain_program,
        explain_user,
        render_json,
        render_text,
    )
    from flows.settings import load_settings
    from flows.warehouse import open_published, warehouse_paths

    chosen = [
        (option, value)
        for option, value in (
            ("audience", audience_id),
            ("program", program_id),
            ("certification", certification_id),
        )
        if value is not None
    ]
    if len(chosen) > 1:
        raise CommandRefused(
            f"use one of --audience, --program, --certification, not {len(chosen)}"
        )
    paths = warehouse_paths(load_settings(warehouse=warehouse).warehouse)
    try:
        with open_published(paths) as con:
            if not chosen:
                result = explain_user(con, user)
            elif chosen[0][0] == "audience":
                result = explain_audience(con, user, chosen[0][1])
            else:
                result = explain_program(con, user, chosen[0][1], kind=chosen[0][0])
    except (ExplainError, FileNotFoundError) as err:
        raise CommandFailed(str(err)) from None
    click.echo(render_json(result) if as_json else "\n".join(render_text(result)))


@main.command()
@click.option(
    "--warehouse",
    type=click.Path(path_type=Path),
    help="Published DuckDB file [LEARNOPS_WAREHOUSE].",
)
@click.option(
    "--release",
    is_flag=True,
    help="Release every message the mass-send guard held, then send.",
)
@click.option(
    "--release-run",
    "release_run_id",
    metavar="RUN_ID",
    help="Release only the messages one run held, then send.",
)
@click.option(
    "--engine", type=click.Choice(["prefect", "local"]), default="local", show_default=True
)
@click.option(
    "--wait",
    "wait_seconds",
    type=float,
    default=None,
    help="Seconds to wait for the warehouse lock [LEARNOPS_LOCK_WAIT_SECONDS, default 0].",
)
@_one_line_errors
def notify(
    warehouse: Path | None,
    release: bool,
    release_run_id: str | None,
    engine: str,
    wait_seconds: float | None,
) -> None:
    """Send the mail that is due: pending, deferred whose day has come, and released.

    SMTP settings come from LEARNOPS_SMTP_*; with no LEARNOPS_SMTP_HOST the messages are
    written as .eml files to the outbox directory.
    """
    from flows.notify.stage import describe_delivery
    from flows.notify.stage import notify as send
    from flows.settings import load_settings
    from flows.warehouse import warehouse_paths

    settings = load_settings(warehouse=warehouse, lock_wait_seconds=wait_seconds)
    if engine == "prefect":
        from flows.prefect_flows import notify_flow

        outcome = notify_flow(
            warehouse=str(settings.warehouse),
            release=release,
            release_run_id=release_run_id,
            lock_wait_seconds=settings.lock_wait_seconds,
        )
    else:
        outcome = send(
            warehouse_paths(settings.warehouse),
            release=release,
            release_run_id=release_run_id,
            lock_wait_seconds=settings.lock_wait_seconds,
            templates_dir=settings.templates_dir,
        )
    for line in describe_delivery(outcome):
        click.echo(line)


@main.command()
@click.option(
    "--users",
    type=click.IntRange(min=10),
    default=2000,
    show_default=True,
    help="Size of the organisation.",
)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("demo_output"),
    show_default=True,
    help="Where the feeds, warehouse and state go.",
)
@click.option(
    "--engine", type=click.Choice(["prefect", "local"]), default="prefect", show_default=True
)
@_one_line_errors
def demo(users: int, seed: int, out: Path, engine: str) -> None:
    """Generate a realistic organisation and run the pipeline on it twice, a week apart."""
    import shutil

    from flows.demo.generator import generate_feeds
    from flows.warehouse import warehouse_paths

    paths = warehouse_paths(out / "warehouse.duckdb")
    # The demo always starts from an empty warehouse, so running it again works.
    paths.published.unlink(missing_ok=True)
    shutil.rmtree(paths.state_dir, ignore_errors=True)
    for week, as_of in enumerate(DEMO_AS_OF):
        feeds = out / f"feeds_week{week + 1}"
        report = generate_feeds(feeds, users, seed=seed, epoch=week)
        click.echo(
            f"\nweek {week + 1}: generated {report.rows.get('user', 0)} users into {feeds} "
            f"({len(report.bad_rows)} deliberately bad rows)"
        )
        result = _run(feeds, REPO_ROOT / "rules", paths.published, as_of, (), engine, None)
        _print_summary(result)
    query = "select reason_code, count(*) from import_reject group by all"
    click.echo(
        "\nquery the published warehouse (read-only, also while a run is building):\n"
        f"  .venv/bin/python -c \"import duckdb; duckdb.connect('{paths.published}', "
        f"read_only=True).sql('{query}').show()\""
    )


@main.command()
@click.option("--users", type=click.IntRange(min=10), required=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option(
    "--epoch",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Rounds of churn (leavers, joiners, moves) applied to the organisation.",
)
@click.option("--out", type=click.Path(path_type=Path), required=True)
def generate(users: int, seed: int, epoch: int, out: Path) -> None:
    """Write a deterministic organisation as Totara-format feed files."""
    from flows.demo.generator import generate_feeds

    report = generate_feeds(out, users, seed=seed, epoch=epoch)
    for element, count in report.rows.items():
        click.echo(f"{element:<18} {count:>10} rows")


@main.command("restore-feeds")
@click.argument("run_id")
@click.option(
    "--warehouse",
    type=click.Path(path_type=Path),
    help="Published DuckDB file [LEARNOPS_WAREHOUSE].",
)
@click.option(
    "--out", type=click.Path(path_type=Path), required=True, help="Directory to write the files to."
)
@_one_line_errors
def restore_feeds(run_id: str, warehouse: Path | None, out: Path) -> None:
    """Write the feed files RUN_ID read back from the archive, to replay that run."""
    from flows.hr_import.archive import restore_file
    from flows.settings import load_settings
    from flows.warehouse import open_published, warehouse_paths

    paths = warehouse_paths(load_settings(warehouse=warehouse).warehouse)
    with open_published(paths) as con:
        rows = con.execute(
            "select file, stored_path from learnops.archive_file where run_id = ?", [run_id]
        ).fetchall()
        runs = con.execute(
            "select as_of from learnops.run_log where run_id = ?", [run_id]
        ).fetchall()
    as_of: datetime | None = runs[0][0] if runs else None
    if not rows:
        raise CommandFailed(f"no archived files for run {run_id}")
    for file, stored in rows:
        restore_file(paths.archive_dir, stored, out / file)
        click.echo(f"restored {out / file}")
    if as_of is not None:
        click.echo(
            f"replay with: learnops run --feeds {out} --as-of {as_of:%Y-%m-%dT%H:%M:%SZ} "
            "--warehouse NEW_FILE"
        )


def _register_report_commands() -> None:
    from flows.reports.cli import report  # scheduled reports (docs/reports.md)

    main.add_command(report)


_register_report_commands()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
