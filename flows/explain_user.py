"""The identity and mail parts of `learnops explain USER` (issue 7): jobs with managers, and
every message about or to the user with why it has its status.

Read from the published warehouse only, like the rest of explain (flows/explain.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from flows.warehouse import table_exists

#: how many messages the overview lists (newest first); --json carries the same
MAX_MESSAGES = 50


@dataclass
class JobLine:
    """One live job: where, which position, under whom."""

    job_id: str
    title: str | None
    organisation: str | None
    position: str | None
    manager: str | None  # "Name (user id, job id)"
    start_date: Any = None
    end_date: Any = None


@dataclass
class MessageLine:
    """One outbox row about or to the user."""

    message_id: str
    notification_id: str
    event_type: str
    object_id: str | None
    recipient: str  # "learner u7@example.com", "manager of U3: m1@example.com", ...
    status: str
    created_at: datetime | None
    why: str


def jobs_of(con: duckdb.DuckDBPyConnection, user_id: str) -> list[JobLine]:
    """The user's live jobs with organisation, position and manager names."""
    rows = con.execute(
        """
        select jobs.job_id, jobs.full_name, organisations.name, positions.name,
            case when jobs.manager_user_id is not null then
                trim(concat_ws(' ', managers.first_name, managers.last_name))
                || ' (' || jobs.manager_user_id || coalesce(', ' || jobs.manager_job_id, '') || ')'
            end,
            jobs.start_date, jobs.end_date
        from main.dim_job_assignment as jobs
        left join main.dim_organisation as organisations using (organisation_id)
        left join main.dim_position as positions using (position_id)
        left join main.dim_user as managers on managers.user_id = jobs.manager_user_id
        where jobs.user_id = ?
        order by jobs.job_id
        """,
        [user_id],
    ).fetchall()
    return [JobLine(*row) for row in rows]


def messages_of(con: duckdb.DuckDBPyConnection, user_id: str) -> list[MessageLine]:
    """Messages about the user (their own and their managers' copies) and to them, newest
    first, each with the reason for its status."""
    if not table_exists(con, "main", "notification_outbox"):
        return []
    cursor = con.execute(
        """
        select * from main.notification_outbox
        where user_id = ? or recipient_user_id = ?
        order by created_at desc, notification_id, message_id
        limit ?
        """,
        [user_id, user_id, MAX_MESSAGES],
    )
    names = [column[0] for column in cursor.description]
    return [_message_line(dict(zip(names, row, strict=True)), user_id) for row in cursor.fetchall()]


def mail_stoppers(user: dict[str, Any]) -> list[str]:
    """Why the user gets no mail of their own at all, if they do not."""
    reasons = []
    if user.get("status") != "active":
        reasons.append(f"{user.get('status')}: gets no mail, and managers get no copies about them")
    if user.get("email_stop"):
        reasons.append("emailstop is set: gets no mail (managers' copies still go)")
    if not (user.get("email") or "").strip():
        reasons.append("no email address: their messages are recorded no_address")
    return reasons


def _message_line(row: dict[str, Any], user_id: str) -> MessageLine:
    recipient = f"{row['recipient_role']} {row['recipient_email'] or '(no address)'}"
    if row["user_id"] != user_id:  # a copy to this user about someone else (a manager's)
        recipient += f" about {row['user_id']}"
    return MessageLine(
        message_id=row["message_id"],
        notification_id=row["notification_id"],
        event_type=row["event_type"],
        object_id=row["object_id"],
        recipient=recipient,
        status=row["status"],
        created_at=row["created_at"],
        why=_why(row),
    )


def _why(row: dict[str, Any]) -> str:
    """The status in words, with the values that decided it."""
    status = row["status"]
    if status == "sent":
        return f"sent {_iso(row['sent_at'])}"
    if status == "pending":
        return "waiting for the next send (`learnops notify`, or the sending deployment)"
    if status == "held":
        return (
            f"held by the mass-send guard in run {row['created_run_id']}: an admin releases it "
            f"with `learnops notify --release-run {row['created_run_id']}`"
        )
    if status == "deferred":
        return f"over the recipient's daily cap: goes from {_iso(row['not_before'])}"
    if status == "skipped_late":
        return (
            f"due {_iso(row['trigger_at'])} but first seen {_iso(row['created_at'])}, more than "
            "max_lateness later: not sent"
        )
    if status == "cancelled":
        return "its condition no longer held before it was sent (completed, date moved, left)"
    if status == "suppressed":
        return "go-live baseline (first run or --baseline): recorded, never mailed"
    if status == "no_address":
        return "the recipient has no email address"
    if status == "digested":
        return f"folded into the manager's digest {row['digest_message_id']}"
    return f"failed after {row['attempts']} attempts: {row['last_error']}"


def _iso(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M %Z").strip() if value is not None else "?"


def render_identity(jobs: list[JobLine], stoppers: list[str]) -> list[str]:
    """Lines for the jobs and the mail stoppers."""
    lines = ["jobs:" if jobs else "no live job"]
    for job in jobs:
        where = " / ".join(part for part in (job.organisation, job.position) if part)
        manager = f", manager {job.manager}" if job.manager else ", no manager"
        lines.append(f"  {job.job_id} {job.title or ''} — {where or 'no organisation'}{manager}")
    lines += [f"mail: {reason}" for reason in stoppers]
    return lines


def render_messages(messages: list[MessageLine]) -> list[str]:
    """Lines for the messages, newest first."""
    if not messages:
        return ["no messages about or to this user"]
    lines = [f"messages (newest first, at most {MAX_MESSAGES}):"]
    for m in messages:
        about = f" {m.object_id}" if m.object_id and m.object_id != "none" else ""
        lines.append(f"  {m.notification_id}{about} → {m.recipient}: {m.status} — {m.why}")
    return lines
