"""Benchmark: mail delivery to a loopback SMTP sink in another process (SPEC §10: ≥ 300/s).

Builds a published warehouse whose `notification_outbox` holds N pending messages rendered
with the real `program_due` templates, then runs `deliver_pending` (render, SMTP over
reused connections, batched ledger commits) against an aiosmtpd sink running in a separate
process, once per (connections, commit batch) setting, each from an empty ledger:

    .venv/bin/python benchmarks/bench_mail.py                      # 10,000 messages
    .venv/bin/python benchmarks/bench_mail.py --messages 2000 --connections 1 4

The sink only counts messages; its count is checked against what the sender reports.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from flows.notify.deliver import OUTBOX_COLUMNS, deliver_pending  # noqa: E402
from flows.notify.ledger import ledger_path  # noqa: E402
from flows.notify.render import Sender  # noqa: E402
from flows.notify.settings import SmtpSettings  # noqa: E402
from flows.warehouse import warehouse_paths  # noqa: E402

COLUMN_TYPES = {
    "anchor_at": "timestamptz", "trigger_at": "timestamptz", "not_before": "timestamptz",
    "created_at": "timestamptz", "sent_at": "timestamptz", "cycle": "integer",
    "attempts": "integer",
}  # fmt: skip


def run_sink(port: int, ready: multiprocessing.Event, stop: multiprocessing.Event, count) -> None:
    """The SMTP sink (child process): accept and count every message until told to stop."""
    from aiosmtpd.controller import Controller

    class Counting:
        async def handle_DATA(self, server, session, envelope) -> str:
            with count.get_lock():
                count.value += 1
            return "250 OK"

    controller = Controller(Counting(), hostname="127.0.0.1", port=port, server_hostname="sink")
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()


def build_outbox(published: Path, messages: int) -> None:
    """A published warehouse with `messages` pending program_due rows."""
    start = datetime(2026, 6, 1, 7, tzinfo=UTC)
    columns = ", ".join(f"{c} {COLUMN_TYPES.get(c, 'varchar')}" for c in OUTBOX_COLUMNS)
    with duckdb.connect(str(published)) as con:
        con.execute(f"create table main.notification_outbox ({columns})")
        rows = []
        for n in range(messages):
            context = {
                "learner": {"user_id": f"U{n}", "first_name": f"Learner{n}",
                            "last_name": "Example", "full_name": f"Learner{n} Example"},
                "object": {"kind": "program", "id": "fire", "name": "Fire safety"},
                "due_at": "2026-06-30T16:00:00+00:00", "manager_names": ["Grace Hopper"],
            }  # fmt: skip
            rows.append({
                "message_id": f"{n:032x}", "dedupe_key": f"program_due|U{n}|fire|2026-06-30|0",
                "notification_id": "program_due", "event_type": "program_due", "user_id": f"U{n}",
                "object_kind": "program", "object_id": "fire", "anchor_at": start, "cycle": 0,
                "trigger_at": start + timedelta(seconds=n), "recipient_role": "learner",
                "recipient_user_id": f"U{n}", "recipient_email": f"learner{n}@example.com",
                "recipient_name": f"Learner{n} Example", "recipient_timezone": "Europe/London",
                "recipient_lang": None, "template": "program_due", "context": json.dumps(context),
                "status": "pending", "not_before": None, "digest_message_id": None, "attempts": 0,
                "created_at": start, "created_run_id": "bench", "sent_at": None,
                "last_error": None,
            })  # fmt: skip
        placeholders = ", ".join("?" for _ in OUTBOX_COLUMNS)
        con.executemany(
            f"insert into main.notification_outbox values ({placeholders})",  # noqa: S608
            [[row[c] for c in OUTBOX_COLUMNS] for row in rows],
        )
        con.execute("checkpoint")


def measure(published: Path, port: int, connections: int, commit_every: int) -> tuple:
    """One delivery run from an empty ledger; (report, seconds)."""
    paths = warehouse_paths(published)
    ledger_path(paths).unlink(missing_ok=True)
    settings = SmtpSettings(host="127.0.0.1", port=port, security="none", connections=connections)
    started = time.perf_counter()
    report = deliver_pending(
        paths,
        settings,
        Sender("learning@example.org", "Learning Team"),
        templates_dir=REPO / "notifications" / "templates",
        commit_every=commit_every,
    )
    return report, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--commit-every", type=int, nargs="+", default=[50])
    args = parser.parse_args()

    from tests.notify.smtp_server import free_port  # a port nobody listens on

    workdir = Path(tempfile.mkdtemp(prefix="bench_mail_"))
    published = workdir / "warehouse.duckdb"
    build_outbox(published, args.messages)
    context = multiprocessing.get_context("spawn")
    ready, stop, count = context.Event(), context.Event(), context.Value("i", 0)
    port = free_port()
    sink = context.Process(target=run_sink, args=(port, ready, stop, count), daemon=True)
    sink.start()
    ready.wait(30)
    print(f"{args.messages:,} messages, sink in process {sink.pid} on 127.0.0.1:{port}")
    print("connections | commit batch | sent | seconds | messages/s")
    try:
        for commit_every in args.commit_every:
            for connections in args.connections:
                before = count.value
                report, seconds = measure(published, port, connections, commit_every)
                received = count.value - before
                assert received == report.sent == args.messages, (received, report)
                print(
                    f"{connections:>11} | {commit_every:>12} | {report.sent:>5} | "
                    f"{seconds:>7.2f} | {report.sent / seconds:>10.0f}"
                )
    finally:
        stop.set()
        sink.join(10)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
