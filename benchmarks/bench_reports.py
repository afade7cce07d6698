"""Scheduled reports at scale (issue 6): every manager their team report, to a loopback SMTP
sink. Prints the scoped query, rendering (HTML body + CSV) and sending rate, and the extra
cost of XLSX and of a chart per report, measured separately.

    .venv/bin/python benchmarks/bench_reports.py --users 1000000 --managers 50000
    .venv/bin/python benchmarks/bench_reports.py --users 100000 --managers 5000   # smaller

The warehouse is synthetic (built in SQL, no dbt): the tables the scope query reads and
rpt_team_progress with one row per (manager, direct report): each manager has
users/managers direct reports, managers form a tree of fan-out 8 above them.
"""

from __future__ import annotations

import argparse
import tempfile
import textwrap
import time
from datetime import datetime
from pathlib import Path

import duckdb

from flows.notify.settings import SmtpSettings
from flows.reports.render import Freshness, Recipient, render_report
from flows.reports.scope import WAREHOUSE, scoped_report
from flows.reports.send import send_reports
from flows.reports.sources import report_sources
from flows.rules.validation import validate_rules
from flows.warehouse import warehouse_paths
from tests.notify.smtp_server import FaultyHandler, running_server

AS_OF = datetime(2026, 11, 2, 6)
RULES = """
settings:
  sender: {address: reports@example.com}
reports:
  - id: team
    name: Your team's learning
    source: rpt_team_progress
    columns: [full_name, assigned, complete, in_progress, overdue, next_due_at, completion_rate]
    sort: [full_name]
    schedule: {every: day}
    formats: FORMATS
    CHART
    scope: team_direct
    recipients: [managers]
"""


def build(path: Path, users: int, managers: int) -> None:
    """A synthetic published warehouse (DuckDB only, seconds at 1M users)."""
    with duckdb.connect(str(path)) as con:
        con.execute(  # numbers only reach this text
            textwrap.dedent(f"""
            create table dim_user as
                select 'U' || i as user_id, 'u' || i as username,
                    'u' || i || '@example.com' as email,
                    'First' || i as first_name, 'Last' as last_name, 'active' as status,
                    'Europe/London' as timezone, false as email_stop
                from range({users}) t(i);
            -- users 0..managers-1 are managers; manager m > 0 reports to (m - 1) // 8;
            -- every other user reports to manager i % managers
            create table dim_job_assignment as
                select 'U' || i as user_id, 'J1' as job_id, 'O' || (i % 100) as organisation_id,
                    case when i = 0 then null
                         when i < {managers} then 'U' || ((i - 1) // 8)
                         else 'U' || (i % {managers}) end as manager_user_id
                from range({users}) t(i);
            create table bdg_management as
                select manager_user_id, user_id as report_user_id, 1 as depth
                from dim_job_assignment where manager_user_id is not null;
            create table bdg_organisation_ancestry as
                select 'O' || i as ancestor_id, 'O' || i as descendant_id, 0 as depth_below
                from range(100) t(i);
            create table dim_organisation as
                select 'O' || i as organisation_id from range(100) t(i);
            create table fct_audience_membership (audience_id varchar, user_id varchar);
            create table pipeline_run as select 'r1' as run_id, timestamp '{AS_OF}' as as_of,
                timestamp '{AS_OF}' as started_at, 'succeeded' as status;
            create table rpt_team_progress as
                select j.manager_user_id, 'M' as manager_name, j.user_id, u.username,
                    u.first_name || ' Last' as full_name, u.email, j.organisation_id,
                    'Org' as organisation_name, (hash(j.user_id) % 9)::integer as assigned,
                    (hash(j.user_id) % 5)::integer as complete, 1 as in_progress,
                    0 as not_started, (hash(j.user_id) % 3)::integer as overdue, 0 as exceptions,
                    timestamp '{AS_OF}' + interval 30 day as next_due_at, 0.5 as completion_rate
                from dim_job_assignment j join dim_user u using (user_id)
                where j.manager_user_id is not null;
            create schema learnops;
            create table learnops.report_delivery_log (report_id varchar,
                recipient_email varchar, period_start timestamp, status varchar,
                row_count bigint, sent_at timestamp, message_id varchar, attempts integer,
                last_error varchar);
        """)  # noqa: S608
        )


def rules(tmp: Path, formats: str, chart: bool) -> Path:
    folder = tmp / f"rules-{formats}-{chart}"
    folder.mkdir()
    text = RULES.replace("FORMATS", formats).replace(
        "CHART", "chart: {kind: bar, x: full_name, y: overdue, aggregate: sum}" if chart else ""
    )
    (folder / "reports.yaml").write_text(textwrap.dedent(text))
    return folder


def render_cost(warehouse: Path, rules_dir: Path, sample: int) -> float:
    """Milliseconds per report to render `sample` recipients (no sending)."""
    report = validate_rules(rules_dir).reports.reports[0]
    con = duckdb.connect()
    con.execute(f"attach ? as {WAREHOUSE} (read_only)", [str(warehouse)])
    scoped = scoped_report(con, report, report_sources()[report.source], AS_OF)
    parts = list(scoped.split().items())[:sample]
    from flows.notify.render import Sender

    sender, fresh = Sender("reports@example.com"), Freshness(AS_OF)
    started = time.perf_counter()
    for key, rows in parts:
        render_report(report, Recipient(key, key), rows, period_start=AS_OF, freshness=fresh,
                      sender=sender)  # fmt: skip
    return (time.perf_counter() - started) / len(parts) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--managers", type=int, default=5_000)
    parser.add_argument("--sample", type=int, default=300, help="recipients for the cost split")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-reports-") as name:
        tmp = Path(name)
        warehouse = tmp / "warehouse.duckdb"
        started = time.perf_counter()
        build(warehouse, args.users, args.managers)
        print(f"synthetic warehouse: {args.users:,} users, {args.managers:,} managers "
              f"({time.perf_counter() - started:.1f} s)")  # fmt: skip
        base = rules(tmp, "[html, csv]", chart=False)
        report = validate_rules(base).reports.reports[0]
        con = duckdb.connect()
        con.execute(f"attach ? as {WAREHOUSE} (read_only)", [str(warehouse)])
        started = time.perf_counter()
        scoped = scoped_report(con, report, report_sources()[report.source], AS_OF)
        query = time.perf_counter() - started
        started = time.perf_counter()
        split = scoped.split()
        split_s = time.perf_counter() - started
        print(f"scoped query (every recipient at once): {query:.2f} s, {scoped.rows.height:,} "
              f"rows for {len(split):,} recipients; split {split_s:.2f} s")  # fmt: skip
        con.close()
        handler = FaultyHandler()
        with running_server(handler) as port:
            smtp = SmtpSettings(host="127.0.0.1", port=port, security="none", connections=4)
            started = time.perf_counter()
            run = send_reports(warehouse_paths(warehouse), base, as_of=AS_OF, smtp=smtp)
            elapsed = time.perf_counter() - started
        sent = run.reports[0].sent
        print(f"HTML body + CSV, query + render + send over SMTP (4 connections): {sent:,} "
              f"reports in {elapsed:.1f} s = {sent / elapsed:.0f} reports/s "
              f"({len(handler.received):,} received by the sink)")  # fmt: skip
        html_csv = render_cost(warehouse, base, args.sample)
        xlsx = render_cost(warehouse, rules(tmp, "[html, csv, xlsx]", False), args.sample)
        chart = render_cost(warehouse, rules(tmp, "[html, csv]", True), args.sample)
        print(f"render per report: HTML + CSV {html_csv:.1f} ms; + XLSX {xlsx - html_csv:+.1f} ms; "
              f"+ chart {chart - html_csv:+.1f} ms (sample of {args.sample})")  # fmt: skip


if __name__ == "__main__":
    main()
