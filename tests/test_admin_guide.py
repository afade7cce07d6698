"""docs/admin_guide.md's examples, run: its rules validate and run on the guide's
organisation, and the plan and explain output it shows is what learnops prints."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest
from ruamel.yaml import YAML

from flows.explain import explain_user
from flows.explain import render_text as render_explanation
from flows.pipeline import RunRequest, parse_as_of, run_pipeline
from flows.plan import plan_run
from flows.plan import render_text as render_plan
from flows.rules.validation import validate_rules
from tests.notifications.test_outbox import COURSE_CSV, USER_CSV
from tests.test_plan import JOB_CSV, ORG_CSV

from .conftest import REPO_ROOT

GUIDE = REPO_ROOT / "docs" / "admin_guide.md"
BLOCK = re.compile(r"<!-- (?P<tag>[^>]+) -->\n```(?:yaml|text)\n(?P<body>.*?)```", re.DOTALL)


def blocks() -> dict[str, str]:
    """The guide's tagged code blocks: tag -> text."""
    return {m["tag"]: m["body"] for m in BLOCK.finditer(GUIDE.read_text(encoding="utf-8"))}


def write_rules(directory: Path, found: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "hr_import.yaml").write_text("defaults:\n  max_removed_fraction: 0.5\n")
    for tag, body in found.items():
        if tag.startswith("rules/"):
            (directory / tag.removeprefix("rules/")).write_text(body, encoding="utf-8")
    return directory


def write_feeds(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    files = {"org.csv": ORG_CSV, "user.csv": USER_CSV, "jobassignment.csv": JOB_CSV}
    files["course.csv"] = COURSE_CSV
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def guide_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    base = tmp_path_factory.mktemp("admin_guide")
    rules = write_rules(base / "rules", blocks())
    feeds = write_feeds(base / "feeds")
    warehouse = base / "warehouse.duckdb"
    request = RunRequest(
        feeds=feeds, rules=rules, warehouse=warehouse, as_of=parse_as_of("2026-03-01T06:00Z", "UTC")
    )
    assert run_pipeline(request).status == "succeeded"
    return rules, feeds, warehouse


def test_the_guides_rules_validate() -> None:
    found = blocks()
    assert {"rules/audiences.yaml", "rules/programs.yaml", "rules/notifications.yaml"} <= set(found)


def test_the_plan_shown_is_what_plan_prints(guide_run: tuple[Path, Path, Path]) -> None:
    rules, feeds, warehouse = guide_run
    audiences = rules / "audiences.yaml"
    edited = rules.parent / "rules_edited"
    write_rules(edited, blocks())
    text = audiences.read_text().replace("members: [U5, U7]", "members: [U5, U7, U2]")
    (edited / "audiences.yaml").write_text(text)
    validate_rules(edited)
    plan = plan_run(
        RunRequest(
            feeds=feeds,
            rules=edited,
            warehouse=warehouse,
            as_of=parse_as_of("2026-03-02T06:00:00Z", "UTC"),
        ),
        details=5,
    )
    printed = "\n".join(render_plan(plan)).replace(
        f"against {plan.published_run_id}", "against <the published run>"
    )
    assert printed + "\n" == blocks()["plan output"]


def test_the_explanation_shown_is_what_explain_prints(guide_run: tuple[Path, Path, Path]) -> None:
    _, _, warehouse = guide_run
    with duckdb.connect(str(warehouse), read_only=True) as con:
        printed = render_explanation(explain_user(con, "U6"))
    for line in blocks()["explain output U6"].splitlines():
        assert line in printed


def test_the_pre_commit_hook_runs_the_fast_validation() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    config = text[text.index("```yaml\nrepos:") + len("```yaml\n") :]
    hook = YAML(typ="safe").load(config[: config.index("```")])["repos"][0]["hooks"][0]
    assert hook["entry"].endswith("learnops validate --rules-only --rules rules")
    assert hook["pass_filenames"] is False
