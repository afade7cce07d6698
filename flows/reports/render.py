"""One recipient's rows -> one report mail (a pure function: nothing is sent here).

The mail: an HTML body with inline CSS (summary line, the as-of of the data and a warning
when the last run failed, the chart as an inline PNG, the first `max_rows_in_body` rows),
a plain-text alternative, and the `csv` / `xlsx` attachments the report asks for, every row
of the recipient's scope. Instants are shown in the recipient's timezone: the body as
"3 Dec 2026" (or with the time when it is not midnight), CSV as ISO 8601 with the offset,
XLSX as real date-time cells (typed: numbers are numbers, booleans booleans).

HR data reaches the mail only through autoescaped HTML, encoded attachments and
header-safe addresses and subjects (flows/notify/render.py).
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
import polars as pl

from flows.notify.render import Sender, fold_subject, make_address
from flows.rules.reports import Report, scope_kind

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "notifications" / "templates" / "reports"
XLSX_TYPE = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")


@dataclass(frozen=True)
class Freshness:
    """How fresh the published data is: the as-of of the last succeeded run, and whether the
    newest run failed after it (then the report says its data is stale)."""

    data_as_of: datetime  # naive UTC
    failed_run_at: datetime | None = None


@dataclass(frozen=True)
class Recipient:
    """Who one mail goes to (the scope is already applied to its rows)."""

    key: str  # lower-cased address
    email: str
    name: str = ""
    timezone: str = "UTC"


@dataclass
class RenderedReport:
    """The mail and what it contains."""

    message_id: str
    to: str  # the envelope recipient
    payload: bytes
    row_count: int
    parts: list[str] = field(default_factory=list)  # html, text, csv, xlsx, chart


def zone(name: str | None, fallback: str = "UTC") -> ZoneInfo:
    """The IANA zone `name`, else `fallback` (an unknown HR timezone value is ignored)."""
    for candidate in (name, fallback, "UTC"):
        try:
            if candidate:
                return ZoneInfo(candidate)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return ZoneInfo("UTC")


def message_id(report_id: str, recipient: str, period_start: datetime) -> str:
    """Stable id of one (report, recipient, period): a resend after a crash has the same one."""
    key = f"{report_id}|{recipient}|{period_start.isoformat()}"
    return "rpt-" + hashlib.sha256(key.encode()).hexdigest()[:32]


# --- values ---------------------------------------------------------------------------------


def _local(value: datetime, tz: ZoneInfo) -> datetime:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(tz)


def display(value: Any, tz: ZoneInfo, column: str = "") -> str:
    """A value as the body shows it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        local = _local(value, tz)
        text = f"{local.day} {local:%b %Y}"
        return text if (local.hour, local.minute) == (0, 0) else f"{text}, {local:%H:%M}"
    if isinstance(value, date):
        return f"{value.day} {value:%b %Y}"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if column.endswith(("rate", "share")):
            return f"{value:.0%}"
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _localised(frame: pl.DataFrame, tz: ZoneInfo) -> pl.DataFrame:
    """Naive-UTC timestamp columns as instants in `tz` (for CSV)."""
    return frame.with_columns(
        pl.col(name).dt.replace_time_zone("UTC").dt.convert_time_zone(str(tz))
        for name, dtype in frame.schema.items()
        if isinstance(dtype, pl.Datetime)
    )


def to_csv(frame: pl.DataFrame, labels: dict[str, str], tz: ZoneInfo) -> bytes:
    """Every row as UTF-8 CSV (with BOM, so spreadsheet programs detect the encoding)."""
    shown = _localised(frame, tz).rename({c: labels.get(c, c) for c in frame.columns})
    return b"\xef\xbb\xbf" + shown.write_csv(datetime_format="%Y-%m-%dT%H:%M:%S%:z").encode()


def to_xlsx(frame: pl.DataFrame, labels: dict[str, str], tz: ZoneInfo, title: str) -> bytes:
    """Every row as an XLSX sheet with typed cells: numbers, booleans, local date-times."""
    import xlsxwriter  # only reports with an xlsx attachment pay for the import

    buffer = io.BytesIO()
    # HR text stays text: never a formula (CSV/XLSX injection), number or link
    options = {"in_memory": True, "strings_to_numbers": False, "strings_to_formulas": False,
               "strings_to_urls": False}  # fmt: skip
    book = xlsxwriter.Workbook(buffer, options)
    sheet = book.add_worksheet(title[:31] or "Report")
    bold = book.add_format({"bold": True, "bg_color": "#F3F4F6", "bottom": 1})
    when = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    day = book.add_format({"num_format": "yyyy-mm-dd"})
    share = book.add_format({"num_format": "0%"})
    for col, name in enumerate(frame.columns):
        heading = labels.get(name, name)
        sheet.write_string(0, col, heading, bold)
        dtype = frame.schema[name]
        values = frame.get_column(name).to_list()
        for row, value in enumerate(values, start=1):
            if value is None:
                continue
            if isinstance(dtype, pl.Datetime):
                sheet.write_datetime(row, col, _local(value, tz).replace(tzinfo=None), when)
            elif dtype == pl.Date:
                sheet.write_datetime(row, col, datetime.combine(value, datetime.min.time()), day)
            elif dtype == pl.Boolean:
                sheet.write_boolean(row, col, value)
            elif dtype.is_numeric():
                fmt = share if name.endswith(("rate", "share")) else None
                if not (isinstance(value, float) and math.isnan(value)):
                    sheet.write_number(row, col, value, fmt)
            else:
                sheet.write_string(row, col, str(value))
        width = 19 if isinstance(dtype, pl.Datetime) else max(10, min(40, len(heading) + 2))
        sheet.set_column(col, col, width)
    sheet.freeze_panes(1, 0)
    if frame.width:
        sheet.autofilter(0, 0, max(frame.height, 1), frame.width - 1)
    book.close()
    return buffer.getvalue()


# --- chart ----------------------------------------------------------------------------------


def chart_data(frame: pl.DataFrame, report: Report) -> pl.DataFrame:
    """The chart's points from the recipient's (scoped) rows: y aggregated by x."""
    chart = report.chart
    assert chart is not None
    agg = {
        "count": pl.len(),
        "sum": pl.col(chart.y or "").sum(),
        "avg": pl.col(chart.y or "").mean(),
        "min": pl.col(chart.y or "").min(),
        "max": pl.col(chart.y or "").max(),
    }[chart.aggregate]
    return (
        frame.filter(pl.col(chart.x).is_not_null())
        .group_by(chart.x)
        .agg(agg.alias("value"))
        .sort(chart.x)
        .head(40)  # a chart of more bars is unreadable; the table has every row
    )


def chart_png(points: pl.DataFrame, report: Report, tz: ZoneInfo) -> bytes:
    """The chart as a PNG (matplotlib, Agg backend: no display needed).

    One figure is reused for every chart, with fixed margins instead of `tight_layout`
    (which draws the figure twice): a chart costs about a fifth of a fresh, tight one.
    """
    chart = report.chart
    assert chart is not None
    figure, axes = _figure()
    axes.clear()
    labels = [display(v, tz)[:24] for v in points.get_column(chart.x).to_list()]
    values = [0 if v is None else v for v in points.get_column("value").to_list()]
    if chart.kind == "bar":
        axes.bar(range(len(values)), values, color="#2563eb", width=0.7)
    else:
        axes.plot(range(len(values)), values, color="#2563eb", marker="o")
    crowded = len(labels) > 4
    axes.set_xticks(range(len(values)), labels, rotation=30 if crowded else 0,
                    ha="right" if crowded else "center", fontsize=8)  # fmt: skip
    axes.tick_params(axis="y", labelsize=8)
    if chart.aggregate == "count":  # counts are whole: no 0.25 ticks
        from matplotlib.ticker import MaxNLocator

        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    y_label = "rows" if chart.aggregate == "count" else f"{chart.aggregate} of {chart.y}"
    axes.set_ylabel(y_label, fontsize=9)
    axes.set_title(chart.title or report.name, fontsize=11, loc="left")
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    figure.subplots_adjust(left=0.1, right=0.98, top=0.88, bottom=0.34 if crowded else 0.14)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


@functools.cache
def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display on a worker; must precede pyplot's import
    import matplotlib.pyplot as plt

    return plt


@functools.cache
def _figure() -> tuple[Any, Any]:
    # one figure per process, redrawn per chart (charts are rendered one at a time)
    return _pyplot().subplots(figsize=(6.0, 2.8))


# --- the mail -------------------------------------------------------------------------------


@functools.cache
def _environment(templates_dir: Path) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        undefined=jinja2.StrictUndefined,
        auto_reload=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _summary(report: Report, rows: pl.DataFrame) -> str:
    if rows.height == 0:
        return "Nothing to report: no row in your scope matches this report."
    noun = "row" if rows.height == 1 else "rows"
    return f"{rows.height:,} {noun} in your scope."


def _freshness(freshness: Freshness, tz: ZoneInfo) -> tuple[str, str | None]:
    local = _local(freshness.data_as_of, tz)
    line = f"Data as of {local.day} {local:%b %Y, %H:%M %Z} (the last successful pipeline run)."
    stale = None
    if freshness.failed_run_at is not None:
        stale = (
            f"The latest pipeline run ({display(freshness.failed_run_at, tz)}) failed: this "
            f"report shows the data as of the last successful run and may be stale."
        )
    return line, stale


def render_report(
    report: Report,
    recipient: Recipient,
    rows: pl.DataFrame,
    *,
    period_start: datetime,
    freshness: Freshness,
    sender: Sender,
    templates_dir: Path = TEMPLATES_DIR,
    now: datetime | None = None,
) -> RenderedReport:
    """The mail of `report` for one recipient and period, with `rows` (already scoped)."""
    tz = zone(recipient.timezone)
    labels = report.labels
    shown = [c for c in report.column_names if c in rows.columns]
    table_rows = rows.select(shown)
    freshness_line, stale = _freshness(freshness, tz)
    period_label = f"{report.name} · {display(period_start, tz)}"
    parts = ["html", "text"]
    attachments: list[tuple[bytes, tuple[str, str], str]] = []
    stem = f"{report.id}-{_local(period_start, tz):%Y-%m-%d}"
    if "csv" in report.formats:
        attachments.append((to_csv(table_rows, labels, tz), ("text", "csv"), f"{stem}.csv"))
        parts.append("csv")
    if "xlsx" in report.formats:
        attachments.append((to_xlsx(table_rows, labels, tz, report.name), XLSX_TYPE,
                            f"{stem}.xlsx"))  # fmt: skip
        parts.append("xlsx")
    chart = None
    if report.chart is not None and rows.height:
        chart = chart_png(chart_data(rows, report), report, tz)
        parts.append("chart")
    body_rows = table_rows.head(report.max_rows_in_body) if "html" in report.formats else None
    more = ""
    if body_rows is not None and rows.height > body_rows.height:
        where = " and ".join(f.upper() for f in report.formats if f != "html") or None
        more = (f"Showing the first {body_rows.height:,} of {rows.height:,} rows"
                + (f"; every row is in the {where} attachment." if where else "."))  # fmt: skip
    variables = {
        "title": report.name,
        "description": report.description or "",
        "period_label": period_label,
        "summary": _summary(report, rows),
        "freshness": freshness_line,
        "stale": stale,
        "chart_cid": "chart" if chart else None,
        "chart_title": report.chart.title if report.chart and report.chart.title else report.name,
        "table": (
            _table(body_rows, shown, labels, tz)
            if body_rows is not None and rows.height
            else None
        ),
        "more": more,
        "attachments": ", ".join(name for _, _, name in attachments),
        "report_id": report.id,
        "scope": scope_kind(report.scope).replace("_", " "),
    }  # fmt: skip
    env = _environment(Path(templates_dir))
    html = env.get_template("report.html").render(variables)
    text = env.get_template("report.txt").render(variables)
    mid = message_id(report.id, recipient.key, period_start)
    subject = f"{report.subject or report.name} · {display(period_start, tz)}"
    message = _message(sender, recipient, subject, mid, now or datetime.now(UTC))
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    if chart is not None:
        html_part = message.get_payload()[1]
        html_part.add_related(chart, "image", "png", cid="<chart>", filename="chart.png")
    for data, (maintype, subtype), name in attachments:
        if maintype == "text":  # declared UTF-8, so clients decode names correctly
            message.add_attachment(data.decode("utf-8"), subtype=subtype, filename=name)
        else:
            message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return RenderedReport(mid, recipient.email, message.as_bytes(), rows.height, parts)


def _message(
    sender: Sender, recipient: Recipient, subject: str, mid: str, now: datetime
) -> EmailMessage:
    message = EmailMessage(policy=SMTP_POLICY)
    message["Subject"] = fold_subject(subject)
    message["From"] = make_address(sender.name, sender.address)
    message["To"] = make_address(recipient.name, recipient.email)
    if sender.reply_to:
        message["Reply-To"] = make_address("", sender.reply_to)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = f"<{mid}@learnops>"
    message["Auto-Submitted"] = "auto-generated"
    return message


def _table(
    rows: pl.DataFrame, columns: Sequence[str], labels: dict[str, str], tz: ZoneInfo
) -> dict[str, Any]:
    numeric = [rows.schema[c].is_numeric() for c in columns]
    cells = [
        [display(value, tz, column) for value, column in zip(row, columns, strict=True)]
        for row in rows.iter_rows()
    ]
    headings = [labels.get(c, c) for c in columns]
    return {
        "headings": headings,
        "align": ["right" if n else "left" for n in numeric],
        "rows": cells,
        "text_rows": [" | ".join(headings), *(" | ".join(r) for r in cells)],
    }
