"""Sending reports end to end on a small published warehouse: delivery over aiosmtpd,
report_delivery, each period once, empty-report policy, stale data, typed XLSX, and the
HTML as a browser renders it."""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import duckdb
import pytest

from flows.reports.send import send_due_reports, send_reports
from tests.notify.conftest import smtp_settings
from tests.notify.smtp_server import FaultyHandler, running_server
from tests.reports.conftest import AS_OF, THREE_LEVEL, build_warehouse, email, write_rules

RULES = """
settings:
  sender: {address: reports@example.com, name: Reports}
reports:
  - id: overdue
    name: Overdue learning
    source: rpt_required_learning
    columns: [full_name, program_name, status, due_at, is_overdue, days_until_due]
    filters:
      - {column: is_overdue, operator: is_true}
    sort: [full_name]
    chart: {kind: bar, x: program_name, title: Overdue by program}
    schedule: {every: week, day: monday, at: "05:00", timezone: UTC}
    formats: [html, csv, xlsx]
    scope: team_direct
    recipients: [managers]
    when_empty: WHEN_EMPTY
"""


def _rules(tmp_path: Path, when_empty: str = "skip") -> Path:
    return write_rules(tmp_path / "rules", RULES.replace("WHEN_EMPTY", when_empty))


def _deliveries(paths) -> list[tuple]:
    with duckdb.connect(str(paths.published), read_only=True) as con:
        return con.execute(
            "select recipient_email, status, row_count from learnops.report_delivery_log "
            "order by recipient_email"
        ).fetchall()


def test_delivery_over_smtp_once_per_period_and_recorded(three_level, tmp_path):
    handler = FaultyHandler()
    rules = _rules(tmp_path)
    with running_server(handler) as port:
        run = send_reports(three_level, rules, as_of=AS_OF, smtp=smtp_settings(port))
        assert [(r.sent, r.failed, r.pending) for r in run.reports] == [(4, 0, 0)]
        # the same period again: nothing new, however often
        again = send_reports(three_level, rules, as_of=AS_OF + timedelta(hours=5),
                             smtp=smtp_settings(port))  # fmt: skip
        assert again.reports[0].already_done == 4 and again.reports[0].sent == 0
    assert sorted(r.rcpt_tos[0] for r in handler.received) == sorted(
        email(m) for m in ("CEO", "H1", "H2", "M1")
    )
    ids = handler.message_ids()
    assert len(set(ids)) == 4 and all(i.startswith("<rpt-") for i in ids)
    message = next(r.message for r in handler.received if r.rcpt_tos == [email("M1")])
    kinds = [part.get_content_type() for part in message.walk()]
    assert {"text/plain", "text/html", "image/png", "text/csv"} <= set(kinds)
    html = next(p for p in message.walk() if p.get_content_type() == "text/html")
    text = html.get_payload(decode=True).decode()
    assert "L1 Person" in text and "L2 Person" in text and "H1 Person" not in text
    assert "Data as of" in text


def test_report_delivery_is_republished_and_the_next_week_is_a_new_period(three_level, tmp_path):
    rules = _rules(tmp_path)
    run = send_due_reports(three_level, rules, as_of=AS_OF)  # no SMTP host: .eml files
    assert run.republished and run.reports[0].sent == 4
    assert [row[1] for row in _deliveries(three_level)] == ["sent"] * 4
    outbox = three_level.state_dir / "outbox"
    assert len(list(outbox.glob("rpt-*.eml"))) == 4
    later = send_due_reports(three_level, rules, as_of=AS_OF + timedelta(days=7))
    assert later.reports[0].sent == 4 and len(_deliveries(three_level)) == 8


def test_empty_report_is_skipped_or_sent_with_a_nothing_to_report_line(tmp_path):
    rows = [("L1", "Induction", "in_progress", datetime(2026, 10, 1), True, -1)]
    paths = build_warehouse(tmp_path / "warehouse.duckdb", THREE_LEVEL, rows)
    run = send_due_reports(paths, _rules(tmp_path / "a", "skip"), as_of=AS_OF)
    assert (run.reports[0].sent, run.reports[0].skipped_empty) == (1, 3)
    statuses = {r[0]: r[1] for r in _deliveries(paths)}
    assert statuses[email("M1")] == "sent" and statuses[email("CEO")] == "skipped_empty"
    other = build_warehouse(tmp_path / "b" / "warehouse.duckdb", THREE_LEVEL, rows)
    sent = send_reports(other, _rules(tmp_path / "b", "send"), as_of=AS_OF,
                        dry_run_dir=tmp_path / "preview")  # fmt: skip
    assert sent.reports[0].sent == 4
    bodies = [path.read_bytes() for path in sent.reports[0].written]
    assert sum(b"Nothing to report" in body for body in bodies) == 3


def test_stale_data_is_said_when_the_last_run_failed(tmp_path):
    rows = [("L1", "Induction", "in_progress", datetime(2026, 10, 1), True, -1)]
    paths = build_warehouse(tmp_path / "warehouse.duckdb", THREE_LEVEL, rows, failed_run=True)
    run = send_reports(paths, _rules(tmp_path), as_of=AS_OF, dry_run_dir=tmp_path / "out")
    body = run.reports[0].written[0].read_bytes()
    assert b"may be stale" in message_from_bytes(body).as_bytes() or b"stale" in _html(body)


def _html(payload: bytes) -> bytes:
    message = message_from_bytes(payload, policy=policy.default)
    part = next(p for p in message.walk() if p.get_content_type() == "text/html")
    return part.get_content().encode()


def _attachment(payload: bytes, suffix: str) -> bytes:
    message = message_from_bytes(payload, policy=policy.default)
    return next(
        p.get_content() for p in message.walk() if (p.get_filename() or "").endswith(suffix)
    )


def test_xlsx_opens_with_typed_columns(three_level, tmp_path):
    run = send_reports(three_level, _rules(tmp_path), as_of=AS_OF, dry_run_dir=tmp_path / "out")
    payload = run.reports[0].written[0].read_bytes()
    xlsx = tmp_path / "report.xlsx"
    xlsx.write_bytes(_attachment(payload, ".xlsx"))
    with zipfile.ZipFile(xlsx) as book:
        sheet = book.read("xl/worksheets/sheet1.xml").decode()
        styles = book.read("xl/styles.xml").decode()
    cells = dict(re.findall(r'<c r="([A-Z]+2)"([^>]*)>', sheet))
    # columns: A full_name (shared string), B program, C status, D due_at (a date: a number
    # with a date format), E is_overdue (boolean), F days_until_due (number)
    assert 't="s"' in cells["A2"]
    assert 't="b"' in cells["E2"]
    assert "t=" not in cells["F2"] and "t=" not in cells["D2"]
    assert "yyyy-mm-dd hh:mm" in styles
    csv = _attachment(payload, ".csv")
    text = csv.lstrip("\ufeff")
    assert text.splitlines()[0].startswith("Full name,Program name")
    assert "2026-10-01T01:00:00+01:00" in text  # the recipient's zone (Europe/London, BST)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_html_body_renders_in_headless_chromium(three_level, tmp_path):
    run = send_reports(three_level, _rules(tmp_path), as_of=AS_OF, dry_run_dir=tmp_path / "out")
    payload = max((p.read_bytes() for p in run.reports[0].written), key=len)
    message = message_from_bytes(payload, policy=policy.default)
    html = _html(payload).decode()
    png = next(p for p in message.walk() if p.get_content_type() == "image/png")
    (tmp_path / "chart.png").write_bytes(png.get_content())
    page = tmp_path / "report.html"
    page.write_text(html.replace("cid:chart", "chart.png"), encoding="utf-8")
    shot = tmp_path / "shot.png"
    subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
         "--window-size=900,1200", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--hide-scrollbars", page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    from PIL import Image  # matplotlib depends on Pillow

    image = Image.open(shot).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 50, "the screenshot is (nearly) one colour: the page rendered blank"
    blue = sum(n for n, (r, g, b) in colours if b > 180 and r < 90)  # the chart's bars
    assert blue > 500
    shutil.copy(shot, Path("/tmp/learnops-report-screenshot.png"))
