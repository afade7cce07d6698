"""Notification events and the outbox end to end: feeds and YAML through `run_pipeline`.

One organisation, one warehouse, a series of runs (site timezone UTC). Program p1 (course A)
is due on 31 March 2026 (the end of that day); p2 (course B) on 1 March 2026.

    R1 1 Mar     first run: the go-live baseline, every event suppressed, nothing mailed
    R2 10 Mar    U7 joins P1 and the audience; P2's overdue reminder (2 Mar) is 8 days late
    R2 again     the same inputs: nothing new, nothing sent
    R3 25 Mar    program_due (7 days before) for P1's incomplete learners; U1 completed on
                 20 Mar; --no-send, so the due reminders stay pending
    R4 27 Mar    U2 completed on 26 Mar: U2's unsent reminder is cancelled; the due offset
                 is now 10 days: what was made for the same anchor is not made again
    R5 10 Apr    P1's due date moves to 30 April: no overdue reminder for the old date
    R6 25 Apr    a new anchor: the due reminders are made again

People: M1 manages U1-U7 (U3 has two jobs under M1 and one under M2), U4 is suspended,
U5 has no email address, U6 has emailstop.
"""

from __future__ import annotations

import datetime as dt
import email
from dataclasses import dataclass
from email import policy
from pathlib import Path
from typing import Any

import duckdb
import pytest

from flows.pipeline import RunRequest, RunResult, parse_as_of, run_pipeline

HR_IMPORT_YAML = "defaults:\n  max_removed_fraction: 0.9\n"

ORG_CSV = "idnumber,fullname,parentidnumber\nOA,Head Office,\n"

USER_CSV = """\
idnumber,username,firstname,lastname,email,suspended,emailstop
M1,m1,Maria,Manager,m1@example.com,0,0
M2,m2,Mike,Second,m2@example.com,0,0
U1,u1,Una,One,u1@example.com,0,0
U2,u2,Udo,Two,u2@example.com,0,0
U3,u3,Ute,Three,u3@example.com,0,0
U4,u4,Ugo,Four,u4@example.com,1,0
U5,u5,Uma,Five,,0,0
U6,u6,Ulf,Six,u6@example.com,0,1
U7,u7,Uri,Seven,u7@example.com,0,0
"""

JOB_CSV = """\
idnumber,useridnumber,fullname,orgidnumber,manageridnumber,managerjobassignmentidnumber
J1,M1,Head,OA,,
J1,M2,Deputy,OA,,
J1,U1,Clerk,OA,M1,J1
J1,U2,Clerk,OA,M1,J1
J1,U3,Clerk,OA,M1,J1
J2,U3,Porter,OA,M1,J1
J3,U3,Guard,OA,M2,J1
J1,U4,Clerk,OA,M1,J1
J1,U5,Clerk,OA,M1,J1
J1,U6,Clerk,OA,M1,J1
J1,U7,Clerk,OA,M1,J1
"""

COURSE_CSV = "idnumber,fullname\nA,Course A\nB,Course B\n"

COMPLETIONS = {
    "U1": "U1,A,2026-03-20T10:00:00Z\n",
    "U2": "U2,A,2026-03-26T10:00:00Z\n",
}

TEMPLATE_NAMES = ("assigned", "due", "overdue", "completed", "joined", "manager_digest")


@dataclass(frozen=True)
class Run:
    name: str
    as_of: str
    learners: tuple[str, ...] = ("U1", "U2", "U3", "U4", "U5", "U6")
    completions: tuple[str, ...] = ()
    due: str = "2026-03-31"
    due_offset_days: int = 7
    send: bool = True


RUNS = (
    Run("R1", "2026-03-01T06:00:00Z"),
    Run("R2", "2026-03-10T06:00:00Z", learners=("U1", "U2", "U3", "U4", "U5", "U6", "U7")),
    Run("R2 again", "2026-03-10T06:00:00Z", learners=("U1", "U2", "U3", "U4", "U5", "U6", "U7")),
    Run(
        "R3",
        "2026-03-25T06:00:00Z",
        learners=("U1", "U2", "U3", "U4", "U5", "U6", "U7"),
        completions=("U1",),
        send=False,
    ),
    Run(
        "R4",
        "2026-03-27T06:00:00Z",
        learners=("U1", "U2", "U3", "U4", "U5", "U6", "U7"),
        completions=("U1", "U2"),
        due_offset_days=10,
    ),
    Run(
        "R5",
        "2026-04-10T06:00:00Z",
        learners=("U1", "U2", "U3", "U4", "U5", "U6", "U7"),
        completions=("U1", "U2"),
        due="2026-04-30",
    ),
    Run(
        "R6",
        "2026-04-25T06:00:00Z",
        learners=("U1", "U2", "U3", "U4", "U5", "U6", "U7"),
        completions=("U1", "U2"),
        due="2026-04-30",
    ),
)


def audiences_yaml(run: Run) -> str:
    members = ", ".join(u for u in run.learners if u in ("U1", "U2", "U7"))
    return f"""\
audiences:
  - id: newcomers
    name: Newcomers
    kind: static
    members: [{members}]
"""


def programs_yaml(run: Run) -> str:
    learners = ", ".join(run.learners)
    return f"""\
programs:
  - id: p1
    name: Safety <basics> & more
    content:
      - {{kind: all, courses: [A]}}
    assignments:
      - users: [{learners}]
        due: {{date: {run.due}}}
  - id: p2
    name: Fire drill
    content:
      - {{kind: all, courses: [B]}}
    assignments:
      - users: [U3]
        due: {{date: 2026-03-01}}
"""


def notifications_yaml(run: Run, *, extra_settings: str = "") -> str:
    return f"""\
settings:
  sender: {{address: learning@example.com, name: Learning team}}
  alert_addresses: [data-team@example.com]
{extra_settings}\
notifications:
  - id: assigned
    trigger: program_assigned
    scope: all
    recipients: [learner, managers]
    template: assigned
  - id: due
    trigger: program_due
    offset: {{days: {run.due_offset_days}}}
    scope: {{programs: [p1]}}
    recipients: [learner]
    template: due
  - id: overdue
    trigger: program_overdue
    offset: {{days: 1}}
    scope: all
    recipients: [learner, managers]
    template: overdue
  - id: completed
    trigger: program_completed
    scope: all
    recipients: [learner]
    template: completed
  - id: joined
    trigger: audience_joined
    scope: {{audiences: [newcomers]}}
    recipients: [learner]
    template: joined
"""


def write_templates(directory: Path) -> Path:
    """Small real templates: the subject names the object, the body the learner."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in TEMPLATE_NAMES:
        (directory / f"{name}.subject.txt").write_text(f"{name}: {{{{ object.name }}}}\n")
        (directory / f"{name}.html").write_text(
            f"<p>{name} for {{{{ learner.full_name }}}}: {{{{ object.name }}}}</p>\n"
        )
        (directory / f"{name}.txt").write_text(
            f"{name} for {{{{ learner.full_name }}}}: {{{{ object.name }}}}\n"
        )
    for part in ("subject.txt", "html", "txt"):
        (directory / f"run_alert.{part}").write_text("alert\n")
    return directory


def _write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def write_feeds(directory: Path, completions: str) -> Path:
    """The organisation's feeds with these course_completion.csv rows."""
    return _write(
        directory,
        {
            "org.csv": ORG_CSV,
            "user.csv": USER_CSV,
            "jobassignment.csv": JOB_CSV,
            "course.csv": COURSE_CSV,
            "course_completion.csv": "useridnumber,courseidnumber,timecompleted\n" + completions,
        },
    )


def run_once(
    base: Path, warehouse: Path, run: Run, index: int, *, extra_settings: str = "", **request: Any
) -> RunResult:
    completions = "".join(COMPLETIONS[u] for u in run.completions)
    feeds = write_feeds(base / f"feeds{index}", completions)
    rules = _write(
        base / f"rules{index}",
        {
            "hr_import.yaml": HR_IMPORT_YAML,
            "audiences.yaml": audiences_yaml(run),
            "programs.yaml": programs_yaml(run),
            "notifications.yaml": notifications_yaml(run, extra_settings=extra_settings),
        },
    )
    result = run_pipeline(
        RunRequest(
            feeds=feeds,
            rules=rules,
            warehouse=warehouse,
            as_of=parse_as_of(run.as_of, "UTC"),
            templates_dir=base / "templates",
            **{"send": run.send, **request},
        )
    )
    assert result.status == "succeeded", f"{run.name}: {result.message}"
    return result


def outbox(warehouse: Path) -> list[dict[str, Any]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        cursor = con.execute("select * from notification_outbox order by message_id")
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def key(row: dict[str, Any]) -> tuple[str, str, str, str]:
    """(notification, learner, object, recipient role:user or address)."""
    recipient = row["recipient_user_id"] or row["recipient_email"]
    return (row["notification_id"], row["user_id"], row["object_id"], recipient)


@dataclass
class Observed:
    results: dict[str, RunResult]
    outboxes: dict[str, list[dict[str, Any]]]
    eml_files: dict[str, set[str]]
    warehouse: Path

    def created_by(self, run: str) -> dict[tuple[str, ...], dict[str, Any]]:
        run_id = self.results[run].run_id
        return {key(r): r for r in self.outboxes[run] if r["created_run_id"] == run_id}

    def status_after(self, run: str) -> dict[tuple[str, ...], str]:
        return {key(r): r["status"] for r in self.outboxes[run]}


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Observed:
    base = tmp_path_factory.mktemp("notifications_e2e")
    write_templates(base / "templates")
    warehouse = base / "warehouse.duckdb"
    eml_dir = base / "warehouse.duckdb.learnops" / "outbox"
    seen = Observed({}, {}, {}, warehouse)
    for index, run in enumerate(RUNS):
        seen.results[run.name] = run_once(base, warehouse, run, index)
        seen.outboxes[run.name] = outbox(warehouse)
        seen.eml_files[run.name] = {p.name for p in eml_dir.glob("*.eml")}
    return seen


# --------------------------------------------------------------------------- go-live


def test_the_first_run_records_every_event_suppressed_and_mails_nobody(
    observed: Observed,
) -> None:
    created = observed.created_by("R1")
    assert created, "the baseline must record what it saw"
    assert {row["status"] for row in created.values()} == {"suppressed"}
    assert observed.eml_files["R1"] == set()
    # the baseline saw the assignments and the joins
    assert ("assigned", "U1", "p1", "U1") in created
    assert ("joined", "U2", "newcomers", "U2") in created


def test_suspended_learners_get_nothing_and_their_managers_no_copy(observed: Observed) -> None:
    everyone = {k for run in observed.outboxes.values() for k in map(key, run)}
    assert not [k for k in everyone if k[1] == "U4"]


def test_emailstop_learners_get_nothing_but_their_managers_do(observed: Observed) -> None:
    created = observed.created_by("R1")
    assert ("assigned", "U6", "p1", "U6") not in created
    assert ("assigned", "U6", "p1", "M1") in created


def test_managers_of_several_jobs_get_one_copy(observed: Observed) -> None:
    copies = [k for k in observed.created_by("R1") if k[:3] == ("assigned", "U3", "p1")]
    assert sorted(k[3] for k in copies) == ["M1", "M2", "U3"]


# --------------------------------------------------------------------------- R2


def test_a_new_assignment_mails_the_learner_and_the_manager_once(observed: Observed) -> None:
    created = observed.created_by("R2")
    assert created[("assigned", "U7", "p1", "U7")]["status"] == "sent"
    assert created[("assigned", "U7", "p1", "M1")]["status"] == "sent"
    assert created[("joined", "U7", "newcomers", "U7")]["status"] == "sent"
    ids = {r["message_id"] for r in created.values() if r["status"] == "sent"}
    assert {f"{i}.eml" for i in ids} == observed.eml_files["R2"]


def test_the_eml_files_are_real_messages_with_escaped_html(observed: Observed) -> None:
    created = observed.created_by("R2")
    row = created[("assigned", "U7", "p1", "U7")]
    path = observed.warehouse.with_name("warehouse.duckdb.learnops") / "outbox"
    message = email.message_from_bytes(
        (path / f"{row['message_id']}.eml").read_bytes(), policy=policy.default
    )
    assert message["To"].addresses[0].addr_spec == "u7@example.com"
    assert message["Message-ID"] == f"<{row['message_id']}@learnops>"
    html = message.get_body(("html",)).get_content()
    assert "Safety &lt;basics&gt; &amp; more" in html
    assert "Uri Seven" in message.get_body(("plain",)).get_content()


def test_a_reminder_created_past_max_lateness_is_skipped_late(observed: Observed) -> None:
    created = observed.created_by("R2")
    # P2 was due at the end of 1 Mar: overdue + 1 day = 2 Mar 23:59:59, R2 is 10 Mar 06:00
    assert created[("overdue", "U3", "p2", "U3")]["status"] == "skipped_late"
    assert created[("overdue", "U3", "p2", "M1")]["status"] == "skipped_late"


def test_a_rerun_with_the_same_inputs_creates_and_sends_nothing(observed: Observed) -> None:
    assert observed.created_by("R2 again") == {}
    assert observed.eml_files["R2 again"] == observed.eml_files["R2"]
    assert observed.status_after("R2 again") == observed.status_after("R2")


# --------------------------------------------------------------------------- R3, R4


def test_the_due_reminder_fires_on_the_first_run_after_its_trigger(observed: Observed) -> None:
    created = observed.created_by("R3")
    due = {k: r["status"] for k, r in created.items() if k[0] == "due"}
    assert due == {
        ("due", "U2", "p1", "U2"): "pending",  # --no-send
        ("due", "U3", "p1", "U3"): "pending",
        ("due", "U7", "p1", "U7"): "pending",
        ("due", "U5", "p1", "U5"): "no_address",
    }
    assert created[("completed", "U1", "p1", "U1")]["status"] == "pending"
    assert observed.eml_files["R3"] == observed.eml_files["R2"]


def test_completion_cancels_a_pending_reminder(observed: Observed) -> None:
    after = observed.status_after("R4")
    assert after[("due", "U2", "p1", "U2")] == "cancelled"
    assert after[("due", "U3", "p1", "U3")] == "sent"
    assert after[("completed", "U2", "p1", "U2")] == "sent"


def test_changing_an_offset_does_not_resend_for_the_same_anchor(observed: Observed) -> None:
    assert not [k for k in observed.created_by("R4") if k[0] == "due"]


# --------------------------------------------------------------------------- R5, R6


def test_a_later_due_date_is_a_new_anchor(observed: Observed) -> None:
    assert not [k for k in observed.created_by("R5") if k[0] in ("due", "overdue")]
    created = observed.created_by("R6")
    due = sorted(k[1] for k, r in created.items() if k[0] == "due" and r["status"] == "sent")
    assert due == ["U3", "U7"]
    anchors = {r["anchor_at"] for k, r in created.items() if k[0] == "due"}
    assert anchors == {dt.datetime(2026, 4, 30, 23, 59, 59, 999999, tzinfo=dt.UTC)}


def test_every_run_summary_counts_its_new_messages(observed: Observed) -> None:
    r2 = observed.results["R2"]
    assert r2.notifications.get("pending", 0) + r2.notifications.get("skipped_late", 0) == len(
        observed.created_by("R2")
    )
    assert r2.delivery is not None and r2.delivery.sent == 3


# --------------------------------------------------------------------------- explain


def test_explain_lists_jobs_with_managers_and_every_message_with_why(observed: Observed) -> None:
    from flows.explain import explain_user, render_text

    with duckdb.connect(str(observed.warehouse), read_only=True) as con:
        u3 = explain_user(con, "U3")
        u6 = explain_user(con, "U6")
    assert [(j.job_id, j.manager) for j in u3.jobs] == [
        ("J1", "Maria Manager (M1, J1)"),
        ("J2", "Maria Manager (M1, J1)"),
        ("J3", "Mike Second (M2, J1)"),
    ]
    why = {(m.notification_id, m.object_id, m.recipient): m.why for m in u3.messages}
    assert why[("overdue", "p2", "learner u3@example.com")].startswith("due 2026-03-02")
    assert "max_lateness" in why[("overdue", "p2", "learner u3@example.com")]
    assert why[("assigned", "p1", "learner u3@example.com")].startswith("go-live baseline")
    assert u6.mail_stoppers == ["emailstop is set: gets no mail (managers' copies still go)"]
    text = "\n".join(render_text(u3))
    assert "manager M1" not in text and "J3 Guard — Head Office, manager Mike Second" in text
