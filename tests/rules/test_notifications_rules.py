"""rules/notifications.yaml: models, meaning, rule tables, templates, the committed schema."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import jinja2
import pytest
from ruamel.yaml import YAML

from flows.rules.loader import RulesError
from flows.rules.notification_tables import (
    NotificationsLoadSummary,
    build_notification_tables,
    load_notification_tables,
    write_notification_tables,
)
from flows.rules.notifications import (
    ALERT_TEMPLATE,
    DIGEST_TEMPLATE,
    OFFSET_OPTIONAL,
    OFFSET_REQUIRED,
    TEMPLATES_DIR,
    TRIGGERS,
    load_notifications,
    template_files,
)
from flows.rules.schema import RULES_DIR, SCHEMAS
from flows.rules.validation import RULES_FILES, validate_rules
from flows.state_schema import ensure_state_schema

from ..conftest import REPO_ROOT

INVALID = Path(__file__).parent / "invalid_notifications"
EXPECT = "# expect: "
TEMPLATES = "# templates: "

#: the other rules files every fixture's directory holds: the ids a scope may name
SUPPORT = {
    "audiences.yaml": (
        "audiences:\n"
        "  - {id: new_starters, name: New starters, kind: static, members: [U0000001]}\n"
    ),
    "programs.yaml": (
        "programs:\n  - {id: induction, name: Induction, content: [{kind: optional}]}\n"
    ),
    "certifications.yaml": (
        "certifications:\n  - {id: fire_safety, name: Fire safety, primary: [{kind: optional}],\n"
        "     active_period: {years: 1}, window_period: {months: 1}}\n"
    ),
}

VALID = """\
settings:
  sender: {address: learning@example.com, name: Learning team}
  admins: [lms-admins@example.com]
notifications:
  - id: due_soon
    trigger: program_due
    offset: {days: 7}
    scope: {programs: [induction]}
    recipients: [learner, managers, {address: hr@example.com}]
    template: program_due
  - id: expiring
    trigger: certification_expiring
    offset: {months: 1}
    scope: {certifications: [fire_safety]}
    recipients: [learner]
  - id: joined
    trigger: audience_joined
    scope: {audiences: [new_starters]}
    recipients: [learner]
    enabled: false
  - id: exceptions
    trigger: exception_raised
    scope: all
    recipients: [admins, {address: hr@example.com}]
"""


def _rules(tmp_path: Path, notifications: str | None = None) -> Path:
    """A rules directory: the support files, and notifications.yaml when given."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    for name, text in SUPPORT.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    if notifications is not None:
        (tmp_path / "notifications.yaml").write_text(notifications, encoding="utf-8")
    return tmp_path


def _issues(err: pytest.ExceptionInfo[RulesError], tmp_path: Path) -> list[str]:
    return [str(issue).removeprefix(f"{tmp_path}/") for issue in err.value.issues]


# --- invalid files: every message, exactly -------------------------------------------------


@pytest.mark.parametrize("fixture", sorted(INVALID.glob("*.yaml")), ids=lambda p: p.stem)
def test_invalid_file_gives_every_expected_message(fixture: Path, tmp_path: Path) -> None:
    lines = fixture.read_text(encoding="utf-8").splitlines()
    expected = [line.removeprefix(EXPECT) for line in lines if line.startswith(EXPECT)]
    rules_dir = _rules(tmp_path / "rules")  # the issues' paths: rules/<file>
    shutil.copy(fixture, rules_dir / "notifications.yaml")
    templates_dir = TEMPLATES_DIR
    if lines[0].startswith(TEMPLATES):  # a templates directory holding only these files
        templates_dir = tmp_path / "templates"
        templates_dir.mkdir()
        for name in lines[0].removeprefix(TEMPLATES).split(", "):
            (templates_dir / name).write_text("", encoding="utf-8")
    with pytest.raises(RulesError) as err:
        validate_rules(rules_dir, templates_dir=templates_dir)
    assert _issues(err, rules_dir) == expected


# --- the models -----------------------------------------------------------------------------


def test_the_demo_file_has_one_valid_notification_per_trigger() -> None:
    loaded = validate_rules(RULES_DIR)
    notifications = loaded.notifications.notifications
    assert sorted(n.trigger for n in notifications) == sorted(TRIGGERS)
    assert loaded.notifications.settings.sender is not None
    assert set(loaded.notification_lines) == {n.id for n in notifications}
    assert "notifications.yaml" in RULES_FILES


def test_a_missing_file_means_no_notifications_and_default_settings(tmp_path: Path) -> None:
    loaded = validate_rules(_rules(tmp_path))
    assert loaded.notifications.notifications == []
    settings = loaded.notifications.settings
    assert (settings.sender, settings.admins, settings.max_per_run) == (None, [], 500)
    assert (str(settings.max_lateness), settings.per_user_daily_cap) == ("7 days", 5)
    assert (settings.manager_digest, settings.relay_rate_per_minute) == (False, None)
    assert (settings.alert_addresses, settings.alert_reject_share) == ([], 0.05)
    assert load_notifications(tmp_path / "nowhere").notifications == []


def test_defaults_of_a_notification(tmp_path: Path) -> None:
    text = (
        "settings: {sender: {address: a@example.com}}\n"
        "notifications:\n  - {id: done, trigger: program_completed, scope: all, "
        "recipients: [learner]}\n"
    )
    [done] = validate_rules(_rules(tmp_path, text)).notifications.notifications
    assert (done.template_name, done.enabled, done.offset, done.scope_kind) == (
        "program_completed",
        True,
        None,
        "all",
    )


def test_every_trigger_is_timed_or_an_event() -> None:
    assert set(OFFSET_REQUIRED) | set(OFFSET_OPTIONAL) < set(TRIGGERS)
    assert not set(OFFSET_REQUIRED) & set(OFFSET_OPTIONAL)


def test_yes_no_on_stay_text_in_names(tmp_path: Path) -> None:
    text = "settings: {sender: {address: a@example.com, name: NO}, reply_to: on@example.com}\n"
    settings = validate_rules(_rules(tmp_path, text)).notifications.settings
    assert settings.sender is not None and settings.sender.name == "NO"


# --- rule tables ----------------------------------------------------------------------------


def _tables(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[Any, ...]]]:
    names = ("notification_setting", "notification", "notification_scope", "notification_address")
    return {
        name: con.execute(f"select * from rules.{name} order by all").fetchall()  # noqa: S608
        for name in names
    }


def test_rule_tables_hold_the_notifications_as_data(tmp_path: Path) -> None:
    loaded = validate_rules(_rules(tmp_path, VALID))
    con = duckdb.connect()
    ensure_state_schema(con)
    summary = load_notification_tables(con, loaded)
    assert summary == NotificationsLoadSummary(notifications=4, enabled=3)
    tables = _tables(con)
    assert tables["notification_setting"] == [
        (
            "learning@example.com",
            "Learning team",
            None,
            ["lms-admins@example.com"],
            500,
            0,
            7 * 86_400,
            5,
            False,
            None,
            [],
            0.05,
        )
    ]
    week = 7 * 86_400
    by_id = {row[0]: row[1:] for row in tables["notification"]}
    # trigger, offset months, offset seconds, scope kind, template
    assert {key: row[:5] for key, row in by_id.items()} == {
        "due_soon": ("program_due", 0, week, "programs", "program_due"),
        "exceptions": ("exception_raised", None, None, "all", "exception_raised"),
        "expiring": ("certification_expiring", 1, 0, "certifications", "certification_expiring"),
        "joined": ("audience_joined", None, None, "audiences", "audience_joined"),
    }
    # enabled, to learner, to managers, to admins, line of the id
    assert {key: row[5:] for key, row in by_id.items()} == {
        "due_soon": (True, True, True, False, 5),
        "exceptions": (True, False, False, True, 21),
        "expiring": (True, True, False, False, 11),
        "joined": (False, True, False, False, 16),
    }
    assert tables["notification_scope"] == [
        ("due_soon", "induction"),
        ("expiring", "fire_safety"),
        ("joined", "new_starters"),
    ]
    assert tables["notification_address"] == [
        ("due_soon", "hr@example.com"),
        ("exceptions", "hr@example.com"),
    ]


def test_quotes_semicolons_and_comments_in_values_stay_data(tmp_path: Path) -> None:
    hostile = "O'Brien'; drop table rules.notification; --"
    text = (
        f'settings:\n  sender: {{address: "o\'brien--@example.com", name: "{hostile}"}}\n'
        '  admins: ["x\'--@example.com"]\n'
        "notifications:\n  - {id: done, trigger: program_completed, scope: all, "
        'recipients: [{address: "it\'s--me@example.com"}]}\n'
    )
    loaded = validate_rules(_rules(tmp_path, text))
    con = duckdb.connect()
    ensure_state_schema(con)
    load_notification_tables(con, loaded)
    tables = _tables(con)
    assert tables["notification_setting"][0][:4] == (
        "o'brien--@example.com",
        hostile,
        None,
        ["x'--@example.com"],
    )
    assert tables["notification_address"] == [("done", "it's--me@example.com")]
    assert len(tables["notification"]) == 1  # the table is still there, with its row


def test_tables_are_replaced_and_a_missing_file_leaves_one_default_settings_row(
    tmp_path: Path,
) -> None:
    con = duckdb.connect()
    ensure_state_schema(con)
    load_notification_tables(con, validate_rules(_rules(tmp_path / "a", VALID)))
    load_notification_tables(con, validate_rules(_rules(tmp_path / "b")))
    tables = _tables(con)
    assert [row[0] for row in tables["notification_setting"]] == [None]
    assert tables["notification"] == tables["notification_scope"] == []
    assert tables["notification_address"] == []


def test_empty_tables_exist_without_any_load() -> None:
    con = duckdb.connect()
    ensure_state_schema(con)
    assert all(rows == [] for rows in _tables(con).values())


def test_scope_ids_and_addresses_are_written_once(tmp_path: Path) -> None:
    text = (
        "settings: {sender: {address: a@example.com}}\n"
        "notifications:\n  - {id: done, trigger: program_completed, "
        "scope: {programs: [induction, induction]}, recipients: [learner]}\n"
    )
    tables = build_notification_tables(validate_rules(_rules(tmp_path, text)).notifications)
    assert tables.scopes == [{"notification_id": "done", "object_id": "induction"}]
    con = duckdb.connect()
    ensure_state_schema(con)
    write_notification_tables(con, tables)
    assert _tables(con)["notification"][0][-1] is None  # no line without the loaded file


# --- what dbt and editors see ---------------------------------------------------------------


def test_dbt_accepted_values_are_the_triggers_and_scope_kinds() -> None:
    models = YAML(typ="safe").load(
        (REPO_ROOT / "dbt_project/models/staging/_staging__models.yml").read_text()
    )
    [model] = [m for m in models["models"] if m["name"] == "stg_rules__notifications"]
    accepted = {
        column["name"]: test["accepted_values"]["arguments"]["values"]
        for column in model["columns"]
        for test in column.get("data_tests", [])
        if isinstance(test, dict) and "accepted_values" in test
    }
    assert accepted == {
        "trigger": list(TRIGGERS),
        "scope_kind": ["all", "audiences", "programs", "certifications"],
    }


def test_the_schema_is_committed() -> None:
    # kept in sync by test_audiences.test_committed_schema_is_up_to_date (every SCHEMAS entry)
    assert "notifications.schema.json" in SCHEMAS
    assert (RULES_DIR / "notifications.schema.json").is_file()


def test_the_documented_example_parses(tmp_path: Path) -> None:
    text = (REPO_ROOT / "docs/rules.md").read_text(encoding="utf-8")
    section = text.split("## `notifications.yaml`", 1)[1]
    example = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert example is not None
    loaded = validate_rules(_rules(tmp_path, example.group(1)))
    assert len(loaded.notifications.notifications) >= 3


# --- templates ------------------------------------------------------------------------------


def _environment() -> jinja2.Environment:
    """As flows/notify renders: HTML autoescaped, every context key optional."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        undefined=jinja2.ChainableUndefined,
    )

    def local_date(value: object) -> str:
        if not value:
            return ""
        instant = datetime.fromisoformat(str(value)).astimezone(UTC)
        return f"{instant.day} {instant:%B %Y}"

    env.filters["local_date"] = local_date
    env.filters["local_datetime"] = local_date
    return env


FULL_CONTEXT: dict[str, Any] = {
    "learner": {
        "user_id": "U1",
        "first_name": "Ada",
        "last_name": "<script>alert(1)</script>",
        "full_name": "Ada <script>alert(1)</script>",
    },
    "manager_names": ["Fin Lead"],
    "object": {"kind": "program", "id": "induction", "name": "Company induction"},
    "course_set": {"id": "welcome", "name": "Welcome"},
    "due_at": "2026-06-01T08:00:00+00:00",
    "completed_at": "2026-05-02T08:00:00+00:00",
    "expires_at": "2027-06-01T08:00:00+00:00",
    "window_opens_at": "2027-05-01T08:00:00+00:00",
    "exception_type": "time_allowance",
    "items": [
        {
            "notification_id": "due",
            "event_type": "program_due",
            "learner": {"full_name": "Ada <script>"},
            "object": {"name": "Company induction"},
            "due_at": "2026-06-01T08:00:00+00:00",
        }
    ],
    "subject": "run r1 failed",
    "lines": ["dbt: a test failed"],
}
ALL_TEMPLATES = [*TRIGGERS, DIGEST_TEMPLATE, ALERT_TEMPLATE]


@pytest.mark.parametrize("name", ALL_TEMPLATES)
def test_every_template_set_is_complete(name: str) -> None:
    assert all((TEMPLATES_DIR / file).is_file() for file in template_files(name))


@pytest.mark.parametrize("name", ALL_TEMPLATES)
@pytest.mark.parametrize("role", ["learner", "manager", "admin", "address"])
def test_templates_render_for_every_role_with_full_and_empty_contexts(name: str, role: str) -> None:
    env = _environment()
    recipient = {"name": "Fin Lead", "email": "fin@example.com", "role": role}
    for context in (FULL_CONTEXT, {}):
        variables = {**context, "recipient": recipient}
        subject = env.get_template(f"{name}.subject.txt").render(variables)
        text = env.get_template(f"{name}.txt").render(variables)
        html = env.get_template(f"{name}.html").render(variables)
        assert subject.strip() and "\n" not in subject.strip()
        assert "Hello" in text and "\n\n\n" not in text
        assert html.startswith("<!DOCTYPE html>") and "<script>" not in html
    if name in ("program_due", "program_assigned") and role == "learner":
        rendered = env.get_template(f"{name}.txt").render({**FULL_CONTEXT, "recipient": recipient})
        assert "Hello Ada," in rendered and "1 June 2026" in rendered
        assert "Company induction" in rendered and "Fin Lead" in rendered
